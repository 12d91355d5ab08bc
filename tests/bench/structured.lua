-- wrk script for tests/bench/run: a structured-mode CloudEvent (one application/cloudevents+json
-- document) of about 300 bytes. The type comes from BENCH_TYPE.
local type = os.getenv("BENCH_TYPE") or "dev.cebroker.bench"
local head = '{"specversion":"1.0","id":"bench-1","source":"/cebroker/bench","type":"' .. type ..
	'","datacontenttype":"application/json","data":{"pad":"'
local tail = '"}}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
wrk.body = head .. string.rep("x", 300 - #head - #tail) .. tail
