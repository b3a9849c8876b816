# Shared by the set-capacity scripts: read drover's JSON from stdin once, pick fields from it.
# drover runs each script with `sh -c` and JSON on stdin (docs/fleet.md).
set -eu
DROVER_INPUT="$(cat)"
# field NAME: a top-level field of the input as text ("" when absent).
field() {
  printf '%s' "$DROVER_INPUT" | python3 -c 'import json,sys
v = json.load(sys.stdin).get(sys.argv[1], "")
print("" if v is None else v)' "$1"
}
# need NAME: fails with a clear message when the environment variable NAME is not set.
need() {
  eval "v=\${$1:-}"
  [ -n "$v" ] || { echo "error: set $1 in the environment's spec.exec.env" >&2; exit 2; }
}
DESIRED="$(field desired)"
case "$DESIRED" in ''|*[!0-9]*) echo "error: no whole-number 'desired' in the input" >&2; exit 2 ;; esac
