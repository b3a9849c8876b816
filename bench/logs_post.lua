-- wrk script: an agent shipping log lines, POST /v1/instances/$INSTANCE/logs with BODY_FILE (a
-- batch of lines), until POSTS requests have been answered (then the thread stops).
-- AGENT_KEY, INSTANCE, BODY_FILE and POSTS come from the environment (bench/logs.sh sets them).
local req
local left = tonumber(os.getenv("POSTS") or "1000")
function init(args)
  local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
  local body = f:read("*a")
  f:close()
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. os.getenv("AGENT_KEY")}
  req = wrk.format("POST", "/v1/instances/" .. os.getenv("INSTANCE") .. "/logs", headers, body)
end
function request() return req end
function response(status, headers, body)
  left = left - 1
  if left <= 0 then wrk.thread:stop() end
end
