-- Cycles through pre-built OCSP requests (RFC 6960 A.1): POST bodies or GET paths.
-- OCSP_REQUESTS: file of 2-byte big-endian length + DER request, repeated.
-- OCSP_MODE: "post" or "get"; OCSP_PATH: POST path / GET prefix; OCSP_CLOSE=1: Connection: close.
local requests = {}
local counter = 0

local function encode_path(der)
  local b64 = ""
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local padded = der .. string.rep("\0", (3 - #der % 3) % 3)
  for i = 1, #padded, 3 do
    local a, b, c = string.byte(padded, i, i + 2)
    local n = a * 65536 + b * 256 + c
    for shift = 18, 0, -6 do
      local index = math.floor(n / 2 ^ shift) % 64 + 1
      b64 = b64 .. string.sub(alphabet, index, index)
    end
  end
  local pad = (3 - #der % 3) % 3
  if pad > 0 then b64 = string.sub(b64, 1, #b64 - pad) .. string.rep("=", pad) end
  return (b64:gsub("[+/=]", function(ch) return string.format("%%%02X", string.byte(ch)) end))
end

function init(args)
  local f = assert(io.open(os.getenv("OCSP_REQUESTS"), "rb"))
  local data = f:read("*a")
  f:close()
  local mode, path = os.getenv("OCSP_MODE"), os.getenv("OCSP_PATH")
  local headers = {}
  if os.getenv("OCSP_CLOSE") == "1" then headers["Connection"] = "close" end
  local pos = 1
  while pos <= #data do
    local len = string.byte(data, pos) * 256 + string.byte(data, pos + 1)
    local der = string.sub(data, pos + 2, pos + 1 + len)
    pos = pos + 2 + len
    if mode == "get" then
      requests[#requests + 1] = wrk.format("GET", path .. encode_path(der), headers)
    else
      local h = {["Content-Type"] = "application/ocsp-request"}
      for k, v in pairs(headers) do h[k] = v end
      requests[#requests + 1] = wrk.format("POST", path, h, der)
    end
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end
