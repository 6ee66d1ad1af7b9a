#!/usr/bin/env bash
# Local single-node Elasticsearch 8.x for development and tests, built only from Maven Central
# artifacts (no Docker, no distribution tarball, no x-pack).
#
#   deploy/elasticsearch.sh start [--port P|auto] [--data DIR] [--clean] [--heap SIZE] ...
#   deploy/elasticsearch.sh stop [--data DIR] [--clean]
#   deploy/elasticsearch.sh status [--data DIR]
#   deploy/elasticsearch.sh url [--data DIR]
#   deploy/elasticsearch.sh logs [--data DIR]
#   deploy/elasticsearch.sh fetch
#
# `start` prints progress on stderr and the node URL (http://127.0.0.1:PORT) as the last line
# of stdout, once cluster health is yellow or green.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SRC_DIR="$SCRIPT_DIR/elasticsearch"
POM="$SRC_DIR/pom.xml"
LAUNCHER_SRC="$SRC_DIR/src/imagedex/elasticsearch/LocalNode.java"
EXTRAS_SRC="$SRC_DIR/src/imagedex/elasticsearch/extras/ExtrasPlugin.java"
LAUNCHER_CLASS="imagedex.elasticsearch.LocalNode"
NETTY_PLUGIN_CLASS="org.elasticsearch.transport.netty4.Netty4Plugin"
EXTRAS_PLUGIN_CLASS="imagedex.elasticsearch.extras.ExtrasPlugin"

VERSION="${ELASTICSEARCH_VERSION:-8.17.0}"
CACHE_ROOT="${IMAGEDEX_ELASTICSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imagedex/elasticsearch}"
DATA_DIR="${IMAGEDEX_ELASTICSEARCH_DATA:-$REPO_ROOT/.imagedex/elasticsearch}"
PORT=9200
TPORT=""
HEAP_MAX="${IMAGEDEX_ELASTICSEARCH_HEAP:-512m}"
HEAP_MIN="${IMAGEDEX_ELASTICSEARCH_HEAP_MIN:-256m}"
CLUSTER_NAME="imagedex-local"
CLEAN=0
TIMEOUT=120
STOP_TIMEOUT=30

log() { printf 'elasticsearch.sh: %s\n' "$*" >&2; }
die() { printf 'elasticsearch.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --nodes 1            accepted for drop-in use with opensearch.sh; only one node is supported.
  --port P|auto        HTTP port (default 9200); `auto` picks a free one.
  --transport-port T   transport port (default P+100).
  --data DIR           state dir: config, data, logs, pid file
                       (default $IMAGEDEX_ELASTICSEARCH_DATA or <repo>/.imagedex/elasticsearch).
  --heap SIZE          max heap (default 512m); --heap-min SIZE (default 256m).
  --cluster-name NAME  default imagedex-local.
  --clean              start: wipe the node data first; stop: remove the state dir contents.
  --timeout SEC        how long start waits for health yellow/green (default 120).
  --version V          Elasticsearch 8.x version (default $ELASTICSEARCH_VERSION or 8.17.0).
Environment: ELASTICSEARCH_VERSION, IMAGEDEX_ELASTICSEARCH_DATA, IMAGEDEX_ELASTICSEARCH_CACHE,
  IMAGEDEX_ELASTICSEARCH_JAVA_HOME, IMAGEDEX_ELASTICSEARCH_M2 (Maven local repo), ES_JAVA_OPTS.
EOF
}

# ---------------------------------------------------------------------------------------------
# argument parsing

CMD="${1:-}"
[ -n "$CMD" ] || { usage >&2; exit 2; }
shift
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) [ "${2:?}" = 1 ] || die "only a single node is supported (--nodes 1)"; shift 2 ;;
    --port) PORT="${2:?}"; shift 2 ;;
    --transport-port) TPORT="${2:?}"; shift 2 ;;
    --data) DATA_DIR="${2:?}"; shift 2 ;;
    --heap) HEAP_MAX="${2:?}"; shift 2 ;;
    --heap-min) HEAP_MIN="${2:?}"; shift 2 ;;
    --cluster-name) CLUSTER_NAME="${2:?}"; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    --timeout) TIMEOUT="${2:?}"; shift 2 ;;
    --version) VERSION="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[[ "$VERSION" == 8.* ]] || die "only Elasticsearch 8.x is supported (got $VERSION)"
[ "$CMD" = start ] && mkdir -p "$DATA_DIR"
if [ -d "$DATA_DIR" ]; then DATA_DIR="$(cd "$DATA_DIR" && pwd)"; fi
STATE_FILE="$DATA_DIR/node.env"
NODE_DIR="$DATA_DIR/node"
PID_FILE="$NODE_DIR/node.pid"
NODE_LOG="$NODE_DIR/node.log"

# ---------------------------------------------------------------------------------------------
# Java + Maven

java_major() { # $1: java binary -> major version number
  "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

pick_java() {
  local need=17 candidates=() c m j
  if [ -n "${IMAGEDEX_ELASTICSEARCH_JAVA_HOME:-}" ]; then
    candidates=("$IMAGEDEX_ELASTICSEARCH_JAVA_HOME/bin/java")
  else
    command -v java >/dev/null 2>&1 && candidates+=("$(readlink -f "$(command -v java)")")
    for j in /usr/lib/jvm/*/bin/java; do [ -x "$j" ] && candidates+=("$j"); done
  fi
  for c in "${candidates[@]}"; do
    if [ ! -x "$c" ] || [ ! -x "$(dirname "$c")/javac" ] || [ ! -x "$(dirname "$c")/jar" ]; then continue; fi
    m="$(java_major "$c")"
    if [ -n "$m" ] && [ "$m" -ge "$need" ]; then
      JAVA="$c"; JAVAC="$(dirname "$c")/javac"; JAR="$(dirname "$c")/jar"; return 0
    fi
  done
  die "no JDK >= $need with javac and jar found (set IMAGEDEX_ELASTICSEARCH_JAVA_HOME)"
}

run_mvn() {
  command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is needed to fetch the Elasticsearch artifacts"
  local extra=() out
  [ -n "${IMAGEDEX_ELASTICSEARCH_M2:-}" ] && extra+=("-Dmaven.repo.local=$IMAGEDEX_ELASTICSEARCH_M2")
  if ! out="$(JAVA_HOME="$(dirname "$(dirname "$JAVA")")" mvn -B -q -f "$POM" "${extra[@]}" \
      "-Delasticsearch.version=$VERSION" "$@" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 30 >&2
    die "maven failed: mvn $*"
  fi
}

runtime_key() {
  { cat "$POM" "$LAUNCHER_SRC" "$EXTRAS_SRC"; echo "$VERSION layout-1"; } | sha256sum | cut -c1-12
}

modulepath_ok() { # all jars listed in $1 still exist (the Maven repo may have been cleaned)
  local f jars
  [ -s "$1" ] || return 1
  IFS=":" read -r -a jars < "$1" || true  # no trailing newline
  for f in "${jars[@]}"; do [ -f "$f" ] || return 1; done
}

write_descriptor() { # dir name classname description
  cat > "$1/plugin-descriptor.properties" <<EOF
# written by deploy/elasticsearch.sh
description=$4
version=$VERSION
name=$2
classname=$3
java.version=17
elasticsearch.version=$VERSION
extended.plugins=
has.native.controller=false
EOF
}

# Resolve the server + module jars (Maven), lay out <home>/modules like a distribution, compile
# the launcher and the extras plugin. Everything lands in $RUNTIME (a cache dir keyed on the
# version and the content of the pom and the Java sources).
ensure_runtime() {
  pick_java
  RUNTIME="$CACHE_ROOT/$VERSION-$(runtime_key)"
  if [ -f "$RUNTIME/ready" ] && modulepath_ok "$RUNTIME/modulepath.txt"; then return 0; fi
  mkdir -p "$CACHE_ROOT"
  (
    command -v flock >/dev/null 2>&1 && flock 9
    tmp=""
    trap 'rm -rf "${tmp:-/nonexistent}"' EXIT  # leftovers of a failed fetch
    if [ -f "$RUNTIME/ready" ] && modulepath_ok "$RUNTIME/modulepath.txt"; then exit 0; fi
    log "fetching Elasticsearch $VERSION artifacts from Maven Central (once) ..."
    tmp="$RUNTIME.tmp.$$"
    rm -rf "$tmp" "$RUNTIME"
    mkdir -p "$tmp/classes" "$tmp/extras-classes" "$tmp/home/plugins" \
      "$tmp/home/modules/transport-netty4" "$tmp/home/modules/imagedex-extras"
    run_mvn -P server dependency:build-classpath "-Dmdep.outputFile=$tmp/modulepath.txt"
    run_mvn -P netty4 dependency:build-classpath "-Dmdep.outputFile=$tmp/netty4.txt"
    # the module gets its own jars, minus those the server already has (jar hell otherwise)
    local jar
    IFS=":" read -r -a _netty < "$tmp/netty4.txt" || true
    for jar in "${_netty[@]}"; do
      if ! tr ':' '\n' < "$tmp/modulepath.txt" | grep -q "/$(basename "$jar")\$"; then
        cp "$jar" "$tmp/home/modules/transport-netty4/"
      fi
    done
    write_descriptor "$tmp/home/modules/transport-netty4" transport-netty4 "$NETTY_PLUGIN_CLASS" \
      "Netty 4 based transport and HTTP layer (from org.elasticsearch.plugin:transport-netty4)"
    "$JAVAC" --release 17 -nowarn -cp "$(cat "$tmp/modulepath.txt")" -d "$tmp/classes" \
      "$LAUNCHER_SRC" >&2 || die "compiling $LAUNCHER_SRC failed"
    "$JAVAC" --release 17 -nowarn -cp "$(cat "$tmp/modulepath.txt")" -d "$tmp/extras-classes" \
      "$EXTRAS_SRC" >&2 || die "compiling $EXTRAS_SRC failed"
    "$JAR" cf "$tmp/home/modules/imagedex-extras/imagedex-extras.jar" -C "$tmp/extras-classes" . \
      || die "jar failed"
    rm -rf "$tmp/extras-classes"
    write_descriptor "$tmp/home/modules/imagedex-extras" imagedex-extras "$EXTRAS_PLUGIN_CLASS" \
      "imagedex: asciifolding token filter and GET / (deploy/elasticsearch/src)"
    touch "$tmp/ready"
    mv "$tmp" "$RUNTIME"
  ) 9>"$CACHE_ROOT/.lock"
}

# ---------------------------------------------------------------------------------------------
# state helpers

is_our_node() { # pid is alive and is the launcher for our config dir (guards against pid reuse)
  local pid="$1" args
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # read it whole first: `tr | grep -q` can fail under pipefail (SIGPIPE once grep has matched)
  args="$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  grep -qxF -- "$NODE_DIR/config" <<< "$args" && grep -qxF -- "$LAUNCHER_CLASS" <<< "$args"
}

node_pid() { if [ -f "$PID_FILE" ]; then cat "$PID_FILE"; fi; }
node_running() { is_our_node "$(node_pid)"; }

load_state() {
  [ -f "$STATE_FILE" ] || die "no node state in $DATA_DIR (was it started with this --data?)"
  # shellcheck disable=SC1090
  . "$STATE_FILE"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }

tail_log() {
  [ -f "$NODE_LOG" ] || return 0
  printf '\n----- last lines of %s -----\n' "$NODE_LOG" >&2
  tail -n 40 "$NODE_LOG" >&2
}

# ---------------------------------------------------------------------------------------------
# config generation

write_node_config() {
  local conf="$NODE_DIR/config"
  mkdir -p "$conf" "$NODE_DIR/data" "$NODE_DIR/logs" "$NODE_DIR/tmp" "$DATA_DIR/snapshots"
  cat > "$conf/elasticsearch.yml" <<EOF
# generated by deploy/elasticsearch.sh; rewritten at every start
cluster.name: $CLUSTER_NAME
node.name: node-1
path.data: $NODE_DIR/data
path.logs: $NODE_DIR/logs
path.repo: ["$DATA_DIR/snapshots"]
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TPORT
discovery.type: single-node
# the disk may be nearly full: never block allocation / writes on disk usage
cluster.routing.allocation.disk.threshold_enabled: false
# as on OpenSearch: wildcard / _all index deletion is allowed (a local dev node)
action.destructive_requires_name: false
EOF
  cat > "$conf/log4j2.properties" <<'EOF'
# generated by deploy/elasticsearch.sh: everything to stdout, which goes to node.log
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
EOF
  cat > "$conf/jvm.options" <<EOF
# generated by deploy/elasticsearch.sh (heap: --heap/--heap-min; extra: ES_JAVA_OPTS)
-Xms$HEAP_MIN
-Xmx$HEAP_MAX
-XX:+UseG1GC
-XX:+ExitOnOutOfMemoryError
-Djava.io.tmpdir=$NODE_DIR/tmp
-Djava.awt.headless=true
-Dfile.encoding=UTF-8
-Djna.nosys=true
-Djna.tmpdir=$NODE_DIR/tmp
-Dlog4j2.formatMsgNoLookups=true
-Dio.netty.noUnsafe=true
-Dio.netty.noKeySetOptimization=true
-Dio.netty.recycler.maxCapacityPerThread=0
EOF
}

launch_node() {
  local conf="$NODE_DIR/config" mp opts=()
  mp="$(cat "$RUNTIME/modulepath.txt")"
  mapfile -t opts < <(grep -v '^\s*#' "$conf/jvm.options" | grep -v '^\s*$')
  # Java 22+: the server and Lucene call native code through java.lang.foreign
  if [ "$(java_major "$JAVA")" -ge 22 ]; then
    opts+=("--enable-native-access=org.elasticsearch.nativeaccess,org.apache.lucene.core")
  fi
  # shellcheck disable=SC2206
  [ -n "${ES_JAVA_OPTS:-}" ] && opts+=($ES_JAVA_OPTS)
  : > "$NODE_LOG"
  # The server runs on the module path, as in a distribution (its plugin loader needs the
  # named org.elasticsearch.server module); the launcher is on the class path.
  # setsid: the node survives the caller's Ctrl-C / process group; all fds go to files.
  # The config dir argument is what is_our_node matches to recognise our process by pid.
  setsid "$JAVA" "${opts[@]}" --module-path "$mp" --add-modules ALL-MODULE-PATH \
    -cp "$RUNTIME/classes" "$LAUNCHER_CLASS" "$RUNTIME/home" "$conf" \
    </dev/null >>"$NODE_LOG" 2>&1 &
  echo $! > "$PID_FILE"
}

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) code
  while [ $SECONDS -lt $deadline ]; do
    if ! node_running; then
      log "the node (pid $(node_pid)) exited during startup"
      tail_log; return 1
    fi
    code="$(http_code "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=1s")"
    [ "$code" = 200 ] && return 0
    sleep 0.5
  done
  log "timed out after ${TIMEOUT}s waiting for cluster health yellow/green"
  tail_log
  return 1
}

write_state() {
  cat > "$STATE_FILE" <<EOF
# written by deploy/elasticsearch.sh start
PORT=$PORT
TPORT=$TPORT
VERSION=$VERSION
CLUSTER_NAME=$CLUSTER_NAME
HEAP_MAX=$HEAP_MAX
HEAP_MIN=$HEAP_MIN
EOF
}

stop_node() { # TERM, wait, KILL
  local pid deadline
  if node_running; then
    pid="$(node_pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "node (pid $pid) did not stop in ${STOP_TIMEOUT}s; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped node (pid $pid)"
  else
    log "node is not running"
  fi
  rm -f "$PID_FILE"
}

# ---------------------------------------------------------------------------------------------
# commands

pick_auto_port() {
  local tries=0 p
  while [ $tries -lt 50 ]; do
    p=$((20000 + RANDOM % 20000))
    if ! port_busy "$p" && ! port_busy $((p + 100)); then PORT=$p; return 0; fi
    tries=$((tries + 1))
  done
  die "could not find free ports"
}

cmd_start() {
  command -v curl >/dev/null 2>&1 || die "curl is needed"
  local t0=$SECONDS
  if [ -f "$STATE_FILE" ] && node_running; then
    load_state
    log "already running (data $DATA_DIR)"
    echo "http://127.0.0.1:$PORT"; return 0
  fi
  if [ "$CLEAN" = 1 ]; then rm -rf "$NODE_DIR" "$DATA_DIR/snapshots" "$STATE_FILE"; fi
  if [ "$PORT" = auto ]; then pick_auto_port; fi
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number or auto"
  [ -n "$TPORT" ] || TPORT=$((PORT + 100))
  port_busy "$PORT" && die "port $PORT on 127.0.0.1 is in use (another node? try --port auto)"
  port_busy "$TPORT" && die "transport port $TPORT on 127.0.0.1 is in use"
  ensure_runtime
  write_state
  write_node_config
  launch_node
  log "starting Elasticsearch $VERSION (java $(java_major "$JAVA"), data $DATA_DIR) ..."
  if ! wait_ready; then
    stop_node || true
    die "Elasticsearch did not become ready; log: $NODE_LOG"
  fi
  log "ready in $((SECONDS - t0))s; log in $NODE_LOG"
  echo "http://127.0.0.1:$PORT"
}

cmd_stop() {
  if [ ! -f "$STATE_FILE" ]; then log "nothing to stop in $DATA_DIR"; return 0; fi
  load_state
  stop_node
  if [ "$CLEAN" = 1 ]; then
    rm -rf "$NODE_DIR" "$DATA_DIR/snapshots" "$STATE_FILE"; log "removed $DATA_DIR contents"
  fi
}

cmd_status() {
  if [ ! -f "$STATE_FILE" ]; then echo "not started (no state in $DATA_DIR)"; return 3; fi
  load_state
  if node_running; then
    echo "node-1 running pid $(node_pid) http://127.0.0.1:$PORT"
    local health
    health="$(curl -s -m 5 "http://127.0.0.1:$PORT/_cluster/health" || true)"
    echo "health: ${health:-no answer}"
    return 0
  fi
  echo "node-1 stopped"
  return 3
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) load_state; echo "http://127.0.0.1:$PORT" ;;
  logs) tail -n 100 "$NODE_LOG" ;;
  fetch) ensure_runtime; log "runtime ready in $RUNTIME" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
