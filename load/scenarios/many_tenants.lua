-- Scenario: many tenants. Every request uses the next of N project tokens (TOKENS_FILE, one per line, made by
-- the bench: one org and project each), so the token cache, the per-credential rate limiters and the batch
-- writer see many projects at once. 201 expected.
local path = os.getenv("TOKENS_FILE") or error("set TOKENS_FILE to a file of ingest tokens")
local tokens = {}
for line in io.lines(path) do if #line > 0 then table.insert(tokens, line) end end
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, threads = 0, 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("mt%d-%d-", os.time(), math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local b = string.format('{"run_id":"%s%d","status":"passed","duration_ms":%d,"timestamp":"2026-01-12T10:00:00Z"}', prefix, counter, counter % 1000)
  return wrk.format("POST", "/v1/ingest",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1] }, b)
end

function response(status) if status ~= 201 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
  io.write(string.format("note: %d tenants, each with its own project token\n", #tokens))
end
