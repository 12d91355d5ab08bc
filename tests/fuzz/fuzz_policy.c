/* libFuzzer target for the EventPolicy kind: any bytes through the YAML loader (seeds are
 * EventPolicies), then every policy loaded matched against a few resources, subjects and an event.
 * Also built as a replay program over tests/fuzz/corpus/policy. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/policy.h"
#include "broker/ce/event.h"
#include "broker/config/config.h"
#include "broker/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const subs[] = {"", "system:serviceaccount:default:app",
	                                   "system:serviceaccount:ops:x", "*"};
	static char *keys[] = {"app", "tier"}, *values[] = {"special-app", "gold"};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	struct ceb_event *ev = ceb_event_new();
	int rc = ceb_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &errs);

	if ((rc == 0 && (!cfg || errs.count)) || (rc == CEB_ECONFIG && (cfg || !errs.count)))
		abort();
	if (ev) {
		ceb_event_set(ev, "id", CEB_TYPE_STRING, "1", 1, NULL, 0);
		ceb_event_set(ev, "source", CEB_TYPE_URIREF, "/s", 2, NULL, 0);
		ceb_event_set(ev, "type", CEB_TYPE_STRING, "order.created", 13, NULL, 0);
	}
	for (const struct ceb_event_policy *p = ceb_policy_first(cfg); p; p = ceb_policy_next(p)) {
		if (!p->ns || !p->name)
			abort();
		ceb_policy_applies(p, "eventing.knative.dev", "Broker", p->ns, "my-broker", keys,
		                   values, 2);
		ceb_policy_applies(p, "messaging.knative.dev", "InMemoryChannel", "default", "c",
		                   NULL, NULL, 0);
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
			ceb_policy_allows_sub(p, subs[i]);
		if (p->filter && ev)
			ceb_filter_match(p->filter, ev);
	}
	ceb_event_unref(ev);
	ceb_config_free(cfg);
	ceb_buf_free(&errs.text);
	return 0;
}
