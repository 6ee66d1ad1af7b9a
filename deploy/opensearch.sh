#!/usr/bin/env bash
# Local OpenSearch node(s) for development and tests, built only from Maven Central artifacts
# (no Docker, no distribution tarball). See docs/opensearch-node.md.
#
#   deploy/opensearch.sh start [--nodes N] [--port P|auto] [--data DIR] [--no-knn] [--clean] ...
#   deploy/opensearch.sh stop [--data DIR] [--clean]
#   deploy/opensearch.sh stop-node I [--data DIR]
#   deploy/opensearch.sh start-node I [--data DIR]
#   deploy/opensearch.sh status [--data DIR]
#   deploy/opensearch.sh url [--data DIR]
#   deploy/opensearch.sh logs [I] [--data DIR]
#   deploy/opensearch.sh fetch [--no-knn]
#
# `start` prints progress on stderr and the cluster URL (http://127.0.0.1:PORT) as the last line
# of stdout, once cluster health is yellow or green.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SRC_DIR="$SCRIPT_DIR/opensearch"
POM="$SRC_DIR/pom.xml"
LAUNCHER_SRC="$SRC_DIR/src/imagedex/opensearch/LocalNode.java"
LAUNCHER_CLASS="imagedex.opensearch.LocalNode"

VERSION="${OPENSEARCH_VERSION:-2.19.1}"
CACHE_ROOT="${IMAGEDEX_OPENSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imagedex/opensearch}"
DATA_DIR="${IMAGEDEX_OPENSEARCH_DATA:-$REPO_ROOT/.imagedex/opensearch}"
NODES=1
PORT=9200
TPORT=""
HEAP_MAX="${IMAGEDEX_OPENSEARCH_HEAP:-512m}"
HEAP_MIN="${IMAGEDEX_OPENSEARCH_HEAP_MIN:-256m}"
CLUSTER_NAME="imagedex-local"
KNN=""   # default: on for 2.x, off for 3.x
CLEAN=0
TIMEOUT=120
STOP_TIMEOUT=30

# Modules that a stock distribution ships in modules/ and that need no external resources
# (ingest-geoip is left out: it downloads a GeoIP database). name=plugin class; the jars come
# from deploy/opensearch/pom.xml. "A|B": 2.x class name | 3.x class name.
MODULE_PLUGINS=(
  'transport-netty4=org.opensearch.transport.Netty4Plugin|org.opensearch.transport.Netty4ModulePlugin'
  'analysis-common=org.opensearch.analysis.common.CommonAnalysisPlugin|org.opensearch.analysis.common.CommonAnalysisModulePlugin'
  'mapper-extras=org.opensearch.index.mapper.MapperExtrasPlugin|org.opensearch.index.mapper.MapperExtrasModulePlugin'
  'parent-join=org.opensearch.join.ParentJoinPlugin|org.opensearch.join.ParentJoinModulePlugin'
  'reindex=org.opensearch.index.reindex.ReindexPlugin|org.opensearch.index.reindex.ReindexModulePlugin'
  'lang-painless=org.opensearch.painless.PainlessPlugin|org.opensearch.painless.PainlessModulePlugin'
  'lang-expression=org.opensearch.script.expression.ExpressionPlugin|org.opensearch.script.expression.ExpressionModulePlugin'
  'lang-mustache=org.opensearch.script.mustache.MustachePlugin|org.opensearch.script.mustache.MustacheModulePlugin'
  geo=org.opensearch.geo.GeoModulePlugin
  'aggs-matrix-stats=org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin|org.opensearch.search.aggregations.matrix.MatrixAggregationModulePlugin'
  'ingest-common=org.opensearch.ingest.common.IngestCommonPlugin|org.opensearch.ingest.common.IngestCommonModulePlugin'
  'percolator=org.opensearch.percolator.PercolatorPlugin|org.opensearch.percolator.PercolatorModulePlugin'
  'rank-eval=org.opensearch.index.rankeval.RankEvalPlugin|org.opensearch.index.rankeval.RankEvalModulePlugin'
)

log() { printf 'opensearch.sh: %s\n' "$*" >&2; }
die() { printf 'opensearch.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --nodes N            number of nodes (start; default 1). Node i listens on HTTP port P+i-1
                       and transport port T+i-1.
  --port P|auto        HTTP port of node 1 (default 9200); `auto` picks free ports.
  --transport-port T   transport port of node 1 (default P+100).
  --data DIR           state dir: per-node config, data, logs, pid files
                       (default $IMAGEDEX_OPENSEARCH_DATA or <repo>/.imagedex/opensearch).
  --heap SIZE          max heap per node (default 512m); --heap-min SIZE (default 256m).
  --cluster-name NAME  default imagedex-local.
  --knn / --no-knn     load the k-NN plugin (org.opensearch.plugin:opensearch-knn zip) or not;
                       default: on for 2.x, off for 3.x. Only its Lucene engine works (no
                       native faiss/nmslib libraries): map knn_vector with "engine": "lucene".
  --clean              start: wipe the node data first; stop: remove the state dir contents.
  --timeout SEC        how long start waits for health yellow/green (default 120).
  --version V          OpenSearch version (default $OPENSEARCH_VERSION or 2.19.1).
Environment: OPENSEARCH_VERSION, IMAGEDEX_OPENSEARCH_DATA, IMAGEDEX_OPENSEARCH_CACHE,
  IMAGEDEX_OPENSEARCH_JAVA_HOME, IMAGEDEX_OPENSEARCH_M2 (Maven local repo), OPENSEARCH_JAVA_OPTS.
EOF
}

# ---------------------------------------------------------------------------------------------
# argument parsing

CMD="${1:-}"
[ -n "$CMD" ] || { usage >&2; exit 2; }
shift
NODE_ARG=""
case "$CMD" in
  stop-node|start-node)
    NODE_ARG="${1:-}"
    if [ -n "$NODE_ARG" ]; then shift; else die "$CMD needs a node number"; fi
    ;;
  logs)
    if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then NODE_ARG="$1"; shift; fi
    ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="${2:?}"; shift 2 ;;
    --port) PORT="${2:?}"; shift 2 ;;
    --transport-port) TPORT="${2:?}"; shift 2 ;;
    --data) DATA_DIR="${2:?}"; shift 2 ;;
    --heap) HEAP_MAX="${2:?}"; shift 2 ;;
    --heap-min) HEAP_MIN="${2:?}"; shift 2 ;;
    --cluster-name) CLUSTER_NAME="${2:?}"; shift 2 ;;
    --knn) KNN=1; shift ;;
    --no-knn) KNN=0; shift ;;
    --clean) CLEAN=1; shift ;;
    --timeout) TIMEOUT="${2:?}"; shift 2 ;;
    --version) VERSION="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
if [[ "$VERSION" == 2.* ]]; then
  KNN="${KNN:-1}"
elif [ "$KNN" = 1 ]; then
  die "--knn works with OpenSearch 2.x only (the 3.x k-NN plugin also needs the transport-grpc module)"
else
  KNN=0
fi
if [ -n "$NODE_ARG" ] && ! [[ "$NODE_ARG" =~ ^[1-9][0-9]*$ ]]; then die "bad node number: $NODE_ARG"; fi
[ "$CMD" = start ] && mkdir -p "$DATA_DIR"
if [ -d "$DATA_DIR" ]; then DATA_DIR="$(cd "$DATA_DIR" && pwd)"; fi
STATE_FILE="$DATA_DIR/cluster.env"

# ---------------------------------------------------------------------------------------------
# Java + Maven

java_major() { # $1: java binary -> major version number
  "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

pick_java() {
  local need=11
  case "$VERSION" in 2.*) need=11 ;; *) need=21 ;; esac
  local candidates=()
  if [ -n "${IMAGEDEX_OPENSEARCH_JAVA_HOME:-}" ]; then
    candidates=("$IMAGEDEX_OPENSEARCH_JAVA_HOME/bin/java")
  else
    command -v java >/dev/null 2>&1 && candidates+=("$(readlink -f "$(command -v java)")")
    local j
    for j in /usr/lib/jvm/*/bin/java; do [ -x "$j" ] && candidates+=("$j"); done
  fi
  local c m
  for c in "${candidates[@]}"; do
    if [ ! -x "$c" ] || [ ! -x "$(dirname "$c")/javac" ]; then continue; fi
    m="$(java_major "$c")"
    if [ -n "$m" ] && [ "$m" -ge "$need" ]; then JAVA="$c"; JAVAC="$(dirname "$c")/javac"; RELEASE="$need"; return 0; fi
  done
  die "no JDK >= $need with javac found for OpenSearch $VERSION (set IMAGEDEX_OPENSEARCH_JAVA_HOME)"
}

run_mvn() {
  command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is needed to fetch the OpenSearch artifacts"
  local extra=()
  [ -n "${IMAGEDEX_OPENSEARCH_M2:-}" ] && extra+=("-Dmaven.repo.local=$IMAGEDEX_OPENSEARCH_M2")
  local out
  if ! out="$(JAVA_HOME="$(dirname "$(dirname "$JAVA")")" mvn -B -q -f "$POM" "${extra[@]}" \
      "-Dopensearch.version=$VERSION" "$@" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 30 >&2
    die "maven failed: mvn $*"
  fi
}

runtime_key() {
  { cat "$POM" "$LAUNCHER_SRC"; echo "$VERSION $RELEASE layout-1"; } | sha256sum | cut -c1-12
}

classpath_ok() { # all jars listed in $1 still exist (the Maven repo may have been cleaned)
  local f
  [ -s "$1" ] || return 1
  IFS=':' read -r -a _jars < "$1"
  for f in "${_jars[@]}"; do [ -f "$f" ] || return 1; done
}

# Resolve the server + module jars (Maven), compile the launcher, unpack k-NN if asked.
# Everything lands in $RUNTIME (a cache dir keyed on version + launcher/pom content).
ensure_runtime() {
  pick_java
  RUNTIME="$CACHE_ROOT/$VERSION-$(runtime_key)"
  if [ -f "$RUNTIME/ready" ] && classpath_ok "$RUNTIME/classpath.txt" \
      && { [ "$KNN" = 0 ] || [ -f "$RUNTIME/knn-home/ready" ]; }; then
    return 0
  fi
  mkdir -p "$CACHE_ROOT"
  (
    command -v flock >/dev/null 2>&1 && flock 9
    tmp="" ktmp=""
    trap 'rm -rf "${tmp:-/nonexistent}" "${ktmp:-/nonexistent}"' EXIT  # leftovers of a failed fetch
    if ! { [ -f "$RUNTIME/ready" ] && classpath_ok "$RUNTIME/classpath.txt"; }; then
      log "fetching OpenSearch $VERSION artifacts from Maven Central (once) ..."
      tmp="$RUNTIME.tmp.$$"
      rm -rf "$tmp" "$RUNTIME"; mkdir -p "$tmp/classes" "$tmp/home/plugins"
      run_mvn dependency:build-classpath "-Dmdep.outputFile=$tmp/classpath.txt"
      # log4j-core is optional in the server pom: align it with the log4j-api the server uses
      local api core
      api="$(tr ':' '\n' < "$tmp/classpath.txt" | sed -n 's#.*/log4j-api-\([^/]*\)\.jar$#\1#p' | head -n 1)"
      core="$(tr ':' '\n' < "$tmp/classpath.txt" | sed -n 's#.*/log4j-core-\([^/]*\)\.jar$#\1#p' | head -n 1)"
      if [ -n "$api" ] && [ "$api" != "$core" ]; then
        run_mvn dependency:build-classpath "-Dmdep.outputFile=$tmp/classpath.txt" "-Dlog4j.version=$api"
      fi
      "$JAVAC" --release "$RELEASE" -nowarn -cp "$(cat "$tmp/classpath.txt")" -d "$tmp/classes" \
        "$LAUNCHER_SRC" >&2 || die "compiling $LAUNCHER_SRC failed"
      touch "$tmp/ready"
      mv "$tmp" "$RUNTIME"
    fi
    if [ "$KNN" = 1 ] && [ ! -f "$RUNTIME/knn-home/ready" ]; then
      log "fetching k-NN plugin $VERSION.0 from Maven Central (once) ..."
      ktmp="$RUNTIME/knn-home.tmp.$$"
      rm -rf "$ktmp" "$RUNTIME/knn-home"; mkdir -p "$ktmp/plugins/opensearch-knn"
      run_mvn dependency:copy "-Dartifact=org.opensearch.plugin:opensearch-knn:$VERSION.0:zip" \
        "-DoutputDirectory=$ktmp"
      (cd "$ktmp/plugins/opensearch-knn" && unzip -q "$ktmp/opensearch-knn-$VERSION.0.zip") \
        || die "unzip of the k-NN plugin failed (is unzip installed?)"
      rm -f "$ktmp/opensearch-knn-$VERSION.0.zip"
      # A jar that the server classpath already has (3.x: httpcore5 via the reindex module)
      # would be "jar hell" here, where all modules share one classpath: use the server's.
      local jar
      for jar in "$ktmp"/plugins/opensearch-knn/*.jar; do
        if tr ':' '\n' < "$RUNTIME/classpath.txt" | grep -q "/$(basename "$jar")\$"; then rm -f "$jar"; fi
      done
      # The modules here are classpath plugins, which cannot be named as an extended plugin:
      # load k-NN as a plugin of its own (its painless whitelist extension is not loaded).
      sed -i 's/^extended\.plugins=.*/extended.plugins=/' \
        "$ktmp/plugins/opensearch-knn/plugin-descriptor.properties"
      touch "$ktmp/ready"
      mv "$ktmp" "$RUNTIME/knn-home"
    fi
  ) 9>"$CACHE_ROOT/.lock"
}

# ---------------------------------------------------------------------------------------------
# state helpers

node_dir() { echo "$DATA_DIR/node-$1"; }
pid_of() { local f; f="$(node_dir "$1")/node.pid"; if [ -f "$f" ]; then cat "$f"; fi; }

is_our_node() { # pid is alive and is the launcher for node dir $2 (guards against pid reuse)
  local pid="$1" dir="$2" args
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # read it whole first: `tr | grep -q` can fail under pipefail (SIGPIPE once grep has matched)
  args="$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  grep -qxF -- "$dir/config" <<< "$args" && grep -qxF -- "$LAUNCHER_CLASS" <<< "$args"
}

node_running() { is_our_node "$(pid_of "$1")" "$(node_dir "$1")"; }

load_state() {
  [ -f "$STATE_FILE" ] || die "no cluster state in $DATA_DIR (was it started with this --data?)"
  # shellcheck disable=SC1090
  . "$STATE_FILE"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }

tail_logs() {
  local i f
  for i in $(seq 1 "$NODES"); do
    f="$(node_dir "$i")/node.log"
    [ -f "$f" ] || continue
    printf '\n----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

# ---------------------------------------------------------------------------------------------
# config generation

yaml_list() { local out="" x; for x in "$@"; do out+="${out:+, }\"$x\""; done; echo "[$out]"; }

write_node_config() { # $1: node index
  local i="$1" dir conf
  dir="$(node_dir "$i")"; conf="$dir/config"
  mkdir -p "$conf" "$dir/data" "$dir/logs" "$dir/tmp"
  local hosts=() managers=() k
  for k in $(seq 1 "$NODES"); do hosts+=("127.0.0.1:$((TPORT + k - 1))"); done
  # 2 nodes: only node-1 is cluster-manager eligible, so stopping node-2 keeps a quorum.
  # 3+ nodes: all are eligible (any one may be stopped).
  if [ "$NODES" -eq 2 ]; then managers=(node-1); else for k in $(seq 1 "$NODES"); do managers+=("node-$k"); done; fi
  {
    echo "# generated by deploy/opensearch.sh; rewritten at every start"
    echo "cluster.name: $CLUSTER_NAME"
    echo "node.name: node-$i"
    echo "path.data: $dir/data"
    echo "path.logs: $dir/logs"
    echo "path.repo: [\"$DATA_DIR/snapshots\"]"
    echo "network.host: 127.0.0.1"
    echo "http.port: $((PORT + i - 1))"
    echo "transport.port: $((TPORT + i - 1))"
    if [ "$NODES" -eq 1 ]; then
      echo "discovery.type: single-node"
    else
      echo "discovery.seed_hosts: $(yaml_list "${hosts[@]}")"
      echo "cluster.initial_cluster_manager_nodes: $(yaml_list "${managers[@]}")"
      if [ "$NODES" -eq 2 ] && [ "$i" -ne 1 ]; then
        echo "node.roles: [\"data\", \"ingest\"]"
      fi
    fi
    echo "# the disk may be nearly full: never block allocation / writes on disk usage"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
  } > "$conf/opensearch.yml"
  cat > "$conf/log4j2.properties" <<'EOF'
# generated by deploy/opensearch.sh: everything to stdout, which goes to node.log
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
EOF
  {
    echo "# generated by deploy/opensearch.sh (heap: --heap/--heap-min; extra: OPENSEARCH_JAVA_OPTS)"
    echo "-Xms$HEAP_MIN"
    echo "-Xmx$HEAP_MAX"
    echo "-XX:+UseG1GC"
    echo "-XX:+ExitOnOutOfMemoryError"
    echo "-Djava.io.tmpdir=$dir/tmp"
    echo "-Djava.awt.headless=true"
    echo "-Dfile.encoding=UTF-8"
    echo "-Djna.nosys=true"
    echo "-Dlog4j.shutdownHookEnabled=false"
    echo "-Dlog4j2.disable.jmx=true"
    echo "-Dio.netty.noUnsafe=true"
    echo "-Dio.netty.noKeySetOptimization=true"
    echo "-Dio.netty.recycler.maxCapacityPerThread=0"
  } > "$conf/jvm.options"
}

launch_node() { # $1: node index
  local i="$1" dir conf home cp plugins opts=()
  dir="$(node_dir "$i")"; conf="$dir/config"
  home="$RUNTIME/home"
  [ "$KNN" = 1 ] && home="$RUNTIME/knn-home"
  cp="$RUNTIME/classes:$(cat "$RUNTIME/classpath.txt")"
  plugins="$(IFS=,; echo "${MODULE_PLUGINS[*]}")"
  mapfile -t opts < <(grep -v '^\s*#' "$conf/jvm.options" | grep -v '^\s*$')
  # shellcheck disable=SC2206
  [ -n "${OPENSEARCH_JAVA_OPTS:-}" ] && opts+=($OPENSEARCH_JAVA_OPTS)
  : > "$dir/node.log"
  # setsid: the node survives the caller's Ctrl-C / process group; all fds go to files.
  # The config dir argument is what is_our_node matches to recognise our process by pid.
  setsid "$JAVA" "${opts[@]}" "-Dimagedex.opensearch.plugins=$plugins" -cp "$cp" \
    "$LAUNCHER_CLASS" "$home" "$conf" </dev/null >>"$dir/node.log" 2>&1 &
  echo $! > "$dir/node.pid"
}

wait_ready() { # $1: expected node count
  local want="$1" deadline=$((SECONDS + TIMEOUT)) i code up
  while [ $SECONDS -lt $deadline ]; do
    up=0
    for i in $(seq 1 "$NODES"); do
      if [ -f "$(node_dir "$i")/node.pid" ]; then
        if node_running "$i"; then up=$((up + 1)); else
          log "node-$i (pid $(pid_of "$i")) exited during startup"
          tail_logs; return 1
        fi
      fi
    done
    for i in $(seq 1 "$NODES"); do
      node_running "$i" || continue
      code="$(http_code "http://127.0.0.1:$((PORT + i - 1))/_cluster/health?wait_for_status=yellow&wait_for_nodes=$want&timeout=1s")"
      [ "$code" = 200 ] && return 0
      break
    done
    sleep 0.5
  done
  log "timed out after ${TIMEOUT}s waiting for cluster health yellow/green with $want node(s)"
  tail_logs
  return 1
}

write_state() {
  cat > "$STATE_FILE" <<EOF
# written by deploy/opensearch.sh start
NODES=$NODES
PORT=$PORT
TPORT=$TPORT
VERSION=$VERSION
KNN=$KNN
CLUSTER_NAME=$CLUSTER_NAME
HEAP_MAX=$HEAP_MAX
HEAP_MIN=$HEAP_MIN
EOF
}

stop_pids() { # node indexes; TERM, wait, KILL
  local i pid pids=() idx=() deadline
  for i in "$@"; do
    if node_running "$i"; then
      pid="$(pid_of "$i")"; pids+=("$pid"); idx+=("$i")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for k in "${!pids[@]}"; do
    while kill -0 "${pids[$k]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "${pids[$k]}" 2>/dev/null; then
      log "node-${idx[$k]} (pid ${pids[$k]}) did not stop in ${STOP_TIMEOUT}s; killing"
      kill -KILL "${pids[$k]}" 2>/dev/null || true
    fi
    log "stopped node-${idx[$k]} (pid ${pids[$k]})"
  done
  for i in "$@"; do rm -f "$(node_dir "$i")/node.pid"; done
}

# ---------------------------------------------------------------------------------------------
# commands

pick_auto_port() {
  local tries=0 p k ok
  while [ $tries -lt 50 ]; do
    p=$((20000 + RANDOM % 20000)); ok=1
    for k in $(seq 0 $((NODES - 1))); do
      if port_busy $((p + k)) || port_busy $((p + 100 + k)); then ok=0; break; fi
    done
    [ $ok = 1 ] && { PORT=$p; return 0; }
    tries=$((tries + 1))
  done
  die "could not find free ports"
}

cmd_start() {
  command -v curl >/dev/null 2>&1 || die "curl is needed"
  local t0=$SECONDS i
  if [ -f "$STATE_FILE" ]; then
    local want_nodes="$NODES" want_knn="$KNN" running=0
    # shellcheck disable=SC1090
    ( . "$STATE_FILE"; for i in $(seq 1 "$NODES"); do node_running "$i" && exit 0; done; exit 1 ) && running=1
    if [ "$running" = 1 ]; then
      load_state
      local all=1
      for i in $(seq 1 "$NODES"); do node_running "$i" || all=0; done
      if [ "$all" = 1 ] && [ "$NODES" = "$want_nodes" ] && [ "$KNN" = "$want_knn" ]; then
        log "already running ($NODES node(s), data $DATA_DIR)"
        echo "http://127.0.0.1:$PORT"; return 0
      fi
      die "nodes from $DATA_DIR are running with other settings or partly stopped; run '$0 stop --data $DATA_DIR' first (or use start-node)"
    fi
    local old_nodes
    # shellcheck disable=SC1090
    old_nodes="$( . "$STATE_FILE"; echo "$NODES")"
    if [ "$CLEAN" = 0 ] && [ "$old_nodes" != "$NODES" ] && [ -d "$DATA_DIR/node-1/data/nodes" ]; then
      die "$DATA_DIR holds data of a $old_nodes-node cluster; start with --clean (wipes it) or another --data"
    fi
  fi
  if [ "$CLEAN" = 1 ]; then
    rm -rf "$DATA_DIR"/node-* "$DATA_DIR/snapshots" "$STATE_FILE"
  fi
  if [ "$PORT" = auto ]; then pick_auto_port; fi
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number or auto"
  [ -n "$TPORT" ] || TPORT=$((PORT + 100))
  for i in $(seq 0 $((NODES - 1))); do
    port_busy $((PORT + i)) && die "port $((PORT + i)) on 127.0.0.1 is in use (another node? try --port auto)"
    port_busy $((TPORT + i)) && die "transport port $((TPORT + i)) on 127.0.0.1 is in use"
  done
  ensure_runtime
  mkdir -p "$DATA_DIR/snapshots"
  write_state
  for i in $(seq 1 "$NODES"); do write_node_config "$i"; done
  for i in $(seq 1 "$NODES"); do launch_node "$i"; done
  log "starting $NODES node(s) (OpenSearch $VERSION, java $(java_major "$JAVA"), data $DATA_DIR) ..."
  if ! wait_ready "$NODES"; then
    stop_pids $(seq 1 "$NODES") || true
    die "OpenSearch did not become ready; logs: $DATA_DIR/node-*/node.log"
  fi
  log "ready in $((SECONDS - t0))s; logs in $DATA_DIR/node-*/node.log"
  echo "http://127.0.0.1:$PORT"
}

cmd_stop() {
  if [ ! -f "$STATE_FILE" ]; then log "nothing to stop in $DATA_DIR"; return 0; fi
  load_state
  stop_pids $(seq 1 "$NODES")
  if [ "$CLEAN" = 1 ]; then rm -rf "$DATA_DIR"/node-* "$DATA_DIR/snapshots" "$STATE_FILE"; log "removed $DATA_DIR contents"; fi
}

cmd_stop_node() {
  load_state
  [ "$NODE_ARG" -le "$NODES" ] || die "no node $NODE_ARG (cluster has $NODES)"
  node_running "$NODE_ARG" || { log "node-$NODE_ARG is not running"; return 0; }
  stop_pids "$NODE_ARG"
}

cmd_start_node() {
  load_state
  [ "$NODE_ARG" -le "$NODES" ] || die "no node $NODE_ARG (cluster has $NODES)"
  if node_running "$NODE_ARG"; then log "node-$NODE_ARG is already running"; echo "http://127.0.0.1:$((PORT + NODE_ARG - 1))"; return 0; fi
  port_busy $((PORT + NODE_ARG - 1)) && die "port $((PORT + NODE_ARG - 1)) is in use"
  ensure_runtime
  launch_node "$NODE_ARG"
  local up=0 i
  for i in $(seq 1 "$NODES"); do node_running "$i" && up=$((up + 1)); done
  # wait_ready only needs one answering node; restrict its startup-death check to this node
  local t0=$SECONDS deadline=$((SECONDS + TIMEOUT)) code
  while [ $SECONDS -lt $deadline ]; do
    node_running "$NODE_ARG" || { log "node-$NODE_ARG exited during startup"; tail -n 40 "$(node_dir "$NODE_ARG")/node.log" >&2; exit 1; }
    code="$(http_code "http://127.0.0.1:$((PORT + NODE_ARG - 1))/_cluster/health?wait_for_status=yellow&wait_for_nodes=$up&timeout=1s")"
    if [ "$code" = 200 ]; then
      log "node-$NODE_ARG rejoined in $((SECONDS - t0))s"
      echo "http://127.0.0.1:$((PORT + NODE_ARG - 1))"; return 0
    fi
    sleep 0.5
  done
  tail -n 40 "$(node_dir "$NODE_ARG")/node.log" >&2
  die "node-$NODE_ARG did not join within ${TIMEOUT}s"
}

cmd_status() {
  if [ ! -f "$STATE_FILE" ]; then echo "not started (no state in $DATA_DIR)"; return 3; fi
  load_state
  local i up=0 url=""
  for i in $(seq 1 "$NODES"); do
    if node_running "$i"; then
      up=$((up + 1)); [ -n "$url" ] || url="http://127.0.0.1:$((PORT + i - 1))"
      echo "node-$i running pid $(pid_of "$i") http://127.0.0.1:$((PORT + i - 1))"
    else
      echo "node-$i stopped"
    fi
  done
  if [ -n "$url" ]; then
    local health
    health="$(curl -s -m 5 "$url/_cluster/health" || true)"
    echo "health: ${health:-no answer}"
  fi
  [ "$up" -eq "$NODES" ] && return 0
  [ "$up" -eq 0 ] && return 3
  return 1
}

cmd_url() { load_state; echo "http://127.0.0.1:$PORT"; }

cmd_logs() {
  load_state
  if [ -n "$NODE_ARG" ]; then tail -n 100 "$(node_dir "$NODE_ARG")/node.log"; else tail_logs 2>&1; fi
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-node) cmd_stop_node ;;
  start-node) cmd_start_node ;;
  status) cmd_status ;;
  url) cmd_url ;;
  logs) cmd_logs ;;
  fetch) ensure_runtime; log "runtime ready in $RUNTIME" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
