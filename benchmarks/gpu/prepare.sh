#!/usr/bin/env bash
# Packs what benchmarks/gpu/check.sh needs on a GPU machine that has the NVIDIA driver but no JDK:
# the shaded jar and a jlink'ed Java runtime, as ONE file
#
#   benchmarks/gpu/bundle/starserve-gpu.tar.xz      (ignored by git; carry it: benchmarks/gpu/bundle)
#
# The device tool carries at most 64 MiB with the working tree, so the runtime is linked without
# jlink's own compression and the jar's entries are re-stored uncompressed: xz over the raw bytes
# packs both far tighter than zip does. Prints the bundle's size; fails when it is over 56 MiB.
#
# Modules: what jdeps finds in the shaded jar, plus the ones reached only reflectively or through
# command-line flags (jdk.incubator.vector, jdk.unsupported, jdk.management, ...).
#
# Usage (repository root, on a machine with JDK 25): benchmarks/gpu/prepare.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUTDIR="$ROOT/benchmarks/gpu/bundle"
JAR="$ROOT/launcher/target/starserve.jar"
LIMIT_MIB=56

"$ROOT/starserve" build
JDK="${JAVA_HOME:-}"
if [[ -z "$JDK" || ! -x "$JDK/bin/jlink" ]]; then
  JDK="$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -n1 || true)"
fi
if [[ -z "$JDK" || ! -x "$JDK/bin/jlink" ]]; then
  echo "prepare.sh: no JDK 25 with jlink found; set JAVA_HOME" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
found="$("$JDK/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps "$JAR")"
modules="$found,jdk.incubator.vector,jdk.unsupported,java.management,jdk.management,java.naming,java.logging,java.sql,jdk.crypto.ec,java.net.http,jdk.zipfs"
echo "prepare.sh: jdeps found: $found"
"$JDK/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-0 --output "$work/bundle/runtime"
# The same entries, stored instead of deflated (java -jar does not care; xz does).
python3 - "$JAR" "$work/bundle/starserve.jar" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_STORED) as dst:
    for info in src.infolist():
        dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_STORED)
PY
mkdir -p "$OUTDIR"
tar -C "$work/bundle" -cf - runtime starserve.jar | xz -T0 -9 >"$OUTDIR/starserve-gpu.tar.xz"
bytes="$(stat -c %s "$OUTDIR/starserve-gpu.tar.xz")"
printf 'prepare.sh: wrote %s: %.1f MiB (runtime %s, jar %s unpacked)\n' \
  "$OUTDIR/starserve-gpu.tar.xz" "$(echo "$bytes / 1048576" | bc -l)" \
  "$(du -sh "$work/bundle/runtime" | cut -f1)" "$(du -sh "$work/bundle/starserve.jar" | cut -f1)"
if (( bytes > LIMIT_MIB * 1048576 )); then
  echo "prepare.sh: the bundle is over $LIMIT_MIB MiB: with the working tree it will not fit the 64 MiB the device tool carries" >&2
  exit 1
fi
