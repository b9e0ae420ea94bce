#!/usr/bin/env bash
# README "A shared history for a team": a `dashboard` attached to a shared
# store of 1,000,000 rows opens, its first frame holding its history, within
# 1 s.
#
# A private PostgreSQL cluster (.ci/postgres: initdb in a temporary folder,
# loopback, SCRAM) gets the shared store's tables from the binary's own
# migrations (a listener started on it and stopped), then 1,000,000 rows in
# one INSERT … SELECT from generate_series: each record is a real one (the
# first of fixtures/store/example.jsonl) with its id put in, from two
# listeners.
# Then, ROUNDS times, `danube-hooks dashboard --store …` starts in a real
# terminal (a detached tmux session of 160x48 on a private tmux server), and
# the time from its start until the screen shows the newest row and the
# count of the history read ("10000 earlier") is taken, polling the screen
# every 10 ms. The median is the figure (target: under 1 s).
#
# Usage: scripts/bench-dashboard-pg.sh     (about a minute once built)
# Knobs (environment): ROWS=1000000 ROUNDS=5 BUILD=1 (0: use the binary
#   already built) BIN=target/release/danube-hooks
# Needs: cargo, tmux, python3, PostgreSQL's programs (initdb; .ci/postgres
#   installs Debian's postgresql when missing).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
BUILD=${BUILD:-1}

say() { printf '\n==> %s\n' "$*" >&2; }

command -v tmux >/dev/null 2>&1 || {
  echo "bench-dashboard-pg: needs tmux" >&2
  exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-dash-pg.XXXXXX")
chmod 755 "$WORK"
TMUX_SOCKET="danube-hooks-bench-pg-$$"
cleanup() {
  tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true
  .ci/postgres stop "$WORK/pg" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$BUILD" = 1 ]; then
  say "building the release binary (cargo build --release)"
  cargo build --release --quiet --bin danube-hooks
fi
BIN=$(readlink -f "${BIN:-target/release/danube-hooks}")

say "starting a private PostgreSQL cluster"
eval "$(.ci/postgres start "$WORK/pg" | sed 's/^/export /')"
BASE=${DANUBE_HOOKS_TEST_POSTGRES%/postgres}
URL="$BASE/bench"
psql_in() {
  local db=$1
  shift
  psql -X -q -A -t -v ON_ERROR_STOP=1 "$BASE/$db" "$@"
}
psql_in postgres -c "CREATE DATABASE bench"

say "making the schema as a listener does (its migrations), then filling it with $ROWS rows"
"$BIN" listen --no-tui --port 0 --store "$URL" >/dev/null 2>"$WORK/listen.err" &
migrating=$!
listen_address "$WORK/listen.err" >/dev/null
kill "$migrating"
wait "$migrating" 2>/dev/null || true
TEMPLATE=$(head -n 1 fixtures/store/example.jsonl | sed 's/^{"id":1,/{"id":@ID@,"listener":"@WHO@",/')
started=$(date +%s.%N)
psql_in bench -v template="$TEMPLATE" -v rows="$ROWS" <<'SQL'
INSERT INTO danube_hooks.deliveries (id, received_at, listener, event, verdict, status, attempt, record)
SELECT g, now() - (:rows - g) * interval '1 ms', who, 'tool.execution.completed', 'valid', 200, 1,
       replace(replace(:'template', '@ID@', g::text), '@WHO@', who)
FROM generate_series(1, :rows) AS g,
     LATERAL (SELECT CASE WHEN g % 2 = 0 THEN 'ann@laptop' ELSE 'bob@ci' END AS who) AS w;
SELECT setval('danube_hooks.delivery_id', :rows) \g /dev/null
VACUUM ANALYZE danube_hooks.deliveries;
SQL
filled=$(date +%s.%N)
printf 'filled %s rows in %.1f s (%s)\n' "$ROWS" "$(awk "BEGIN { print $filled - $started }")" \
  "$(psql_in bench -c "SELECT pg_size_pretty(pg_total_relation_size('danube_hooks.deliveries'))")"

# The screen of the session, as text.
screen() { tmux -L "$TMUX_SOCKET" capture-pane -p -t bench 2>/dev/null || true; }

times=()
for round in $(seq "$ROUNDS"); do
  tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true
  start=$(date +%s%N)
  tmux -L "$TMUX_SOCKET" -f /dev/null new-session -d -s bench -x 160 -y 48 -- \
    env PGPASSWORD="$PGPASSWORD" "$BIN" dashboard --store "$URL"
  opened=""
  for _ in $(seq 1000); do
    s=$(screen)
    if grep -q "#$ROWS " <<<"$s" && grep -q "earlier" <<<"$s"; then
      opened=$(date +%s%N)
      earlier=$(grep -o '[0-9]* earlier' <<<"$s")
      break
    fi
    sleep 0.01
  done
  if [ -z "$opened" ]; then
    echo "round $round: the dashboard did not open within 10 s; its screen:" >&2
    screen >&2
    exit 1
  fi
  ms=$(((opened - start) / 1000000))
  printf 'round %s: first frame with its history (%s) in %s ms\n' "$round" "$earlier" "$ms"
  times+=("$ms")
  tmux -L "$TMUX_SOCKET" send-keys -t bench q
  sleep 0.3
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
printf '\nmedian: %s ms to open on %s rows (target: under 1000 ms)\n' "$median" "$ROWS"
[ "$median" -lt 1000 ]
