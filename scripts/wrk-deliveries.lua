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
--
-- No `response()` callback: wrk then hands every answer's headers to Lua
-- as a fresh table, and the garbage it makes sets off collections that walk
-- the whole table of requests above. That stalled wrk's threads for
-- hundreds of milliseconds at a time: p99 of 200 to 750 ms against the
-- listener (whose answers carry five headers) and 5 ms without the
-- callback, at the same req/s. wrk counts answers of 400 and up by itself
-- ("Non-2xx or 3xx responses").
--
-- The threads start sending together. wrk runs each thread's `init` on its
-- main thread, one after the other, and starts a thread as soon as its own
-- `init` is done, but starts the clock only after the last: thread 0 used
-- to send alone for the seconds the others spent reading the file, and
-- wrk divided all of it by the run's duration, which overstated req/s by
-- 20 to 40%. Now the last `init` leaves FILE.ready behind and no thread
-- sends before it exists.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  ready_flag = path .. ".ready"
  if id == 0 then
    os.remove(ready_flag) -- a previous run's
  end
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
  share, sent = #requests, 0
  if id == nthreads - 1 then
    assert(io.open(ready_flag, "w")):close()
  end
end

-- Hold this thread until every thread's `init` is done (see the top).
local function wait_for_the_others()
  while true do
    local flag = io.open(ready_flag, "r")
    if flag then
      flag:close()
      return
    end
    os.execute("sleep 0.01")
  end
end

-- wrk calls thread 0's `request` once on its main thread, between that
-- thread's `init` and the next one's, to check the script: that call must
-- not wait.
local function first_real_request()
  return sent == (id == 0 and 1 or 0)
end

function request()
  if first_real_request() then
    wait_for_the_others()
  end
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end

function done(summary, latency, requests)
  local repeats = 0
  for _, thread in ipairs(threads) do
    local sent, share = thread:get("sent"), thread:get("share")
    if sent > share then
      repeats = repeats + sent - share
    end
  end
  io.write(string.format("lua_repeats: %d\n", repeats))
end
