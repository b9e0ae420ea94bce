#!/usr/bin/env bash
# SPEC §15 / README "Query language": `log --query` scans a 1 GiB store
# with a selective query at >= 200 MB/s, in constant memory.
#
# Writes a store of SIZE_MB (default 1024) in a temp dir: records as the
# listener writes them (fixtures/store/example.jsonl's first line as the
# template), each with a ~1 KiB JSON body, the five event types in turn and
# ten tool names, so `event:tool.execution.failed data.tool_name=Slack`
# matches one record in 50. Then runs the release binary's
# `log --query Q --json` over it ROUNDS times (stdout to /dev/null; the
# page cache is warm after the first round) and prints, per query, the best
# and median MB/s (store bytes / wall time) and the peak RSS.
#
# Queries measured:
#   selective: event:tool.execution.failed data.tool_name=Slack
#     (the line check skips 4 records in 5 unparsed; 1 in 5 is parsed and
#     its body looked into)
#   body only: data.tool_name=Slack
#     (no byte check applies: every record is parsed, every body too)
#
# Usage: scripts/bench-query.sh          (about a minute, and SIZE_MB of disk)
# Knobs (environment): SIZE_MB=1024 ROUNDS=3 BUILD=1 (0: use the binary built)
#   BIN=target/release/danube-hooks
# Needs: cargo, python3 (it writes the store, runs the rounds, reads the peak RSS from /proc).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
BIN=${BIN:-target/release/danube-hooks}

command -v python3 >/dev/null 2>&1 || {
  echo "bench-query: needs python3" >&2
  exit 1
}
if [ "$BUILD" = 1 ]; then
  cargo build --release --bin danube-hooks >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/danube-hooks-query.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STORE="$WORK/deliveries.jsonl"

python3 - "$STORE" "$SIZE_MB" fixtures/store/example.jsonl "$BIN" "$ROUNDS" <<'PY'
import base64, json, os, statistics, subprocess, sys, threading, time

store, size_mb, template_path, binary, rounds = sys.argv[1:6]
size = int(size_mb) * 1024 * 1024
rounds = int(rounds)

with open(template_path) as f:
    template = json.loads(f.readline())
events = ["tool.execution.completed", "tool.execution.failed", "workflow.completed",
          "workflow.failed", "agent.spend.limit_approaching"]
tools = ["Gmail - Send Email", "Slack", "Notion", "GitHub", "Linear", "Jira",
         "Stripe", "Twilio", "Calendar", "Drive"]

# The line as the listener writes it: compact, `{"id":N,` first, the body
# in base64. The per-record parts are spliced into a fixed template.
head, rest = json.dumps(template, separators=(",", ":"), ensure_ascii=False).split(',"received_at"', 1)
rest = ',"received_at"' + rest
b64_field = '"body_b64":"' + template["body_b64"] + '"'
event_field = '"event":"' + template["event"] + '"'
assert b64_field in rest and event_field in rest
written = 0
n = 0
with open(store, "w") as out:
    lines = []
    while written < size:
        n += 1
        event = events[n % 5]
        body = {"event": event, "timestamp": "2026-11-23T09:14:07.%06dZ" % (n % 1000000),
                "data": {"tool_id": "id-%d" % n, "tool_name": tools[(n // 5) % 10],
                         "status": "failed" if event.endswith("failed") else "success",
                         "execution_time": (n % 5000) / 1000, "error": None,
                         "note": "x" * 820}}
        raw = json.dumps(body, separators=(",", ":")).encode()
        line = ('{"id":%d' % n) + rest.replace(
            b64_field, '"body_b64":"' + base64.b64encode(raw).decode() + '"').replace(
            event_field, '"event":"' + event + '"').replace(
            '"body_size":%d' % template["body_size"], '"body_size":%d' % len(raw)) + "\n"
        lines.append(line)
        written += len(line.encode())
        if len(lines) >= 10000:
            out.write("".join(lines))
            lines = []
    out.write("".join(lines))
store_bytes = os.path.getsize(store)
print("store: %d records, %.0f MB (%d bytes), ~%d bytes a record"
      % (n, store_bytes / 1e6, store_bytes, store_bytes // n))

queries = [("selective", "event:tool.execution.failed data.tool_name=Slack", n // 50),
           ("body only", "data.tool_name=Slack", n // 10)]
for name, query, expect in queries:
    rates, peaks, shown = [], [], None
    for _ in range(rounds + 1):  # the first round warms the page cache
        start = time.monotonic()
        proc = subprocess.Popen([binary, "log", "--json", "--store", store, "--query", query],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # The child's own high-water mark, read while it runs: its rusage
        # would count what python held when it forked (Linux keeps the
        # peak across exec).
        peak = [0]

        def watch(pid=proc.pid):
            while proc.poll() is None:
                try:
                    with open("/proc/%d/status" % pid) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                peak[0] = max(peak[0], int(line.split()[1]))
                except OSError:
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        count = sum(1 for _ in proc.stdout)
        status = proc.wait()
        elapsed = time.monotonic() - start
        watcher.join()
        assert status == 0, status
        shown = count
        rates.append(store_bytes / 1e6 / elapsed)
        peaks.append(peak[0])
    rates = rates[1:]
    print("%-9s  --query '%s': %d shown (about %d expected); best %.0f MB/s, median %.0f MB/s; "
          "peak RSS %d KiB"
          % (name, query, shown, expect, max(rates), statistics.median(rates), max(peaks)))
PY
