-- Scenario: retry storm. CI jobs retry aggressively: half the requests are exact repeats of runs already sent
-- (200 duplicate: true), half are new runs (201). Any other status is unexpected.
local token = os.getenv("TOKEN") or error("set TOKEN to an ingest token")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, threads = 0, 0, {}

function setup(thread) thread:set("id", #threads); table.insert(threads, thread) end

function init(args)
  prefix = string.format("rs%d-%d-", os.time(), math.random(1, 1e9))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local function body(n)
  return string.format('{"run_id":"%s%d","status":"passed","duration_ms":%d,"timestamp":"2026-01-12T10:00:00Z"}', prefix, n, n % 1000)
end

function request()
  counter = counter + 1
  if counter > 10 and counter % 2 == 0 then
    return wrk.format(nil, "/v1/ingest", nil, body(math.random(1, counter - 10))) -- an earlier run, same content
  end
  return wrk.format(nil, "/v1/ingest", nil, body(counter))
end

function response(status) if status ~= 201 and status ~= 200 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
end
