-- wrk script for tests/bench/bench_nats: binary_300.lua with a new ce-id on every request. A NATS
-- JetStream Broker de-duplicates on source + id (Nats-Msg-Id): the same id would be stored once.
-- Each run takes a tag of its own from the kernel (wrk's math.random is not seeded, so it drew the
-- same number every run, and two runs in the same second sent the same ids).
local size = 300
local n = 0
local thread_id = 0
wrk.method = "POST"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-source"] = "/cebroker/bench"
wrk.headers["ce-type"] = os.getenv("BENCH_TYPE") or "dev.cebroker.bench"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"pad":"' .. string.rep("x", size - 10) .. '"}'

function init(args)
	local f = io.open("/proc/sys/kernel/random/uuid")
	thread_id = f and f:read("*l") or tostring(math.random(1, 1000000000))
	if f then
		f:close()
	end
end

request = function()
	n = n + 1
	wrk.headers["ce-id"] = "bench-" .. thread_id .. "-" .. os.time() .. "-" .. n
	return wrk.format()
end
