#!/usr/bin/env bash
# On a lent GPU machine, from the checkout's root, after tools/stage_gpu.sh here (carry
# .bench-bin and .gl): the whole test suite on the GPU through Vulkan, `gpunorm bench
# --json --quick` there, and the peers on the same machine (PyTorch on CUDA, scikit-learn
# and numpy on its CPU: tools/compare_peers.py). Everything lands in $OUT (default
# /tmp/gpu_check): info.txt, tests.txt, bench_gpu.json, peers.txt.
set -uo pipefail
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
root=$(pwd)

# The Vulkan loader (the machine has NVIDIA's driver and ICD only).
if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd

# The binaries; the tests read their data (and the CLI tests run the binary) under the
# path they were built in: link it here.
rm -rf .bench-bin/run && mkdir -p .bench-bin/run
tar -C .bench-bin/run -xJf .bench-bin/pack.tar.xz
built=$(cat .bench-bin/built_in)
if [ "$built" != "$root" ]; then
    mkdir -p "$(dirname "$built")"
    ln -sfn "$root" "$built"
fi
mkdir -p target/release
cp .bench-bin/run/gpunorm target/release/gpunorm

export GPUNORM_BACKEND=${GPUNORM_BACKEND:-vulkan}
./target/release/gpunorm info 2>&1 | tee "$out/info.txt"
status=0
for t in .bench-bin/run/tests/*; do
    echo "== $(basename "$t")"
    timeout 300 "$t" 2>&1 | grep -E "^test .* FAILED|^test result|panicked|^failures"
    echo "exit ${PIPESTATUS[0]}"
done 2>&1 | tee "$out/tests.txt"
if grep -q "FAILED\|panicked" "$out/tests.txt" || grep -v -q "^exit 0$" <(grep "^exit" "$out/tests.txt"); then
    status=1
fi
./target/release/gpunorm bench --json --quick > "$out/bench_gpu.json" || status=1
device=cpu
command -v nvidia-smi >/dev/null && device=cuda
python3 tools/compare_peers.py "$out/bench_gpu.json" --device "$device" 2>&1 | tee "$out/peers.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit $status
