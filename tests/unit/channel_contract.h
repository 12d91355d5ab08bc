/* The channel contract test suite: one set of Check test cases that every channel backend must pass.
 * A backend's test program supplies a factory and adds the suite's cases to its own Suite. */
#ifndef CEB_CHANNEL_CONTRACT_H
#define CEB_CHANNEL_CONTRACT_H

#include <check.h>

#include "channels/channel.h"

struct contract_backend {
	const struct channel_ops *ops;
	/* Fill backend-specific settings (ConfigMap, bounds) into cfg for a fresh, empty channel. */
	void (*setup_cfg)(struct ceb_channel_cfg *cfg, const char *name);
	/* Whether the backend enforces max_events (memory) or only its server's limits. */
	int bounded;
	/* How long to wait for asynchronous completions, in ms. */
	int wait_ms;
	/* A backend with CEB_CHANNEL_DURABLE must keep what was not settled and hand it again: after a
	 * FAILED settle, and after the channel was destroyed and created again. */
};

/* Add the contract cases, run against `be`, to tcase. */
void contract_add_tests(TCase *tc, const struct contract_backend *be);

#endif
