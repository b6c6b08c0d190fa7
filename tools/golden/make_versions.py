#!/usr/bin/env python3
"""Write tests/golden/versions.json: the library versions the golden files came from."""

import platform

import numpy
import scipy
import sklearn
import torch

from common import dump


def main():
    dump(
        {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "torch": torch.__version__,
        },
        "versions.json",
    )


if __name__ == "__main__":
    main()
