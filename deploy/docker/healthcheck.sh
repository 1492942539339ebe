#!/usr/bin/env bash
# Docker HEALTHCHECK: GET /metrics over plain HTTP/1.0 with bash's /dev/tcp (the images have no
# curl), healthy on a 200. The gateway serves /metrics on its HTTP port, a worker on its gRPC port.
# (The gateway's /health answers 503 while no worker is ready; that is not a reason to restart it.)
set -euo pipefail
case "${1:-}" in
  gateway) port="${STARSERVE_GATEWAY_HTTP_PORT:-${STARSERVE_HTTP_PORT:-8000}}" ;;
  worker) port="${STARSERVE_WORKER_GRPC_PORT:-${STARSERVE_GRPC_PORT:-8034}}" ;;
  *) echo "usage: healthcheck.sh gateway|worker" >&2; exit 2 ;;
esac
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 5 status_line <&3
[[ "$status_line" == "HTTP/1."?" 200"* ]]
