#!/usr/bin/env bash
# Local single-node Elasticsearch 8.x or 9.x for development and tests, built only from Maven
# Central artifacts (no Docker, no distribution tarball, no x-pack).
#
#   deploy/elasticsearch.sh start [--version V] [--port P|auto] [--data DIR] [--clean] ...
#   deploy/elasticsearch.sh stop [--data DIR] [--clean]
#   deploy/elasticsearch.sh status [--data DIR]
#   deploy/elasticsearch.sh url [--data DIR]
#   deploy/elasticsearch.sh logs [--data DIR]
#   deploy/elasticsearch.sh fetch [--version V]
#
# `start` prints progress on stderr and the node URL (http://127.0.0.1:PORT) as the last line
# of stdout, once cluster health is yellow or green.
set -euo pipefail

# shellcheck source=lib/node.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/node.sh"
node_setup elasticsearch Elasticsearch 8.17.0 0
# Versions known to work (oldest first; `--version 9` picks the newest 9.x here).
SUPPORTED_VERSIONS=(8.17.0 9.5.3)
LAUNCHER_SRC="$SRC_DIR/src/imagedex/elasticsearch/LocalNode.java"
EXTRAS_DIR="$SRC_DIR/src/imagedex/elasticsearch/extras"
LAUNCHER_CLASS="imagedex.elasticsearch.LocalNode"
NETTY_PLUGIN_CLASS="org.elasticsearch.transport.netty4.Netty4Plugin"
JAVA_OPTS_VAR=ES_JAVA_OPTS
JDK_NEED=17
JDK_TOOLS=(javac jar)
STATE_VARS=(PORT TPORT VERSION CLUSTER_NAME HEAP_MAX HEAP_MIN)
STATE_MATCH=(VERSION)

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
  --version V          Elasticsearch version (default $ELASTICSEARCH_VERSION or 8.17.0). A major
                       (9) or major.minor picks the newest known to work: 8 -> 8.17.0,
                       9 -> 9.5.3. Another full 8.x/9.x version is tried as given. 8.x needs a
                       JDK 17+, 9.x a JDK 21+ (found on PATH, $JAVA_HOME or /usr/lib/jvm/*, or
                       set IMAGEDEX_ELASTICSEARCH_JAVA_HOME).
Environment: ELASTICSEARCH_VERSION, IMAGEDEX_ELASTICSEARCH_DATA, IMAGEDEX_ELASTICSEARCH_CACHE,
  IMAGEDEX_ELASTICSEARCH_JAVA_HOME, IMAGEDEX_ELASTICSEARCH_M2 (Maven local repo), ES_JAVA_OPTS.
EOF
}

node_option() {
  case "$1" in
    --nodes) [ "${2:?}" = 1 ] || die "only a single node is supported (--nodes 1)"; OPT_SHIFT=2 ;;
    *) return 1 ;;
  esac
}

check_version() {
  local major
  major="$(version_major)"
  JDK_FOR="Elasticsearch $VERSION"
  case "$major" in
    8) JDK_NEED=17 ;;
    9) JDK_NEED=21 ;;
    *) die "only Elasticsearch 8.x and 9.x are supported (got $VERSION; known to work: ${SUPPORTED_VERSIONS[*]})" ;;
  esac
  # the module class: the shared ExtrasPlugin plus the REST hook of this major
  EXTRAS_SRCS=("$EXTRAS_DIR/ExtrasPlugin.java" "$EXTRAS_DIR/Es${major}ExtrasPlugin.java")
  EXTRAS_PLUGIN_CLASS="imagedex.elasticsearch.extras.Es${major}ExtrasPlugin"
  JAVA_SOURCES=("$LAUNCHER_SRC" "$NODE_MAIN_SRC" "${EXTRAS_SRCS[@]}")
}

# ---------------------------------------------------------------------------------------------
# runtime: the server + module jars (Maven), <home>/modules laid out like a distribution, the
# compiled launcher and extras plugin

runtime_ready() { [ -f "$RUNTIME/ready" ] && jars_exist "$RUNTIME/modulepath.txt"; }

write_descriptor() { # dir name classname description
  cat > "$1/plugin-descriptor.properties" <<EOF
# written by deploy/elasticsearch.sh
description=$4
version=$VERSION
name=$2
classname=$3
java.version=$JDK_NEED
elasticsearch.version=$VERSION
extended.plugins=
has.native.controller=false
EOF
}

build_runtime() {
  runtime_ready && return 0
  log "fetching Elasticsearch $VERSION artifacts from Maven Central (once) ..."
  local tmp="$RUNTIME.tmp.$$" jar netty
  build_dir "$tmp"
  rm -rf "$RUNTIME"
  mkdir -p "$tmp/classes" "$tmp/extras-classes" "$tmp/home/plugins" \
    "$tmp/home/modules/transport-netty4" "$tmp/home/modules/imagedex-extras"
  run_mvn -P server dependency:build-classpath "-Dmdep.outputFile=$tmp/modulepath.txt"
  run_mvn -P netty4 dependency:build-classpath "-Dmdep.outputFile=$tmp/netty4.txt"
  # the module gets its own jars, minus those the server already has (jar hell otherwise)
  IFS=":" read -r -a netty < "$tmp/netty4.txt" || true
  for jar in "${netty[@]}"; do
    if ! tr ':' '\n' < "$tmp/modulepath.txt" | grep -q "/$(basename "$jar")\$"; then
      cp "$jar" "$tmp/home/modules/transport-netty4/"
    fi
  done
  write_descriptor "$tmp/home/modules/transport-netty4" transport-netty4 "$NETTY_PLUGIN_CLASS" \
    "Netty 4 based transport and HTTP layer (from org.elasticsearch.plugin:transport-netty4)"
  compile_java "$tmp/classes" "$(cat "$tmp/modulepath.txt")" "$LAUNCHER_SRC" "$NODE_MAIN_SRC"
  compile_java "$tmp/extras-classes" "$(cat "$tmp/modulepath.txt")" "${EXTRAS_SRCS[@]}"
  "$JAR" cf "$tmp/home/modules/imagedex-extras/imagedex-extras.jar" -C "$tmp/extras-classes" . \
    || die "jar failed"
  rm -rf "$tmp/extras-classes"
  write_descriptor "$tmp/home/modules/imagedex-extras" imagedex-extras "$EXTRAS_PLUGIN_CLASS" \
    "imagedex: asciifolding token filter and GET / (deploy/elasticsearch/src)"
  touch "$tmp/ready"
  mv "$tmp" "$RUNTIME"
}

# ---------------------------------------------------------------------------------------------
# node config and launch

yml_extra() {
  echo "# as on OpenSearch: wildcard / _all index deletion is allowed (a local dev node)"
  echo "action.destructive_requires_name: false"
}

jvm_extra() { # $1: node dir
  echo "-Djna.tmpdir=$1/tmp"
  echo "-Dlog4j2.formatMsgNoLookups=true"
}

launch_args() { # $1: node index
  local java_v
  java_v="$(java_major "$JAVA")"
  # Java 21+: Lucene's and the server's SIMD vector scoring (dense_vector, HNSW) need the
  # incubator module, as a distribution's launcher adds it
  [ "$java_v" -ge 21 ] && JVM_EXTRA+=(--add-modules=jdk.incubator.vector)
  # Java 22+: the server and Lucene call native code through java.lang.foreign
  [ "$java_v" -ge 22 ] && JVM_EXTRA+=("--enable-native-access=org.elasticsearch.nativeaccess,org.apache.lucene.core")
  # The server runs on the module path, as in a distribution (its plugin loader needs the
  # named org.elasticsearch.server module); the launcher is on the class path.
  LAUNCH_ARGS=(--module-path "$(cat "$RUNTIME/modulepath.txt")" --add-modules ALL-MODULE-PATH
    -cp "$RUNTIME/classes" "$LAUNCHER_CLASS" "$RUNTIME/home" "$(node_dir "$1")/config")
}

cmd_logs() { tail -n 100 "$(node_dir 1)/node.log"; }

node_main "$@"
