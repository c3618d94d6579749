#!/usr/bin/env bash
# braindrill: one command up on a fresh Debian 12 machine.
#
#   ./deploy.sh [up]     install what is missing, start dockerd if none runs, build the runtime image,
#                        serve on $PORT (8080) in the embedded single-node mode, wait until ready
#   ./deploy.sh single   the same (the embedded one-process mode)
#   ./deploy.sh down     stop what this script started
#   ./deploy.sh status   what runs, and /ready
#   ./deploy.sh logs     follow the engine's log
#   ./deploy.sh rebuild  rebuild the runtime image if its recipe changed, then restart
#   ./deploy.sh test     do its own set-up, then run every test (what .ci/run calls)
#
# Settings come from the environment (README, "Configuration") and are passed on to the engine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${BRAINDRILL_RUN_DIR:-$ROOT/.run}"
PORT="${PORT:-8080}"
export PORT
mkdir -p "$RUN_DIR"
cd "$ROOT"

say() { printf '\033[1m[deploy]\033[0m %s\n' "$*"; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}); run as root or install them: apt-get install -y ${missing[*]}"
  if [ "$apt_updated" -eq 0 ]; then say "apt-get update"; apt-get update -qq; apt_updated=1; fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_node_deps() {
  command -v node >/dev/null || die "Node.js 20 is required (https://nodejs.org or apt-get install nodejs)"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

docker_up() { docker info >/dev/null 2>&1; }

ensure_docker() {
  apt_install docker.io debootstrap
  if docker_up; then return 0; fi
  say "starting dockerd (no bridge, no iptables: sandboxes run with network none)"
  nohup dockerd --bridge=none --iptables=false >"$RUN_DIR/dockerd.log" 2>&1 &
  echo $! >"$RUN_DIR/dockerd.pid"
  for _ in $(seq 1 60); do docker_up && return 0; sleep 0.5; done
  die "dockerd did not come up; see $RUN_DIR/dockerd.log"
}

ensure_images() {
  bash images/build.sh
}

engine_pid() { [ -f "$RUN_DIR/braindrill.pid" ] && kill -0 "$(cat "$RUN_DIR/braindrill.pid")" 2>/dev/null && cat "$RUN_DIR/braindrill.pid"; }

wait_ready() {
  local url="http://127.0.0.1:$PORT"
  for _ in $(seq 1 120); do
    if curl -fsS "$url/ready" >/dev/null 2>&1; then say "ready: $url (logs: ./deploy.sh logs)"; return 0; fi
    if ! engine_pid >/dev/null; then tail -n 30 "$RUN_DIR/braindrill.log" >&2 || true; die "the engine exited during start-up"; fi
    sleep 0.5
  done
  die "the engine did not become ready on $url; see $RUN_DIR/braindrill.log"
}

start_single() {
  if pid=$(engine_pid); then say "already running (pid $pid) on port $PORT"; return 0; fi
  say "starting braindrill (embedded single-node mode) on ${HOST:-127.0.0.1}:$PORT"
  ROLE=all nohup node --import tsx src/main.ts >>"$RUN_DIR/braindrill.log" 2>&1 &
  echo $! >"$RUN_DIR/braindrill.pid"
  wait_ready
}

setup() {
  apt_install curl ca-certificates
  ensure_docker
  ensure_node_deps
  ensure_images
}

stop_pidfile() {
  local file="$RUN_DIR/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

case "${1:-up}" in
  up|single)
    setup
    start_single
    ;;
  down)
    stop_pidfile braindrill
    stop_pidfile dockerd
    ;;
  status)
    if pid=$(engine_pid); then say "engine running (pid $pid)"; else say "engine not running"; fi
    docker_up && say "docker: up" || say "docker: down"
    curl -sS "http://127.0.0.1:$PORT/ready" 2>/dev/null && echo || true
    ;;
  logs)
    exec tail -n 100 -F "$RUN_DIR/braindrill.log"
    ;;
  rebuild)
    setup
    stop_pidfile braindrill
    start_single
    ;;
  test)
    setup
    shift || true
    say "running the tests"
    exec npx tap "$@"
    ;;
  *)
    die "unknown command '$1' (up, single, down, status, logs, rebuild, test)"
    ;;
esac
