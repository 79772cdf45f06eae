-- Scenario: conflict storm. 100 run ids are posted over and over with a random duration, so after the first
-- write of each id nearly every request conflicts (409); the stored run never changes. 201, 200 (the rare
-- identical retry) and 409 are expected; anything else is a failure.
local token = os.getenv("TOKEN") or error("set TOKEN to an ingest token")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
failures, threads = 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("cs%d-%d-", os.time(), math.random(1, 1e9))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  local b = string.format('{"run_id":"%s%d","status":"failed","duration_ms":%d,"timestamp":"2026-01-12T10:00:00Z"}',
    prefix, math.random(0, 99), math.random(0, 1e6))
  return wrk.format(nil, "/v1/ingest", nil, b)
end

function response(status) if status ~= 201 and status ~= 200 and status ~= 409 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
end
