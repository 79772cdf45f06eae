-- Scenario: mixed ingest and history reads. 80% new runs (201), 15% first page of history and 5% 7-day stats
-- (200), all with the same project token, so reads and the batch writer share the database.
local token = os.getenv("TOKEN") or error("set TOKEN to an ingest token")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, threads = 0, 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("mx%d-%d-", os.time(), math.random(1, 1e9))
  -- wrk.format uses the headers it is given instead of wrk.headers, so each request names all of its own.
  read_headers = { ["Authorization"] = "Bearer " .. token }
  write_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local pick = counter % 20
  if pick < 3 then
    return wrk.format("GET", "/v1/runs?limit=50", read_headers, nil)
  elseif pick == 3 then
    return wrk.format("GET", "/v1/stats?window=7d", read_headers, nil)
  end
  local b = string.format('{"run_id":"%s%d","status":"passed","duration_ms":%d,"timestamp":"2026-01-12T10:00:00Z","branch":"main"}',
    prefix, counter, counter % 600000)
  return wrk.format("POST", "/v1/ingest", write_headers, b)
end

function response(status) if status ~= 201 and status ~= 200 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
end
