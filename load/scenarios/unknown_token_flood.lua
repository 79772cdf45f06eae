-- Scenario: unknown-token flood alongside legitimate traffic. Half the requests carry well-formed tokens that
-- do not exist (a guessing attack from the same address), half are legitimate ingests. The attacker must get
-- 401 (unknown ids cost no Argon2, so they are never blocked, only refused cheaply); the legitimate requests
-- must keep getting 201. Only legitimate 201s count as throughput in the report.
local token = os.getenv("TOKEN") or error("set TOKEN to an ingest token")
-- Globals on purpose: wrk reads them from each thread's Lua state with thread:get, which cannot see locals.
counter, failures, legit, threads = 0, 0, 0, {}
local alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

function setup(thread) table.insert(threads, thread) end

function init(args)
  prefix = string.format("uf%d-%d-", os.time(), math.random(1, 1e9))
end

local function random_token()
  -- Right shape; the checksum is random too, so most are refused before any lookup, as in a real spray.
  local t = {}
  for i = 1, 61 do local k = math.random(1, 62); t[i] = alphabet:sub(k, k) end
  return "fii_" .. table.concat(t)
end

function request()
  counter = counter + 1
  local b = string.format('{"run_id":"%s%d","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}', prefix, counter)
  local auth = (counter % 2 == 0) and random_token() or token
  return wrk.format("POST", "/v1/ingest", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. auth }, b)
end

function response(status, headers, body)
  if status == 201 then legit = legit + 1
  elseif status ~= 401 then failures = failures + 1 end
end

function done(summary)
  local bad, ok = 0, 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0); ok = ok + (t:get("legit") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
  io.write(string.format("note: legitimate ingest kept %.0f req/s (201) while half of all requests were attacks\n",
    ok / (summary.duration / 1e6)))
end
