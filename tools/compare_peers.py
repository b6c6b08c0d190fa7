#!/usr/bin/env python3
"""Time the tools gpunorm replaces on the operations of `gpunorm bench`, on this machine,
and print them beside gpunorm's own figures from the same machine.

    gpunorm bench --json --quick > bench.json
    python3 tools/compare_peers.py bench.json [--device cpu|cuda] [--runs 5]

For every op of the bench report (its largest size, the same shape), the peer is:
scikit-learn's scalers (fit, transform, fit_transform), numpy's nanquantile and
torch.quantile for `quantiles3`, np.log1p, and torch.nn.functional's batch_norm,
layer_norm, group_norm and instance_norm (forward; batch norm backward through
autograd). All inputs are float32, as in gpunorm. Peers that are not installed are
skipped. `--device cuda` runs the torch peers on the GPU (synchronised around each
run); scikit-learn and numpy always run on the CPU. Medians of `--runs` runs after one
warm-up.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # torch is optional
    torch = None
try:
    from sklearn import preprocessing as skp
except ImportError:  # scikit-learn is optional
    skp = None

QS = [0.25, 0.5, 0.75]


def median_time(fn, runs, sync=None):
    fn()  # warm-up
    if sync:
        sync()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sklearn_peers(x):
    """Op name -> (peer name, callable) for the scaler ops."""
    if skp is None:
        return {}
    std = skp.StandardScaler().fit(x)
    xp = np.abs(x)
    return {
        "stats": ("numpy mean/var/min/max", lambda: (x.mean(0), x.var(0), x.min(0), x.max(0))),
        "standard_fit": ("sklearn StandardScaler.fit", lambda: skp.StandardScaler().fit(x)),
        "standard_transform": ("sklearn StandardScaler.transform", lambda: std.transform(x)),
        "standard_fit_transform": ("sklearn StandardScaler.fit_transform", lambda: skp.StandardScaler().fit_transform(x)),
        "minmax_fit_transform": ("sklearn MinMaxScaler.fit_transform", lambda: skp.MinMaxScaler().fit_transform(x)),
        "maxabs_fit_transform": ("sklearn MaxAbsScaler.fit_transform", lambda: skp.MaxAbsScaler().fit_transform(x)),
        "robust_fit": ("sklearn RobustScaler.fit", lambda: skp.RobustScaler().fit(x)),
        "robust_fit_transform": ("sklearn RobustScaler.fit_transform", lambda: skp.RobustScaler().fit_transform(x)),
        "log_transform": ("numpy log1p", lambda: np.log1p(xp)),
    }


def torch_peers(shapes, device):
    """Op name -> (peer name, callable, sync) for the quantile and norm ops."""
    if torch is None:
        return {}
    F = torch.nn.functional
    sync = torch.cuda.synchronize if device == "cuda" else None
    gen = torch.Generator(device="cpu").manual_seed(0)

    def data(shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float32).to(device)

    peers = {}
    if "quantiles3" in shapes:
        x = data(shapes["quantiles3"])
        q = torch.tensor(QS, dtype=torch.float32, device=device)
        # torch.quantile refuses inputs above 2^24 elements: per column then.
        if x.numel() <= 1 << 24:
            peers["quantiles3"] = ("torch.quantile (dim 0)", lambda: torch.quantile(x, q, dim=0), sync)
        else:
            peers["quantiles3"] = ("torch.quantile per column",
                                   lambda: [torch.quantile(x[:, j], q) for j in range(x.shape[1])], sync)
    for op in ("batch_train_forward", "batch_eval_forward", "batch_backward", "group_forward", "instance_forward"):
        if op not in shapes:
            continue
        x = data(shapes[op])
        c = x.shape[1]
        w = torch.ones(c, device=device)
        b = torch.zeros(c, device=device)
        rm = torch.zeros(c, device=device)
        rv = torch.ones(c, device=device)
        if op == "batch_train_forward":
            peers[op] = ("torch batch_norm (training)", lambda x=x, w=w, b=b, rm=rm, rv=rv:
                         F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1), sync)
        elif op == "batch_eval_forward":
            peers[op] = ("torch batch_norm (eval)", lambda x=x, w=w, b=b, rm=rm, rv=rv:
                         F.batch_norm(x, rm, rv, w, b, training=False), sync)
        elif op == "batch_backward":
            xg = x.clone().requires_grad_(True)
            wg = w.clone().requires_grad_(True)
            bg = b.clone().requires_grad_(True)
            dy = data(shapes[op])

            # The forward once, outside the timing: gpunorm's op is the backward alone.
            y = F.batch_norm(xg, rm, rv, wg, bg, training=True, momentum=0.1)

            def backward(xg=xg, wg=wg, bg=bg, dy=dy, y=y):
                return torch.autograd.grad(y, (xg, wg, bg), dy, retain_graph=True)

            peers[op] = ("torch batch_norm backward (autograd)", backward, sync)
        elif op == "group_forward":
            peers[op] = ("torch group_norm (8 groups)", lambda x=x: F.group_norm(x, 8), sync)
        else:
            peers[op] = ("torch instance_norm", lambda x=x: F.instance_norm(x), sync)
    if "layer_forward" in shapes:
        x = data(shapes["layer_forward"])
        n = x.shape[-1]
        peers["layer_forward"] = ("torch layer_norm", lambda x=x: F.layer_norm(x, (n,)), sync)
    return peers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help="gpunorm bench --json output ('-' for stdin)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the torch peers run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    report = json.load(sys.stdin if args.bench == "-" else open(args.bench))
    # The largest size of each op.
    ops = {}
    for o in report["ops"]:
        size = int(np.prod(o["shape"]))
        if o["op"] not in ops or size > int(np.prod(ops[o["op"]]["shape"])):
            ops[o["op"]] = o
    shapes = {op: tuple(o["shape"]) for op, o in ops.items()}

    rng = np.random.default_rng(0)
    scaler_shape = shapes.get("standard_fit")
    peers = {}
    if scaler_shape:
        x = rng.standard_normal(scaler_shape, dtype=np.float32) * 3 + 5
        peers.update({op: (name, fn, None) for op, (name, fn) in sklearn_peers(x).items()})
    quantile_numpy = None
    if "quantiles3" in shapes:
        xq = rng.standard_normal(shapes["quantiles3"], dtype=np.float32)
        quantile_numpy = ("numpy nanquantile (axis 0)", lambda: np.nanquantile(xq, QS, axis=0), None)
    peers.update(torch_peers(shapes, args.device))

    adapter = report.get("adapter", {})
    print(f"gpunorm on {adapter.get('name', '?')} ({adapter.get('backend', '?')}); "
          f"peers: numpy {np.__version__}"
          + (f", scikit-learn {__import__('sklearn').__version__}" if skp else "")
          + (f", torch {torch.__version__} on {args.device}" if torch else "")
          + (f" ({torch.get_num_threads()} CPU threads)" if torch and args.device == "cpu" else ""))
    print(f"{'op':<24} {'shape':<20} {'gpunorm':>10} {'peer':>10} {'peer/gpunorm':>13}  peer")
    rows = []
    for op, o in ops.items():
        candidates = [peers.get(op)]
        if op == "quantiles3":
            candidates.append(quantile_numpy)
        for peer in [c for c in candidates if c]:
            name, fn, sync = peer
            t = median_time(fn, args.runs, sync)
            rows.append((op, o, name, t))
            print(f"{op:<24} {str(tuple(o['shape'])):<20} {o['median_s'] * 1e3:>8.1f}ms {t * 1e3:>8.1f}ms "
                  f"{t / o['median_s']:>12.2f}x  {name}")
    return rows


if __name__ == "__main__":
    main()
