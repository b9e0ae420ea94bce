# shellcheck shell=bash
# Sourced by the bench and soak scripts: what they all need.

# The address a server started in the background prints to file $1 (the
# sed expression $2 picks it out), once it has: printed on stdout within
# $3 seconds (10 unless given), else status 1. The file may not exist yet when this starts: the
# background process makes its own redirection, after the script has gone
# on, and reading a missing file must not end a `set -e` script (it ended
# one run of bench-dashboard.sh after its fifth listener).
wait_for_address() {
  local file=$1 pick=$2 seconds=${3:-10} address=""
  for _ in $(seq $((seconds * 20))); do
    if [ -e "$file" ]; then
      address=$(sed -n "$pick" "$file")
      if [ -n "$address" ]; then
        echo "$address"
        return 0
      fi
    fi
    sleep 0.05
  done
  return 1
}

# The address `danube-hooks listen` started in the background gives in
# its banner on stderr, which goes to file $1: as `wait_for_address`; when
# it does not come, says so with what the listener wrote, status 1.
listen_address() {
  local err=$1
  wait_for_address "$err" 's|^danube-hooks listening on http://\([^ ]*\).*|\1|p' && return 0
  echo "listen did not start:" >&2
  cat "$err" >&2 2>/dev/null || true
  return 1
}

# Stop process $1, one the script started and keeps in its PIDS array
# (SIGTERM: a listener syncs its store), and forget it.
stop_started() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() pid
  for pid in "${PIDS[@]}"; do
    [ "$pid" = "$1" ] || keep+=("$pid")
  done
  PIDS=("${keep[@]}")
}

# Install wrk (Debian's package) when it is not on PATH.
need_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  echo "installing wrk (Debian package)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
}

# CPU time of process $1 so far, all its live threads, in nanoseconds.
# (%.0f: mawk's %d stops at 2^31, 2.1 s of CPU.)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# Wait for the ready flag $1 that scripts/wrk-deliveries.lua leaves once
# wrk's threads are loaded and its clock starts; status 1, said, when it
# has not come within 120 s.
await_wrk_ready() {
  local flag=$1
  for _ in $(seq 12000); do
    [ -e "$flag" ] && return 0
    sleep 0.01
  done
  echo "no $flag from the wrk script within 120 s" >&2
  return 1
}

# The `--store-max`, in MiB, for a listener that stores at most $1
# deliveries of 1 KiB in a run: 4 KiB each (a record of one is about
# 2.3 KB), 1 GiB at least, so its store never rotates within the run and
# one file's lines count every delivery.
store_max_mib() {
  awk -v n="$1" 'BEGIN { m = int((n * 4096 + 1048575) / 1048576); print (m > 1024 ? m : 1024) }'
}

# The newlines file $1 gained between its sizes $2 and $3 (bytes): the
# records a store file took in between.
lines_between() {
  dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count=$(($3 - $2)) bs=1M status=none |
    tr -cd '\n' | wc -c
}
