-- wrk script: durable single sends, POST /v1/queues/$QUEUE/messages with a small JSON body.
-- The request is built once in init() (per-request Lua costs wrk more CPU than the server).
-- TOKEN and QUEUE come from the environment (bench/queues.sh sets them).
local token = os.getenv("TOKEN")
local queue = os.getenv("QUEUE") or "noop"
local req
function init(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  req = wrk.format("POST", "/v1/queues/" .. queue .. "/messages", headers,
    '{"body":"{\\"i\\":1,\\"t\\":123456789}"}')
end
function request() return req end
