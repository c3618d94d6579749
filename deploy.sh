#!/usr/bin/env bash
# braindrill: one command up on a fresh Debian 12 machine.
#
#   ./deploy.sh [up]       install what is missing, start dockerd if none runs, build the runtime image,
#                          start Redis (AOF) and PostgreSQL, then a local cluster: one API node on $PORT
#                          (8080) and two manager nodes on $PORT+1, $PORT+2; wait until it is ready
#   ./deploy.sh single     the embedded single-node mode instead (one process, no Redis/PostgreSQL)
#   ./deploy.sh down       stop what this script started (nodes first, draining)
#   ./deploy.sh status     what runs, and /ready
#   ./deploy.sh logs [N]   follow the nodes' logs (or node N: api-1, manager-2, redis, ...)
#   ./deploy.sh rebuild    rebuild the runtime image if its recipe changed, then restart the nodes
#   ./deploy.sh scale N    run N manager nodes (starts the missing ones, stops those above N)
#   ./deploy.sh image [T]  build the service image (Dockerfile) as T (braindrill:local), no registry needed
#   ./deploy.sh test       do its own set-up, then run every test (what .ci/run calls)
#
# Settings come from the environment (README, "Configuration") and are passed on to every node; the
# script itself reads REDIS_PORT (6379), MANAGERS (2), MANAGER_PORT_BASE ($PORT), READY_TIMEOUT (60)
# and STOP_TIMEOUT (60). See docs/DEPLOY.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${BRAINDRILL_RUN_DIR:-$ROOT/.run}"
PORT="${PORT:-8080}"
export PORT
# State and logs (passwords, the nodes' logs) are the engine's users' only: 0700 here, 0600 inside.
umask 077
mkdir -p "$RUN_DIR"
chmod 700 "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
cd "$ROOT"

REDIS_PORT="${REDIS_PORT:-6379}"
MANAGER_PORT_BASE="${MANAGER_PORT_BASE:-$PORT}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-60}"
# URLs given by the caller win: the script then starts no Redis / PostgreSQL of its own.
USER_REDIS_URL="${REDIS_URL:-}"
USER_DATABASE_URL="${DATABASE_URL:-}"

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

# The nodes run the build (dist/src/main.js): compiled once, it starts faster and takes ~90 MB less
# memory per node than compiling TypeScript at start-up.
ENTRY=dist/src/main.js
ensure_build() {
  if [ -f "$ENTRY" ] && [ -f dist/.tsbuildinfo ] &&
    [ -z "$(find src migrations tsconfig.json tsconfig.build.json package-lock.json -newer dist/.tsbuildinfo -print -quit)" ]; then
    return 0
  fi
  say "npm run build"
  npm run build --silent || die "the TypeScript build failed (npm run build)"
}

# --- the installed build, and the unprivileged user API nodes run as -----------------------------
# A checkout under /root cannot be read by another user: the build the nodes run is copied to
# $INSTALL_DIR/<build id> (dist/, node_modules/, config/, images/, migrations/, package.json; root-owned,
# world-readable), and $INSTALL_DIR/current points at the one running. API nodes run there as the system
# user braindrill, which has no access to the Docker socket; only manager nodes (and the single-node
# engine) reach Docker, as root.
INSTALL_DIR="${BRAINDRILL_INSTALL_DIR:-/opt/braindrill}"
SERVICE_USER="${BRAINDRILL_USER:-braindrill}"

ensure_service_user() {
  id "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"
  if id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx docker; then
    die "the user $SERVICE_USER is in the docker group (root on this host, in effect): remove it (gpasswd -d $SERVICE_USER docker)"
  fi
}

install_build() {
  local id target
  id=$( (cd "$ROOT" && find dist config images migrations package.json package-lock.json -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
  target="$INSTALL_DIR/$id"
  if [ ! -f "$target/.complete" ]; then
    say "installing the build in $target (the nodes run it from there)"
    rm -rf "$target.tmp"
    mkdir -p "$target.tmp"
    (cd "$ROOT" && cp -a dist config images migrations package.json package-lock.json node_modules "$target.tmp/")
    rm -f "$target.tmp/dist/.tsbuildinfo"
    chown -R root:root "$target.tmp"
    chmod -R u=rwX,go=rX "$target.tmp"
    touch "$target.tmp/.complete"
    rm -rf "$target" && mv "$target.tmp" "$target"
  fi
  chmod 755 "$INSTALL_DIR"
  ln -sfn "$target" "$INSTALL_DIR/current.tmp" && mv -T "$INSTALL_DIR/current.tmp" "$INSTALL_DIR/current"
  # Earlier builds no node runs any more (the two newest are kept).
  find "$INSTALL_DIR" -mindepth 1 -maxdepth 1 -type d -not -name "$id" -printf '%T@ %p\n' 2>/dev/null | sort -rn | tail -n +2 | cut -d' ' -f2- | xargs -r rm -rf
  NODE_ENTRY="$INSTALL_DIR/current/dist/src/main.js"
}

docker_up() { docker info >/dev/null 2>&1; }

# --- dockerd: user namespaces and OCI runtimes ----------------------------------------------------
# The dockerd this script starts remaps container ids to a subordinate range of its own (userns-remap:
# root in a sandbox is an unprivileged id on the host) and registers crun (and runsc, gVisor, when asked).
# DOCKER_USERNS=0 turns the remap off for hosts that cannot use it (docs/SECURITY.md says what that gives
# up); DOCKER_RUNSC=1 (or SANDBOX_RUNTIME=runsc) registers runsc.
DOCKER_USERNS="${DOCKER_USERNS:-1}"
USERNS_USER=braindrill-userns
want_runsc() { [ "${DOCKER_RUNSC:-0}" = 1 ] || [ "${SANDBOX_RUNTIME:-}" = runsc ]; }

# runsc's arguments: --network=none (the sandbox has no network, and gVisor refuses to set one up
# otherwise); --oci-seccomp (the engine's seccomp profile applies inside gVisor too, not only gVisor's own
# filter around its kernel).
runsc_daemon_json() {
  printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": ["--network=none", "--oci-seccomp"]}}}\n' "$(command -v runsc)"
}
# Named by its content, so a changed configuration is a changed dockerd option (and restarts dockerd).
runsc_config_file() { echo "$RUN_DIR/daemon-$(runsc_daemon_json | sha256sum | cut -c1-8).json"; }

# The dockerd options this script wants, sorted, on one line (what $RUN_DIR/dockerd.options records).
wanted_dockerd_options() {
  {
    echo --bridge=none
    echo --iptables=false
    if [ "$DOCKER_USERNS" = 1 ]; then echo "--userns-remap=$USERNS_USER"; fi
    if command -v crun >/dev/null; then echo "--add-runtime=crun=$(command -v crun)"; fi
    # runsc needs arguments, which only a configuration file can give a runtime (runsc_daemon_json).
    if want_runsc && command -v runsc >/dev/null; then echo "--config-file=$(runsc_config_file)"; fi
  } | sort | tr '\n' ' ' | sed 's/ $//'
}

# A system user whose subordinate id range (65536 ids above every range in use) the remap uses.
prepare_userns() {
  [ "$DOCKER_USERNS" = 1 ] || return 0
  id "$USERNS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$USERNS_USER"
  local file start
  for file in /etc/subuid /etc/subgid; do
    touch "$file"
    grep -q "^$USERNS_USER:" "$file" && continue
    start=$(awk -F: 'BEGIN { m = 100000 } { e = $2 + $3; if (e > m) m = e } END { print m }' "$file")
    echo "$USERNS_USER:$start:65536" >>"$file"
    say "userns-remap: $USERNS_USER gets the ids $start-$((start + 65535)) ($file)"
  done
}

# crun 1.8 refuses a hybrid cgroup layout whose cgroup2 mount still holds a controller (hugetlb here):
# that controller gets its own v1 hierarchy, as on a plain cgroup-v1 host.
prepare_crun_cgroups() {
  command -v crun >/dev/null || return 0
  local unified=/sys/fs/cgroup/unified/cgroup.controllers controller
  # (cgroup files report size 0: read them, do not test their size)
  [ -r "$unified" ] || return 0
  for controller in $(cat "$unified"); do
    [ -d "/sys/fs/cgroup/$controller" ] && continue
    mkdir -p "/sys/fs/cgroup/$controller" &&
      mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" &&
      say "cgroups: mounted $controller as its own v1 hierarchy (crun needs the cgroup2 mount to hold no controller)" ||
      say "  warning: could not mount the $controller cgroup (crun may refuse to start containers; SANDBOX_RUNTIME=runc avoids it)"
  done
}

start_dockerd() {
  local options
  options=$(wanted_dockerd_options)
  if want_runsc && command -v runsc >/dev/null; then
    runsc_daemon_json >"$(runsc_config_file)"
  fi
  say "starting dockerd ($options)"
  # shellcheck disable=SC2086 # the options are single words
  nohup dockerd $options >"$RUN_DIR/dockerd.log" 2>&1 &
  echo $! >"$RUN_DIR/dockerd.pid"
  echo "$options" >"$RUN_DIR/dockerd.options"
  for _ in $(seq 1 60); do docker_up && return 0; sleep 0.5; done
  die "dockerd did not come up; see $RUN_DIR/dockerd.log"
}

# A dockerd this script did not start is never touched: say what it lacks, and how to give it.
advise_foreign_dockerd() {
  local security runtimes
  security=$(docker info --format '{{json .SecurityOptions}}' 2>/dev/null || true)
  runtimes=$(docker info --format '{{json .Runtimes}}' 2>/dev/null || true)
  if [ "$DOCKER_USERNS" = 1 ] && [[ $security != *userns* ]]; then
    say "  note: the running dockerd (not started here) has no user namespaces: add \"userns-remap\": \"default\" to /etc/docker/daemon.json and restart it (or set DOCKER_USERNS=0 to accept that)"
  fi
  if command -v crun >/dev/null && [[ $runtimes != *crun* ]]; then
    say "  note: the running dockerd (not started here) has no crun: add \"runtimes\": {\"crun\": {\"path\": \"$(command -v crun)\"}} to /etc/docker/daemon.json"
  fi
  if want_runsc && [[ $runtimes != *runsc* ]]; then
    die "SANDBOX_RUNTIME=runsc, but the running dockerd (not started here) has no runsc: add \"runtimes\": {\"runsc\": {\"path\": \"/usr/bin/runsc\", \"runtimeArgs\": [\"--network=none\", \"--oci-seccomp\"]}} to /etc/docker/daemon.json and restart it"
  fi
  return 0
}

# What of the engine ran before dockerd had to restart (restarted by start_engine_again).
ENGINE_STOPPED_FOR_DOCKERD=""

ensure_docker() {
  apt_install docker.io debootstrap crun
  if want_runsc; then apt_install runsc; fi
  prepare_userns
  prepare_crun_cgroups
  if docker_up; then
    if ! pid_of dockerd >/dev/null; then advise_foreign_dockerd; return 0; fi
    local wanted recorded
    wanted=$(wanted_dockerd_options)
    recorded=$(cat "$RUN_DIR/dockerd.options" 2>/dev/null || echo "--bridge=none --iptables=false")
    [ "$wanted" != "$recorded" ] || return 0
    say "the dockerd this script started runs with \"$recorded\"; it now wants \"$wanted\": restarting it"
    # Draining first: nodes stop taking jobs and finish what they run before their sandboxes go away.
    if engine_pid >/dev/null; then ENGINE_STOPPED_FOR_DOCKERD=single; stop_pidfile braindrill; fi
    if [ -n "$(running_managers)" ] || pid_of api-1 >/dev/null; then ENGINE_STOPPED_FOR_DOCKERD=cluster; stop_cluster_nodes; fi
    stop_pidfile dockerd
  fi
  start_dockerd
}

# After `test` or `image` restarted dockerd: the engine that ran before runs again.
start_engine_again() {
  case $ENGINE_STOPPED_FOR_DOCKERD in
    single) start_single ;;
    cluster) start_cluster ;;
  esac
}

ensure_images() {
  bash images/build.sh
}

# The process <pid> is still what its pid file <name> says (not a pid reused after a reboot).
pid_is() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  case $2 in
    redis) [[ $cmd == *redis-server* ]] ;;
    dockerd) [[ $cmd == *dockerd* ]] ;;
    *) [[ $cmd == *dist/src/main.js* || $cmd == *src/main.ts* ]] ;;
  esac
}

# The pid recorded in $RUN_DIR/<name>.pid, if that process is alive.
pid_of() {
  local file="$RUN_DIR/$1.pid" pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && pid_is "$pid" "$1" || return 1
  echo "$pid"
}

engine_pid() { pid_of braindrill; }

# Whether a process this invocation has just started is alive. Right after the fork it is still this
# shell, not yet `node` (on a busy machine for a while), so pid_is would not recognise it yet; a pid this
# script wrote moments ago cannot have been reused, and a zombie counts as exited.
started_alive() {
  local pid
  pid=$(cat "$RUN_DIR/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

wait_ready() {
  local url="http://127.0.0.1:$PORT"
  for _ in $(seq 1 120); do
    if curl -fsS "$url/ready" >/dev/null 2>&1; then say "ready: $url (logs: ./deploy.sh logs)"; return 0; fi
    if ! started_alive braindrill; then tail -n 30 "$RUN_DIR/braindrill.log" >&2 || true; die "the engine exited during start-up"; fi
    sleep 0.5
  done
  die "the engine did not become ready on $url; see $RUN_DIR/braindrill.log"
}

start_single() {
  if pid=$(engine_pid); then say "already running (pid $pid) on port $PORT"; return 0; fi
  say "starting braindrill (embedded single-node mode) on ${HOST:-127.0.0.1}:$PORT"
  ROLE=all nohup node "$NODE_ENTRY" >>"$RUN_DIR/braindrill.log" 2>&1 &
  echo $! >"$RUN_DIR/braindrill.pid"
  wait_ready
}

setup() {
  apt_install curl ca-certificates
  ensure_docker
  ensure_node_deps
  ensure_build
  ensure_images
  ensure_service_user
  install_build
}

stop_pidfile() {
  local file="$RUN_DIR/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null && pid_is "$pid" "$1"; then
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# --- the local cluster ------------------------------------------------------------------------

# Something accepts connections on 127.0.0.1:<port>.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Where this machine reaches the nodes: HOST unless it is a wildcard.
probe_host() {
  local host=${HOST:-127.0.0.1}
  case $host in
    0.0.0.0 | :: | '[::]') echo 127.0.0.1 ;;
    \[*) echo "$host" ;;
    *:*) echo "[$host]" ;;
    *) echo "$host" ;;
  esac
}

# Prints one field (a.b.c) of the JSON document on stdin, or nothing.
json_field() {
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    try { const v = process.argv[1].split(".").reduce((o, k) => o?.[k], JSON.parse(s)); console.log(v ?? ""); }
    catch { console.log(""); } });' "$1"
}

pretty_json() {
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    try { console.log(JSON.stringify(JSON.parse(s), null, 2)); } catch { console.log(s); } });'
}

# Node names of this script's cluster whose pid files exist, API first, managers in order.
cluster_nodes() {
  local file
  [ -f "$RUN_DIR/api-1.pid" ] && echo api-1
  for file in "$RUN_DIR"/manager-*.pid; do
    [ -e "$file" ] || continue
    file=${file##*/}; echo "${file%.pid}"
  done | sort -t- -k2,2n
}

running_managers() {
  local node
  for node in $(cluster_nodes); do
    case $node in manager-*) pid_of "$node" >/dev/null && echo "$node" ;; esac
  done
  return 0
}

node_port() {
  case $1 in
    api-1) echo "$PORT" ;;
    manager-*) echo $((MANAGER_PORT_BASE + ${1#manager-})) ;;
  esac
}

# How many managers: $MANAGERS, else what `scale` recorded, else 2.
desired_managers() {
  local n=${MANAGERS:-}
  [ -n "$n" ] || n=$(cat "$RUN_DIR/managers" 2>/dev/null || true)
  [ -n "$n" ] || n=2
  [[ $n =~ ^[0-9]+$ ]] || die "MANAGERS=$n: a number of manager nodes, like 2"
  echo "$n"
}

# A manager's CONCURRENCY unless set: the cores shared out among the managers, at least 1.
manager_concurrency() {
  local cores managers
  cores=$(nproc)
  managers=$(desired_managers)
  [ "$managers" -gt 0 ] || managers=1
  echo $(((cores / managers) > 0 ? cores / managers : 1))
}

# --- Redis: loopback, AOF, a password ---------------------------------------------------------------
REDIS_PASSWORD_FILE="$RUN_DIR/redis.password"

# PING with the password this script keeps (if any): PONG means Redis answers and the password is right.
redis_answers() {
  local auth=()
  [ -s "$REDIS_PASSWORD_FILE" ] && auth=(-a "$(cat "$REDIS_PASSWORD_FILE")" --no-auth-warning)
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "${auth[@]}" ping 2>/dev/null)" = PONG ]
}

# PING without any password: PONG means anyone on this machine may use that Redis.
redis_open() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

# A Redis URL's password, if it has one (redis://[user]:password@host...).
url_has_password() { [[ $1 =~ ^rediss?://[^/@]*:[^/@]+@ ]]; }

ensure_redis() {
  if [ -n "$USER_REDIS_URL" ]; then
    REDIS_URL=$USER_REDIS_URL
    say "Redis: using REDIS_URL from the environment"
    if ! url_has_password "$REDIS_URL" && [[ $REDIS_URL =~ ^redis://(127\.0\.0\.1|localhost):$REDIS_PORT ]] && redis_open; then
      die "REDIS_URL points at a Redis that answers without a password: every node must authenticate. Give it a password (requirepass) and put it in REDIS_URL (redis://:PASSWORD@host:port), or unset REDIS_URL to let this script start its own."
    fi
    return 0
  fi
  apt_install redis-server
  if [ ! -s "$REDIS_PASSWORD_FILE" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$REDIS_PASSWORD_FILE")
  fi
  REDIS_URL="redis://:$(cat "$REDIS_PASSWORD_FILE")@127.0.0.1:$REDIS_PORT"
  if pid_of redis >/dev/null; then
    if redis_open; then
      # Started here before it had a password: restarted with one, its data kept (the AOF in its dir).
      say "Redis (started here) runs without a password: restarting it with one (its data is kept)"
      stop_pidfile redis
    elif redis_answers; then
      return 0
    fi
  elif redis_open; then
    die "a Redis this script did not start answers on 127.0.0.1:$REDIS_PORT without a password: anyone on this machine could use the engine's queue. Give it a password and set REDIS_URL=redis://:PASSWORD@127.0.0.1:$REDIS_PORT, or stop it, or set REDIS_PORT for another."
  elif redis_answers; then
    say "Redis: reusing the one answering on 127.0.0.1:$REDIS_PORT with this script's password"
    return 0
  fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is taken by something this script cannot use (another Redis with a password, or not Redis); set REDIS_PORT or REDIS_URL"
  mkdir -p "$RUN_DIR/redis"
  chmod 700 "$RUN_DIR/redis"
  # The password goes in a config file only root can read, not on the command line (ps shows that).
  (umask 077 && cat >"$RUN_DIR/redis.conf" <<CONF
port $REDIS_PORT
bind 127.0.0.1 -::1
protected-mode yes
requirepass $(cat "$REDIS_PASSWORD_FILE")
appendonly yes
appendfsync everysec
dir $RUN_DIR/redis
daemonize no
pidfile $RUN_DIR/redis.pid
logfile ""
CONF
  )
  say "starting Redis on 127.0.0.1:$REDIS_PORT (password in $REDIS_PASSWORD_FILE, AOF in $RUN_DIR/redis)"
  setsid nohup redis-server "$RUN_DIR/redis.conf" </dev/null >>"$RUN_DIR/redis.log" 2>&1 &
  echo $! >"$RUN_DIR/redis.pid"
  for _ in $(seq 1 40); do
    redis_answers && return 0
    pid_of redis >/dev/null || break
    sleep 0.25
  done
  tail -n 20 "$RUN_DIR/redis.log" >&2 || true
  die "Redis did not come up on 127.0.0.1:$REDIS_PORT; see $RUN_DIR/redis.log"
}

# Debian's PostgreSQL cluster ("15 main" on a stock Debian 12), created if there is none.
pg_cluster_line() { pg_lsclusters --no-header 2>/dev/null | awk '$2 == "main" { print $1, $2, $3, $4; exit }'; }

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

ensure_postgres() {
  if [ -n "$USER_DATABASE_URL" ]; then
    DATABASE_URL=$USER_DATABASE_URL
    say "PostgreSQL: using DATABASE_URL from the environment"
    return 0
  fi
  apt_install postgresql
  local line version name pg_port status
  line=$(pg_cluster_line)
  [ -n "$line" ] || line=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR == 1 { print $1, $2, $3, $4 }')
  if [ -z "$line" ]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)
    [ -n "$version" ] || die "no PostgreSQL server binaries in /usr/lib/postgresql; apt-get install postgresql"
    say "PostgreSQL: creating the Debian cluster $version/main"
    pg_createcluster "$version" main >/dev/null
    line=$(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" { print $1, $2, $3, $4 }')
  fi
  read -r version name pg_port status <<<"$line"
  if [ "$status" = online ]; then
    [ -f "$RUN_DIR/postgres.started" ] || say "PostgreSQL: reusing the running cluster $version/$name on port $pg_port (down leaves it running)"
  else
    say "starting PostgreSQL (Debian cluster $version/$name, port $pg_port)"
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    pg_ctlcluster "$version" "$name" start || die "pg_ctlcluster $version $name start failed; see /var/log/postgresql/postgresql-$version-$name.log"
    echo "$version $name" >"$RUN_DIR/postgres.started"
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$pg_port" || die "PostgreSQL $version/$name does not answer on 127.0.0.1:$pg_port"

  # The role and database braindrill, with a password kept in $RUN_DIR (mode 600).
  local password_file="$RUN_DIR/postgres.password" password
  if [ ! -s "$password_file" ]; then
    (umask 077 && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$password_file")
  fi
  password=$(cat "$password_file")
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres >/dev/null <<SQL || die "could not create the braindrill role and database in PostgreSQL $version/$name"
\\set pw '$password'
SELECT 'CREATE ROLE braindrill LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'braindrill') \\gexec
ALTER ROLE braindrill WITH LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE braindrill OWNER braindrill' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'braindrill') \\gexec
SQL
  DATABASE_URL="postgres://braindrill:$password@127.0.0.1:$pg_port/braindrill"
  PGPASSWORD=$password psql -X -q -h 127.0.0.1 -p "$pg_port" -U braindrill -d braindrill -c 'select 1' >/dev/null 2>&1 ||
    die "cannot log in as braindrill on 127.0.0.1:$pg_port with a password (pg_hba.conf needs scram-sha-256 or md5 for host 127.0.0.1/32)"
}

# The URLs the running nodes were given, so `scale` adds managers to the same cluster.
save_cluster_env() {
  (umask 077 && printf 'REDIS_URL=%s\nDATABASE_URL=%s\n' "$REDIS_URL" "$DATABASE_URL" >"$RUN_DIR/cluster.env")
}

load_cluster_env() {
  local key value
  [ -f "$RUN_DIR/cluster.env" ] || return 1
  while IFS='=' read -r key value; do
    case $key in
      REDIS_URL) REDIS_URL=$value ;;
      DATABASE_URL) DATABASE_URL=$value ;;
    esac
  done <"$RUN_DIR/cluster.env"
  [ -n "${REDIS_URL:-}" ] && [ -n "${DATABASE_URL:-}" ]
}

start_node() {
  local name=$1 role=$2 port pid concurrency
  port=$(node_port "$name")
  if pid=$(pid_of "$name"); then say "$name already running (pid $pid, port $port)"; return 0; fi
  port_busy "$port" && die "port $port (for $name) is taken by another process; stop it, or set PORT / MANAGER_PORT_BASE"
  concurrency=${CONCURRENCY:-}
  if [ "$role" = worker ] && [ -z "$concurrency" ]; then concurrency=$(manager_concurrency); fi
  local as_user=()
  # An API node needs neither Docker nor root: it runs as the service user (setpriv execs, keeping the pid).
  if [ "$role" = api ]; then as_user=(setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --clear-groups --inh-caps=-all --bounding-set=-all --); fi
  say "starting $name (ROLE=$role$([ "$role" = api ] && echo ", as $SERVICE_USER")) on ${HOST:-127.0.0.1}:$port${concurrency:+, CONCURRENCY=$concurrency}"
  # setsid: a Ctrl-C in this terminal does not reach (and drain) the nodes. The log is created by this
  # (root) shell with mode 0600; the node writes to it through the inherited descriptor.
  ROLE=$role NODE_ID=$name PORT=$port REDIS_URL=$REDIS_URL DATABASE_URL=$DATABASE_URL CONCURRENCY=$concurrency \
    setsid nohup "${as_user[@]}" node "$NODE_ENTRY" </dev/null >>"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

# SIGTERM to every named node at once (they drain), SIGKILL to what is left after STOP_TIMEOUT s.
stop_nodes() {
  local node pid pids=() names=()
  for node in "$@"; do
    if pid=$(pid_of "$node"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$node")
    fi
    rm -f "$RUN_DIR/$node.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  say "stopping ${names[*]} (SIGTERM: they drain; up to ${STOP_TIMEOUT} s)"
  local deadline=$((SECONDS + STOP_TIMEOUT)) alive
  while :; do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -gt 0 ] || return 0
    [ $SECONDS -lt "$deadline" ] || break
    sleep 0.5
  done
  say "still running after ${STOP_TIMEOUT} s, killing: pids ${alive[*]}"
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

# The API node first (it stops taking work and waits for its requests), then the managers.
stop_cluster_nodes() {
  local managers
  stop_nodes api-1
  managers=$(cluster_nodes | grep '^manager-' || true)
  # shellcheck disable=SC2086 # node names have no spaces
  [ -z "$managers" ] || stop_nodes $managers
}

# The log files of this script's cluster nodes (also after down).
node_logs() {
  local file
  [ -f "$RUN_DIR/api-1.log" ] && echo "$RUN_DIR/api-1.log"
  for file in "$RUN_DIR"/manager-*.log; do [ -e "$file" ] && echo "$file"; done | sort -t- -k2,2n
  return 0
}

# The last lines of each node's log; the nodes named in "$@" last, where they are seen.
show_node_logs() {
  local node others=()
  for node in $(cluster_nodes); do
    [[ " $* " == *" $node "* ]] || others+=("$node")
  done
  for node in "${others[@]}" "$@"; do
    [ -f "$RUN_DIR/$node.log" ] || continue
    printf '\n--- %s: last lines of %s\n' "$node" "$RUN_DIR/$node.log" >&2
    tail -n 12 "$RUN_DIR/$node.log" >&2
  done
}

# Until GET /ready on the API node is 200 with members.managers >= $1.
wait_cluster() {
  local want=$1 url body="" managers node nodes deadline=$((SECONDS + READY_TIMEOUT))
  url="http://$(probe_host):$PORT"
  nodes=(api-1)
  for ((k = 1; k <= want; k++)); do nodes+=("manager-$k"); done
  while [ $SECONDS -lt "$deadline" ]; do
    for node in "${nodes[@]}"; do
      if ! started_alive "$node"; then
        show_node_logs "$node"
        die "$node exited during start-up (log: $RUN_DIR/$node.log; ./deploy.sh down stops the rest)"
      fi
    done
    if body=$(curl -fsS --max-time 3 "$url/ready" 2>/dev/null); then
      managers=$(json_field members.managers <<<"$body")
      if [ "${managers:-0}" -ge "$want" ]; then
        say "ready: $url (1 API node, $managers manager(s); logs: ./deploy.sh logs)"
        return 0
      fi
    else
      body=$(curl -sS --max-time 3 "$url/ready" 2>&1 || true)
    fi
    sleep 1
  done
  show_node_logs
  die "the cluster did not become ready within ${READY_TIMEOUT} s (want $want manager(s)); GET $url/ready: ${body:-no answer} (./deploy.sh down stops it)"
}

print_usage_hint() {
  local key='dev-key-12345'
  if [ -n "${API_KEYS:-}" ] || [ "${NODE_ENV:-development}" = production ]; then key='<one of your API_KEYS>'; fi
  cat <<EOF
  try it:
    curl -X POST http://$(probe_host):$PORT/lang/python -H 'X-API-Key: $key' \\
      -H 'Content-Type: text/plain' -d 'print("drill my brain")'
EOF
}

start_cluster() {
  local n k node
  n=$(desired_managers)
  ensure_redis
  ensure_postgres
  save_cluster_env
  start_node api-1 api
  for k in $(seq 1 "$n"); do start_node "manager-$k" worker; done
  for node in $(running_managers); do
    [ "${node#manager-}" -le "$n" ] || stop_nodes "$node"
  done
  wait_cluster "$n"
  print_usage_hint
}

refuse_if_single() {
  local pid
  if pid=$(engine_pid); then die "the single-node engine runs (pid $pid, port $PORT); ./deploy.sh down first"; fi
}

refuse_if_cluster() {
  local node pid
  for node in $(cluster_nodes); do
    if pid=$(pid_of "$node"); then die "the cluster runs ($node, pid $pid); ./deploy.sh down first"; fi
  done
}

# --- the service image (Dockerfile), built without a registry ---------------------------------

# A local stand-in for node:20-bookworm-slim: debootstrap minbase plus this host's node binary and
# npm. Prints its tag.
ensure_node_base() {
  local version tag rootfs npm_dir cache
  version=$(node -p 'process.versions.node')
  [ "${version%%.*}" -ge 20 ] || die "this host's Node.js is $version; the image needs 20+ (or set BASE_IMAGE)"
  tag="braindrill-node:$version-bookworm"
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "building $tag runs debootstrap, which needs root (or set BASE_IMAGE)"
  apt_install debootstrap >&2
  cache=${BRAINDRILL_DEB_CACHE:-/var/cache/braindrill/debs}
  mkdir -p "$cache"
  rootfs=$(mktemp -d "${BRAINDRILL_BUILD_DIR:-/var/tmp}/braindrill-node-rootfs.XXXXXX")
  NODE_BASE_ROOTFS=$rootfs # this function runs in $(...): the trap cleans up when it ends, however
  trap 'rm -rf --one-file-system "$NODE_BASE_ROOTFS"' EXIT
  say "building $tag: debootstrap bookworm minbase + this host's Node.js $version (log: $RUN_DIR/node-base.log)" >&2
  if ! debootstrap --variant=minbase --include=ca-certificates,libstdc++6,passwd --cache-dir="$cache" \
    bookworm "$rootfs" "${BRAINDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$RUN_DIR/node-base.log" 2>&1; then
    die "debootstrap failed; see $RUN_DIR/node-base.log"
  fi
  # node, and npm as this host has it, where node:20-bookworm-slim has them (/usr/local).
  install -D -m 755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
  npm_dir=$(readlink -f "$(command -v npm 2>/dev/null || echo /nonexistent)" 2>/dev/null || true)
  npm_dir=${npm_dir%/bin/npm-cli.js}
  if [ -f "$npm_dir/package.json" ]; then
    mkdir -p "$rootfs/usr/local/lib/node_modules"
    cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner -C "$rootfs" -c . |
    docker import --message "braindrill: debootstrap bookworm minbase + Node.js $version" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["node"]' - "$tag" >/dev/null
  echo "$tag"
}

build_service_image() {
  local tag=${1:-braindrill:local} base=${BASE_IMAGE:-}
  ensure_docker
  ensure_node_deps
  if [ -z "$base" ]; then
    if docker image inspect node:20-bookworm-slim >/dev/null 2>&1; then base=node:20-bookworm-slim; else base=$(ensure_node_base); fi
  fi
  say "building $tag from $base (docker build --network none; node_modules/ from this checkout)"
  DOCKER_BUILDKIT=0 docker build --network none --build-arg "BASE_IMAGE=$base" -t "$tag" . >"$RUN_DIR/image-build.log" 2>&1 ||
    { tail -n 30 "$RUN_DIR/image-build.log" >&2; die "docker build failed; see $RUN_DIR/image-build.log"; }
  docker image prune -f --filter label=braindrill.stage=app >/dev/null || true
  say "built $tag; it runs sandboxes only with the runtime image on the same Docker host ($(bash images/build.sh --tag))"
}

case "${1:-up}" in
  up)
    refuse_if_single
    setup
    start_cluster
    ;;
  single)
    refuse_if_cluster
    setup
    start_single
    ;;
  down)
    stop_cluster_nodes
    stop_pidfile braindrill
    stop_pidfile redis
    if [ -f "$RUN_DIR/postgres.started" ]; then
      read -r pg_version pg_name <"$RUN_DIR/postgres.started"
      say "stopping PostgreSQL ($pg_version/$pg_name)"
      pg_ctlcluster "$pg_version" "$pg_name" stop || true
      rm -f "$RUN_DIR/postgres.started"
    fi
    stop_pidfile dockerd
    rm -f "$RUN_DIR/managers" "$RUN_DIR/cluster.env" # the next up starts with the defaults again
    ;;
  status)
    if pid=$(engine_pid); then say "engine running (pid $pid)"; fi
    for node in $(cluster_nodes); do
      if pid=$(pid_of "$node"); then say "$node: running (pid $pid, port $(node_port "$node"))"; else say "$node: not running"; fi
    done
    if ! engine_pid >/dev/null && [ -z "$(cluster_nodes)" ]; then say "engine not running"; fi
    if docker_up; then say "docker: up"; else say "docker: down"; fi
    if command -v redis-cli >/dev/null && redis_answers; then
      say "redis: up on 127.0.0.1:$REDIS_PORT$(pid_of redis >/dev/null && echo ' (started here)')"
    else
      say "redis: not answering on 127.0.0.1:$REDIS_PORT"
    fi
    if command -v pg_lsclusters >/dev/null; then
      pg_lsclusters --no-header 2>/dev/null | while read -r v n p s _; do say "postgresql $v/$n: $s (port $p)"; done
    fi
    if body=$(curl -sS --max-time 5 "http://$(probe_host):$PORT/ready" 2>/dev/null); then pretty_json <<<"$body"; fi
    ;;
  logs)
    if [ -n "${2:-}" ]; then
      [ -f "$RUN_DIR/$2.log" ] || die "no log $RUN_DIR/$2.log (nodes: $(cluster_nodes | tr '\n' ' '))"
      exec tail -n 100 -F "$RUN_DIR/$2.log"
    fi
    logs=()
    if ! engine_pid >/dev/null; then
      for node in $(cluster_nodes); do [ -f "$RUN_DIR/$node.log" ] && logs+=("$RUN_DIR/$node.log"); done
      [ ${#logs[@]} -gt 0 ] || mapfile -t logs < <(node_logs)
    fi
    [ ${#logs[@]} -gt 0 ] || logs=("$RUN_DIR/braindrill.log")
    exec tail -n 100 -F "${logs[@]}"
    ;;
  rebuild)
    setup
    if engine_pid >/dev/null; then
      stop_pidfile braindrill
      start_single
    else
      stop_cluster_nodes
      start_cluster
    fi
    ;;
  scale)
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: ./deploy.sh scale N (the number of manager nodes, e.g. 3)"
    refuse_if_single
    MANAGERS=$((10#$2))
    echo "$MANAGERS" >"$RUN_DIR/managers"
    if ! pid_of api-1 >/dev/null || ! load_cluster_env; then
      say "the cluster is not running: starting it with $MANAGERS manager(s)"
      setup
      start_cluster
    else
      [ -z "$USER_REDIS_URL" ] || REDIS_URL=$USER_REDIS_URL
      [ -z "$USER_DATABASE_URL" ] || DATABASE_URL=$USER_DATABASE_URL
      for k in $(seq 1 "$MANAGERS"); do start_node "manager-$k" worker; done
      extra=()
      for node in $(running_managers); do [ "${node#manager-}" -le "$MANAGERS" ] || extra+=("$node"); done
      [ ${#extra[@]} -eq 0 ] || stop_nodes "${extra[@]}"
      wait_cluster "$MANAGERS"
    fi
    ;;
  image)
    build_service_image "${2:-}"
    start_engine_again
    ;;
  test)
    apt_install redis-server postgresql
    setup
    shift || true
    # The tests check that the dockerd this script manages has what it was asked for (user namespaces).
    if pid_of dockerd >/dev/null && [ "$DOCKER_USERNS" = 1 ]; then export BRAINDRILL_EXPECT_USERNS=1; fi
    say "running the tests"
    set +e
    npx tap "$@" 2>&1 | tee "$RUN_DIR/test.log"
    status=${PIPESTATUS[0]}
    set -e
    start_engine_again
    # tap closes with '# { total: N, pass: P, fail: F }'; say it in the plain form CI reads too.
    summary=$(grep -E '^# \{ total' "$RUN_DIR/test.log" | tail -n 1)
    passed=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
    failed=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
    echo "${passed:-0} passed, ${failed:-0} failed"
    exit "$status"
    ;;
  *)
    die "unknown command '$1' (up, single, down, status, logs, rebuild, scale, image, test)"
    ;;
esac
