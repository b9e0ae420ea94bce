#!/usr/bin/env bash
# Instructions per delivery, counted by callgrind: the measure each change
# to a delivery's path is judged by (docs/performance.md). Unlike CPU time,
# the count is the same from run to run and whatever else shares the
# machine, so it A/Bs a change while other builds run beside it.
#
# What it does, for the listener and then for bare hyper
# (examples/bare_hyper.rs):
#
#   1. starts the server under `valgrind --tool=callgrind`, pinned to
#      SERVER_CORE (so tokio starts one worker, as in scripts/bench-load.sh):
#      the listener as the bench runs it, `listen --json --secret …
#      --store <tmpfile>`, stdout to /dev/null;
#   2. sends WARMUP signed 1 KiB deliveries (`loadgen run`, CONNECTIONS
#      keep-alive connections, pinned to LOAD_CORE), so the maps, buffers
#      and allocator are warm, then zeroes the counts (`callgrind_control
#      -z`);
#   3. sends COUNT more, dumps the counts (`callgrind_control -d`), and
#      divides by COUNT: every thread of the process is counted (the
#      runtime's worker, the store's fsync thread, the printer).
#
# "Outside SHA-256": valgrind hides the CPU's SHA extensions, so SHA-256
# runs in software under it, about 117,000 instructions a 1 KiB delivery
# (the HMAC and the group key), which a real CPU does in a fraction of
# that. The inclusive cost of the SHA-256 block functions is counted
# apart and left out of the main figure; both are printed.
#
# Usage: scripts/instructions.sh
# Knobs (environment, defaults in brackets):
#   BIN [target/release/danube-hooks]  the listener to count (another build
#                          for an A/B; then nothing is built)
#   WARMUP [500] COUNT [3000] CONNECTIONS [16]
#   SERVER_CORE [0] LOAD_CORE [1]
#   BARE [1]               set to 0 to skip bare hyper
#   TOP [0]                print the N functions of the listener's own crate
#                          with the largest inclusive counts, and the N
#                          largest self counts overall
#   KEEP [unset]           a folder to keep the callgrind dumps in (for
#                          callgrind_annotate)
#   LISTEN_ARGS [unset]    more flags for `listen` (e.g. --no-store)
# Needs: valgrind (callgrind_control, callgrind_annotate), taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

WARMUP=${WARMUP:-500}
COUNT=${COUNT:-3000}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BARE=${BARE:-1}
TOP=${TOP:-0}
KEEP=${KEEP:-}
LISTEN_ARGS=${LISTEN_ARGS:-}
SECRET=whsec_BenchmarkSecretNotForProduction0000

for tool in valgrind callgrind_control callgrind_annotate taskset; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "$tool is needed (apt-get install valgrind util-linux)" >&2
    exit 2
  }
done

if [ -z "${BIN:-}" ]; then
  echo "building the release binary and the bench tools (cargo build --release)" >&2
  cargo build --release --quiet --bin danube-hooks --example bare_hyper --example loadgen
  BIN=target/release/danube-hooks
fi
BARE_BIN=target/release/examples/bare_hyper
LOADGEN=target/release/examples/loadgen
for built in "$BIN" "$LOADGEN"; do
  [ -x "$built" ] || {
    echo "$built is not built (cargo build --release --example loadgen --example bare_hyper)" >&2
    exit 2
  }
done

PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-instructions.XXXXXX")
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The address a server under valgrind printed to file $1 (sed expression
# $2 picks it out); valgrind's start takes seconds, so up to 120 s.
address_in() {
  wait_for_address "$1" "$2" 120 && return 0
  echo "no address in $1 within 120 s:" >&2
  cat "$1" >&2 || true
  return 1
}

load() {
  taskset -c "$LOAD_CORE" "$LOADGEN" run --addr "$1" --secret "$SECRET" --count "$2" \
    --connections "$CONNECTIONS" >"$WORK/load.txt"
  local ok
  ok=$(awk '/^answered_2xx:/ { print $2 }' "$WORK/load.txt")
  if [ "$ok" != "$2" ]; then
    echo "only $ok of $2 deliveries answered 2xx:" >&2
    cat "$WORK/load.txt" >&2
    exit 1
  fi
}

# Count server $1 (a label) started by the rest of the arguments, which
# prints its address to the file $ADDR_FILE (sed expression $ADDR_PICK).
# Prints "total sha256" instructions over the COUNT deliveries.
count() {
  local label=$1 pid addr dump
  shift
  taskset -c "$SERVER_CORE" valgrind --tool=callgrind --callgrind-out-file="$WORK/$label.out" \
    "$@" >"$WORK/$label.stdout" 2>"$WORK/$label.stderr" &
  pid=$!
  PIDS+=("$pid")
  addr=$(address_in "$ADDR_FILE" "$ADDR_PICK")
  load "$addr" "$WARMUP"
  callgrind_control -z "$pid" >/dev/null
  load "$addr" "$COUNT"
  callgrind_control -d "$pid" >/dev/null
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PIDS=()
  # The dump callgrind_control asked for: the one numbered 1.
  dump=$(find "$WORK" -maxdepth 1 -name "$label.out.1*" | head -1)
  if [ -z "$dump" ]; then
    echo "no dump from callgrind for $label:" >&2
    ls "$WORK" >&2
    exit 1
  fi
  if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"
    cp "$dump" "$KEEP/$label.callgrind"
  fi
  local total sha
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  # SHA-256's block function, inclusive (what it calls is its own work):
  # the largest inclusive count of a function named for it.
  sha=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
    awk '/sha2::sha256|sha256::soft|compress256/ { gsub(",", "", $1); if ($1 + 0 > m) m = $1 + 0 } END { printf "%.0f\n", m }')
  echo "$total $sha" >"$WORK/$label.counts"
  if [ "$TOP" -gt 0 ]; then
    {
      echo "--- $label: the crate's own functions by inclusive count (per delivery)"
      callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
        awk -v n="$COUNT" '/danube_hooks::/ && $1 ~ /^[0-9,]+$/ { c = $1; gsub(",", "", c); $1 = ""; printf "%9.0f %s\n", c / n, $0 }' |
        head -"$TOP"
      echo "--- $label: the largest self counts (per delivery)"
      callgrind_annotate --threshold=100 "$dump" 2>/dev/null |
        awk -v n="$COUNT" '$1 ~ /^[0-9,]+$/ && NF > 1 { c = $1; gsub(",", "", c); $1 = ""; printf "%9.0f %s\n", c / n, $0 }' |
        head -"$TOP"
    } >&2
  fi
}

per() { awk -v a="$1" -v n="$COUNT" 'BEGIN { printf "%.0f", a / n }'; }

STORE="$WORK/store.jsonl"
ADDR_FILE="$WORK/listen.stderr"
ADDR_PICK='s|^danube-hooks listening on http://\([^ ]*\).*|\1|p'
# shellcheck disable=SC2086 # LISTEN_ARGS is a list of flags
count listen "$BIN" listen --port 0 --json --secret "$SECRET" --store "$STORE" $LISTEN_ARGS
read -r L_TOTAL L_SHA <"$WORK/listen.counts"
if [ -e "$STORE" ]; then
  stored=$(wc -l <"$STORE")
  [ "$stored" -eq $((WARMUP + COUNT)) ] || {
    echo "the store holds $stored records, not $((WARMUP + COUNT))" >&2
    exit 1
  }
fi
echo "listener: $(per $((L_TOTAL - L_SHA))) instructions per delivery outside SHA-256 ($(per "$L_TOTAL") in all, SHA-256 $(per "$L_SHA")); $COUNT deliveries after $WARMUP, $CONNECTIONS connections; $BIN"

if [ "$BARE" = 1 ] && [ -x "$BARE_BIN" ]; then
  ADDR_FILE="$WORK/bare.stdout"
  ADDR_PICK='s|^listening on ||p'
  count bare "$BARE_BIN"
  read -r B_TOTAL B_SHA <"$WORK/bare.counts"
  echo "bare hyper: $(per $((B_TOTAL - B_SHA))) instructions per request (SHA-256 $(per "$B_SHA")); ratio $(awk -v a=$((L_TOTAL - L_SHA)) -v b=$((B_TOTAL - B_SHA)) 'BEGIN { printf "%.2f", a / b }')"
fi
