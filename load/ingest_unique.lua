-- Scenario: unique-run ingest flood. Every request posts a new run_id, so every request is a real insert.
-- Needs: TOKEN (an ingest token) in the environment. Any status other than 201 counts as a failure.
-- DELAY_MS (optional) paces each connection: it waits that long after each answer before the next request, so
-- C connections offer about C * 1000 / DELAY_MS requests/s (a paced load, for latency at a given throughput).
-- TESTS (optional) adds that many passing test cases to every run (the same names each time).
local token = os.getenv("TOKEN") or error("set TOKEN to an ingest token")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
local test_count = tonumber(os.getenv("TESTS") or "0")
local tests_json = ""
if test_count > 0 then
  local cases = {}
  for i = 1, test_count do
    cases[i] = string.format('{"suite":"bench","name":"case_%d","status":"passed","duration_ms":%d}', i, i * 7)
  end
  tests_json = ',"tests":[' .. table.concat(cases, ",") .. "]"
end
-- failures and thread_id are globals on purpose: wrk reads and writes them across its Lua states with
-- thread:get / thread:set, which cannot see locals.
local counter = 0
thread_id = 0
failures = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + thread_id)
  -- RUN_PREFIX tells apart wrk processes started in the same second (their seeds, hence prefixes, would match).
  prefix = string.format("%su%d-%d-%d-", os.getenv("RUN_PREFIX") or "", os.time(), thread_id, math.random(1, 1e9))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"run_id":"%s%d","status":"passed","duration_ms":%d,"timestamp":"2026-01-12T10:00:00Z","branch":"main"%s}',
    prefix, counter, counter % 600000, tests_json)
  return wrk.format(nil, "/v1/ingest", nil, body)
end

if delay_ms then
  function delay()
    return delay_ms
  end
end

function response(status, headers, body)
  if status ~= 201 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("failures") or 0)
  end
  io.write(string.format("unexpected_status %d\n", bad))
end
