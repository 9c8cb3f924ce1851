-- wrk script for bench/webhook: cycles through the request paths in $BULKMAIL_PATHS (one per
-- line), each wrk thread starting at a different place. With BULKMAIL_ONE_CLICK=1 every request
-- is an RFC 8058 one-click POST; otherwise a GET.
local paths = {}
for line in io.lines(os.getenv("BULKMAIL_PATHS")) do paths[#paths + 1] = line end
local one_click = os.getenv("BULKMAIL_ONE_CLICK") == "1"
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("start", counter * 7919)
end

local i = nil
function request()
  if i == nil then i = (start or 0) % #paths end
  i = i % #paths + 1
  if one_click then
    return wrk.format("POST", paths[i], {["Content-Type"] = "application/x-www-form-urlencoded"},
                      "List-Unsubscribe=One-Click")
  end
  return wrk.format("GET", paths[i])
end
