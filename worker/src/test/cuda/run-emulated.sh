#!/usr/bin/env bash
# Builds and runs emulate_kernels.cpp: worker/src/main/cuda/kernels.cu executed on the host, one
# std::thread per CUDA thread (emulation.h), against plain double-precision loops. For machines
# without a GPU; it checks the kernels' indexing, tiling, barriers and arithmetic, not the PTX, the
# driver or the GPU's memory model.
#
# The only change made to the source: `extern __shared__ float smem[];` becomes the emulator's
# dynamic shared memory buffer (the one construct a host compiler cannot take).
#
# Usage: run-emulated.sh [build dir]     exit 0 when every check passes; 2 without g++ (C++20).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../../main/cuda/kernels.cu"
out="${1:-$(mktemp -d)}"
cxx="${CXX:-g++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run-emulated.sh: no C++ compiler ($cxx)" >&2
  exit 2
fi
mkdir -p "$out"
sed 's/extern __shared__ float smem\[\];/float* smem = g_dynamic_smem.data();/' "$src" >"$out/kernels_host.inc"
grep -q 'float\* smem = g_dynamic_smem.data();' "$out/kernels_host.inc" || {
  echo "run-emulated.sh: the dynamic shared memory declaration of kernels.cu changed; update the sed" >&2
  exit 1
}
"$cxx" -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas -Wno-unused-function \
  -I "$here/fake" -I "$here" -DKERNELS_SOURCE="\"$out/kernels_host.inc\"" \
  -o "$out/emulate_kernels" "$here/emulate_kernels.cpp"
"$out/emulate_kernels"
