# shellcheck shell=bash
# Sourced by the bench and soak scripts: what they all need.

# The address a server started in the background prints to file $1 (the
# sed expression $2 picks it out), once it has: printed on stdout within
# 10 s, else status 1. The file may not exist yet when this starts: the
# background process makes its own redirection, after the script has gone
# on, and reading a missing file must not end a `set -e` script (it ended
# one run of bench-dashboard.sh after its fifth listener).
wait_for_address() {
  local file=$1 pick=$2 address=""
  for _ in $(seq 200); do
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

# The sed expression for the address in `danube-hooks listen`'s banner.
# shellcheck disable=SC2034 # used by the scripts that source this
LISTEN_BANNER='s|^danube-hooks listening on http://\([^ ]*\).*|\1|p'
