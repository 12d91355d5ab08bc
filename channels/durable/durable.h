/* What the durable family offers the rest of the tree: the DurableChannel kind's settings (read by
 * channels/durable/kinds.c from a DurableChannel, any channelTemplate, or a Broker's
 * channel-template-spec) that the backend (channels/durable/channel.c) gets as its spec. */
#ifndef CEB_DURABLE_H
#define CEB_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#define CEB_DURABLE_CHANNEL_KIND "DurableChannel"
#define CEB_DURABLE_API          "messaging.cebroker.dev/v1alpha1"

/* spec of a DurableChannel (messaging.cebroker.dev/v1alpha1). */
struct ceb_durable_channel_cfg {
	uint64_t retention_ms;    /* spec.retentionDuration; PT168H. Older events are deleted,
				     settled or not (what was not is logged and counted) */
	uint64_t retention_bytes; /* spec.retentionSize (a quantity: 512Mi, 1G); 1Gi. Settled events
				     make room for new ones; unsettled ones are never deleted for
				     room: the channel is full (429) instead */
	bool sync_os;             /* spec.sync: Fsync (default: 202 after fsync, one per group of
				     events that arrived together) or OS (after the write reached the
				     OS: survives a crash of the daemon, not of the machine) */
};

/* The defaults, as a DurableChannel without spec has them. */
#define CEB_DURABLE_RETENTION_MS    (168ULL * 3600 * 1000)
#define CEB_DURABLE_RETENTION_BYTES (1ULL << 30)

#endif
