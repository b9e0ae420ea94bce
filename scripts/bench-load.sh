#!/usr/bin/env bash
# The load figures of SPEC §10, measured in one run (not part of CI):
#
#   1. throughput of `danube-hooks listen --json --secret … --store FILE`
#      against a bare hyper server that reads the body and answers 200
#      (examples/bare_hyper.rs), under the same wrk load of distinct signed
#      1 KiB Danube deliveries; rounds alternate between the two and the
#      medians are compared (target: ratio >= 0.8);
#   2. latency at a fixed 1,000 req/s, open loop, wrk2-style (latency counted
#      from each request's intended send time) with examples/loadgen.rs
#      (target: p99 <= 2 ms);
#   3. RSS after 100,000 deliveries of 1 KiB (target: <= 64 MiB);
#   4. time from spawn to the port accepting, median of 20 (target: <= 100 ms).
#
# Usage: scripts/bench-load.sh            (about 6 minutes on 2 cores)
# Knobs (environment): ROUNDS=3 DURATION=10 THREADS=2 CONNECTIONS=32
#   LINES=100000*DURATION (distinct deliveries per throughput run; the run
#   fails if the listener would be sent one twice) RATE_SECONDS=30
# Needs: cargo, and wrk (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
LINES=${LINES:-$((100000 * DURATION))}
RATE_SECONDS=${RATE_SECONDS:-30}
SECRET=whsec_BenchmarkSecretNotForProduction0000

say() { printf '\n==> %s\n' "$*" >&2; }

# Servers this script started and has not yet waited for: only these are
# ever killed, by their own pid.
PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-bench.XXXXXX")
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
# Stop a server we started (SIGTERM: the listener syncs its store) and forget it.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() pid
  for pid in "${PIDS[@]}"; do
    [ "$pid" = "$1" ] || keep+=("$pid")
  done
  PIDS=("${keep[@]}")
}

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi

say "building the release binary and the bench tools (cargo build --release)"
cargo build --release --quiet --bin danube-hooks --example bare_hyper --example loadgen
BIN=target/release/danube-hooks
BARE=target/release/examples/bare_hyper
LOADGEN=target/release/examples/loadgen
LUA=scripts/wrk-deliveries.lua

say "machine"
MACHINE_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MACHINE_RAM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
MACHINE_DATE=$(date -u +%Y-%m-%d)
echo "nproc: $(nproc); cpu: $MACHINE_CPU; ram: $MACHINE_RAM; date: $MACHINE_DATE; kernel: $(uname -r)"
echo "wrk: $(wrk --version 2>&1 | head -1)"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Start `listen` with the benchmark's flags; sets LISTEN_PID and LISTEN_ADDR.
start_listener() {
  local store=$1 err="$WORK/listen.err"
  rm -f "$store" "$err"
  "$BIN" listen --port 0 --json --secret "$SECRET" --store "$store" >/dev/null 2>"$err" &
  LISTEN_PID=$!
  PIDS+=("$LISTEN_PID")
  for _ in $(seq 200); do
    LISTEN_ADDR=$(sed -n 's|^danube-hooks listening on http://\([^ ]*\).*|\1|p' "$err")
    [ -n "$LISTEN_ADDR" ] && return 0
    sleep 0.05
  done
  echo "listen did not start:" >&2
  cat "$err" >&2
  exit 1
}

stop_listener() { stop "$LISTEN_PID"; }

start_bare() {
  local out="$WORK/bare.out"
  rm -f "$out"
  "$BARE" >"$out" &
  BARE_PID=$!
  PIDS+=("$BARE_PID")
  for _ in $(seq 200); do
    BARE_ADDR=$(sed -n 's|^listening on ||p' "$out")
    [ -n "$BARE_ADDR" ] && return 0
    sleep 0.05
  done
  echo "bare_hyper did not start" >&2
  exit 1
}

# wrk against $1 (address) for server pid $2; prints
# "rps p50_ms p99_ms cpu_us_per_req repeats answers_400_up requests".
# (Latency values come as 512.00us, 1.23ms or 1.02s.)
run_wrk() {
  local addr=$1 pid=$2 out="$WORK/wrk.out" before after
  before=$(cpu_ticks "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" \
    "http://$addr/" -- "$WORK/deliveries.txt" "$THREADS" "$CONNECTIONS" >"$out" 2>&1
  after=$(cpu_ticks "$pid")
  awk -v ticks=$((after - before)) -v hz="$TICKS" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v
    }
    /requests in/ { n = $1 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /^lua_repeats:/ { rep = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    END { printf "%.0f %.3f %.3f %.1f %d %d %d\n", rps, p50, p99, ticks * 1e6 / hz / n, rep, bad, n }
  ' "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- 1. throughput
say "1. throughput: $ROUNDS rounds of ${DURATION}s each, wrk -t$THREADS -c$CONNECTIONS, $LINES distinct signed 1 KiB deliveries"
: >"$WORK/bare.txt"
: >"$WORK/listen.txt"
for round in $(seq "$ROUNDS"); do
  # Fresh signatures each round, so every t is seconds old when it arrives.
  "$LOADGEN" deliveries --secret "$SECRET" --count "$LINES" --size 1024 --out "$WORK/deliveries.txt"

  start_bare
  read -r rps p50 p99 cpu rep bad answered < <(run_wrk "$BARE_ADDR" "$BARE_PID")
  stop "$BARE_PID"
  echo "round $round  bare hyper:   $rps req/s  p50 ${p50} ms  p99 ${p99} ms  cpu ${cpu} µs/req  (answered $answered; 400 and up: $bad)"
  echo "$rps $p50 $p99 $cpu" >>"$WORK/bare.txt"

  start_listener "$WORK/store.jsonl"
  read -r rps p50 p99 cpu rep bad answered < <(run_wrk "$LISTEN_ADDR" "$LISTEN_PID")
  stop_listener
  if [ "$rep" -ne 0 ]; then
    echo "the listener was sent $rep deliveries twice: raise LINES above $LINES" >&2
    exit 1
  fi
  stored=$(wc -l <"$WORK/store.jsonl")
  valid=$("$BIN" log --store "$WORK/store.jsonl" --verdict valid | wc -l)
  echo "round $round  listen:       $rps req/s  p50 ${p50} ms  p99 ${p99} ms  cpu ${cpu} µs/req  (answered $answered; 400 and up: $bad; stored $stored, valid $valid)"
  if [ "$valid" -ne "$stored" ]; then
    echo "only $valid of $stored stored deliveries verified as valid" >&2
    exit 1
  fi
  if [ "$bad" -ne 0 ]; then
    echo "the listener answered $bad valid deliveries with 400 or more" >&2
    exit 1
  fi
  # Requests still in flight when wrk stops are stored but not counted.
  if [ "$stored" -lt "$answered" ]; then
    echo "wrk had $answered answers but only $stored deliveries are stored" >&2
    exit 1
  fi
  echo "$rps $p50 $p99 $cpu $stored $valid" >>"$WORK/listen.txt"
done
col() { awk -v c="$2" '{ print $c }' "$1" | median; }
BARE_RPS=$(col "$WORK/bare.txt" 1)
BARE_P50=$(col "$WORK/bare.txt" 2)
BARE_P99=$(col "$WORK/bare.txt" 3)
BARE_CPU=$(col "$WORK/bare.txt" 4)
LISTEN_RPS=$(col "$WORK/listen.txt" 1)
LISTEN_P50=$(col "$WORK/listen.txt" 2)
LISTEN_P99=$(col "$WORK/listen.txt" 3)
LISTEN_CPU=$(col "$WORK/listen.txt" 4)
VALID_TOTAL=$(awk '{ s += $6 } END { print s }' "$WORK/listen.txt")
RATIO=$(awk -v a="$LISTEN_RPS" -v b="$BARE_RPS" 'BEGIN { printf "%.2f", a / b }')

# The throughput rounds leave a GB or so of the deleted stores' pages being
# written back; let that settle so its fsync queue is not measured below.
settle() { sync; sleep 2; }

# ------------------------------------------------------ 2. latency at 1,000/s
settle
say "2. latency at a fixed 1,000 req/s for ${RATE_SECONDS}s (open loop, from the intended send time)"
start_listener "$WORK/rate.jsonl"
"$LOADGEN" run --addr "$LISTEN_ADDR" --secret "$SECRET" --rate 1000 --duration "$RATE_SECONDS" \
  --connections 16 | tee "$WORK/rate.txt"
stop_listener
RATE_P50=$(awk '/^p50_ms:/ { print $2 }' "$WORK/rate.txt")
RATE_P99=$(awk '/^p99_ms:/ { print $2 }' "$WORK/rate.txt")
RATE_P999=$(awk '/^p999_ms:/ { print $2 }' "$WORK/rate.txt")
RATE_MAX=$(awk '/^max_ms:/ { print $2 }' "$WORK/rate.txt")
RATE_ANSWERED=$(awk '/^answered_2xx:/ { print $2 }' "$WORK/rate.txt")

# ---------------------------------------------------- 3. RSS after 100,000
settle
say "3. RSS after 100,000 deliveries of 1 KiB (16 connections, closed loop)"
start_listener "$WORK/rss.jsonl"
RSS_START=$(awk '/^VmRSS:/ { print $2 }' "/proc/$LISTEN_PID/status")
"$LOADGEN" run --addr "$LISTEN_ADDR" --secret "$SECRET" --count 100000 --connections 16 | tee "$WORK/rss.txt"
RSS_AFTER=$(awk '/^VmRSS:/ { print $2 }' "/proc/$LISTEN_PID/status")
RSS_PEAK=$(awk '/^VmHWM:/ { print $2 }' "/proc/$LISTEN_PID/status")
stop_listener
RSS_STORED=$(wc -l <"$WORK/rss.jsonl")
RSS_ANSWERED=$(awk '/^answered_2xx:/ { print $2 }' "$WORK/rss.txt")
echo "VmRSS at start ${RSS_START} KiB, after ${RSS_AFTER} KiB, peak (VmHWM) ${RSS_PEAK} KiB; answered $RSS_ANSWERED, stored $RSS_STORED"

# ------------------------------------------------------------ 4. start-up
say "4. start to listening: spawn, poll connect every 0.2 ms; 20 runs"
"$LOADGEN" startup --bin "$BIN" --runs 20 --secret "$SECRET" | tee "$WORK/startup.txt"
STARTUP=$(awk '/^startup_median_ms:/ { print $2 }' "$WORK/startup.txt")

verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? v >= t : v <= t; print ok ? "met" : "MISSED" }'; }
say "summary"
cat <<EOF
machine: $(nproc) cores, $MACHINE_CPU, $MACHINE_RAM RAM, $MACHINE_DATE
| figure | measured | target | |
|---|---|---|---|
| bare hyper, median of $ROUNDS × ${DURATION}s | $BARE_RPS req/s, p50 $BARE_P50 ms, p99 $BARE_P99 ms, $BARE_CPU µs CPU/req | | |
| listen --json --secret --store | $LISTEN_RPS req/s, p50 $LISTEN_P50 ms, p99 $LISTEN_P99 ms, $LISTEN_CPU µs CPU/req; $VALID_TOTAL stored, all valid | | |
| throughput ratio listen / bare | $RATIO | ≥ 0.8 | $(verdict "$RATIO" 0.8 min) |
| latency at 1,000 req/s (open loop, ${RATE_SECONDS}s, $RATE_ANSWERED answered) | p50 $RATE_P50 ms, p99 $RATE_P99 ms, p99.9 $RATE_P999 ms, max $RATE_MAX ms | p99 ≤ 2 ms | $(verdict "$RATE_P99" 2 max) |
| RSS after 100,000 deliveries | $((RSS_AFTER / 1024)) MiB (peak $((RSS_PEAK / 1024)) MiB, start $((RSS_START / 1024)) MiB); $RSS_STORED stored | ≤ 64 MiB | $(verdict "$((RSS_AFTER / 1024))" 64 max) |
| start to listening, median of 20 | $STARTUP ms | ≤ 100 ms | $(verdict "$STARTUP" 100 max) |
EOF
