-- wrk script for scripts/bench-load.sh: each request is a distinct signed
-- Danube delivery, read from a file written by `loadgen deliveries`
-- (one per line: <X-Danube-Signature> TAB <body>).
--
-- Usage: wrk -t T -c C -s wrk-deliveries.lua URL -- FILE T C
-- Thread k sends lines k, k+T, k+2T, … in turn. If a run outlasts its
-- share of the file the lines come round again; `lua_repeats` in the
-- summary counts how many were sent a second time, so the script can
-- insist on 0 for the listener (a repeat is a replay to it, not a new
-- delivery).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  requests = {}
  local n = 0
  for line in io.lines(path) do
    if n % nthreads == id then
      local tab = line:find("\t", 1, true)
      requests[#requests + 1] = wrk.format("POST", "/webhooks/danube", {
        ["Content-Type"] = "application/json",
        ["X-Danube-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    n = n + 1
  end
  share, sent, not_200 = #requests, 0, 0
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end

function response(status, headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
  end
end

function done(summary, latency, requests)
  local repeats, not_200 = 0, 0
  for _, thread in ipairs(threads) do
    local sent, share = thread:get("sent"), thread:get("share")
    if sent > share then
      repeats = repeats + sent - share
    end
    not_200 = not_200 + thread:get("not_200")
  end
  io.write(string.format("lua_repeats: %d\nlua_not_200: %d\n", repeats, not_200))
end
