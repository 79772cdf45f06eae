-- Reads only, the same project token: the run list (first page), one run by id, and 7-day statistics, in turn.
-- Every response must be 200.
local token = os.getenv("TOKEN") or error("set TOKEN to a token of the seeded project")
local run = os.getenv("RUN_ID") or error("set RUN_ID to a run of that project")
counter, failures, threads = 0, 0, {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  headers = { ["Authorization"] = "Bearer " .. token }
  paths = { "/v1/runs?limit=50", "/v1/runs/" .. run, "/v1/stats?window=7d" }
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[counter % 3 + 1], headers, nil)
end

function response(status) if status ~= 200 then failures = failures + 1 end end

function done()
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("failures") or 0) end
  io.write(string.format("unexpected_status %d\n", bad))
end
