-- Noisy neighbour, the noisy side: one tenant (TOKEN) ingesting flat out, far above its per-token budget.
-- 201 until the budget is spent, then 429 with Retry-After; both are expected, anything else is not.
local token = os.getenv("TOKEN") or error("set TOKEN")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, limited, threads = 0, 0, 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("noisy%d-%d-", os.time(), math.random(1, 1e9))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  return wrk.format(nil, "/v1/ingest", nil,
    string.format('{"run_id":"%s%d","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}', prefix, counter))
end

function response(status)
  if status == 429 then limited = limited + 1 elseif status ~= 201 then failures = failures + 1 end
end

function done(summary)
  local bad, refused = 0, 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0); refused = refused + (t:get("limited") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
  io.write(string.format("note: the noisy tenant got %d 429s in %.0f s\n", refused, summary.duration / 1e6))
end
