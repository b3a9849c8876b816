-- wrk script: durable PUT /v1/variables/{key}. Requests are built once in init() (building
-- them per request in Lua costs wrk more CPU than the server spends); each thread cycles
-- through its own KEYS keys, so the run mixes inserts (first pass) and updates.
-- TOKEN comes from the environment (bench/writes.sh sets it).
local token = os.getenv("TOKEN")
local nkeys = tonumber(os.getenv("KEYS") or "20000")
local reqs = {}
local i = 0
function init(args)
  local prefix = "w" .. tostring(math.random(1, 1000000000))
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  for k = 1, nkeys do
    reqs[k] = wrk.format("PUT", "/v1/variables/" .. prefix .. "-" .. k, headers,
      '{"value":"some-value-of-moderate-length-0123456789"}')
  end
end
function request()
  i = i % nkeys + 1
  return reqs[i]
end
