#!/usr/bin/env bash
# A StarServe cluster on one machine: one gateway and N workers as separate processes on loopback,
# joined through Hazelcast (TCP-IP, a cluster name and a shared secret of their own), with their
# logs, pid files and settings in one run folder.
#
#   deploy/local/cluster.sh start --model DIR [--workers N] [options]   start, wait until N are READY
#   deploy/local/cluster.sh status [--dir DIR]                          processes, ports, worker states
#   deploy/local/cluster.sh logs [NAME] [-f] [--dir DIR]                tail of the logs
#   deploy/local/cluster.sh stop [--dir DIR]                            SIGTERM (workers drain), then SIGKILL
#
# Run `deploy/local/cluster.sh --help` for every option. Exit codes: 0 done; 1 failed (a process
# died, a timeout, already running); 2 bad input; `status`: 0 all running, 1 some are down,
# 3 not running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROG="cluster.sh"

usage() {
  cat <<'EOF'
usage: deploy/local/cluster.sh COMMAND [options]

commands:
  start     start a gateway and N workers, wait until the gateway reports N READY workers
  status    the processes, their ports, and the workers by state as the gateway reports them
  logs      the last lines of every log (or of NAME: gateway, worker-1, ...); -f follows them
  stop      SIGTERM the workers (they drain), then the gateway; SIGKILL what outlives the timeout

options (environment variable in brackets):
  -d, --dir DIR              run folder: logs, pid files, secret, settings
                             [STARSERVE_LOCAL_DIR] (default: <repo>/.cache/local-cluster)
  -n, --workers N            workers to start [STARSERVE_LOCAL_WORKERS] (default: 2)
  -m, --model DIR            model directory every worker loads [STARSERVE_LOCAL_MODEL] (required)
      --model-id ID          model id served (default: the directory name)
      --threads T            compute threads per worker (default: cores / N, at least 1)
      --kv-cache-memory SIZE KV cache per worker, e.g. 256m, 2g (default: 256m; each worker
                             holds it on its heap)
      --http-port P          gateway HTTP: OpenAI, TGI, /metrics (default: 8000)
      --grpc-port P          gateway gRPC: fmaas (default: 8033)
      --cluster-port P       gateway's Hazelcast port (default: 5701)
      --worker-port P        worker i serves gRPC on P+i-1 (default: 8101)
      --worker-cluster-port P  worker i's Hazelcast port is P+i-1 (default: 0)
                             any port may be 0: a free one is taken and reported
      --cluster-name NAME    Hazelcast cluster name (default: local-<random>, new at each start)
      --secret-file F        the cluster's shared secret (default: a new random one in
                             DIR/cluster.secret, mode 600)
      --drain-timeout S      seconds a stopping worker may finish running requests (default: 30)
      --ready-timeout S      start: seconds to wait for N READY workers (default: 180)
      --stop-timeout S       stop: seconds after SIGTERM before SIGKILL (default: drain + 15)
      --worker-opt ARG       one more argument for every worker, repeatable
                             (e.g. --worker-opt=--quantize=int8)
      --gateway-opt ARG      one more argument for the gateway, repeatable
                             (e.g. --gateway-opt=--api-keys=keys.txt)
  -f, --follow               logs: keep following
  -h, --help                 this help

The processes are started with ./starserve (which finds JDK 25; the jar is built once first).
STARSERVE_CMD replaces that with another command prefix, split at spaces, e.g.
  STARSERVE_CMD="java --add-modules jdk.incubator.vector ... -cp CLASSPATH dev.starserve.cli.Main"

Exit codes: 0 done; 1 failed (a process died, a timeout, already running); 2 bad input;
status: 0 all running, 1 some are down, 3 not running.
EOF
}

say() { echo "$PROG: $*"; }
err() { echo "$PROG: $*" >&2; }
bad_input() {
  err "$*"
  err "see: deploy/local/cluster.sh --help"
  exit 2
}
fail() {
  err "$*"
  exit 1
}

# ---- arguments ---------------------------------------------------------------------------------

COMMAND=""
DIR="${STARSERVE_LOCAL_DIR:-$ROOT/.cache/local-cluster}"
WORKERS="${STARSERVE_LOCAL_WORKERS:-2}"
MODEL="${STARSERVE_LOCAL_MODEL:-}"
MODEL_ID=""
THREADS=""
KV_CACHE_MEMORY="256m"
HTTP_PORT=8000
GRPC_PORT=8033
CLUSTER_PORT=5701
WORKER_PORT=8101
WORKER_CLUSTER_PORT=0
CLUSTER_NAME=""
SECRET_FILE=""
DRAIN_TIMEOUT=30
READY_TIMEOUT=180
STOP_TIMEOUT=""
FOLLOW=0
LOG_NAME=""
WORKER_OPTS=()
GATEWAY_OPTS=()

parse_args() {
  local opt val
  while (($# > 0)); do
    opt="$1"
    val=""
    case "$opt" in
      --*=*)
        val="${opt#*=}"
        opt="${opt%%=*}"
        ;;
      -d | -n | -m | --dir | --workers | --model | --model-id | --threads | --kv-cache-memory | \
        --http-port | --grpc-port | --cluster-port | --worker-port | --worker-cluster-port | \
        --cluster-name | --secret-file | --drain-timeout | --ready-timeout | --stop-timeout | \
        --worker-opt | --gateway-opt)
        (($# >= 2)) || bad_input "$opt needs a value"
        val="$2"
        shift
        ;;
    esac
    case "$opt" in
      -h | --help)
        usage
        exit 0
        ;;
      -d | --dir) DIR="$val" ;;
      -n | --workers) WORKERS="$val" ;;
      -m | --model) MODEL="$val" ;;
      --model-id) MODEL_ID="$val" ;;
      --threads) THREADS="$val" ;;
      --kv-cache-memory) KV_CACHE_MEMORY="$val" ;;
      --http-port) HTTP_PORT="$val" ;;
      --grpc-port) GRPC_PORT="$val" ;;
      --cluster-port) CLUSTER_PORT="$val" ;;
      --worker-port) WORKER_PORT="$val" ;;
      --worker-cluster-port) WORKER_CLUSTER_PORT="$val" ;;
      --cluster-name) CLUSTER_NAME="$val" ;;
      --secret-file) SECRET_FILE="$val" ;;
      --drain-timeout) DRAIN_TIMEOUT="$val" ;;
      --ready-timeout) READY_TIMEOUT="$val" ;;
      --stop-timeout) STOP_TIMEOUT="$val" ;;
      --worker-opt) WORKER_OPTS+=("$val") ;;
      --gateway-opt) GATEWAY_OPTS+=("$val") ;;
      -f | --follow) FOLLOW=1 ;;
      -*) bad_input "unknown option '$1'" ;;
      *)
        if [[ -z "$COMMAND" ]]; then
          COMMAND="$opt"
        elif [[ "$COMMAND" == logs && -z "$LOG_NAME" ]]; then
          LOG_NAME="$opt"
        else
          bad_input "unexpected argument '$opt'"
        fi
        ;;
    esac
    shift
  done
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

check_positive() { # NAME VALUE [MAX]
  local max="${3:-1000000}"
  if ! is_uint "$2" || (($2 < 1 || $2 > max)); then
    bad_input "$1 must be a positive integer (at most $max), got '$2'"
  fi
}

check_port() { # NAME VALUE [COUNT]: VALUE..VALUE+COUNT-1 must be ports, or VALUE 0
  local count="${3:-1}"
  if ! is_uint "$2" || (($2 > 65535)) || (($2 > 0 && $2 + count - 1 > 65535)); then
    if ((count > 1)); then
      bad_input "$1 must be 0 or a port with room for $count in [1, 65535], got '$2'"
    fi
    bad_input "$1 must be a port in [0, 65535], got '$2'"
  fi
}

# ---- run folder state --------------------------------------------------------------------------

STATE_FILE=""
declare -A STATE=()

set_dir() {
  [[ "$DIR" == /* ]] || DIR="$PWD/$DIR"
  STATE_FILE="$DIR/cluster.env"
}

read_state() { # loads DIR/cluster.env (KEY=VALUE lines) into STATE; false when there is none
  local k v
  STATE=()
  [[ -f "$STATE_FILE" ]] || return 1
  while IFS='=' read -r k v; do
    [[ -n "$k" && "$k" != \#* ]] && STATE["$k"]="$v"
  done <"$STATE_FILE"
  return 0
}

write_state() { # KEY=VALUE ...: replaces the state file (and STATE)
  local tmp="$STATE_FILE.tmp" kv
  STATE=()
  for kv in "$@"; do STATE["${kv%%=*}"]="${kv#*=}"; done
  {
    echo "# written by deploy/local/cluster.sh start; read by status and stop"
    for kv in "$@"; do echo "$kv"; done
  } >"$tmp"
  mv "$tmp" "$STATE_FILE"
}

# Process names in start order: gateway, worker-1, ..., from the pid files present.
pid_names() {
  local f names=()
  [[ -f "$DIR/gateway.pid" ]] && names+=(gateway)
  for f in "$DIR"/worker-*.pid; do
    [[ -f "$f" ]] || continue
    f="${f##*/}"
    names+=("${f%.pid}")
  done
  if ((${#names[@]} > 0)); then
    # worker-10 after worker-9
    printf '%s\n' "${names[@]}" | sort -t- -k2,2n
  fi
}

read_pid() { # NAME -> the pid in DIR/NAME.pid, or nothing
  local p=""
  if [[ -f "$DIR/$1.pid" ]]; then read -r p <"$DIR/$1.pid" || true; fi
  is_uint "$p" && echo "$p"
  return 0
}

# True when PID runs (a zombie counts as gone).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state=""
  if [[ -r "/proc/$1/stat" ]]; then
    state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || true
  else
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || true
  fi
  [[ "$state" != Z* ]]
}

# True when PID runs and is one of this run folder's processes: its command line names the
# cluster's secret file (every process gets --cluster-secret-file). Guards against a reused pid.
ours() {
  local pid="$1" marker="$2" cmdline=""
  alive "$pid" || return 1
  [[ -n "$marker" ]] || return 0
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || true
  else
    cmdline="$(ps -ww -o args= -p "$pid" 2>/dev/null)" || true
  fi
  [[ -z "$cmdline" || "$cmdline" == *"$marker"* ]]
}

tail_log() { # NAME [LINES]
  local log="$DIR/$1.log"
  if [[ -s "$log" ]]; then
    err "---- last ${2:-30} lines of $log ----"
    tail -n "${2:-30}" "$log" >&2
    err "----"
  else
    err "($log is empty)"
  fi
}

# ---- what the processes print ------------------------------------------------------------------

# "gateway serving HTTP (OpenAI, TGI, /metrics) on H:P and gRPC (fmaas) on H:P; cluster 'N' member H:P"
gateway_line() { grep -m1 '^gateway serving HTTP' "$DIR/gateway.log" 2>/dev/null || true; }

# "worker ID serving MODEL on H:P"
worker_address() { # NAME -> host:port the worker serves on, or nothing
  local line
  line="$(grep -m1 "^worker .* serving .* on " "$DIR/$1.log" 2>/dev/null)" || true
  [[ -n "$line" ]] && echo "${line##* on }"
  return 0
}

# Workers by state from the gateway's /metrics (starserve_gateway_workers{state="ready"} 2.0):
# prints "state count" lines; fails when the gateway does not answer.
http_get() { # HOST PORT PATH -> the body of a 200 answer; fails otherwise
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 "http://$1:$2$3" 2>/dev/null
    return
  fi
  # No curl: HTTP/1.0 over bash's /dev/tcp; the server closes the connection after its answer.
  local line status
  { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
  if IFS= read -r -t 3 status <&3 && [[ "$status" == *" 200 "* ]]; then
    while IFS= read -r -t 3 line <&3 && [[ "$line" != $'\r' && -n "$line" ]]; do :; done
    while IFS= read -r -t 3 line <&3 || [[ -n "$line" ]]; do printf '%s\n' "$line"; done
    exec 3<&-
    return 0
  fi
  exec 3<&-
  return 1
}

worker_states() { # HOST HTTP_PORT
  local body
  body="$(http_get "$1" "$2" /metrics)" || return 1
  awk '/^starserve_gateway_workers\{/ {
         match($0, /state="[^"]*"/)
         printf "%s %d\n", substr($0, RSTART + 7, RLENGTH - 8), $NF
       }' <<<"$body"
}

ready_workers() { # HOST HTTP_PORT -> the READY count (0 when none or no answer)
  local n
  n="$(worker_states "$1" "$2" | awk '$1 == "ready" { print $2 }')" || true
  echo "${n:-0}"
}

# ---- start -------------------------------------------------------------------------------------

LAUNCH=()
STARTED=() # names started by this invocation, for cleanup when start fails
STOPPED=0  # processes the last stop_processes signalled

launch_command() {
  if [[ -n "${STARSERVE_CMD:-}" ]]; then
    read -r -a LAUNCH <<<"$STARSERVE_CMD"
    ((${#LAUNCH[@]} > 0)) || bad_input "STARSERVE_CMD is blank"
  else
    LAUNCH=("$ROOT/starserve")
    # NOTE: ./starserve rebuilds a stale jar by itself; N+1 of them at once would all build, so
    # one quick command runs first (building if needed) and the rest find the jar fresh.
    say "checking the starserve jar (built once when sources changed) ..."
    local status
    # stdout (the version) dropped; stderr (build output, errors) shown but for the JVM's
    # incubator-module notice.
    set +e
    "${LAUNCH[@]}" --version 2>&1 >/dev/null | grep -v '^WARNING: Using incubator modules' >&2
    status="${PIPESTATUS[0]}"
    set -e
    ((status == 0)) || fail "./starserve could not run (exit $status, see above)"
  fi
}

port_in_use() { # PORT: something accepts connections on loopback
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports() {
  local -A seen=()
  local entry name port
  local wanted=("--http-port:$HTTP_PORT" "--grpc-port:$GRPC_PORT" "--cluster-port:$CLUSTER_PORT")
  local i
  for ((i = 0; i < WORKERS; i++)); do
    ((WORKER_PORT > 0)) && wanted+=("--worker-port (worker-$((i + 1))):$((WORKER_PORT + i))")
    ((WORKER_CLUSTER_PORT > 0)) &&
      wanted+=("--worker-cluster-port (worker-$((i + 1))):$((WORKER_CLUSTER_PORT + i))")
  done
  for entry in "${wanted[@]}"; do
    name="${entry%:*}"
    port="${entry##*:}"
    ((port > 0)) || continue
    if [[ -n "${seen[$port]:-}" ]]; then
      bad_input "port $port is given twice: ${seen[$port]} and $name"
    fi
    seen[$port]="$name"
  done
  for port in "${!seen[@]}"; do
    if port_in_use "$port"; then
      fail "port $port (${seen[$port]}) is in use on 127.0.0.1; pick another or stop what holds it"
    fi
  done
}

spawn() { # NAME ARGS...: starts the launch command with ARGS, output to DIR/NAME.log
  local name="$1"
  shift
  # nohup: the cluster outlives the terminal; stdin from /dev/null and output to the log, so a
  # caller reading this script's output is not held open by the servers.
  nohup "${LAUNCH[@]}" "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  echo "$!" >"$DIR/$name.pid"
  STARTED+=("$name")
}

# Stops what this start launched, after it failed.
abort_start() {
  local status=$?
  trap - EXIT INT TERM
  if ((${#STARTED[@]} > 0)); then
    err "stopping what was started ..."
    stop_processes 10 >&2 || true
  fi
  exit "$status"
}

# Waits until CONDITION (a command) holds, failing when a started process dies or TIMEOUT passes.
wait_for() { # WHAT TIMEOUT_S CONDITION...
  local what="$1" timeout="$2" name pid
  shift 2
  local deadline=$((SECONDS + timeout))
  while ! "$@"; do
    for name in "${STARTED[@]}"; do
      pid="$(read_pid "$name")"
      if [[ -z "$pid" ]] || ! alive "$pid"; then
        local code=""
        if [[ -n "$pid" ]]; then
          wait "$pid" 2>/dev/null && code=0 || code=$?
        fi
        err "$name${pid:+ (pid $pid)} exited${code:+ with status $code} while waiting until $what"
        tail_log "$name"
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      err "timed out after ${timeout}s waiting until $what"
      for name in "${STARTED[@]}"; do tail_log "$name" 10; done
      return 1
    fi
    sleep 0.5
  done
}

gateway_up() { [[ -n "$(gateway_line)" ]]; }

GW_HOST=""
all_ready() { (($(ready_workers "$GW_HOST" "$HTTP_PORT") >= WORKERS)); }

cmd_start() {
  check_positive "--workers" "$WORKERS" 64
  [[ -n "$MODEL" ]] || bad_input "--model DIR is required (make one with:" \
    "./starserve make-model --shape tiny_starcoder_py --out models/tiny_starcoder_py)"
  [[ -d "$MODEL" ]] || bad_input "--model: no such directory: $MODEL"
  [[ -f "$MODEL/config.json" ]] || bad_input "--model: $MODEL has no config.json (not a model directory)"
  MODEL="$(cd "$MODEL" && pwd)"
  local cores
  cores="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
  [[ -n "$THREADS" ]] || THREADS=$((cores / WORKERS > 0 ? cores / WORKERS : 1))
  check_positive "--threads" "$THREADS" 4096
  [[ "$KV_CACHE_MEMORY" =~ ^[0-9]+[kKmMgG]?$ ]] ||
    bad_input "--kv-cache-memory must be a size like 256m or 2g, got '$KV_CACHE_MEMORY'"
  check_port "--http-port" "$HTTP_PORT"
  check_port "--grpc-port" "$GRPC_PORT"
  check_port "--cluster-port" "$CLUSTER_PORT"
  check_port "--worker-port" "$WORKER_PORT" "$WORKERS"
  check_port "--worker-cluster-port" "$WORKER_CLUSTER_PORT" "$WORKERS"
  is_uint "$DRAIN_TIMEOUT" || bad_input "--drain-timeout must be a whole number of seconds, got '$DRAIN_TIMEOUT'"
  check_positive "--ready-timeout" "$READY_TIMEOUT"
  [[ -z "$CLUSTER_NAME" || "$CLUSTER_NAME" =~ ^[A-Za-z0-9._-]+$ ]] ||
    bad_input "--cluster-name may hold letters, digits, '.', '_' and '-', got '$CLUSTER_NAME'"
  if [[ -n "$SECRET_FILE" ]]; then
    [[ -r "$SECRET_FILE" && -s "$SECRET_FILE" ]] ||
      bad_input "--secret-file: $SECRET_FILE is missing, unreadable or empty"
    SECRET_FILE="$(cd "$(dirname "$SECRET_FILE")" && pwd)/$(basename "$SECRET_FILE")"
  fi

  mkdir -p "$DIR"
  local name pid running=()
  read_state || true
  for name in $(pid_names); do
    pid="$(read_pid "$name")"
    if [[ -n "$pid" ]] && ours "$pid" "${STATE[SECRET_FILE]:-}"; then
      running+=("$name (pid $pid)")
    fi
  done
  if ((${#running[@]} > 0)); then
    fail "already running from $DIR: ${running[*]}" \
      "(deploy/local/cluster.sh status shows it, deploy/local/cluster.sh stop ends it)"
  fi
  rm -f "$DIR"/gateway.pid "$DIR"/worker-*.pid "$DIR"/gateway.log "$DIR"/worker-*.log

  check_ports
  launch_command

  if [[ -z "$SECRET_FILE" ]]; then
    SECRET_FILE="$DIR/cluster.secret"
    (
      umask 077
      head -c 24 /dev/urandom | base64 >"$SECRET_FILE"
    )
    chmod 600 "$SECRET_FILE"
  fi
  [[ -n "$CLUSTER_NAME" ]] || CLUSTER_NAME="local-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  [[ -n "$MODEL_ID" ]] || MODEL_ID="$(basename "$MODEL")"
  write_state "SECRET_FILE=$SECRET_FILE" "WORKERS=$WORKERS" "DRAIN_TIMEOUT=$DRAIN_TIMEOUT"

  trap abort_start EXIT
  trap 'exit 130' INT TERM

  local t0=$SECONDS
  say "starting the gateway (logs in $DIR) ..."
  spawn gateway gateway --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" \
    --cluster-port "$CLUSTER_PORT" --cluster-name "$CLUSTER_NAME" \
    --cluster-secret-file "$SECRET_FILE" ${GATEWAY_OPTS[@]+"${GATEWAY_OPTS[@]}"}
  wait_for "the gateway serves" "$READY_TIMEOUT" gateway_up

  # The ports it bound (any given as 0 are known only now) and its Hazelcast address.
  local line http_addr grpc_addr member
  line="$(gateway_line)"
  http_addr="$(sed -n 's/^gateway serving HTTP .* on \([^ ]*\) and gRPC.*$/\1/p' <<<"$line")"
  grpc_addr="$(sed -n 's/^.* and gRPC (fmaas) on \([^;]*\);.*$/\1/p' <<<"$line")"
  member="${line##* member }"
  HTTP_PORT="${http_addr##*:}"
  GRPC_PORT="${grpc_addr##*:}"
  GW_HOST="${http_addr%:*}"
  [[ "$GW_HOST" == 0.0.0.0 || "$GW_HOST" == "::" ]] && GW_HOST=127.0.0.1
  if ! is_uint "$HTTP_PORT" || ! is_uint "$GRPC_PORT" || [[ "$member" != *:* ]]; then
    fail "cannot read the gateway's ports from its log line: $line"
  fi

  local i args
  say "starting $WORKERS worker(s) of $MODEL_ID ($THREADS thread(s), KV cache $KV_CACHE_MEMORY each) ..."
  for ((i = 1; i <= WORKERS; i++)); do
    args=(worker --model "$MODEL" --model-id "$MODEL_ID" --worker-id "worker-$i"
      --grpc-port "$((WORKER_PORT > 0 ? WORKER_PORT + i - 1 : 0))"
      --threads "$THREADS" --kv-cache-memory "$KV_CACHE_MEMORY" --drain-timeout "${DRAIN_TIMEOUT}s"
      --cluster-name "$CLUSTER_NAME"
      --cluster-port "$((WORKER_CLUSTER_PORT > 0 ? WORKER_CLUSTER_PORT + i - 1 : 0))"
      --cluster-members "$member" --cluster-secret-file "$SECRET_FILE")
    spawn "worker-$i" "${args[@]}" ${WORKER_OPTS[@]+"${WORKER_OPTS[@]}"}
  done
  write_state "SECRET_FILE=$SECRET_FILE" "WORKERS=$WORKERS" "DRAIN_TIMEOUT=$DRAIN_TIMEOUT" \
    "HTTP_HOST=$GW_HOST" "HTTP_PORT=$HTTP_PORT" "GRPC_PORT=$GRPC_PORT" \
    "CLUSTER_NAME=$CLUSTER_NAME" "CLUSTER_MEMBER=$member" "MODEL=$MODEL" "MODEL_ID=$MODEL_ID"
  wait_for "the gateway reports $WORKERS READY worker(s)" "$READY_TIMEOUT" all_ready

  trap - EXIT INT TERM
  say "ready after $((SECONDS - t0))s: $WORKERS worker(s) of '$MODEL_ID' behind the gateway"
  echo "  OpenAI/TGI HTTP  http://$GW_HOST:$HTTP_PORT  (/v1/completions, /generate, /metrics)"
  echo "  fmaas gRPC       $GW_HOST:$GRPC_PORT"
  for ((i = 1; i <= WORKERS; i++)); do
    echo "  worker-$i         pid $(read_pid "worker-$i"), gRPC $(worker_address "worker-$i")"
  done
  echo "  run folder       $DIR (cluster '$CLUSTER_NAME')"
  echo "try:  curl -s http://$GW_HOST:$HTTP_PORT/v1/completions -H 'content-type: application/json' \\"
  echo "        -d '{\"model\":\"$MODEL_ID\",\"prompt\":\"def fib(n):\",\"max_tokens\":16}'"
  echo "stop: deploy/local/cluster.sh stop --dir $DIR"
}

# ---- stop --------------------------------------------------------------------------------------

# SIGTERM, wait up to TIMEOUT_S, SIGKILL; workers first (they drain while the gateway still
# streams their answers), then the gateway. Removes the pid files.
stop_processes() { # TIMEOUT_S
  local timeout="$1" marker="${STATE[SECRET_FILE]:-}" name pid
  local workers=() gateway=()
  STOPPED=0
  for name in $(pid_names); do
    pid="$(read_pid "$name")"
    if [[ -n "$pid" ]] && ours "$pid" "$marker"; then
      if [[ "$name" == gateway ]]; then gateway=("$name:$pid"); else workers+=("$name:$pid"); fi
    else
      rm -f "$DIR/$name.pid" # it already exited
    fi
  done
  ((${#workers[@]} > 0)) && stop_group "$timeout" "${workers[@]}"
  ((${#gateway[@]} > 0)) && stop_group "$timeout" "${gateway[@]}"
  rm -f "$DIR"/gateway.pid "$DIR"/worker-*.pid
  return 0
}

stop_group() { # TIMEOUT_S NAME:PID...
  local timeout="$1" entry left
  shift
  for entry in "$@"; do kill -TERM "${entry##*:}" 2>/dev/null || true; done
  local deadline=$((SECONDS + timeout))
  while :; do
    left=()
    for entry in "$@"; do alive "${entry##*:}" && left+=("$entry"); done
    ((${#left[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for entry in "${left[@]}"; do
        err "${entry%%:*} (pid ${entry##*:}) still runs ${timeout}s after SIGTERM: SIGKILL"
        kill -KILL "${entry##*:}" 2>/dev/null || true
      done
      deadline=$((SECONDS + 10))
      while :; do
        left=()
        for entry in "$@"; do alive "${entry##*:}" && left+=("$entry"); done
        ((${#left[@]} == 0 || SECONDS >= deadline)) && break
        sleep 0.2
      done
      ((${#left[@]} == 0)) || err "still running after SIGKILL: ${left[*]}"
      break
    fi
    sleep 0.2
  done
  STOPPED=$((STOPPED + $#))
  for entry in "$@"; do
    # Reap it when it is this shell's own child (a failed start); others are reaped by init.
    wait "${entry##*:}" 2>/dev/null || true
    echo "stopped ${entry%%:*} (pid ${entry##*:})"
  done
}

cmd_stop() {
  read_state || true
  if [[ -z "$(pid_names)" ]]; then
    say "not running (no pid files in $DIR)"
    return 0
  fi
  local timeout="$STOP_TIMEOUT"
  [[ -n "$timeout" ]] || timeout=$((${STATE[DRAIN_TIMEOUT]:-30} + 15))
  is_uint "$timeout" || bad_input "--stop-timeout must be a whole number of seconds, got '$timeout'"
  stop_processes "$timeout"
  if ((STOPPED == 0)); then
    say "not running (its processes had exited; removed their pid files)"
  else
    say "stopped (logs stay in $DIR)"
  fi
}

# ---- status and logs ---------------------------------------------------------------------------

cmd_status() {
  if ! read_state && [[ -z "$(pid_names)" ]]; then
    say "not running (nothing in $DIR)"
    return 3
  fi
  local name pid up=0 down=0 where
  for name in $(pid_names); do
    pid="$(read_pid "$name")"
    where=""
    if [[ "$name" == gateway ]]; then
      where="HTTP ${STATE[HTTP_HOST]:-127.0.0.1}:${STATE[HTTP_PORT]:-?}, gRPC ${STATE[HTTP_HOST]:-127.0.0.1}:${STATE[GRPC_PORT]:-?}"
    else
      where="gRPC $(worker_address "$name")"
    fi
    if [[ -n "$pid" ]] && ours "$pid" "${STATE[SECRET_FILE]:-}"; then
      printf '%-10s pid %-8s running  %s\n' "$name" "$pid" "$where"
      up=$((up + 1))
    else
      printf '%-10s pid %-8s stopped  (log: %s)\n' "$name" "${pid:--}" "$DIR/$name.log"
      down=$((down + 1))
    fi
  done
  local expected=$((${STATE[WORKERS]:-0} + 1))
  if ((up == 0)); then
    say "not running"
    return 3
  fi
  local states
  if states="$(worker_states "${STATE[HTTP_HOST]:-127.0.0.1}" "${STATE[HTTP_PORT]:-0}")"; then
    echo "workers as the gateway reports them: $(awk '{ printf "%s%s=%s", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$states")"
  else
    echo "the gateway does not answer on http://${STATE[HTTP_HOST]:-127.0.0.1}:${STATE[HTTP_PORT]:-?}/metrics"
  fi
  echo "run folder: $DIR (cluster '${STATE[CLUSTER_NAME]:-?}', model '${STATE[MODEL_ID]:-?}')"
  if ((down > 0 || up < expected)); then
    say "$up of $expected processes running"
    return 1
  fi
  return 0
}

cmd_logs() {
  local files=() i
  if [[ -n "$LOG_NAME" ]]; then
    [[ -f "$DIR/$LOG_NAME.log" ]] || bad_input "no log $DIR/$LOG_NAME.log"
    files=("$DIR/$LOG_NAME.log")
  else
    [[ -f "$DIR/gateway.log" ]] && files+=("$DIR/gateway.log")
    for ((i = 1; i <= 64; i++)); do
      [[ -f "$DIR/worker-$i.log" ]] && files+=("$DIR/worker-$i.log")
    done
  fi
  ((${#files[@]} > 0)) || fail "no logs in $DIR"
  if ((FOLLOW)); then
    exec tail -n 20 -f "${files[@]}"
  fi
  tail -n 40 "${files[@]}"
}

# ---- main --------------------------------------------------------------------------------------

parse_args "$@"
set_dir
case "$COMMAND" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  help) usage ;;
  "")
    usage >&2
    exit 2
    ;;
  *) bad_input "unknown command '$COMMAND' (start, status, logs or stop)" ;;
esac
