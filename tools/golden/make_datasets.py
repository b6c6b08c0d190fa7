#!/usr/bin/env python3
"""Write data/wine.csv, data/breast_cancer.csv and data/brief_example.csv.

The two real datasets come from the copies bundled inside scikit-learn
(sklearn.datasets.load_wine / load_breast_cancer): no network is needed.
Features only (no target), a header row of sanitized feature names (spaces ->
'_', no commas or quotes), values written with Python's repr of the float64
value (shortest form that round-trips), '\n' line endings.
"""

import os

from sklearn.datasets import load_breast_cancer, load_wine

from common import DATA_DIR, sanitize_name


def write_csv(path, names, rows):
    with open(path + ".tmp", "w", newline="") as fh:
        fh.write(",".join(names) + "\n")
        for row in rows:
            fh.write(",".join(repr(float(v)) for v in row) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {len(rows)} rows x {len(names)} columns")


def main():
    os.makedirs(DATA_DIR, exist_ok=True)
    for loader, fname in [(load_wine, "wine.csv"), (load_breast_cancer, "breast_cancer.csv")]:
        ds = loader()
        names = [sanitize_name(n) for n in ds.feature_names]
        assert len(set(names)) == len(names)
        write_csv(os.path.join(DATA_DIR, fname), names, ds.data.tolist())

    path = os.path.join(DATA_DIR, "brief_example.csv")
    with open(path, "w", newline="") as fh:
        fh.write("x\n10\n200\n3000\n40000\n500000\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
