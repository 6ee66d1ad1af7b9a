# Shared part of deploy/*/smoke.sh, sourced once URL is set: req sends a request, check records
# one result, smoke_done prints the tally and fails when any check failed.
H='Content-Type: application/json'
fails=0
passes=0

req() { # METHOD PATH [BODY]
  if [ $# -ge 3 ]; then curl -sS -m 30 -X "$1" "$URL$2" -H "$H" --data-binary "$3"; else curl -sS -m 30 -X "$1" "$URL$2"; fi
}
check() { # NAME JSON PYTHON-EXPR(r)
  local name="$1" json="$2" expr="$3"
  if python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" "$json" 2>/dev/null; then
    echo "ok   $name"; passes=$((passes + 1))
  else
    echo "FAIL $name: $json" | cut -c1-600; fails=$((fails + 1))
  fi
}
check_health() {
  local r
  r="$(req GET "/_cluster/health")"
  check "cluster health green/yellow" "$r" 'r["status"] in ("green", "yellow")'
}
smoke_done() {
  echo "smoke: $passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}
