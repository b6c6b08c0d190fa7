#!/usr/bin/env bash
# Stage, on this machine, what a run on a lent GPU machine needs: that machine reaches
# no registry, so everything is built here (both are x86-64) into ignored folders that
# the run carries:
#   .bench-bin/pack.tar.xz  the release binary and every test executable, stripped
#   .bench-bin/built_in     the checkout's path here (the tests find their data by it)
#   .gl/*.deb               the Vulkan and GL loaders (the GPU machine has the driver only)
# Then, on the GPU machine: tools/gpu_check.sh (see README, "On a real GPU").
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
rm -rf .bench-bin && mkdir -p .bench-bin/stage/tests
# Every test executable, named after its target (the library's and the binary's own
# unit tests: lib_gpunorm, bin_gpunorm).
cargo test --release --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        prefix = "" if kind == "test" else kind + "_"
        print(prefix + m["target"]["name"], m["executable"])' | while read -r name exe; do
    cp "$exe" ".bench-bin/stage/tests/$name"
done
cp target/release/gpunorm .bench-bin/stage/
strip .bench-bin/stage/gpunorm .bench-bin/stage/tests/*
tar -C .bench-bin/stage -cJf .bench-bin/pack.tar.xz gpunorm tests
rm -rf .bench-bin/stage
pwd > .bench-bin/built_in

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .bench-bin .gl
