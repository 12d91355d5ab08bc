-- wrk script for tests/bench/run: a binary-mode CloudEvent (ce- headers) with 300 bytes of JSON data.
-- The type comes from BENCH_TYPE so that the run script can pick which Triggers match.
local size = 300
wrk.method = "POST"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-1"
wrk.headers["ce-source"] = "/cebroker/bench"
wrk.headers["ce-type"] = os.getenv("BENCH_TYPE") or "dev.cebroker.bench"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"pad":"' .. string.rep("x", size - 10) .. '"}'
