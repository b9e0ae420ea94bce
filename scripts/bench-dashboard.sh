#!/usr/bin/env bash
# SPEC §10: with the dashboard open, 5,000 deliveries a
# second leave the listener's CPU per delivery within 10% of headless.
#
# Each round starts `danube-hooks listen --secret S --store F` twice, pinned
# to core 0 (taskset): once inside a real terminal (a detached tmux session
# of 160x48 on a private tmux server, so stdout is a TTY and the dashboard
# opens), once headless (stdout to a file: the plain line printer). Each is
# driven by `loadgen run --rate 5000 --duration 10 --connections 16` pinned
# to core 1. The listener's CPU time (utime + stime of /proc/PID/stat) over
# the run, divided by the deliveries answered, is its CPU per delivery.
# Rounds alternate the two; medians are compared (target: ratio <= 1.10).
#
# Usage: scripts/bench-dashboard.sh          (about 1.5 minutes)
# Knobs (environment): ROUNDS=3 RATE=5000 DURATION=10 CONNECTIONS=16
#   BIN=target/release/danube-hooks (another build of listen, for an A/B)
#   BUILD=1 (0: use the binaries already built)
# Needs: cargo, tmux, taskset, and 2 cores.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
BUILD=${BUILD:-1}
SECRET=whsec_BenchmarkSecretNotForProduction0000

say() { printf '\n==> %s\n' "$*" >&2; }

for tool in tmux taskset; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench-dashboard: needs $tool" >&2
    exit 1
  }
done
if [ "$(nproc)" -lt 2 ]; then
  echo "bench-dashboard: needs 2 cores (listener on core 0, load on core 1)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-dash.XXXXXX")
# A tmux server of our own for each run (its own socket), so no session of
# the user's is touched and a server still going away is never reused;
# killing it ends only what this script started in it.
TMUX_SOCKET=""
RUNS=0
# Listeners started headless and not yet waited for: only these are killed.
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$TMUX_SOCKET" ] || tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A command that fails ends the run (set -e): say which, rather than stop
# without a word (one run on 2026-12-01 ended so after its fifth listener).
trap 'echo "bench-dashboard: stopped by a failed command at line $LINENO (status $?)" >&2' ERR

if [ "$BUILD" = 1 ]; then
  say "building the release binary and loadgen (cargo build --release)"
  cargo build --release --quiet --bin danube-hooks --example loadgen
fi
BIN=${BIN:-target/release/danube-hooks}
LOADGEN=target/release/examples/loadgen

say "machine"
echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); date: $(date -u +%Y-%m-%dT%H:%MZ); kernel: $(uname -r)"
echo "binary: $BIN ($(stat -c %y "$BIN" | cut -d. -f1))"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Start `listen` in a terminal (tmux) or headless; sets PID and ADDR.
start() {
  local how=$1 err="$WORK/$1.err" store="$WORK/$1.jsonl"
  rm -f "$err" "$store" "$WORK/danube-hooks.log"
  local cmd=(taskset -c 0 "$BIN" listen --port 0 --secret "$SECRET" --store "$store")
  if [ "$how" = dashboard ]; then
    RUNS=$((RUNS + 1))
    TMUX_SOCKET="danube-hooks-bench-$$-$RUNS"
    # exec: the pane's process is the listener itself.
    tmux -L "$TMUX_SOCKET" new-session -d -s dash -x 160 -y 48 \
      "exec $(printf '%q ' "${cmd[@]}") 2>$(printf '%q' "$err")"
    PID=$(tmux -L "$TMUX_SOCKET" list-panes -t dash -F '#{pane_pid}')
  else
    "${cmd[@]}" >"$WORK/headless.out" 2>"$err" &
    PID=$!
    PIDS+=("$PID")
  fi
  ADDR=$(listen_address "$err") || exit 1
}

# Wait up to $2 tenths of a second for process $1 to end.
gone_within() {
  for _ in $(seq "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$1" 2>/dev/null
}

# SIGTERM (the listener syncs its store and gives the terminal back); once
# more after 10 s, and SIGKILL 5 s after that, said on stderr.
stop() {
  local how=$1
  kill -TERM "$PID" 2>/dev/null || true
  if ! gone_within "$PID" 100; then
    echo "bench-dashboard: $how listener $PID still up 10 s after SIGTERM; sending it again" >&2
    kill -TERM "$PID" 2>/dev/null || true
    gone_within "$PID" 50 || kill -KILL "$PID" 2>/dev/null || true
  fi
  if [ "$how" = dashboard ]; then
    tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true
    TMUX_SOCKET=""
  else
    wait "$PID" 2>/dev/null || true
    PIDS=()
  fi
}

# One run against a fresh listener; prints "us_per_delivery answered cpu_s busy_pct".
run() {
  local how=$1 out="$WORK/load.out" before after
  start "$how"
  # Let the dashboard draw its first frame before the clock starts.
  sleep 0.5
  before=$(cpu_ticks "$PID")
  taskset -c 1 "$LOADGEN" run --addr "$ADDR" --secret "$SECRET" --rate "$RATE" \
    --duration "$DURATION" --connections "$CONNECTIONS" >"$out"
  after=$(cpu_ticks "$PID")
  stop "$how"
  awk -v ticks=$((after - before)) -v hz="$TICKS" '
    /^answered:/ { n = $2 }
    /^elapsed_s:/ { s = $2 }
    /^errors:/ { e = $2 }
    END { printf "%.2f %d %.2f %.0f %d\n", ticks * 1e6 / hz / n, n, ticks / hz, 100 * ticks / hz / s, e }
  ' "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

say "$ROUNDS rounds, alternating: loadgen --rate $RATE --duration $DURATION --connections $CONNECTIONS (core 1) against listen --secret --store (core 0)"
: >"$WORK/dashboard.txt"
: >"$WORK/headless.txt"
for round in $(seq "$ROUNDS"); do
  # Which goes first alternates too, so neither always runs on a warmer machine.
  if [ $((round % 2)) = 1 ]; then order="dashboard headless"; else order="headless dashboard"; fi
  for how in $order; do
    # Not in a subshell: start and stop keep their state.
    run "$how" >"$WORK/run.txt"
    read -r us answered cpu busy errors <"$WORK/run.txt"
    printf 'round %d  %-9s  %6.2f µs/delivery  (answered %d, errors %d, cpu %.2f s, core busy %d%%)\n' \
      "$round" "$how" "$us" "$answered" "$errors" "$cpu" "$busy"
    echo "$us" >>"$WORK/$how.txt"
  done
done

DASH=$(median <"$WORK/dashboard.txt")
HEAD=$(median <"$WORK/headless.txt")
spread() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
say "result"
echo "dashboard: median $DASH µs/delivery (rounds $(spread "$WORK/dashboard.txt"))"
echo "headless:  median $HEAD µs/delivery (rounds $(spread "$WORK/headless.txt"))"
awk -v d="$DASH" -v h="$HEAD" 'BEGIN {
  r = d / h
  printf "ratio dashboard / headless: %.3f (%+.1f%%)\n", r, 100 * (r - 1)
  if (r <= 1.10) print "verdict: PASS (within 10% of headless)"
  else print "verdict: FAIL (more than 10% over headless)"
}'
