#!/usr/bin/env bash
# Regenerates the PTX of the CUDA backend from kernels.cu:
#   worker/src/main/cuda/kernels.cu -> worker/src/main/resources/dev/starserve/backend/cuda/kernels.ptx
# The PTX is committed, so building StarServe never needs nvcc; CudaPtxTest fails when the
# committed file is not what this script makes from the committed source (it skips without nvcc).
#
# -arch=compute_80: virtual architecture only (no SASS), so the driver JIT-compiles the PTX for the
# GPU it runs on: A100 (sm_80), A10/L4/RTX 30-40 (sm_86/89), H100/H200 (sm_90), Blackwell.
# nvcc 13 writes PTX ISA 9.0, which needs a CUDA 13 capable driver (r580 or newer).
# No --use_fast_math: expf, tanhf, erff, sqrtf and division stay IEEE-accurate, as the reference.
#
# Usage: build-ptx.sh [output.ptx]   (default: the resource above)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../resources/dev/starserve/backend/cuda/kernels.ptx}"
nvcc_bin="${NVCC:-nvcc}"
if ! command -v "$nvcc_bin" >/dev/null 2>&1; then
  echo "build-ptx.sh: nvcc not found (install the CUDA toolkit, or set NVCC=/path/to/nvcc)" >&2
  exit 2
fi
tmp="$(mktemp --suffix=.ptx)"
trap 'rm -f "$tmp"' EXIT
"$nvcc_bin" -ptx -arch=compute_80 -std=c++17 --Werror all-warnings -o "$tmp" "$here/kernels.cu"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out ($(wc -c <"$out") bytes, $(grep -c '^.visible .entry' "$out") kernels) with $("$nvcc_bin" --version | tail -1)"
