// Sends one CloudEvent with the CloudEvents JavaScript SDK (its HTTP binding, binary or structured
// mode), the way a Node service would post to a Broker. Usage: node send.js URL binary|structured ID
// Prints the HTTP status; exits 1 on a transport error (a certificate Node does not trust, say).
// HTTPS trusts Node's CAs plus NODE_EXTRA_CA_CERTS (the test's CA).
"use strict";
const https = require("https");
const http = require("http");
const { CloudEvent, emitterFor, Mode } = require("cloudevents");

const [url, mode, id] = process.argv.slice(2);

// A transport that also returns the status, which the SDK's httpTransport leaves out.
function transport(message) {
	return new Promise((resolve, reject) => {
		const u = new URL(url);
		const req = (u.protocol === "https:" ? https : http).request(
			u, { method: "POST", headers: message.headers }, (res) => {
				res.resume();
				res.on("end", () => resolve(res.statusCode));
			});
		req.on("error", reject);
		req.end(message.body);
	});
}

const emit = emitterFor(transport, { mode: mode === "structured" ? Mode.STRUCTURED : Mode.BINARY });
const ce = new CloudEvent({ id, type: "plain", source: "/js-sdk", datacontenttype: "application/json",
	data: { sdk: "js" } });
emit(ce).then((status) => console.log(status)).catch((err) => {
	console.error(err.message);
	process.exit(1);
});
