-- Noisy neighbour, the quiet side: another tenant (TOKEN) ingesting at a steady pace well under its budget
-- (each connection waits DELAY_MS between requests) while the noisy one is being refused. Every request must
-- get 201: one tenant's limit never costs another tenant anything.
local token = os.getenv("TOKEN") or error("set TOKEN")
local pause = tonumber(os.getenv("DELAY_MS") or "10")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, threads = 0, 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("quiet%d-%d-", os.time(), math.random(1, 1e9))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function delay() return pause end

function request()
  counter = counter + 1
  return wrk.format(nil, "/v1/ingest", nil,
    string.format('{"run_id":"%s%d","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}', prefix, counter))
end

function response(status) if status ~= 201 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
end
