-- wrk script: POST /v1/workflows/$WORKFLOW/executions with a small input (bench/workflows.sh).
-- The request is built once in init(): per-request Lua costs wrk more CPU than the server.
local token = os.getenv("TOKEN")
local workflow = os.getenv("WORKFLOW") or "accept"
local req
function init(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  req = wrk.format("POST", "/v1/workflows/" .. workflow .. "/executions", headers,
    '{"input":{"date":"2026-12-07","n":17}}')
end
function request() return req end
