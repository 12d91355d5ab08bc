-- wrk script for tests/bench/bench_reload: binary mode, 300 bytes, a new ce-id on every request;
-- counts the 2xx answers (what the Broker accepted) and prints "accepted N" when wrk is done.
local size = 300
local n = 0
ok = 0
statuses = ""
local bad = {}
local threads = {}
local thread_id = 0
wrk.method = "POST"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-source"] = "/cebroker/bench/reload"
wrk.headers["ce-type"] = "dev.cebroker.bench"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"pad":"' .. string.rep("x", size - 10) .. '"}'

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	thread_id = math.random(1, 1000000000)
end

-- BENCH_DELAY_MS: the pause before each request on a connection (paced load), 0 for none
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function delay()
	return pause
end

request = function()
	n = n + 1
	wrk.headers["ce-id"] = "reload-" .. thread_id .. "-" .. n
	return wrk.format()
end

response = function(status, headers, body)
	if status >= 200 and status < 300 then
		ok = ok + 1
	else
		bad[status] = (bad[status] or 0) + 1
		local s = ""
		for code, count in pairs(bad) do
			s = s .. code .. "=" .. count .. " "
		end
		statuses = s
	end
end

done = function(summary, latency, requests)
	local total = 0
	for _, t in ipairs(threads) do
		total = total + t:get("ok")
		io.write(string.format("statuses %s\n", t:get("statuses")))
	end
	io.write(string.format("accepted %d\n", total))
end
