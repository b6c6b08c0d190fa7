#!/usr/bin/env python3
"""Write tests/golden/stats.json: per-column statistics references.

Inputs are float32 values; statistics are computed in float64 with numpy's
NaN-ignoring reductions:
  mean = np.nanmean, var = np.nanvar(ddof=0), var_sample = np.nanvar(ddof=1)
  (null where count <= 1), std = sqrt(var) (np.nanstd, ddof=0), min/max =
  np.nanmin/np.nanmax, quantiles = np.nanquantile(method="linear") (the same
  as np.nanpercentile(100*q, method="linear")). An all-NaN column gives null
  statistics (count 0).
"""

import numpy as np

from common import arr, dump, f32, load_wine_f32, quiet, scalar

DEFAULT_Q = [0.25, 0.5, 0.75]
MANY_Q = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


def q_key(q):
    """Shortest decimal form of q, as the CLI's stats keys ("0.25", "1")."""
    s = repr(float(q))
    if s.endswith(".0"):
        s = s[:-2]
    return s


def column_stats(x, quantiles):
    n_feat = x.shape[1]
    out = {k: [] for k in ["count", "nan_count", "mean", "var", "var_sample", "std", "min", "max"]}
    qs = [[None] * n_feat for _ in quantiles]
    for j in range(n_feat):
        col = x[:, j]
        valid = col[~np.isnan(col)]
        n = int(valid.size)
        out["count"].append(n)
        out["nan_count"].append(int(col.size - n))
        if n == 0:
            for k in ["mean", "var", "var_sample", "std", "min", "max"]:
                out[k].append(None)
            continue
        out["mean"].append(scalar(np.nanmean(col)))
        var = np.nanvar(col, ddof=0)
        out["var"].append(scalar(var))
        out["var_sample"].append(scalar(np.nanvar(col, ddof=1)) if n > 1 else None)
        out["std"].append(scalar(np.nanstd(col, ddof=0)))
        out["min"].append(scalar(np.nanmin(col)))
        out["max"].append(scalar(np.nanmax(col)))
        for i, q in enumerate(quantiles):
            qs[i][j] = scalar(np.nanquantile(col, q, method="linear"))
    out["quantiles"] = qs
    return out


def case(name, x, quantiles=DEFAULT_Q, note=None):
    x = f32(x)
    assert x.ndim == 2
    c = {
        "name": name,
        "input": arr(x),
        "quantiles": [float(q) for q in quantiles],
        "quantile_keys": [q_key(q) for q in quantiles],
        "expected": column_stats(x, quantiles),
    }
    if note:
        c["note"] = note
    return c


def main():
    quiet()
    rng = np.random.default_rng(20240501)
    cases = []

    # 1. random normal 257x3 with different locations / scales per column
    x = rng.standard_normal((257, 3)) * np.array([1.0, 10.0, 0.01]) + np.array([0.0, -5.0, 3.0])
    cases.append(case("normal_257x3", x))

    # 2. large offset: 1e4 + N(0,1)
    x = 1e4 + rng.standard_normal((1000, 2))
    cases.append(case("offset_1e4_1000x2", x, note="mean >> std: E[x^2]-E[x]^2 fails here"))

    # 3. ties and an all-equal column
    x = np.stack(
        [
            rng.integers(0, 5, size=64).astype(np.float64),  # many ties
            np.full(64, 7.5),  # all equal
            np.repeat([1.0, 2.0], 32),  # two values, half/half
        ],
        axis=1,
    )
    cases.append(case("ties_and_constant_64x3", x, quantiles=MANY_Q))

    # 4. NaN mixed in + an all-NaN column + a column without NaN
    x = rng.standard_normal((50, 3)) * 3.0 + 1.0
    x[rng.random(50) < 0.3, 0] = np.nan
    x[:, 2] = np.nan
    x[0, 0] = np.nan
    cases.append(case("nan_mixed_and_all_nan_50x3", x, quantiles=MANY_Q,
                      note="column 2 is all NaN: count 0, every statistic null"))

    # 5. n = 1
    cases.append(case("n1_1x3", np.array([[1.5, -2.0, 0.0]]), quantiles=MANY_Q,
                      note="var_sample is null (count 1)"))

    # 6. n = 2
    cases.append(case("n2_2x3", np.array([[1.0, -3.0, 5.0], [4.0, -3.0, -5.0]]), quantiles=MANY_Q))

    # 7. signed zeros
    x = np.array(
        [
            [-0.0, 0.0, -0.0],
            [0.0, 0.0, -0.0],
            [-0.0, 1.0, -0.0],
            [0.0, -1.0, -0.0],
        ]
    )
    cases.append(case("signed_zeros_4x3", x, quantiles=MANY_Q,
                      note="compare zeros with ==; the sign of a zero result is not part of the contract"))

    # 8. subnormals (float32 subnormal range: < 1.1754944e-38)
    tiny = np.float32(1.4e-45)  # smallest positive float32 subnormal
    sub = np.array(
        [
            [tiny, 1e-40, 1e-45],
            [2 * tiny, -1e-40, 1e-39],
            [3 * tiny, 5e-41, 1.1754942e-38],  # largest subnormal
            [4 * tiny, 0.0, 1.17549435e-38],  # smallest normal
            [5 * tiny, -5e-41, 2e-38],
        ],
        dtype=np.float32,
    )
    cases.append(case("subnormals_5x3", sub, quantiles=MANY_Q,
                      note="float32 subnormal inputs; GPUs may flush them to zero"))

    # 9. huge magnitudes near the float32 limit
    x = np.array(
        [
            [3e38, 3e38, 1.0],
            [-3e38, 3e38, 2.0],
            [3e38, 3e38, 3e38],
            [-3e38, 3e38, -3e38],
            [3e38, 3e38, 0.0],
        ],
        dtype=np.float32,
    )
    cases.append(case("huge_pm3e38_5x3", x, quantiles=MANY_Q,
                      note="float32 sums/squares overflow here; var (~1e77) is not representable in float32"))

    # 10. many quantiles, odd and even n, skewed data
    x = np.stack([rng.exponential(2.0, 101), rng.standard_normal(101) * 100.0], axis=1)
    cases.append(case("quantiles_many_101x2", x, quantiles=MANY_Q))
    x = np.stack([rng.exponential(2.0, 100), rng.uniform(-1, 1, 100)], axis=1)
    cases.append(case("quantiles_many_100x2", x, quantiles=MANY_Q))

    # 11. wine, default quantiles
    cases.append(case("wine", load_wine_f32(), quantiles=DEFAULT_Q))

    dump(cases, "stats.json")


if __name__ == "__main__":
    main()
