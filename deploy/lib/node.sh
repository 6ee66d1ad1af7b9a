# Shared body of deploy/opensearch.sh and deploy/elasticsearch.sh: a local search node built
# from Maven Central artifacts. Sourced, never run. A script calls node_setup, sets its
# variables, defines usage and the hooks below, then calls node_main "$@".
#
# Variables: LAUNCHER_CLASS, JAVA_SOURCES (hashed into the cache key), JAVA_OPTS_VAR (name of
# the env var with extra JVM options), JDK_NEED / JDK_TOOLS / JDK_FOR (which JDK), STATE_VARS
# (saved by start), STATE_MATCH (must equal the saved ones for start to reuse running nodes),
# EXTRA_COMMANDS (more commands, run as cmd_NAME), SUPPORTED_VERSIONS (the versions known to
# work, oldest first; resolve_version picks from it).
# Hooks:
#   node_option ARGS...   a script-only option: set OPT_SHIFT to the words used, or return 1
#   check_version         validate VERSION (and what follows from it) after parsing and
#                         resolve_version
#   runtime_ready         is $RUNTIME complete?
#   build_runtime         fill $RUNTIME; runs in a subshell under the cache lock
#   launch_args I         set JVM_EXTRA (after jvm.options) and LAUNCH_ARGS (after all JVM options)
#   jvm_extra DIR         extra jvm.options lines for the node in DIR
#   yml_cluster I         discovery settings of node I when NODES > 1 (multi-node scripts only)
#   yml_extra             lines appended to the node settings file (optional)
#   cmd_logs              the logs command
# A multi-node script (MULTI_NODE=1) also takes a node number after stop-node, start-node and
# logs; its node I lives in DATA_DIR/node-I. A single node lives in DATA_DIR/node.

NODE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT_DIR="$(dirname "$NODE_LIB_DIR")"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
NODE_MAIN_SRC="$NODE_LIB_DIR/src/imagedex/node/NodeMain.java"

# $1: key (opensearch), $2: product name, $3: default version, $4: 1 for multi-node.
# Environment: <KEY>_VERSION and IMAGEDEX_<KEY>_{CACHE,DATA,HEAP,HEAP_MIN,JAVA_HOME,M2}.
node_setup() {
  KEY="$1"; PRODUCT="$2"; MULTI_NODE="$4"
  NODE_SCRIPT="$KEY.sh"
  ENV_PREFIX="IMAGEDEX_${KEY^^}"
  local v="${KEY^^}_VERSION" cache="${ENV_PREFIX}_CACHE" data="${ENV_PREFIX}_DATA"
  local heap="${ENV_PREFIX}_HEAP" heap_min="${ENV_PREFIX}_HEAP_MIN"
  VERSION="${!v:-$3}"
  SRC_DIR="$SCRIPT_DIR/$KEY"
  POM="$SRC_DIR/pom.xml"
  CACHE_ROOT="${!cache:-${XDG_CACHE_HOME:-$HOME/.cache}/imagedex/$KEY}"
  DATA_DIR="${!data:-$REPO_ROOT/.imagedex/$KEY}"
  NODES=1
  PORT=9200
  TPORT=""
  HEAP_MAX="${!heap:-512m}"
  HEAP_MIN="${!heap_min:-256m}"
  CLUSTER_NAME="imagedex-local"
  CLEAN=0
  TIMEOUT=120
  STOP_TIMEOUT=30
  JDK_TOOLS=(javac)
  JDK_FOR=""
  EXTRA_COMMANDS=()
  SUPPORTED_VERSIONS=()
  VERSION_TESTED=0
}

log() { printf '%s: %s\n' "$NODE_SCRIPT" "$*" >&2; }
die() { printf '%s: error: %s\n' "$NODE_SCRIPT" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# argument parsing

node_parse_args() {
  CMD="${1:-}"
  [ -n "$CMD" ] || { usage >&2; exit 2; }
  shift
  NODE_ARG=""
  if [ "$MULTI_NODE" = 1 ]; then
    case "$CMD" in
      stop-node|start-node)
        NODE_ARG="${1:-}"
        if [ -n "$NODE_ARG" ]; then shift; else die "$CMD needs a node number"; fi
        ;;
      logs)
        if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then NODE_ARG="$1"; shift; fi
        ;;
    esac
  fi
  while [ $# -gt 0 ]; do
    case "$1" in
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
      *)
        OPT_SHIFT=0
        node_option "$@" || die "unknown argument: $1 (see --help)"
        shift "$OPT_SHIFT"
        ;;
    esac
  done
  [[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer"
  [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
  resolve_version
  check_version
  if [ -n "$NODE_ARG" ] && ! [[ "$NODE_ARG" =~ ^[1-9][0-9]*$ ]]; then die "bad node number: $NODE_ARG"; fi
  [ "$CMD" = start ] && mkdir -p "$DATA_DIR"
  if [ -d "$DATA_DIR" ]; then DATA_DIR="$(cd "$DATA_DIR" && pwd)"; fi
  if [ "$MULTI_NODE" = 1 ]; then STATE_KIND=cluster; else STATE_KIND=node; fi
  STATE_FILE="$DATA_DIR/$STATE_KIND.env"
}

# ---------------------------------------------------------------------------------------------
# versions

# VERSION may be a major ("3"), a major.minor ("3.5") or a full version. A major or major.minor
# becomes the newest entry of SUPPORTED_VERSIONS that it prefixes; a full version is taken as
# given (VERSION_TESTED=1 when the table lists it).
resolve_version() {
  local v best=""
  for v in "${SUPPORTED_VERSIONS[@]}"; do
    if [ "$v" = "$VERSION" ]; then VERSION_TESTED=1; return 0; fi
    [[ "$v" == "$VERSION".* ]] && best="$v"
  done
  if [ -n "$best" ]; then VERSION="$best"; VERSION_TESTED=1; return 0; fi
  [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] \
    || die "no supported $PRODUCT version matches '$VERSION' (known to work: ${SUPPORTED_VERSIONS[*]}; a full version x.y.z is tried as given)"
  if [ "$CMD" = start ] || [ "$CMD" = fetch ]; then
    log "$PRODUCT $VERSION is not one of the versions known to work (${SUPPORTED_VERSIONS[*]}); trying it as given"
  fi
}

version_major() { echo "${VERSION%%.*}"; }

# ---------------------------------------------------------------------------------------------
# Java + Maven

java_major() { # $1: java binary -> major version number
  "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

# Sets JAVA, JAVAC, JAR and RELEASE (= JDK_NEED) from the first JDK that fits: the one
# IMAGEDEX_<KEY>_JAVA_HOME names (only that one when set), else `java` on PATH, $JAVA_HOME,
# then every /usr/lib/jvm/* (e.g. a Temurin 25 beside the default 17).
pick_java() {
  local home_var="${ENV_PREFIX}_JAVA_HOME" candidates=() seen=() c m j tool ok
  if [ -n "${!home_var:-}" ]; then
    candidates=("${!home_var}/bin/java")
  else
    command -v java >/dev/null 2>&1 && candidates+=("$(readlink -f "$(command -v java)")")
    [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
    for j in /usr/lib/jvm/*/bin/java; do [ -x "$j" ] && candidates+=("$j"); done
  fi
  for c in "${candidates[@]}"; do
    ok=1
    [ -x "$c" ] || ok=0
    for tool in "${JDK_TOOLS[@]}"; do [ -x "$(dirname "$c")/$tool" ] || ok=0; done
    [ "$ok" = 1 ] || continue
    m="$(java_major "$c")"
    seen+=("$c (${m:-?})")
    if [ -n "$m" ] && [ "$m" -ge "$JDK_NEED" ]; then
      JAVA="$c"; JAVAC="$(dirname "$c")/javac"; JAR="$(dirname "$c")/jar"; RELEASE="$JDK_NEED"
      return 0
    fi
  done
  local tools="${JDK_TOOLS[*]}" pkg=openjdk-17-jdk-headless found="none"
  # Debian 12 has no OpenJDK 21: Adoptium's apt repository (packages.adoptium.net) has Temurin
  [ "$JDK_NEED" -gt 17 ] && pkg="openjdk-21-jdk-headless (Debian 13+, Ubuntu 24.04+; on Debian 12: temurin-21-jdk from packages.adoptium.net)"
  [ "${#seen[@]}" -gt 0 ] && found="$(IFS=,; echo "${seen[*]}")"
  if [ -n "${!home_var:-}" ]; then
    die "$home_var=${!home_var} is not a JDK $JDK_NEED+ with ${tools// / and }${JDK_FOR:+ (needed by $JDK_FOR)}; found: $found"
  fi
  die "no JDK $JDK_NEED+ with ${tools// / and } found${JDK_FOR:+ for $JDK_FOR} (looked at java on PATH, \$JAVA_HOME and /usr/lib/jvm/*; JDKs seen: $found). Install one: apt install $pkg, or set $home_var to the home of any JDK $JDK_NEED+"
}

run_mvn() {
  command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is needed to fetch the $PRODUCT artifacts"
  local m2_var="${ENV_PREFIX}_M2" extra=() out
  [ -n "${!m2_var:-}" ] && extra+=("-Dmaven.repo.local=${!m2_var}")
  if ! out="$(JAVA_HOME="$(dirname "$(dirname "$JAVA")")" mvn -B -q -f "$POM" "${extra[@]}" \
      "-D$KEY.version=$VERSION" "$@" 2>&1)"; then
    local missing
    # Maven's words for a 404 (not a network failure), fresh or remembered from an earlier try
    missing="$(printf '%s\n' "$out" | sed -n -e 's/.*Could not find artifact \([^ ]*\).*/\1/p' \
      -e 's/.* \([^ ]*\) was not found in https\{0,1\}:.*/\1/p' | head -n 1 || true)"
    if [ -n "$missing" ]; then
      die "$missing is not served by Maven Central: $PRODUCT $VERSION cannot be built from it (known to work: ${SUPPORTED_VERSIONS[*]})"
    fi
    printf '%s\n' "$out" | tail -n 30 >&2
    die "maven failed: mvn $*"
  fi
}

compile_java() { # $1: output dir, $2: class path, then the sources (a failure names the first)
  local out="$1" cp="$2"
  shift 2
  "$JAVAC" --release "$RELEASE" -nowarn -cp "$cp" -d "$out" "$@" >&2 || die "compiling $1 failed"
}

jars_exist() { # all jars listed in $1 still exist (the Maven repo may have been cleaned)
  local f jars
  [ -s "$1" ] || return 1
  IFS=":" read -r -a jars < "$1" || true  # no trailing newline
  for f in "${jars[@]}"; do [ -f "$f" ] || return 1; done
}

runtime_key() { # the cache dir follows the version and the content of the pom and the sources
  { cat "$POM" "${JAVA_SOURCES[@]}"; echo "$VERSION $RELEASE layout-1"; } | sha256sum | cut -c1-12
}

build_dir() { # $1: a work dir of build_runtime: emptied now, removed if the build fails
  BUILD_DIRS+=("$1")
  rm -rf "$1"
}

# Everything the node needs (build_runtime) lands in $RUNTIME, a cache dir shared by all data
# dirs, built under a lock.
ensure_runtime() {
  pick_java
  RUNTIME="$CACHE_ROOT/$VERSION-$(runtime_key)"
  runtime_ready && return 0
  mkdir -p "$CACHE_ROOT"
  (
    command -v flock >/dev/null 2>&1 && flock 9
    BUILD_DIRS=()
    trap 'rm -rf "${BUILD_DIRS[@]}"' EXIT  # leftovers of a failed fetch
    build_runtime
  ) 9>"$CACHE_ROOT/.lock"
}

# ---------------------------------------------------------------------------------------------
# state helpers

node_dir() { if [ "$MULTI_NODE" = 1 ]; then echo "$DATA_DIR/node-$1"; else echo "$DATA_DIR/node"; fi; }
node_label() { if [ "$MULTI_NODE" = 1 ]; then echo "node-$1"; else echo node; fi; }
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
  [ -f "$STATE_FILE" ] || die "no $STATE_KIND state in $DATA_DIR (was it started with this --data?)"
  # shellcheck disable=SC1090
  . "$STATE_FILE"
  # what follows from the version (JDK, sources) is the started one's, not the default's:
  # start-node on a 3.x cluster must build with the same JDK as start did
  check_version
}

write_state() {
  local v
  {
    echo "# written by deploy/$NODE_SCRIPT start"
    for v in "${STATE_VARS[@]}"; do echo "$v=${!v}"; done
  } > "$STATE_FILE"
}

wipe_state() {
  if [ "$MULTI_NODE" = 1 ]; then rm -rf "$DATA_DIR"/node-*; else rm -rf "$DATA_DIR/node"; fi
  rm -rf "$DATA_DIR/snapshots" "$STATE_FILE"
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
# config generation and launch

yml_extra() { :; }

write_node_config() { # $1: node index
  local i="$1" dir conf
  dir="$(node_dir "$i")"; conf="$dir/config"
  mkdir -p "$conf" "$dir/data" "$dir/logs" "$dir/tmp"
  {
    echo "# generated by deploy/$NODE_SCRIPT; rewritten at every start"
    echo "cluster.name: $CLUSTER_NAME"
    echo "node.name: node-$i"
    echo "path.data: $dir/data"
    echo "path.logs: $dir/logs"
    echo "path.repo: [\"$DATA_DIR/snapshots\"]"
    echo "network.host: 127.0.0.1"
    echo "http.port: $((PORT + i - 1))"
    echo "transport.port: $((TPORT + i - 1))"
    if [ "$NODES" -eq 1 ]; then echo "discovery.type: single-node"; else yml_cluster "$i"; fi
    echo "# the disk may be nearly full: never block allocation / writes on disk usage"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    yml_extra
  } > "$conf/$KEY.yml"
  cat > "$conf/log4j2.properties" <<EOF
# generated by deploy/$NODE_SCRIPT: everything to stdout, which goes to node.log
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
EOF
  {
    echo "# generated by deploy/$NODE_SCRIPT (heap: --heap/--heap-min; extra: $JAVA_OPTS_VAR)"
    echo "-Xms$HEAP_MIN"
    echo "-Xmx$HEAP_MAX"
    echo "-XX:+UseG1GC"
    echo "-XX:+ExitOnOutOfMemoryError"
    echo "-Djava.io.tmpdir=$dir/tmp"
    echo "-Djava.awt.headless=true"
    echo "-Dfile.encoding=UTF-8"
    echo "-Djna.nosys=true"
    jvm_extra "$dir"
    echo "-Dio.netty.noUnsafe=true"
    echo "-Dio.netty.noKeySetOptimization=true"
    echo "-Dio.netty.recycler.maxCapacityPerThread=0"
  } > "$conf/jvm.options"
}

launch_node() { # $1: node index
  local i="$1" dir opts=() more
  dir="$(node_dir "$i")"
  mapfile -t opts < <(grep -v '^\s*#' "$dir/config/jvm.options" | grep -v '^\s*$')
  JVM_EXTRA=()
  LAUNCH_ARGS=()
  launch_args "$i"
  opts+=("${JVM_EXTRA[@]}")
  more="${!JAVA_OPTS_VAR:-}"
  # shellcheck disable=SC2206
  [ -n "$more" ] && opts+=($more)
  : > "$dir/node.log"
  # setsid: the node survives the caller's Ctrl-C / process group; all fds go to files.
  # The config dir argument is what is_our_node matches to recognise our process by pid.
  setsid "$JAVA" "${opts[@]}" "${LAUNCH_ARGS[@]}" </dev/null >>"$dir/node.log" 2>&1 &
  echo $! > "$dir/node.pid"
}

wait_ready() { # $1: expected node count
  local want="$1" deadline=$((SECONDS + TIMEOUT)) i code up nodes_q="" with="" who
  if [ "$MULTI_NODE" = 1 ]; then nodes_q="&wait_for_nodes=$want"; with=" with $want node(s)"; fi
  while [ $SECONDS -lt $deadline ]; do
    up=0
    for i in $(seq 1 "$NODES"); do
      if [ -f "$(node_dir "$i")/node.pid" ]; then
        if node_running "$i"; then up=$((up + 1)); else
          if [ "$MULTI_NODE" = 1 ]; then who="node-$i"; else who="the node"; fi
          log "$who (pid $(pid_of "$i")) exited during startup"
          tail_logs; return 1
        fi
      fi
    done
    for i in $(seq 1 "$NODES"); do
      node_running "$i" || continue
      code="$(http_code "http://127.0.0.1:$((PORT + i - 1))/_cluster/health?wait_for_status=yellow$nodes_q&timeout=1s")"
      [ "$code" = 200 ] && return 0
      break
    done
    sleep 0.5
  done
  log "timed out after ${TIMEOUT}s waiting for cluster health yellow/green$with"
  tail_logs
  return 1
}

stop_pids() { # node indexes; TERM, wait, KILL
  local i k pid pids=() idx=() deadline
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
      log "$(node_label "${idx[$k]}") (pid ${pids[$k]}) did not stop in ${STOP_TIMEOUT}s; killing"
      kill -KILL "${pids[$k]}" 2>/dev/null || true
    fi
    log "stopped $(node_label "${idx[$k]}") (pid ${pids[$k]})"
  done
  for i in "$@"; do rm -f "$(node_dir "$i")/node.pid"; done
}

# ---------------------------------------------------------------------------------------------
# commands

stop_all() {
  [ "$MULTI_NODE" = 1 ] || node_running 1 || log "node is not running"
  stop_pids $(seq 1 "$NODES")
}

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

settings_now() { local v; for v in "${STATE_MATCH[@]}"; do printf '%s=%s ' "$v" "${!v}"; done; }

cmd_start() {
  command -v curl >/dev/null 2>&1 || die "curl is needed"
  local t0=$SECONDS i
  if [ -f "$STATE_FILE" ]; then
    local wanted running=0
    wanted="$(settings_now)"
    # shellcheck disable=SC1090
    ( . "$STATE_FILE"; for i in $(seq 1 "$NODES"); do node_running "$i" && exit 0; done; exit 1 ) && running=1
    if [ "$running" = 1 ]; then
      load_state
      local all=1
      for i in $(seq 1 "$NODES"); do node_running "$i" || all=0; done
      if [ "$all" = 1 ] && [ "$(settings_now)" = "$wanted" ]; then
        if [ "$MULTI_NODE" = 1 ]; then
          log "already running ($NODES node(s), data $DATA_DIR)"
        else
          log "already running (data $DATA_DIR)"
        fi
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
  if [ "$CLEAN" = 1 ]; then wipe_state; fi
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
  local java_v noun=logs where="$DATA_DIR/node-*/node.log"
  java_v="java $(java_major "$JAVA"), data $DATA_DIR"
  if [ "$MULTI_NODE" = 1 ]; then
    log "starting $NODES node(s) ($PRODUCT $VERSION, $java_v) ..."
  else
    log "starting $PRODUCT $VERSION ($java_v) ..."
    noun=log where="$DATA_DIR/node/node.log"
  fi
  if ! wait_ready "$NODES"; then
    stop_all || true
    die "$PRODUCT did not become ready; $noun: $where"
  fi
  log "ready in $((SECONDS - t0))s; $noun in $where"
  echo "http://127.0.0.1:$PORT"
}

cmd_stop() {
  if [ ! -f "$STATE_FILE" ]; then log "nothing to stop in $DATA_DIR"; return 0; fi
  load_state
  stop_all
  if [ "$CLEAN" = 1 ]; then wipe_state; log "removed $DATA_DIR contents"; fi
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

node_main() {
  node_parse_args "$@"
  case "$CMD" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cmd_url ;;
    logs) cmd_logs ;;
    fetch) ensure_runtime; log "runtime ready in $RUNTIME" ;;
    -h|--help|help) usage ;;
    *)
      local c
      for c in "${EXTRA_COMMANDS[@]}"; do
        if [ "$c" = "$CMD" ]; then "cmd_${CMD//-/_}"; return; fi
      done
      usage >&2; exit 2
      ;;
  esac
}
