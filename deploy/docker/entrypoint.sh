#!/usr/bin/env bash
# Container entry point: java with the JVM flags of launcher/jvm.args (the same file ./starserve
# reads), extra flags from STARSERVE_JVM_OPTS (e.g. -Xmx6g), then the StarServe command and its
# arguments. exec: java is PID 1 and gets SIGTERM itself (the gateway and the worker drain on it).
set -euo pipefail
# shellcheck disable=SC2086 # STARSERVE_JVM_OPTS is a list of flags
exec java @/opt/starserve/jvm.args ${STARSERVE_JVM_OPTS:-} -jar /opt/starserve/starserve.jar "$@"
