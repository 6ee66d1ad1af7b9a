#!/usr/bin/env bash
# Local OpenSearch node(s) for development and tests, built only from Maven Central artifacts
# (no Docker, no distribution tarball). See docs/opensearch-node.md.
#
#   deploy/opensearch.sh start [--version V] [--nodes N] [--port P|auto] [--data DIR] [--no-knn] ...
#   deploy/opensearch.sh stop [--data DIR] [--clean]
#   deploy/opensearch.sh stop-node I [--data DIR]
#   deploy/opensearch.sh start-node I [--data DIR]
#   deploy/opensearch.sh status [--data DIR]
#   deploy/opensearch.sh url [--data DIR]
#   deploy/opensearch.sh logs [I] [--data DIR]
#   deploy/opensearch.sh fetch [--version V] [--no-knn]
#
# `start` prints progress on stderr and the cluster URL (http://127.0.0.1:PORT) as the last line
# of stdout, once cluster health is yellow or green.
set -euo pipefail

# shellcheck source=lib/node.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/node.sh"
node_setup opensearch OpenSearch 2.19.1 1
# Versions known to work, k-NN included (oldest first; `--version 3` picks the newest 3.x here).
# k-NN must match the server exactly, and Maven Central serves opensearch-knn only as 2.19.1.0
# and 3.5.0.0 (not 3.6-3.9), so 3.5.0 is the newest 3.x with vector search.
SUPPORTED_VERSIONS=(2.19.1 3.5.0)
LAUNCHER_SRC="$SRC_DIR/src/imagedex/opensearch/LocalNode.java"
LAUNCHER_CLASS="imagedex.opensearch.LocalNode"
JAVA_SOURCES=("$LAUNCHER_SRC" "$NODE_MAIN_SRC")
JAVA_OPTS_VAR=OPENSEARCH_JAVA_OPTS
KNN=""   # default: on for the SUPPORTED_VERSIONS, off for others (their k-NN is not served)
STATE_VARS=(NODES PORT TPORT VERSION KNN CLUSTER_NAME HEAP_MAX HEAP_MIN)
STATE_MATCH=(NODES KNN VERSION)
EXTRA_COMMANDS=(stop-node start-node)

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
                       default: on for the versions known to work, off for others. Only its
                       Lucene engine works (no native faiss/nmslib libraries): map knn_vector
                       with "engine": "lucene".
  --clean              start: wipe the node data first; stop: remove the state dir contents.
  --timeout SEC        how long start waits for health yellow/green (default 120).
  --version V          OpenSearch version (default $OPENSEARCH_VERSION or 2.19.1). A major
                       (3) or major.minor (3.5) picks the newest known to work: 2 -> 2.19.1,
                       3 -> 3.5.0 (k-NN included). Another full version is tried as given.
                       2.x needs a JDK 11+, 3.x a JDK 21+ (found on PATH, $JAVA_HOME or
                       /usr/lib/jvm/*, or set IMAGEDEX_OPENSEARCH_JAVA_HOME).
Environment: OPENSEARCH_VERSION, IMAGEDEX_OPENSEARCH_DATA, IMAGEDEX_OPENSEARCH_CACHE,
  IMAGEDEX_OPENSEARCH_JAVA_HOME, IMAGEDEX_OPENSEARCH_M2 (Maven local repo), OPENSEARCH_JAVA_OPTS.
EOF
}

node_option() {
  case "$1" in
    --nodes) NODES="${2:?}"; OPT_SHIFT=2 ;;
    --knn) KNN=1; OPT_SHIFT=1 ;;
    --no-knn) KNN=0; OPT_SHIFT=1 ;;
    *) return 1 ;;
  esac
}

check_version() {
  JDK_FOR="OpenSearch $VERSION"
  case "$(version_major)" in
    1) die "OpenSearch 1.x is not supported (known to work: ${SUPPORTED_VERSIONS[*]})" ;;
    2) JDK_NEED=11 ;;
    *) JDK_NEED=21 ;;
  esac
  if [ -z "$KNN" ]; then
    KNN="$VERSION_TESTED"
    if [ "$KNN" = 0 ] && { [ "$CMD" = start ] || [ "$CMD" = fetch ]; }; then
      log "k-NN left out: opensearch-knn $VERSION.0 is not known to be served (--knn tries it)"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------
# runtime: the server + module jars (Maven), the compiled launcher, k-NN unpacked if asked

runtime_ready() {
  [ -f "$RUNTIME/ready" ] && jars_exist "$RUNTIME/classpath.txt" \
    && { [ "$KNN" = 0 ] || [ -f "$RUNTIME/knn-home/ready" ]; }
}

build_runtime() {
  local tmp ktmp
  if ! { [ -f "$RUNTIME/ready" ] && jars_exist "$RUNTIME/classpath.txt"; }; then
    log "fetching OpenSearch $VERSION artifacts from Maven Central (once) ..."
    tmp="$RUNTIME.tmp.$$"
    build_dir "$tmp"
    rm -rf "$RUNTIME"; mkdir -p "$tmp/classes" "$tmp/home/plugins"
    run_mvn dependency:build-classpath "-Dmdep.outputFile=$tmp/classpath.txt"
    # log4j-core is optional in the server pom: align it with the log4j-api the server uses
    local api core
    api="$(tr ':' '\n' < "$tmp/classpath.txt" | sed -n 's#.*/log4j-api-\([^/]*\)\.jar$#\1#p' | head -n 1)"
    core="$(tr ':' '\n' < "$tmp/classpath.txt" | sed -n 's#.*/log4j-core-\([^/]*\)\.jar$#\1#p' | head -n 1)"
    if [ -n "$api" ] && [ "$api" != "$core" ]; then
      run_mvn dependency:build-classpath "-Dmdep.outputFile=$tmp/classpath.txt" "-Dlog4j.version=$api"
    fi
    compile_java "$tmp/classes" "$(cat "$tmp/classpath.txt")" "${JAVA_SOURCES[@]}"
    touch "$tmp/ready"
    mv "$tmp" "$RUNTIME"
  fi
  if [ "$KNN" = 1 ] && [ ! -f "$RUNTIME/knn-home/ready" ]; then
    log "fetching k-NN plugin $VERSION.0 from Maven Central (once) ..."
    ktmp="$RUNTIME/knn-home.tmp.$$"
    build_dir "$ktmp"
    rm -rf "$RUNTIME/knn-home"; mkdir -p "$ktmp/plugins/opensearch-knn"
    run_mvn dependency:copy "-Dartifact=org.opensearch.plugin:opensearch-knn:$VERSION.0:zip" \
      "-DoutputDirectory=$ktmp"
    (cd "$ktmp/plugins/opensearch-knn" && unzip -q "$ktmp/opensearch-knn-$VERSION.0.zip") \
      || die "unzip of the k-NN plugin failed (is unzip installed?)"
    rm -f "$ktmp/opensearch-knn-$VERSION.0.zip"
    if [ "$(version_major)" -ge 3 ]; then
      # The 3.x plugin lives beside the transport-grpc module in a distribution and uses what
      # that module's class loader holds: Guava, and the gRPC SPI + protobuf classes its query
      # converter names. transport-grpc is not on Maven Central; deploy/opensearch/pom.xml's
      # knn-3x profile lists those jars, which go into the plugin folder.
      log "fetching what the 3.x k-NN plugin takes from transport-grpc (Guava, gRPC SPI, protobufs) ..."
      run_mvn -P knn-3x dependency:build-classpath "-Dmdep.outputFile=$ktmp/knn-3x.txt" \
        -DincludeArtifactIds=guava,failureaccess,transport-grpc-spi,protobufs
      local extra
      IFS=":" read -r -a extra < "$ktmp/knn-3x.txt" || true
      cp "${extra[@]}" "$ktmp/plugins/opensearch-knn/"
      rm -f "$ktmp/knn-3x.txt"
    fi
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
}

# ---------------------------------------------------------------------------------------------
# node config and launch

yaml_list() { local out="" x; for x in "$@"; do out+="${out:+, }\"$x\""; done; echo "[$out]"; }

yml_cluster() { # $1: node index
  local i="$1" hosts=() managers=() k
  for k in $(seq 1 "$NODES"); do hosts+=("127.0.0.1:$((TPORT + k - 1))"); done
  # 2 nodes: only node-1 is cluster-manager eligible, so stopping node-2 keeps a quorum.
  # 3+ nodes: all are eligible (any one may be stopped).
  if [ "$NODES" -eq 2 ]; then managers=(node-1); else for k in $(seq 1 "$NODES"); do managers+=("node-$k"); done; fi
  echo "discovery.seed_hosts: $(yaml_list "${hosts[@]}")"
  echo "cluster.initial_cluster_manager_nodes: $(yaml_list "${managers[@]}")"
  if [ "$NODES" -eq 2 ] && [ "$i" -ne 1 ]; then
    echo "node.roles: [\"data\", \"ingest\"]"
  fi
}

jvm_extra() {
  echo "-Dlog4j.shutdownHookEnabled=false"
  echo "-Dlog4j2.disable.jmx=true"
}

launch_args() { # $1: node index
  local home="$RUNTIME/home" plugins java_v
  java_v="$(java_major "$JAVA")"
  # Lucene's SIMD vector scoring (k-NN, HNSW) needs the incubator module; Java 22+ warns about
  # Lucene's native calls (madvise) unless they are allowed
  [ "$java_v" -ge 21 ] && JVM_EXTRA+=(--add-modules=jdk.incubator.vector)
  [ "$java_v" -ge 22 ] && JVM_EXTRA+=(--enable-native-access=ALL-UNNAMED)
  [ "$KNN" = 1 ] && home="$RUNTIME/knn-home"
  plugins="$(IFS=,; echo "${MODULE_PLUGINS[*]}")"
  LAUNCH_ARGS=("-Dimagedex.opensearch.plugins=$plugins" -cp "$RUNTIME/classes:$(cat "$RUNTIME/classpath.txt")"
    "$LAUNCHER_CLASS" "$home" "$(node_dir "$1")/config")
}

# ---------------------------------------------------------------------------------------------
# commands on one node of the cluster

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

cmd_logs() {
  load_state
  if [ -n "$NODE_ARG" ]; then tail -n 100 "$(node_dir "$NODE_ARG")/node.log"; else tail_logs 2>&1; fi
}

node_main "$@"
