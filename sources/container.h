/* ContainerSource's configuration, shared by its kind (container_kind.c) and the source that runs
 * it (container.c). */
#ifndef CEB_SOURCES_CONTAINER_H
#define CEB_SOURCES_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/config/config.h"

#define CONTAINER_KIND "ContainerSource"

/* One variable of a container's env: a value, or a Secret's key (valueFrom.secretKeyRef). */
struct ceb_container_env {
	char *name;
	char *value;      /* NULL when from_secret */
	bool from_secret; /* secret.value once loaded; unset when optional and absent */
	struct ceb_secret_ref secret;
};

/* One container of spec.template.spec.containers, as a local process. */
struct ceb_container {
	char *name, *image, *workdir;
	char **argv; /* command then args, NULL-terminated */
	size_t argc;
	struct ceb_container_env *env; /* allocated once: the Secret refs point into it */
	size_t nenv;
};

/* The resource as loaded; source.own points to it. */
struct ceb_container_source_cfg {
	char *ns, *name;
	struct ceb_dest sink;
	char **ce_ext_keys, **ce_ext_values;
	size_t nce_ext;
	struct ceb_container *ctrs;
	size_t nctrs;
	int grace_s;
	struct ceb_loc loc;
	struct ceb_source_cfg source;
};

#endif
