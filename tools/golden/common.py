"""Shared helpers for the golden-file generators.

JSON conventions (read by the Rust tests with serde_json):
  * NaN            -> null
  * +inf / -inf    -> the strings "inf" / "-inf" (avoided where possible)
  * arrays         -> {"shape": [d0, d1, ...], "data": [flat C-order list]}
  * floats are written with Python's repr (shortest round-trip form of the
    float64 value), so a float32 input written here parses back to the exact
    float32 value when read as f64 and cast to f32.
"""

import json
import math
import os
import sys
import warnings

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")
DATA_DIR = os.path.join(ROOT, "data")


def f32(x):
    """float32-representable values, returned as float64 (exact cast)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def scalar(v):
    """One number to its JSON form (float, int, None or "inf"/"-inf")."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def flat_list(a):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return [int(v) for v in a.ravel(order="C")]
    return [scalar(v) for v in np.asarray(a, dtype=np.float64).ravel(order="C")]


def arr(a):
    """numpy array -> {"shape": [...], "data": [...]} (C order)."""
    if a is None:
        return None
    a = np.asarray(a)
    return {"shape": [int(s) for s in a.shape], "data": flat_list(a)}


def vec(a):
    """1-D per-feature list (None stays None)."""
    if a is None:
        return None
    return flat_list(np.atleast_1d(np.asarray(a)))


def dump(obj, name):
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    path = os.path.join(GOLDEN_DIR, name)
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
        fh.write("\n")
    os.replace(path + ".tmp", path)
    size = os.path.getsize(path)
    print(f"wrote {path}: {size} bytes")
    if size >= 1_000_000:
        print(f"WARNING: {name} is {size} bytes (>= 1 MB)", file=sys.stderr)
    return path


def quiet():
    """Silence the numpy/sklearn warnings that NaN-only columns raise."""
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")


def load_wine_f32():
    from sklearn.datasets import load_wine

    return f32(load_wine().data)


def load_breast_cancer_f32():
    from sklearn.datasets import load_breast_cancer

    return f32(load_breast_cancer().data)


def sanitize_name(name):
    name = str(name).strip()
    for ch in [",", '"', "'", "\n", "\r"]:
        name = name.replace(ch, "")
    return name.replace(" ", "_")
