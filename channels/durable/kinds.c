/* The DurableChannel kind (messaging.cebroker.dev/v1alpha1): a channel kept on local disk by the
 * daemon itself, read from its own resource, a Channel's or a flow's channelTemplate, or an
 * MTChannelBasedBroker's channel-template-spec. Parsed in every build: one without SQLite says so
 * where the resource names it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"
#include "channels/durable/durable.h"

extern const struct ceb_channel_kind ceb_channel_kind_durable;

static void durable_free(void *spec)
{
	free(spec);
}

/* A Kubernetes quantity of bytes: digits with an optional suffix (k M G T: powers of 1000; Ki Mi Gi
 * Ti: of 1024). */
static bool parse_quantity(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"", 1},
	             {"k", 1000ULL},
	             {"M", 1000000ULL},
	             {"G", 1000000000ULL},
	             {"T", 1000000000000ULL},
	             {"Ki", 1ULL << 10},
	             {"Mi", 1ULL << 20},
	             {"Gi", 1ULL << 30},
	             {"Ti", 1ULL << 40}};
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].suffix)) {
			if (v > UINT64_MAX / units[i].mult)
				return false;
			*out = v * units[i].mult;
			return true;
		}
	return false;
}

/* retentionDuration, retentionSize, sync (vals in durable_fields' order). */
static void *durable_read(struct ceb_config_res *r, const struct ceb_yaml_node *const *vals,
                          const char *path)
{
	struct ceb_durable_channel_cfg *dc = calloc(1, sizeof(*dc));
	char p[512];

	if (!dc) {
		ceb_config_oom(r);
		return NULL;
	}
	dc->retention_ms = CEB_DURABLE_RETENTION_MS;
	dc->retention_bytes = CEB_DURABLE_RETENTION_BYTES;
	if (vals[0])
		ceb_config_get_duration(
		        r, vals[0], ceb_config_path_key(p, sizeof(p), path, "retentionDuration"),
		        &dc->retention_ms);
	if (vals[1]) {
		const char *s = ceb_yaml_str(vals[1]);
		uint64_t v = 0;

		if (!parse_quantity(s, &v) || v < 64 * 1024)
			ceb_config_err(r, vals[1],
			               ceb_config_path_key(p, sizeof(p), path, "retentionSize"),
			               "not a size of at least 64Ki (a quantity: 512Mi, 10Gi, 1G)");
		else
			dc->retention_bytes = v;
	}
	if (vals[2]) {
		const char *s = ceb_yaml_str(vals[2]);

		if (s && !strcmp(s, "Fsync"))
			dc->sync_os = false;
		else if (s && !strcmp(s, "OS"))
			dc->sync_os = true;
		else
			ceb_config_err(
			        r, vals[2], ceb_config_path_key(p, sizeof(p), path, "sync"),
			        "must be Fsync (acknowledged once on disk, the default) or OS "
			        "(once written to the operating system)");
	}
	return dc;
}

static void parse_durable_channel(struct ceb_config_res *r, struct ceb_config_meta *md,
                                  const struct ceb_yaml_node *root,
                                  const struct ceb_yaml_node *const *vals)
{
	ceb_config_parse_channel_kind(r, md, root, vals, &ceb_channel_kind_durable,
	                              CEB_DURABLE_API);
}

static const char *const durable_fields[] = {"retentionDuration", "retentionSize", "sync", NULL};
static const char *const durable_api[] = {CEB_DURABLE_API, NULL};
static const char *const spec_only[] = {"spec", NULL};

const struct ceb_channel_kind ceb_channel_kind_durable = {CEB_DURABLE_CHANNEL_KIND, durable_fields,
                                                          durable_read, durable_free, NULL};
const struct ceb_kind ceb_kind_durable_channel = {durable_api, CEB_DURABLE_CHANNEL_KIND, spec_only,
                                                  parse_durable_channel, true};
