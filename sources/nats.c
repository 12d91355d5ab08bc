/* NatsSource (sources.cebroker.dev/v1alpha1): NATS messages to a sink. The source is the
 * consume-only half of the NATS backend (channels/nats/): a durable JetStream consumer whose
 * messages are acknowledged only once the sink (or the dead-letter sink) accepted them, or a core
 * NATS subscription (at most once: what arrives while the daemon is down is not kept). CloudEvents
 * pass as they are; other messages become events as channels/nats/binding.h says. */
#include <stdio.h>
#include <stdlib.h>

#include "broker/error.h"
#include "channels/nats/kinds.h"
#include "sources/source.h"

struct nats_source {
	struct ceb_channel ch;
};

static void ns_destroy(void *ctx)
{
	struct nats_source *ns = ctx;

	if (!ns)
		return;
	ceb_channel_destroy(&ns->ch);
	free(ns);
}

static int ns_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env, void **ctx,
                     char *errbuf, size_t errlen)
{
	struct ceb_channel_cfg cc = {
	        .kind = CEB_NATS_SOURCE_KIND,
	        .ns = cfg->ns,
	        .name = cfg->name,
	        .spec = cfg->own,
	};
	struct nats_source *ns = calloc(1, sizeof(*ns));
	int rc;

	(void)env;
	if (!ns) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	rc = ceb_channel_create(&ns->ch, &ceb_channel_nats, &cc, errbuf, errlen);
	if (rc < 0) {
		ns_destroy(ns);
		return rc;
	}
	*ctx = ns;
	return 0;
}

static struct ceb_channel *ns_channel(void *ctx)
{
	return &((struct nats_source *)ctx)->ch;
}

static void ns_stop(void *ctx)
{
	ceb_channel_stop(&((struct nats_source *)ctx)->ch);
}

const struct source_ops ceb_source_nats = {
        .kind = CEB_NATS_SOURCE_KIND,
        .label = "natssource",
        .create = ns_create,
        .channel = ns_channel,
        .stop = ns_stop,
        .destroy = ns_destroy,
};
