#!/usr/bin/env python3
"""Write tests/golden/norms.json: PyTorch normalization-layer references.

All tensors are float64 in torch, built from float32-representable values
(inputs, gamma/beta, start running stats, grad_output). Layers:
  batch    -> torch.nn.BatchNorm1d / BatchNorm2d
  layer    -> torch.nn.LayerNorm(input.shape[-K:])
  group    -> torch.nn.GroupNorm(G, C)
  instance -> torch.nn.InstanceNorm1d / InstanceNorm2d (track_running_stats=False)
Protocol per case: build the layer (float64), set gamma/beta and the start
running stats, put it in train or eval mode, call forward `steps` times on the
same input (the first steps-1 calls under no_grad: in train mode each one
updates the running stats), then backward the last call's output with
grad_output. "output" and the grads are from that last call; the running
stats are read after all the calls.
Channels-last cases compute the same (logical NCHW) thing; the extra
"*_channels_last" arrays hold the data permuted to (N, *, C).
"""

import numpy as np
import torch

from common import arr, dump, f32, quiet

DT = torch.float64


def t(a):
    return torch.tensor(f32(a), dtype=DT)


def cl(a):
    """(N, C, *) -> (N, *, C) numpy copy."""
    a = np.asarray(a)
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def build(kind, x_shape, opts):
    c = x_shape[1] if len(x_shape) > 1 else None
    if kind == "batch":
        cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[len(x_shape)]
        return cls(c, eps=opts["eps"], momentum=opts["momentum"], affine=opts["affine"],
                   track_running_stats=opts["track_running_stats"], dtype=DT)
    if kind == "layer":
        k = opts["normalized_dims"]
        return torch.nn.LayerNorm(tuple(x_shape[-k:]), eps=opts["eps"],
                                  elementwise_affine=opts["affine"], dtype=DT)
    if kind == "group":
        return torch.nn.GroupNorm(opts["groups"], c, eps=opts["eps"], affine=opts["affine"], dtype=DT)
    if kind == "instance":
        cls = {3: torch.nn.InstanceNorm1d, 4: torch.nn.InstanceNorm2d}[len(x_shape)]
        return cls(c, eps=opts["eps"], affine=opts["affine"],
                   track_running_stats=opts["track_running_stats"], dtype=DT)
    raise ValueError(kind)


def case(name, kind, x, rng, *, eps=1e-5, momentum=None, groups=None, normalized_dims=None,
         channels_last=False, affine=True, track_running_stats=None, eval_mode=False,
         gamma=None, beta=None, running_mean=None, running_var=None, steps=1, note=None):
    x = f32(x)
    if track_running_stats is None:
        track_running_stats = kind == "batch"
    if kind != "batch":
        momentum = None
    opts = {
        "eps": eps,
        "momentum": momentum,
        "groups": groups,
        "normalized_dims": normalized_dims,
        "channels_last": channels_last,
        "affine": affine,
        "track_running_stats": track_running_stats,
        "eval": eval_mode,
    }
    m = build(kind, x.shape, opts)
    if kind == "layer":
        pshape = x.shape[-normalized_dims:]
    else:
        pshape = (x.shape[1],)
    if affine:
        gamma = f32(rng.uniform(0.5, 2.0, pshape) if gamma is None else np.reshape(gamma, pshape))
        beta = f32(rng.uniform(-1.0, 1.0, pshape) if beta is None else np.reshape(beta, pshape))
        with torch.no_grad():
            m.weight.copy_(t(gamma))
            m.bias.copy_(t(beta))
    else:
        gamma = beta = None
    if running_mean is not None:
        running_mean = f32(running_mean)
        running_var = f32(running_var)
        with torch.no_grad():
            m.running_mean.copy_(t(running_mean))
            m.running_var.copy_(t(running_var))
    m.train(not eval_mode)

    xt = t(x).requires_grad_(True)
    dy = f32(rng.standard_normal(x.shape))
    with torch.no_grad():
        for _ in range(steps - 1):
            m(xt)
    y = m(xt)
    y.backward(t(dy))

    out = y.detach().numpy()
    gx = xt.grad.numpy()
    has_running = getattr(m, "running_mean", None) is not None
    expected = {
        "output": arr(out),
        "running_mean": arr(m.running_mean.numpy()) if has_running else None,
        "running_var": arr(m.running_var.numpy()) if has_running else None,
        "grad_output": arr(dy),
        "grad_input": arr(gx),
        "grad_gamma": arr(m.weight.grad.numpy()) if affine else None,
        "grad_beta": arr(m.bias.grad.numpy()) if affine else None,
    }
    c = {
        "name": name,
        "kind": kind,
        "options": opts,
        "input": arr(x),
        "gamma": arr(gamma),
        "beta": arr(beta),
        "running_mean": arr(running_mean),
        "running_var": arr(running_var),
        "steps": steps,
        "expected": expected,
    }
    if channels_last:
        c["input_channels_last"] = arr(cl(x))
        expected["output_channels_last"] = arr(cl(out))
        expected["grad_output_channels_last"] = arr(cl(dy))
        expected["grad_input_channels_last"] = arr(cl(gx))
    if note:
        c["note"] = note
    return c


def main():
    quiet()
    torch.manual_seed(0)
    rng = np.random.default_rng(20240503)
    cases = []

    def rs(c):
        return rng.standard_normal(c), rng.uniform(0.5, 2.0, c)

    def data(*shape, loc=0.0, scale=1.0):
        # per-channel offsets so channel statistics differ
        x = rng.standard_normal(shape) * scale + loc
        if len(shape) > 1:
            off = np.arange(shape[1], dtype=np.float64).reshape((1, shape[1]) + (1,) * (len(shape) - 2))
            x = x + off
        return x

    # ---- batch norm ----
    rm, rv = rs(3)
    cases.append(case("batch1d_nc_train_m0.1_affine_3steps", "batch", data(8, 3), rng, momentum=0.1,
                      running_mean=rm, running_var=rv, steps=3))
    rm, rv = rs(3)
    cases.append(case("batch1d_nc_train_mNone_affine_3steps", "batch", data(8, 3), rng, momentum=None,
                      running_mean=rm, running_var=rv, steps=3,
                      note="momentum null = cumulative average; the start values are replaced at step 1"))
    cases.append(case("batch1d_nc_train_m0.1_noaffine_3steps", "batch", data(8, 3), rng, momentum=0.1,
                      affine=False, steps=3, note="running stats start at mean 0, var 1 (given as null)"))
    cases.append(case("batch1d_nc_train_n2", "batch", data(2, 3), rng, momentum=0.1, steps=1,
                      note="two values per channel: the smallest batch train mode accepts"))
    rm, rv = rs(3)
    cases.append(case("batch1d_ncl_train_m0.1_affine_3steps", "batch", data(4, 3, 5), rng, momentum=0.1,
                      running_mean=rm, running_var=rv, steps=3))
    cases.append(case("batch1d_ncl_train_mNone_noaffine_3steps", "batch", data(4, 3, 5), rng,
                      momentum=None, affine=False, steps=3))
    rm, rv = rs(3)
    cases.append(case("batch1d_ncl_eval_affine", "batch", data(4, 3, 5), rng, momentum=0.1,
                      running_mean=rm, running_var=rv, eval_mode=True))
    rm, rv = rs(3)
    cases.append(case("batch1d_ncl_train_channels_last_affine_3steps", "batch", data(4, 3, 5), rng,
                      momentum=0.1, running_mean=rm, running_var=rv, steps=3, channels_last=True))
    rm, rv = rs(3)
    cases.append(case("batch2d_train_m0.1_affine_3steps", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      running_mean=rm, running_var=rv, steps=3))
    rm, rv = rs(3)
    cases.append(case("batch2d_train_mNone_affine_3steps", "batch", data(2, 3, 4, 5), rng, momentum=None,
                      running_mean=rm, running_var=rv, steps=3))
    cases.append(case("batch2d_train_m0.1_noaffine_1step", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      affine=False, steps=1))
    cases.append(case("batch2d_train_mNone_noaffine_3steps", "batch", data(2, 3, 4, 5), rng,
                      momentum=None, affine=False, steps=3))
    rm, rv = rs(3)
    cases.append(case("batch2d_eval_affine", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      running_mean=rm, running_var=rv, eval_mode=True))
    rm, rv = rs(3)
    cases.append(case("batch2d_eval_noaffine", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      affine=False, running_mean=rm, running_var=rv, eval_mode=True))
    rm, rv = rs(3)
    cases.append(case("batch2d_train_channels_last_affine_3steps", "batch", data(2, 3, 4, 5), rng,
                      momentum=0.1, running_mean=rm, running_var=rv, steps=3, channels_last=True))
    rm, rv = rs(3)
    cases.append(case("batch2d_eval_channels_last_affine", "batch", data(2, 3, 4, 5), rng,
                      momentum=0.1, running_mean=rm, running_var=rv, eval_mode=True, channels_last=True))
    cases.append(case("batch2d_train_channels_last_noaffine_mNone_3steps", "batch", data(3, 4, 2, 3), rng,
                      momentum=None, affine=False, steps=3, channels_last=True))
    cases.append(case("batch2d_no_tracking_train", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      track_running_stats=False))
    cases.append(case("batch2d_no_tracking_eval", "batch", data(2, 3, 4, 5), rng, momentum=0.1,
                      track_running_stats=False, eval_mode=True,
                      note="track_running_stats false: eval uses the batch statistics"))
    rm, rv = rs(2)
    cases.append(case("batch2d_eps1e-3_m0.3_2steps", "batch", data(3, 2, 3, 3), rng, eps=1e-3, momentum=0.3,
                      running_mean=rm, running_var=rv, steps=2))
    rm = np.array([1e4, 1e4 + 1.0])
    rv = np.array([1.0, 1.0])
    cases.append(case("batch2d_offset_1e4_train_m0.1_2steps", "batch", data(4, 2, 3, 3, loc=1e4), rng,
                      momentum=0.1, running_mean=rm, running_var=rv, steps=2,
                      note="mean >> std"))
    xb = np.array([[10.0], [20.0], [30.0], [40.0], [50.0]])
    cases.append(case("batch1d_brief_example", "batch", xb, rng, momentum=0.1, gamma=[2.0], beta=[3.0],
                      steps=1, note="one channel 10..50, gamma 2, beta 3; start running stats 0/1"))
    xn = data(6, 2)
    xn[2, 0] = np.nan
    cases.append(case("batch1d_nc_nan_propagates", "batch", xn, rng, momentum=0.1, steps=1,
                      note="a NaN in channel 0 makes that channel's output, running stats and grads NaN"))

    # ---- layer norm ----
    cases.append(case("layer_last1_affine", "layer", data(2, 3, 4, 5), rng, normalized_dims=1))
    cases.append(case("layer_last2_affine", "layer", data(2, 3, 4, 5), rng, normalized_dims=2))
    cases.append(case("layer_last3_noaffine", "layer", data(2, 3, 4, 5), rng, normalized_dims=3, affine=False))
    cases.append(case("layer_2d_last1_affine", "layer", data(6, 8), rng, normalized_dims=1))
    cases.append(case("layer_3d_last2_affine_eps1e-3", "layer", data(3, 4, 6), rng, normalized_dims=2, eps=1e-3))
    cases.append(case("layer_offset_1e4_last1", "layer", data(4, 16, loc=1e4), rng, normalized_dims=1,
                      note="mean >> std"))

    # ---- group norm ----
    for g in [1, 2, 4]:
        cases.append(case(f"group_g{g}_c4_affine", "group", data(2, 4, 3, 3), rng, groups=g))
    cases.append(case("group_g2_c4_noaffine", "group", data(2, 4, 3, 3), rng, groups=2, affine=False))
    cases.append(case("group_g2_c4_channels_last_affine", "group", data(2, 4, 3, 3), rng, groups=2,
                      channels_last=True))
    cases.append(case("group_g3_c6_ncl_affine", "group", data(2, 6, 5), rng, groups=3))

    # ---- instance norm ----
    cases.append(case("instance2d_noaffine", "instance", data(2, 3, 4, 5), rng, affine=False))
    cases.append(case("instance2d_affine", "instance", data(2, 3, 4, 5), rng, affine=True))
    cases.append(case("instance2d_channels_last_affine", "instance", data(2, 3, 4, 5), rng, affine=True,
                      channels_last=True))
    cases.append(case("instance1d_ncl_affine", "instance", data(3, 2, 7), rng, affine=True))

    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    dump(cases, "norms.json")


if __name__ == "__main__":
    main()
