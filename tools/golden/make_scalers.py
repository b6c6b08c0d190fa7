#!/usr/bin/env python3
"""Write tests/golden/scalers.json: scikit-learn scaler references.

Every input is float32-representable (generated as float32, then cast to
float64); scikit-learn runs on the float64 copy. "inverse" is
inverse_transform(expected.transformed) computed in float64.
Methods: standard (StandardScaler), minmax (MinMaxScaler), maxabs
(MaxAbsScaler), robust (RobustScaler), log (np.log1p / np.expm1, stateless).
"""

import numpy as np
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from common import arr, dump, f32, load_breast_cancer_f32, load_wine_f32, quiet, vec

DEFAULT_OPTIONS = {
    "standard": {"with_mean": True, "with_std": True},
    "minmax": {"feature_range": [0.0, 1.0], "clip": False},
    "maxabs": {},
    "robust": {"with_centering": True, "with_scaling": True, "quantile_range": [25.0, 75.0],
               "unit_variance": False},
    "log": {},
}

# Fixed key set of "params" per method (value null where sklearn has None).
PARAM_KEYS = {
    "standard": ["mean_", "var_", "scale_", "n_samples_seen_"],
    "minmax": ["data_min_", "data_max_", "data_range_", "scale_", "min_", "n_samples_seen_"],
    "maxabs": ["max_abs_", "scale_", "n_samples_seen_"],
    "robust": ["center_", "scale_"],
    "log": [],
}


def make_scaler(method, opts):
    if method == "standard":
        return StandardScaler(with_mean=opts["with_mean"], with_std=opts["with_std"])
    if method == "minmax":
        return MinMaxScaler(feature_range=tuple(opts["feature_range"]), clip=opts["clip"])
    if method == "maxabs":
        return MaxAbsScaler()
    if method == "robust":
        return RobustScaler(with_centering=opts["with_centering"], with_scaling=opts["with_scaling"],
                            quantile_range=tuple(opts["quantile_range"]),
                            unit_variance=opts["unit_variance"])
    raise ValueError(method)


def params_of(method, sc, n_features):
    out = {}
    for k in PARAM_KEYS[method]:
        v = getattr(sc, k, None)
        if k == "n_samples_seen_" and v is not None:
            # sklearn gives an int, or a per-feature array when NaN was seen:
            # always written as a per-feature list of integers.
            v = np.broadcast_to(np.asarray(v), (n_features,)).astype(np.int64)
        out[k] = vec(v)
    return out


def full_options(method, options):
    o = dict(DEFAULT_OPTIONS[method])
    o.update(options or {})
    return o


def case(name, method, fit=None, transform=None, options=None, batches=None, note=None):
    opts = full_options(method, options)
    if batches is not None:
        batches = [f32(b) for b in batches]
        n_features = batches[0].shape[1]
    else:
        fit = f32(fit)
        n_features = fit.shape[1]
    x = f32(transform) if transform is not None else fit
    assert x.ndim == 2 and x.shape[1] == n_features

    if method == "log":
        assert batches is None
        transformed = np.log1p(x)
        inverse = np.expm1(transformed)
        params = {}
    else:
        sc = make_scaler(method, opts)
        if batches is not None:
            for b in batches:
                sc.partial_fit(b)
        else:
            sc.fit(fit)
        transformed = sc.transform(x)
        inverse = sc.inverse_transform(transformed)
        params = params_of(method, sc, n_features)

    c = {
        "name": name,
        "method": method,
        "options": opts,
        "fit": arr(fit) if batches is None else None,
        "batches": [arr(b) for b in batches] if batches is not None else None,
        "transform": arr(x),
        "expected": {"transformed": arr(transformed), "inverse": arr(inverse), "params": params},
    }
    if note:
        c["note"] = note
    return c


def main():
    quiet()
    rng = np.random.default_rng(20240502)

    # Small synthetic data on very different scales, with negatives.
    def synth(n):
        return np.stack(
            [
                rng.standard_normal(n),
                1000.0 + 50.0 * rng.standard_normal(n),
                rng.exponential(0.01, n),
                rng.uniform(-5.0, 5.0, n),
            ],
            axis=1,
        )

    syn = f32(synth(30))
    # A second set, partly outside the fit range of every column.
    other = f32(synth(12))
    other[0] = syn.min(axis=0) - np.array([1.0, 100.0, 0.01, 3.0])
    other[1] = syn.max(axis=0) + np.array([1.0, 100.0, 0.01, 3.0])
    other = f32(other)

    brief = np.array([[10.0], [200.0], [3000.0], [40000.0], [500000.0]])

    nanmix = rng.standard_normal((20, 4)) * np.array([2.0, 1.0, 1.0, 1.0]) + 3.0
    nanmix[[1, 4, 5, 11, 17], 0] = np.nan
    nanmix[:, 1] = 2.5  # constant column
    nanmix[[0, 9], 1] = np.nan
    nanmix[:, 2] = np.nan  # all-NaN column
    nanmix[[3, 8], 3] = np.nan
    nanmix = f32(nanmix)
    nan_note = ("column 0: some NaN; column 1: constant 2.5 with NaN; column 2: all NaN "
                "(sklearn warns and gives NaN statistics, recorded as null); column 3: some NaN")

    n1 = np.array([[1.5, -2.0, 0.0]])
    n2 = np.array([[1.0, -3.0, 5.0], [4.0, -3.0, -5.0]])
    offset = 1e4 + rng.standard_normal((100, 2))

    wine = load_wine_f32()
    bc_cols = [0, 3, 6, 9, 14, 23]  # radius, area, concavity (has 0s), fractal dim, ...
    bc = load_breast_cancer_f32()[:100, bc_cols]

    cases = []
    common_sets = [
        ("synth", syn, None),
        ("synth_fit_other_transform", syn, other),
        ("brief_example", brief, None),
        ("nan_const_allnan", nanmix, None),
        ("n1", n1, None),
        ("n2", n2, None),
    ]
    for method in ["standard", "minmax", "maxabs", "robust"]:
        for tag, fit, tr in common_sets:
            note = nan_note if tag == "nan_const_allnan" else None
            cases.append(case(f"{method}_{tag}", method, fit, tr, note=note))

    # standard options
    cases.append(case("standard_no_mean_synth", "standard", syn, options={"with_mean": False}))
    cases.append(case("standard_no_std_synth", "standard", syn, options={"with_std": False}))
    cases.append(case("standard_no_mean_no_std_synth", "standard", syn,
                      options={"with_mean": False, "with_std": False}))
    cases.append(case("standard_no_mean_nan_const_allnan", "standard", nanmix,
                      options={"with_mean": False}, note=nan_note))
    cases.append(case("standard_offset_1e4", "standard", offset,
                      note="mean >> std: must standardize correctly"))

    # minmax options
    cases.append(case("minmax_range_m1_1_synth", "minmax", syn, options={"feature_range": [-1.0, 1.0]}))
    cases.append(case("minmax_range_0_10_synth", "minmax", syn, options={"feature_range": [0.0, 10.0]}))
    cases.append(case("minmax_clip_synth_fit_other_transform", "minmax", syn, other,
                      options={"clip": True}))
    cases.append(case("minmax_clip_range_m1_1_synth_fit_other_transform", "minmax", syn, other,
                      options={"feature_range": [-1.0, 1.0], "clip": True}))
    cases.append(case("minmax_range_m1_1_nan_const_allnan", "minmax", nanmix,
                      options={"feature_range": [-1.0, 1.0]}, note=nan_note))

    # robust options
    robust_opts = [
        ("q10_90", {"quantile_range": [10.0, 90.0]}),
        ("unit_variance", {"unit_variance": True}),
        ("q10_90_unit_variance", {"quantile_range": [10.0, 90.0], "unit_variance": True}),
        ("no_centering", {"with_centering": False}),
        ("no_scaling", {"with_scaling": False}),
        ("no_centering_no_scaling", {"with_centering": False, "with_scaling": False}),
        ("q0_100", {"quantile_range": [0.0, 100.0]}),
    ]
    for tag, o in robust_opts:
        cases.append(case(f"robust_{tag}_synth", "robust", syn, options=o))
    cases.append(case("robust_q10_90_unit_variance_nan_const_allnan", "robust", nanmix,
                      options={"quantile_range": [10.0, 90.0], "unit_variance": True}, note=nan_note))

    # log
    tiny = np.array(
        [
            [1e-10, -1e-7, 0.0],
            [1e-30, -1e-30, -0.0],
            [3.0e-8, 2.5e-4, 0.5],
            [-0.5, -0.999999, 0.999],
            [1e6, 1e30, 3e38],
            [np.nan, 7.0, -0.9],
        ]
    )
    cases.append(case("log_tiny_and_large", "log", tiny,
                      note="relative accuracy for tiny |x| matters (log(1+x) is not good enough); NaN passes through"))
    cases.append(case("log_brief_example", "log", brief))
    cases.append(case("log_synth_nonneg", "log", np.abs(syn)))
    cases.append(case("log_n1", "log", np.array([[1e-10, 0.25, 100.0]])))

    # real datasets (default options); kept to a few cases so the file stays < 1 MB
    for method in ["standard", "minmax", "robust"]:
        cases.append(case(f"{method}_wine", method, wine))
    for method in ["standard", "maxabs", "log"]:
        cases.append(case(f"{method}_breast_cancer_100x6", method, bc,
                          note=f"first 100 rows of breast_cancer, columns {bc_cols}"))

    # partial_fit
    b1 = synth(7)
    b2 = synth(1)
    b3 = synth(20) * 1.5 + 2.0
    batches = [b1, b2, b3]
    for method, o, tag in [("standard", {}, "default"), ("standard", {"with_mean": False}, "no_mean"),
                           ("minmax", {}, "default"),
                           ("minmax", {"feature_range": [-1.0, 1.0]}, "range_m1_1"),
                           ("maxabs", {}, "default")]:
        cases.append(case(f"{method}_partial_fit_3batches_{tag}", method, transform=other,
                          batches=batches, options=o,
                          note="batches of 7, 1 and 20 rows; transform a different set"))
    nb1 = nanmix[:8]
    nb2 = nanmix[8:]
    for method in ["standard", "minmax", "maxabs"]:
        cases.append(case(f"{method}_partial_fit_nan_const_allnan", method, transform=nanmix,
                          batches=[nb1, nb2], note=nan_note))
    ob = [1e4 + rng.standard_normal((50, 2)) for _ in range(3)]
    cases.append(case("standard_partial_fit_offset_1e4", "standard", transform=ob[0], batches=ob))

    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    dump(cases, "scalers.json")


if __name__ == "__main__":
    main()
