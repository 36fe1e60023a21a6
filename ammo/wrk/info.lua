-- GET /api/info as a random seeded user, on keep-alive connections (wrk's closed loop).
-- TOKENS_FILE holds one bearer token per line (python -m ammo writes it beside users.json).
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end

request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", "/api/info", { ["Authorization"] = "Bearer " .. token })
end
