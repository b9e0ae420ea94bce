#!/usr/bin/env bash
# The shared store's figures (README "A shared history for a team",
# docs/how-it-scales.md), measured beside the file store in one run (not
# part of CI):
#
#   1. Deliveries per second and CPU per delivery, pinned as
#      scripts/bench-load.sh pins: `listen --json --secret` on SERVER_CORE,
#      wrk -t1 -cCONNECTIONS with distinct signed 1 KiB deliveries on
#      LOAD_CORE; rounds alternate the file store (`--store FILE`) and
#      PostgreSQL (`--store postgres://…`, a private cluster started here).
#      PostgreSQL is a third program on a 2-core machine, so each of its
#      runs is made with each placement in PG_PLACEMENTS:
#        server  PostgreSQL on the listener's core: the server side of the
#                run (listener and database) has one core, as the file
#                store's listener and its page cache do;
#        any     PostgreSQL free to run on either core, as a database
#                that is not the listener's runs on cores of its own.
#      CPU per delivery, counted as bench-load.sh counts it, in a steady
#      window from WINDOW_MARGIN seconds after wrk's clock starts to
#      WINDOW_MARGIN before it stops: the listener's CPU in it (schedstat's
#      nanoseconds, all its threads), and for PostgreSQL also the server's
#      own (the postmaster and every process under it, the same way), over
#      the deliveries stored in it (the ids the sequence gave, or the
#      lines the file gained). Nothing lost: the rows (or the
#      file's records) are counted against wrk's 2xx answers, and must be
#      at least as many. Rows a commit: the rows over the fresh database's
#      committed transactions, so the size of the listener's batches.
#   2. Latency at a fixed RATE deliveries/s, open loop from each request's
#      intended send time (examples/loadgen.rs), pinned as in 1, file store
#      and PostgreSQL (each placement) alternating: p50, p99, p99.9.
#
# The PostgreSQL cluster is initdb'd in a temporary folder (as `nobody`
# when run as root: initdb refuses root), listens on a free loopback port
# only, trusts loopback connections (it lives only as long as this script),
# and keeps PostgreSQL's defaults otherwise: fsync and synchronous_commit
# on, so a commit is a WAL flush, as in production. It is stopped and
# removed at the end.
#
# Usage: scripts/bench-postgres.sh       (about 6 minutes on 2 cores)
# Knobs (environment, defaults in brackets):
#   ROUNDS [3] DURATION [10] CONNECTIONS [32] WINDOW_MARGIN [0.5]  section 1
#   PG_PLACEMENTS ["server any"]  where PostgreSQL runs (see 1)
#   PG_CONNECTIONS ["256 512"]  wrk -c for the PostgreSQL runs: a batch
#                          holds what is in flight while the last one
#                          commits, so deliveries/s grow with concurrency
#                          until the core is full (the file store's runs
#                          use CONNECTIONS)
#   RATE [1000] RATE_ROUNDS [2] RATE_SECONDS [15]  section 2
#   SERVER_CORE [0] LOAD_CORE [1]
#   PG_BIN [found: initdb on PATH, else /usr/lib/postgresql/*/bin]
#   PG_OPTIONS [unset]     more `postgres` options, e.g. "-c fsync=off" to
#                          tell the disk's share of the latency from the rest
# Needs: cargo, taskset, wrk (installed with apt-get when missing), PostgreSQL's server programs and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WINDOW_MARGIN=${WINDOW_MARGIN:-0.5}
PG_CONNECTIONS=${PG_CONNECTIONS:-256 512}
PG_PLACEMENTS=${PG_PLACEMENTS:-server any}
RATE=${RATE:-1000}
RATE_ROUNDS=${RATE_ROUNDS:-2}
RATE_SECONDS=${RATE_SECONDS:-15}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
SECRET=whsec_BenchmarkSecretNotForProduction0000
# Distinct deliveries a round: wrk's lines come round again past them,
# which the listener takes for replays (the file store has done 65,000/s
# here).
LINES=$((80000 * DURATION))

say() { printf '\n==> %s\n' "$*" >&2; }

PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-bench-pg.XXXXXX")
chmod 755 "$WORK"
PG_PID=""
PG_DATA="$WORK/pgdata"
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # The postmaster itself (PG_PID is the shell that started it), by the
  # pid it wrote; a fast shutdown.
  if [ -n "$PG_PID" ] && [ -e "$PG_DATA/postmaster.pid" ]; then
    kill -INT "$(head -1 "$PG_DATA/postmaster.pid")" 2>/dev/null || true
  fi
  if [ -n "$PG_PID" ]; then
    for _ in $(seq 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --------------------------------------------------------------- PostgreSQL
find_pg_bin() {
  local initdb
  if initdb=$(command -v initdb) && [ -x "$(dirname "$(readlink -f "$initdb")")/postgres" ]; then
    dirname "$(readlink -f "$initdb")"
    return
  fi
  find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1
}
PG_BIN=${PG_BIN:-$(find_pg_bin)}
if ! [ -x "$PG_BIN/initdb" ]; then
  echo "no PostgreSQL server programs found (apt-get install postgresql, or set PG_BIN)" >&2
  exit 2
fi
# As root, PostgreSQL's programs run as nobody.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
  else
    "$@"
  fi
}
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$PG_DATA"
[ "$(id -u)" -eq 0 ] && chown 65534:65534 "$PG_DATA"
chmod 700 "$PG_DATA"
say "PostgreSQL: $("$PG_BIN/postgres" --version) on 127.0.0.1:$PG_PORT, placed as each run says ($PG_PLACEMENTS)"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U bench --auth=trust --no-instructions >"$WORK/initdb.log" 2>&1 || {
  cat "$WORK/initdb.log" >&2
  exit 1
}
as_pg taskset -c "$SERVER_CORE" "$PG_BIN/postgres" -D "$PG_DATA" -p "$PG_PORT" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories= ${PG_OPTIONS:-} >"$WORK/pg.log" 2>&1 &
PG_PID=$!
psql_bench() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U bench "$@"; }
for _ in $(seq 200); do
  psql_bench -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
psql_bench -d postgres -c 'SELECT 1' >/dev/null || {
  cat "$WORK/pg.log" >&2
  exit 1
}
# A fresh database named bench_$1; prints its URL.
fresh_db() {
  psql_bench -d postgres -c "CREATE DATABASE bench_$1" >/dev/null
  echo "postgres://bench@127.0.0.1:$PG_PORT/bench_$1"
}
rows_in() { psql_bench -d "${1##*/}" -c 'SELECT count(*) FROM danube_hooks.deliveries'; }
commits_in() { psql_bench -d "${1##*/}" -c 'SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()'; }
# The ids the sequence has given so far in store $1's database: a delivery
# each, while none fails.
ids_given() { psql_bench -d "${1##*/}" -c 'SELECT last_value FROM danube_hooks.delivery_id'; }
# CPU time so far, in nanoseconds, of the postmaster and every process
# under it (the postmaster is the first line of postmaster.pid: $PG_PID is
# the shell that started it), and of those that have ended (an autovacuum
# worker: the postmaster's cutime and cstime, in clock ticks).
pg_cpu_ns() {
  local total pid master
  master=$(head -1 "$PG_DATA/postmaster.pid")
  total=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($16 + $17) * 1e9 / hz }' "/proc/$master/stat")
  for pid in "$master" $(ps -o pid= --ppid "$master"); do
    total=$((total + $(cpu_ns "$pid")))
  done
  echo "$total"
}

# Put PostgreSQL (the postmaster, every process under it, and so every
# backend it starts from now on) on the cores placement $1 names.
pg_place() {
  local cores pid master
  case $1 in
    server) cores=$SERVER_CORE ;;
    any) cores=$SERVER_CORE,$LOAD_CORE ;;
    *) echo "PG_PLACEMENTS: unknown placement '$1' (server or any)" >&2; exit 2 ;;
  esac
  master=$(head -1 "$PG_DATA/postmaster.pid")
  for pid in "$master" $(ps -o pid= --ppid "$master"); do
    taskset -a -p -c "$cores" "$pid" >/dev/null 2>&1 || true
  done
}

# ------------------------------------------------------------------- tools
need_wrk
say "building the release binary and the bench tools (cargo build --release)"
cargo build --release --quiet --bin danube-hooks --example loadgen
BIN=target/release/danube-hooks
LOADGEN=target/release/examples/loadgen
LUA=scripts/wrk-deliveries.lua
say "machine"
echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"


# Start `listen` on the server core with store $1; sets LISTEN_PID,
# LISTEN_ADDR. A file store does not rotate within the run, so the steady
# window's count (one file's lines) is every delivery in it.
start_listener() {
  local err="$WORK/listen.err" unrotated=()
  case $1 in
    postgres://*) ;;
    *) unrotated=(--store-max "$(store_max_mib "$LINES")MiB") ;;
  esac
  rm -f "$err"
  taskset -c "$SERVER_CORE" "$BIN" listen --port 0 --json --secret "$SECRET" --store "$1" \
    "${unrotated[@]}" >/dev/null 2>"$err" &
  LISTEN_PID=$!
  PIDS+=("$LISTEN_PID")
  LISTEN_ADDR=$(listen_address "$err") || exit 1
}

# One sample of the steady window: "listener_ns postgres_ns mark", the
# mark counting the deliveries stored so far: the ids the sequence has
# given (store $1 a database), or the store file's size in bytes (a file).
sample() {
  case $1 in
    postgres://*) echo "$(cpu_ns "$LISTEN_PID") $(pg_cpu_ns) $(ids_given "$1")" ;;
    *) echo "$(cpu_ns "$LISTEN_PID") 0 $(stat -c %s "$1")" ;;
  esac
}

# The steady window of one wrk run (as bench-load.sh's): from
# WINDOW_MARGIN seconds after wrk's clock starts to WINDOW_MARGIN before it
# stops, sampled at both ends into file $2 for store $1. Runs in the
# background on the load core, so its own forks do not land on the
# listener's.
sample_window() {
  taskset -cp "$LOAD_CORE" "$BASHPID" >/dev/null
  await_wrk_ready "$WORK/deliveries.txt.ready" || return 1
  sleep "$WINDOW_MARGIN"
  sample "$1" >"$2"
  sleep "$(awk -v d="$DURATION" -v m="$WINDOW_MARGIN" 'BEGIN { print d - 2 * m }')"
  sample "$1" >>"$2"
}

# One pinned wrk run with $2 connections against store $1 (a file or a
# URL); prints "rps p50 p99 answered_2xx non_2xx stored listener_us pg_us
# rows_a_commit" (the last two 0 for the file). CPU per delivery is
# counted in the steady window: the CPU spent in it over the deliveries
# stored in it.
run_one() {
  local store=$1 conns=$2 out="$WORK/wrk.out" win="$WORK/window.txt" sampler stored commits=0 in_window
  start_listener "$store"
  rm -f "$WORK/deliveries.txt.ready" "$win"
  sample_window "$store" "$win" &
  sampler=$!
  taskset -c "$LOAD_CORE" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$LUA" \
    "http://$LISTEN_ADDR/" -- "$WORK/deliveries.txt" 1 "$conns" >"$out" 2>&1
  wait "$sampler" || exit 1
  stop_started "$LISTEN_PID"
  local cpu0 pg0 m0 cpu1 pg1 m1
  { read -r cpu0 pg0 m0 && read -r cpu1 pg1 m1; } <"$win" || {
    echo "the steady window was not sampled twice ($win)" >&2
    exit 1
  }
  case $store in
    postgres://*)
      stored=$(rows_in "$store")
      in_window=$((m1 - m0))
      # The database is fresh: its commits are the listener's batches
      # (and a few of its start's), flushed to the statistics as its
      # connections closed.
      commits=$(commits_in "$store")
      ;;
    *)
      stored=$("$BIN" log --store "$store" | wc -l)
      in_window=$(lines_between "$store" "$m0" "$m1")
      ;;
  esac
  awk -v stored="$stored" -v commits="$commits" -v n_win="$in_window" \
    -v cpu=$((cpu1 - cpu0)) -v pg=$((pg1 - pg0)) '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    END {
      ok = n - bad
      w = n_win > 0 ? n_win : 1
      printf "%.0f %.3f %.3f %d %d %d %.2f %.2f %.0f\n", rps, p50, p99, ok, bad, stored,
        cpu / 1000 / w, pg / 1000 / w, commits ? stored / commits : 0
    }' "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$1" | median; }

# ------------------------------------------------------ 1. pinned throughput
say "1. pinned: listener on core $SERVER_CORE, wrk -t1 on core $LOAD_CORE, PostgreSQL placed: $PG_PLACEMENTS (file: -c$CONNECTIONS; PostgreSQL: -c$PG_CONNECTIONS); $ROUNDS rounds of ${DURATION}s each"
PG_KINDS=$(for place in $PG_PLACEMENTS; do for c in $PG_CONNECTIONS; do echo "pg-$place-$c"; done; done)
: >"$WORK/t-file.txt"
for kind in $PG_KINDS; do : >"$WORK/t-$kind.txt"; done
for round in $(seq "$ROUNDS"); do
  "$LOADGEN" deliveries --secret "$SECRET" --count "$LINES" --size 1024 --out "$WORK/deliveries.txt" >/dev/null
  for kind in file $PG_KINDS; do
    if [ "$kind" = file ]; then
      store="$WORK/store-$round.jsonl"
      conns=$CONNECTIONS
    else
      place=${kind#pg-}
      place=${place%-*}
      pg_place "$place"
      store=$(fresh_db "t${round}_${kind//-/_}")
      conns=${kind##*-}
    fi
    run_one "$store" "$conns" >"$WORK/res.txt"
    read -r rps p50 p99 ok bad stored us pg_us per_commit <"$WORK/res.txt"
    printf 'round %s  %-15s -c%-4s %6s deliveries/s  p50 %s ms  p99 %s ms  listener %s µs CPU/delivery%s  [2xx %s, other %s, stored %s]\n' \
      "$round" "$kind:" "$conns" "$rps" "$p50" "$p99" "$us" \
      "$([ "$kind" = file ] || echo ", PostgreSQL $pg_us µs, $per_commit rows a commit")" "$ok" "$bad" "$stored"
    if [ "$stored" -lt "$ok" ]; then
      echo "LOST: $ok answered 2xx but only $stored stored" >&2
      exit 1
    fi
    echo "$rps $p50 $p99 $us $pg_us $bad $per_commit" >>"$WORK/t-$kind.txt"
    rm -f "$WORK"/store-*.jsonl "$WORK"/store-*.jsonl.ids
  done
done

# ----------------------------------------------------- 2. latency at RATE/s
say "2. latency at a fixed $RATE deliveries/s, pinned as in 1: $RATE_ROUNDS rounds of ${RATE_SECONDS}s, open loop"
RATE_KINDS=$(for place in $PG_PLACEMENTS; do echo "pg-$place"; done)
for kind in file $RATE_KINDS; do : >"$WORK/r-$kind.txt"; done
for round in $(seq "$RATE_ROUNDS"); do
  for kind in file $RATE_KINDS; do
    if [ "$kind" = file ]; then
      store="$WORK/rate-$round.jsonl"
    else
      pg_place "${kind#pg-}"
      store=$(fresh_db "r${round}_${kind//-/_}")
    fi
    start_listener "$store"
    taskset -c "$LOAD_CORE" "$LOADGEN" run --addr "$LISTEN_ADDR" --secret "$SECRET" --rate "$RATE" \
      --duration "$RATE_SECONDS" --connections 16 >"$WORK/rate.txt"
    stop_started "$LISTEN_PID"
    read -r p50 p99 p999 ok other <<<"$(awk '/^p50_ms:/ { a = $2 } /^p99_ms:/ { b = $2 } /^p999_ms:/ { c = $2 }
      /^answered_2xx:/ { n = $2 } /^answered_other:/ { o = $2 } END { print a, b, c, n, o }' "$WORK/rate.txt")"
    echo "round $round  $kind: p50 $p50 ms  p99 $p99 ms  p99.9 $p999 ms  [2xx $ok, other $other]"
    echo "$p50 $p99 $p999" >>"$WORK/r-$kind.txt"
    rm -f "$WORK"/rate-*.jsonl "$WORK"/rate-*.jsonl.ids
  done
done

# A table row of section 1's medians for $1, with section 2's ($2) when given.
row() {
  local f="$WORK/t-$1.txt" r="${2:+$WORK/r-$2.txt}"
  echo "$(col "$f" 1) | $(col "$f" 4) µs | $([ "$1" = file ] && echo – || echo "$(col "$f" 5) µs") | $([ "$1" = file ] && echo – || col "$f" 7) | $(col "$f" 2) / $(col "$f" 3) ms | $([ -n "$r" ] && echo "$(col "$r" 1) / $(col "$r" 2) / $(col "$r" 3) ms") |"
}
say "summary (medians)"
cat <<EOF
Machine: $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $("$PG_BIN/postgres" --version)${PG_OPTIONS:+, $PG_OPTIONS}.
Listener on core $SERVER_CORE, wrk on core $LOAD_CORE; PostgreSQL on the listener's core (server) or on either core (any).

| store | wrk -c | deliveries/s | listener CPU/delivery | PostgreSQL CPU/delivery | rows a commit | p50 / p99 under load | p50 / p99 / p99.9 at $RATE/s |
|---|---|---|---|---|---|---|---|
| file | $CONNECTIONS | $(row file file)
$(for place in $PG_PLACEMENTS; do for c in $PG_CONNECTIONS; do echo "| PostgreSQL, $place | $c | $(row "pg-$place-$c" "$([ "$c" = "${PG_CONNECTIONS%% *}" ] && echo "pg-$place")")"; done; done)
EOF
