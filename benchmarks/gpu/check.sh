#!/usr/bin/env bash
# The GPU check of the CUDA backend, for a lent GPU machine (NVIDIA driver, python3; maybe no JDK):
#
#   1. CudaSelfCheck: every CUDA kernel against the scalar reference backend on random inputs and a
#      tiny model's forward pass, then the device's copy bandwidth (a float4 copy kernel);
#   2. generate on random tiny and tiny_starcoder_py models (bf16) with --device cuda and with
#      --device cpu: tokens and logprobs compared (compare_generate.py);
#   3. bench forward --device cuda on tiny_starcoder_py: prefill and decode tokens/s.
#
# Java: the bundle from benchmarks/gpu/prepare.sh (benchmarks/gpu/bundle/starserve-gpu.tar.xz, a
# jlink'ed runtime + the shaded jar) when present, else $JAVA_HOME or `java` (JDK >= 25) with
# launcher/target/starserve.jar.
#
# With the device tool: it sends the checkout the session was started in (not a helper's worktree),
# so the branch must be checked out there and benchmarks/gpu/bundle copied into it (git-ignored,
# named in carry); then: run(command="benchmarks/gpu/check.sh", carry=["benchmarks/gpu/bundle"]).
# Budget about 5 minutes: unpacking, two random models, four generate runs and the benchmark.
#
# Usage (repository root): benchmarks/gpu/check.sh [work dir, default /tmp/starserve-gpu]
# Prints one SUMMARY line; exit 0 when every check passed.
#
# TODO(tensor parallelism): after the TP branch is merged, add generate --tensor-parallel-size 2
# against --tensor-parallel-size 1 on the GPU here (the same compare_generate.py).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/benchmarks/gpu"
WORK="${1:-/tmp/starserve-gpu}"
BUNDLE="$HERE/bundle/starserve-gpu.tar.xz"
mkdir -p "$WORK/models"

if [[ -f "$BUNDLE" ]]; then
  echo "== unpacking $BUNDLE"
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE" "$WORK"
  JAVA="$WORK/runtime/bin/java"
  JAR="$WORK/starserve.jar"
else
  JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  JAR="$ROOT/launcher/target/starserve.jar"
fi
if ! "$JAVA" -version >/dev/null 2>&1 || [[ ! -f "$JAR" ]]; then
  echo "check.sh: no Java runtime or jar: run benchmarks/gpu/prepare.sh where a JDK is, and carry benchmarks/gpu/bundle" >&2
  exit 2
fi
FLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED
  --sun-misc-unsafe-memory-access=allow -XX:+UseParallelGC)
starserve() { "$JAVA" "${FLAGS[@]}" ${STARSERVE_JVM_OPTS:-} -jar "$JAR" "$@"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$JAVA" -version 2>&1 | head -n1
declare -a SUMMARY=()
FAILED=0
result() { # name status
  SUMMARY+=("$1=$2")
  [[ "$2" == PASS ]] || FAILED=1
}

echo "== 1. kernels against the reference backend, and device bandwidth"
if "$JAVA" "${FLAGS[@]}" -cp "$JAR" dev.starserve.backend.cuda.CudaSelfCheck; then
  result self-check PASS
else
  result self-check FAIL
fi

PROMPT="1,400,2000,31,7,99,12345,4242,17,8"
for shape in tiny tiny_starcoder_py; do
  echo "== 2. generate on a random $shape model: cuda against cpu"
  model="$WORK/models/$shape"
  [[ -f "$model/config.json" ]] || starserve make-model --shape "$shape" --dtype bfloat16 \
    --seed 1 --std 0.1 --out "$model" >/dev/null
  ok=PASS
  for dev in cpu cuda; do
    if ! starserve generate --model "$model" --prompt-ids "$PROMPT" --max-new-tokens 32 \
      --logprobs 3 --json --device "$dev" >"$WORK/gen-$shape-$dev.json" 2>"$WORK/gen-$shape-$dev.log"; then
      echo "  generate --device $dev failed:"; tail -n 20 "$WORK/gen-$shape-$dev.log"; ok=FAIL
    fi
  done
  if [[ $ok == PASS ]]; then
    grep -h -e "--device cuda" "$WORK/gen-$shape-cuda.log" | head -n 1
    python3 "$HERE/compare_generate.py" "$WORK/gen-$shape-cpu.json" "$WORK/gen-$shape-cuda.json" || ok=FAIL
  fi
  result "generate-$shape" "$ok"
done

echo "== 3. forward throughput on tiny_starcoder_py (bf16), --device cuda"
if starserve bench forward --model "$WORK/models/tiny_starcoder_py" --device cuda \
  --prompt-len 512 --gen-len 128 --warmups 2 --runs 3; then
  result bench-forward PASS
else
  result bench-forward FAIL
fi

echo "SUMMARY ${SUMMARY[*]}"
exit $FAILED
