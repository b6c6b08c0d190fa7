#!/usr/bin/env bash
# Regenerate data/*.csv and tests/golden/*.json. Needs the packages in
# requirements.txt (pip install -r tools/golden/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")"
python3 make_datasets.py
python3 make_stats.py
python3 make_scalers.py
python3 make_norms.py
python3 make_versions.py
ls -la ../../data ../../tests/golden
