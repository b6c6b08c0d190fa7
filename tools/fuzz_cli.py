#!/usr/bin/env python3
"""Randomized differential check of the `gpunorm` CLI against scikit-learn, numpy and
PyTorch (a development tool: CI runs the Rust tests, which need no Python).

    python3 tools/fuzz_cli.py [SEED] [CASES]      # default: seed 0, 60 cases

Each case draws an input (shapes from 1 × 1 to 20000 × 33; normal, offset by 1e4,
uniform, small integers, ties with ±0, tiny (1e-20), huge (1e30), sorted and Cauchy
data; constant and all-NaN columns, NaN sprinkled in; .npy in C or Fortran order,
big-endian or float64, or .csv) and runs one of:
- `scale` with a random method and options (sometimes `--fit` on other data), against
  the scikit-learn scaler fitted in float64 on the same float32 values; then, half the
  time, `--inverse` through the params file, against that file's parameters applied in
  float64 to the same output;
- `stats` with random quantiles, against numpy (mean, var, var_sample, min, max,
  np.nanquantile);
- `norm` (batch train or eval with running stats, layer over K dims, group, instance;
  γ/β, channels-last), against torch.nn.functional in float64.
Tolerances scale with the size float32 rounds at (the output's, or the data's where the
output is a difference of nearly equal values). Prints every mismatch, and the temporary
folder that holds the failing cases' files. Needs numpy, scikit-learn and torch.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from sklearn import preprocessing as skp

BIN = os.environ.get("GPUNORM", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "gpunorm"))
rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
N_CASES = int(sys.argv[2]) if len(sys.argv) > 2 else 60
tmp = tempfile.mkdtemp()
fails = []


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def gen_matrix():
    n = int(rng.choice([1, 2, 3, 7, 64, 65, 255, 257, 1000, 4097, 9000, 20000]))
    f = int(rng.choice([1, 1, 2, 3, 5, 16, 33]))
    kind = rng.choice(["normal", "offset", "uniform", "ints", "ties", "tiny", "huge", "sorted", "mixed"])
    if kind == "normal":
        x = rng.normal(size=(n, f))
    elif kind == "offset":
        x = 1e4 + rng.normal(size=(n, f))
    elif kind == "uniform":
        x = rng.uniform(-5, 5, size=(n, f))
    elif kind == "ints":
        x = rng.integers(-3, 4, size=(n, f)).astype(float)
    elif kind == "ties":
        x = rng.choice([0.0, -0.0, 1.5, 2.0], size=(n, f))
    elif kind == "tiny":
        x = rng.normal(size=(n, f)) * 1e-20
    elif kind == "huge":
        x = rng.normal(size=(n, f)) * 1e30
    elif kind == "sorted":
        x = np.sort(rng.normal(size=(n, f)), axis=0)
    else:
        x = rng.standard_cauchy(size=(n, f))
    x = x.astype(np.float32)
    # constant column, NaN sprinkles, an all-NaN column
    if f > 1 and rng.random() < 0.3:
        x[:, int(rng.integers(f))] = np.float32(rng.normal())
    if rng.random() < 0.4:
        m = rng.random(size=x.shape) < rng.choice([0.01, 0.2, 0.7])
        x[m] = np.nan
    if f > 2 and rng.random() < 0.15:
        x[:, int(rng.integers(f))] = np.nan
    return x, kind


def save(x, name, fmt):
    p = os.path.join(tmp, name + "." + fmt)
    if fmt == "npy":
        v = rng.random()
        if v < 0.1:
            x = np.asfortranarray(x)
        elif v < 0.2:
            x = x.astype(">f4")
        elif v < 0.3 and not np.isnan(x).any():
            x = x.astype(np.float64)
        np.save(p, x)
    else:
        with open(p, "w") as fh:
            if x.ndim == 1:
                x = x[:, None]
            fh.write(",".join(f"c{j}" for j in range(x.shape[1])) + "\n")
            for row in x:
                fh.write(",".join("nan" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    return p


def compare(what, got, ref, rel=2e-5, absol=None, scale=None):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        fails.append(f"{what}: shape {got.shape} vs {ref.shape}")
        return
    gn, rn = np.isnan(got), np.isnan(ref)
    if (gn != rn).any():
        i = np.argwhere(gn != rn)[0]
        fails.append(f"{what}: NaN mismatch at {tuple(i)}: got {got[tuple(i)]} ref {ref[tuple(i)]}")
        return
    ok = ~rn
    if not ok.any():
        return
    g, r = got[ok], ref[ok]
    if scale is None:
        scale = 1.0
    if np.ndim(scale) and np.shape(scale) == ok.shape:
        scale = np.asarray(scale)[ok]
    tol = rel * np.maximum(np.abs(r), scale)
    if absol is not None:
        tol = np.maximum(tol, absol)
    err = np.abs(g - r)
    bad = err > tol
    if bad.any():
        k = np.argmax(err / tol)
        fails.append(f"{what}: worst err {err[k]:.3g} (tol {tol[k]:.3g}) got {g[k]!r} ref {r[k]!r}; {bad.sum()} bad of {bad.size}")


def sk_ref(method, opts, fit, x):
    fit64 = fit.astype(np.float64)
    x64 = x.astype(np.float64)
    if method == "standard":
        s = skp.StandardScaler(with_mean=not opts.get("no_center"), with_std=not opts.get("no_scale"))
    elif method == "minmax":
        s = skp.MinMaxScaler(feature_range=opts.get("range", (0, 1)), clip=opts.get("clip", False))
    elif method == "maxabs":
        s = skp.MaxAbsScaler()
    elif method == "robust":
        s = skp.RobustScaler(with_centering=not opts.get("no_center"), with_scaling=not opts.get("no_scale"),
                             quantile_range=opts.get("qr", (25.0, 75.0)), unit_variance=opts.get("uv", False))
    else:
        return np.log1p(x64), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s.fit(fit64)
        if method == "minmax":
            # scikit-learn's x·scale + min_ cancels where min_ = MIN − data_min·scale is
            # huge (a constant column of 1e30 gives 0, not MIN): the same map, in the
            # form the contract gives, (x − data_min)·scale + MIN.
            lo = s.feature_range[0]
            y = (x64 - s.data_min_) * s.scale_ + lo
            return (np.clip(y, *s.feature_range) if s.clip else y), s
        return s.transform(x64), s


def fuzz_scale(it):
    x, kind = gen_matrix()
    method = str(rng.choice(["standard", "minmax", "maxabs", "robust", "log"]))
    if method == "log":
        x = np.abs(x) if kind != "huge" else np.abs(x) * 0 + np.abs(rng.normal(size=x.shape)).astype(np.float32)
    opts = {}
    args = ["scale", "--method", method]
    if method == "standard":
        if rng.random() < 0.2: opts["no_center"] = True; args.append("--no-center")
        if rng.random() < 0.2: opts["no_scale"] = True; args.append("--no-scale")
    if method == "minmax" and rng.random() < 0.5:
        lo = float(rng.choice([-1, -3, 0.5])); hi = lo + float(rng.choice([1, 2.5]))
        opts["range"] = (lo, hi); args.append(f"--feature-range={lo},{hi}")
    if method == "robust":
        if rng.random() < 0.5:
            lo = float(rng.choice([0, 5, 10, 25, 33.3])); hi = float(rng.choice([66.6, 75, 90, 100]))
            opts["qr"] = (lo, hi); args += ["--quantile-range", f"{lo},{hi}"]
        if rng.random() < 0.3: opts["uv"] = True; args.append("--unit-variance")
        if rng.random() < 0.15: opts["no_center"] = True; args.append("--no-center")
        if rng.random() < 0.15: opts["no_scale"] = True; args.append("--no-scale")
    fmt_in = "npy" if rng.random() < 0.7 else "csv"
    fmt_out = "npy" if rng.random() < 0.7 else "csv"
    one_d = x.shape[1] == 1 and fmt_in == "npy" and rng.random() < 0.5
    xin = x[:, 0] if one_d else x
    pin = save(xin, f"in{it}", fmt_in)
    fit = x
    if rng.random() < 0.3 and method != "log":
        fit = gen_matrix()[0]
        if fit.shape[1] != x.shape[1]:
            fit = None
        else:
            args += ["--fit", save(fit, f"fit{it}", "npy")]
    if fit is None:
        fit = x
    out = os.path.join(tmp, f"out{it}.{fmt_out}")
    params = os.path.join(tmp, f"p{it}.json")
    args += [pin, "-o", out, "--params-out", params]
    rc, so, se = run(args)
    what = f"[{it}] scale {method} {opts} kind={kind} shape={x.shape} in={fmt_in} out={fmt_out}"
    if rc != 0:
        fails.append(f"{what}: rc {rc}: {se.strip()[:300]}")
        return
    got = np.load(out) if fmt_out == "npy" else np.genfromtxt(out, delimiter=",", skip_header=1 if fmt_in == "csv" else 0, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64).reshape(xin.shape)
    ref, _ = sk_ref(method, opts, fit, x)
    ref = ref[:, 0] if one_d else ref
    # the output's own size, or where it is a difference of nearly equal values (centring
    # without scaling, data far from 0) the data's: float32 rounds at that size
    scale = 1.0
    if method in ("standard", "robust") and kind in ("offset",):
        scale = 1e4
    if opts.get("no_scale") and np.isfinite(x).any():
        scale = max(scale, float(np.nanmax(np.abs(x))))
    compare(what, got, ref, rel=1e-5 if method != "log" else 2e-6, scale=scale)
    # inverse: against scikit-learn's inverse_transform of the same (gpunorm's) output
    if method != "log" and rng.random() < 0.5 and np.isfinite(got[~np.isnan(got)]).all():
        back = os.path.join(tmp, f"back{it}.npy")
        rc, so, se = run(["scale", "--params-in", params, "--inverse", out, "-o", back])
        if rc != 0:
            fails.append(f"{what} inverse: rc {rc}: {se.strip()[:300]}")
        else:
            b = np.load(back).astype(np.float64).reshape(xin.shape)
            g2 = got.reshape(x.shape) if one_d else got
            # gpunorm's own fitted parameters (the params file), applied in float64
            pj = json.load(open(params))
            o = pj["options"]
            arr = lambda k, d: np.array([d if v is None else v for v in pj[k]], dtype=np.float64) if pj.get(k) is not None else np.full(x.shape[1], d)
            S = np.ones(x.shape[1]); C = np.zeros(x.shape[1])
            if method == "minmax":
                S = 1 / arr("scale", np.nan); C = -arr("min", np.nan) * S
            elif method == "maxabs":
                S = arr("scale", np.nan)
            elif method == "standard":
                S = arr("scale", np.nan)
                C = arr("mean", np.nan) if o["with_mean"] else C
            else:
                S = arr("scale", np.nan) if o["with_scaling"] else S
                C = arr("center", np.nan) if o["with_centering"] else C
            want = g2 * S + C
            want = want[:, 0] if one_d else want
            mag = np.abs(g2) * np.abs(S) + np.abs(C)
            mag = mag[:, 0] if one_d else mag
            compare(what + " inverse", b, want, rel=2e-6, scale=np.maximum(mag, 1e-30))


def fuzz_stats(it):
    x, kind = gen_matrix()
    qs = sorted(set(float(q) for q in rng.choice([0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 0.333, 0.01, 0.99], size=int(rng.integers(1, 5)))))
    fmt = "npy" if rng.random() < 0.7 else "csv"
    pin = save(x, f"st{it}", fmt)
    qarg = ",".join(repr(q) if q not in (0, 1) else str(int(q)) for q in qs)
    rc, so, se = run(["stats", pin, "--quantiles", qarg])
    what = f"[{it}] stats kind={kind} shape={x.shape} qs={qs}"
    if rc != 0:
        fails.append(f"{what}: rc {rc} {se[:300]}")
        return
    js = json.loads(so)
    if js["n_samples"] != x.shape[0] or js["n_features"] != x.shape[1]:
        fails.append(f"{what}: n_samples/n_features {js['n_samples']} {js['n_features']}")
    x64 = x.astype(np.float64)
    for j, feat in enumerate(js["features"]):
        col = x64[:, j]
        v = col[~np.isnan(col)]
        nn = lambda a: float("nan") if a is None else a
        if feat["count"] != v.size or feat["nan_count"] != col.size - v.size:
            fails.append(f"{what} col {j}: count {feat['count']} nan_count {feat['nan_count']} want {v.size}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = np.mean(v) if v.size else np.nan
            var = np.var(v) if v.size else np.nan
            vs = np.var(v, ddof=1) if v.size > 1 else np.nan
            mn = np.min(v) if v.size else np.nan
            mx = np.max(v) if v.size else np.nan
            qv = np.nanquantile(col, qs) if v.size else [np.nan] * len(qs)
        sc = np.max(np.abs(v)) if v.size else 1
        compare(f"{what} col {j} mean", nn(feat["mean"]), mean, rel=1e-6, scale=sc)
        compare(f"{what} col {j} var", nn(feat["var"]), var, rel=1e-5, absol=1e-6 * sc * sc if sc * sc < 1e300 else None)
        compare(f"{what} col {j} var_sample", nn(feat["var_sample"]), vs, rel=1e-5, absol=1e-6 * sc * sc if sc * sc < 1e300 else None)
        compare(f"{what} col {j} min", nn(feat["min"]), mn, rel=0)
        compare(f"{what} col {j} max", nn(feat["max"]), mx, rel=0)
        keys = list(feat["quantiles"].keys())
        for q, key, want in zip(qs, keys, qv):
            if float(key) != q:
                fails.append(f"{what}: quantile key {key} for {q}")
            compare(f"{what} col {j} q{q}", nn(feat["quantiles"][key]), want, rel=1e-6)


def fuzz_norm(it):
    kind = str(rng.choice(["batch", "layer", "group", "instance"]))
    N = int(rng.choice([1, 2, 3, 8]))
    C = int(rng.choice([1, 2, 4, 6, 12]))
    sp = [int(s) for s in rng.choice([1, 3, 5, 17, 64], size=int(rng.integers(0, 3)))]
    if kind == "batch" and N * int(np.prod(sp)) < 2:
        N = 2
    if kind == "instance" and int(np.prod(sp)) < 2:
        sp = [4]
    shape = [N, C] + sp
    off = float(rng.choice([0, 0, 100, 1e4]))
    x = (rng.normal(size=shape) * float(rng.choice([1, 0.01, 30])) + off).astype(np.float32)
    px = save(x, f"nx{it}", "npy")
    out = os.path.join(tmp, f"no{it}.npy")
    args = ["norm", "--kind", kind, px, "-o", out]
    eps = float(rng.choice([1e-5, 1e-3]))
    args += ["--eps", repr(eps)]
    xt = torch.from_numpy(x.astype(np.float64))
    g = b = None
    what = f"[{it}] norm {kind} shape={shape} off={off}"
    if kind == "layer":
        K = int(rng.integers(1, len(shape) + 1))
        nshape = shape[-K:]
        args += ["--normalized-dims", str(K)]
        if rng.random() < 0.5:
            g = rng.normal(size=nshape).astype(np.float32); b = rng.normal(size=nshape).astype(np.float32)
            args += ["--gamma", save(g, f"g{it}", "npy"), "--beta", save(b, f"b{it}", "npy")]
        ref = torch.nn.functional.layer_norm(xt, nshape, None if g is None else torch.from_numpy(g.astype(np.float64)),
                                             None if b is None else torch.from_numpy(b.astype(np.float64)), eps)
        what += f" K={K}"
    else:
        if rng.random() < 0.5:
            g = rng.normal(size=C).astype(np.float32); b = rng.normal(size=C).astype(np.float32)
            args += ["--gamma", save(g, f"g{it}", "npy"), "--beta", save(b, f"b{it}", "npy")]
        gt = None if g is None else torch.from_numpy(g.astype(np.float64))
        bt = None if b is None else torch.from_numpy(b.astype(np.float64))
        if kind == "batch":
            mom = float(rng.choice([0.1, 0.5]))
            rm = torch.zeros(C, dtype=torch.float64); rv = torch.ones(C, dtype=torch.float64)
            train = rng.random() < 0.7
            if rng.random() < 0.5 or not train:
                rm0 = rng.normal(size=C).astype(np.float32); rv0 = rng.uniform(0.5, 2, size=C).astype(np.float32)
                rm = torch.from_numpy(rm0.astype(np.float64)); rv = torch.from_numpy(rv0.astype(np.float64))
                args += ["--running-mean", save(rm0, f"rm{it}", "npy"), "--running-var", save(rv0, f"rv{it}", "npy")]
            if not train:
                args.append("--eval")
            args += ["--momentum", repr(mom), "--running-out", os.path.join(tmp, f"run{it}")]
            ref = torch.nn.functional.batch_norm(xt, rm, rv, gt, bt, train, mom, eps)
            what += f" train={train}"
        elif kind == "group":
            G = int(rng.choice([d for d in range(1, C + 1) if C % d == 0]))
            args += ["--groups", str(G)]
            ref = torch.nn.functional.group_norm(xt, G, gt, bt, eps)
            what += f" G={G}"
        else:
            ref = torch.nn.functional.instance_norm(xt, None, None, gt, bt, True, 0.1, eps)
    last = kind != "layer" and len(shape) > 2 and rng.random() < 0.3
    if last:
        # channels-last: the file holds (N, *, C)
        xl = np.moveaxis(x, 1, -1).copy()
        args[args.index(px)] = save(xl, f"nxl{it}", "npy")
        args.append("--channels-last")
        what += " channels-last"
    rc, so, se = run(args)
    if rc != 0:
        fails.append(f"{what}: rc {rc} {se[:300]}")
        return
    got = np.load(out)
    if last:
        got = np.moveaxis(got, -1, 1)
    compare(what, got, ref.numpy(), rel=1e-4, scale=1.0)
    if kind == "batch":
        d = os.path.join(tmp, f"run{it}")
        compare(what + " running_mean", np.load(os.path.join(d, "running_mean.npy")), rm.numpy(), rel=2e-5, scale=1)
        compare(what + " running_var", np.load(os.path.join(d, "running_var.npy")), rv.numpy(), rel=2e-4, scale=1)


for it in range(N_CASES):
    f = [fuzz_scale, fuzz_stats, fuzz_norm][it % 3]
    try:
        f(it)
    except ValueError as e:
        if "Expected more than 1 value" not in str(e):
            fails.append(f"[{it}] {f.__name__}: python exception {e!r}")
    except Exception as e:
        fails.append(f"[{it}] {f.__name__}: python exception {e!r}")
print(f"{N_CASES} cases, {len(fails)} failures (files in {tmp})")
for m in fails:
    print(" -", m)
sys.exit(1 if fails else 0)
