/* The ContainerSource kind (Knative's sources.knative.dev/v1), read with located errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "broker/log.h"
#include "sources/container.h"

#define DEFAULT_GRACE_S 30 /* Kubernetes' terminationGracePeriodSeconds */

/* ------------------------------------------------------------------------------------------------
 * The kind.
 */

static void container_cfg_free(void *own)
{
	struct ceb_container_source_cfg *cs = own;

	if (!cs)
		return;
	for (size_t i = 0; i < cs->nctrs; i++) {
		struct ceb_container *ct = &cs->ctrs[i];
		free(ct->name);
		free(ct->image);
		free(ct->workdir);
		ceb_config_strv_free(ct->argv, ct->argc + 1);
		for (size_t j = 0; j < ct->nenv; j++) {
			free(ct->env[j].name);
			free(ct->env[j].value);
			ceb_secret_ref_free(&ct->env[j].secret);
		}
		free(ct->env);
	}
	free(cs->ctrs);
	free(cs->ns);
	free(cs->name);
	ceb_config_dest_free(&cs->sink);
	ceb_config_strv_free(cs->ce_ext_keys, cs->nce_ext);
	ceb_config_strv_free(cs->ce_ext_values, cs->nce_ext);
	free(cs);
}

/* Append the strings of a sequence (command, args) to ct->argv. */
static void parse_strings(struct ceb_config_res *r, const struct ceb_yaml_node *seq,
                          const char *path, struct ceb_container *ct)
{
	size_t n;
	char **v;
	char p[256];

	if (!ceb_config_want_seq(r, seq, path))
		return;
	n = ceb_yaml_size(seq);
	v = realloc(ct->argv, (ct->argc + n + 1) * sizeof(*v));
	if (!v) {
		ceb_config_oom(r);
		return;
	}
	ct->argv = v;
	for (size_t i = 0; i < n; i++) {
		char *s = NULL;
		if (ceb_config_get_str(r, ceb_yaml_seq_item(seq, i),
		                       ceb_config_path_idx(p, sizeof(p), path, i), &s) &&
		    s)
			ct->argv[ct->argc++] = s;
	}
	ct->argv[ct->argc] = NULL;
}

/* env[].valueFrom: a Secret's key; the Pod's fields and ConfigMaps have no meaning here. */
static void parse_value_from(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                             const char *path, struct ceb_container_env *e)
{
	static const char *const fields[] = {"secretKeyRef", "configMapKeyRef", "fieldRef",
	                                     "resourceFieldRef", NULL};
	const struct ceb_yaml_node *v[4];
	char p[320];

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return;
	for (size_t i = 1; i < 4; i++)
		if (v[i])
			ceb_config_err(r, v[i], ceb_config_path_key(p, sizeof(p), path, fields[i]),
			               "not supported: a process here has no Pod to read it from; "
			               "give the value, or a Secret's key with secretKeyRef");
	if (!v[0]) {
		if (!v[1] && !v[2] && !v[3])
			ceb_config_err(r, n, path, "required field missing: secretKeyRef");
		return;
	}
	e->from_secret = ceb_config_get_secret_key_ref(
	        r, v[0], ceb_config_path_key(p, sizeof(p), path, "secretKeyRef"), &e->secret);
}

static void parse_env(struct ceb_config_res *r, const struct ceb_yaml_node *seq, const char *path,
                      struct ceb_container *ct)
{
	static const char *const fields[] = {"name", "value", "valueFrom", NULL};
	size_t n;
	char p[256], fp[300];

	if (!ceb_config_want_seq(r, seq, path))
		return;
	n = ceb_yaml_size(seq);
	if (!(ct->env = calloc(n ? n : 1, sizeof(*ct->env)))) {
		ceb_config_oom(r);
		return;
	}
	ct->nenv = n;
	for (size_t i = 0; i < n; i++) {
		struct ceb_container_env *e = &ct->env[i];
		const struct ceb_yaml_node *v[3];

		ceb_config_path_idx(p, sizeof(p), path, i);
		if (!ceb_config_get_fields(r, ceb_yaml_seq_item(seq, i), p, fields, v, NULL))
			continue;
		if (!v[0]) {
			ceb_config_err(r, ceb_yaml_seq_item(seq, i), p,
			               "required field missing: name");
			continue;
		}
		if (!ceb_config_get_str(r, v[0], ceb_config_path_key(fp, sizeof(fp), p, "name"),
		                        &e->name))
			continue;
		if (!*e->name || strchr(e->name, '=')) {
			ceb_config_err(r, v[0], fp, "not an environment variable name");
			continue;
		}
		if (v[1] && v[2]) {
			ceb_config_err(r, v[2], ceb_config_path_key(fp, sizeof(fp), p, "valueFrom"),
			               "give value or valueFrom, not both");
			continue;
		}
		if (v[2])
			parse_value_from(r, v[2],
			                 ceb_config_path_key(fp, sizeof(fp), p, "valueFrom"), e);
		else if (v[1])
			ceb_config_get_str(r, v[1], ceb_config_path_key(fp, sizeof(fp), p, "value"),
			                   &e->value);
	}
}

static void parse_container(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                            const char *path, struct ceb_container *ct)
{
	/* the fields a Kubernetes container has that mean nothing for a local process are read past */
	static const char *const fields[] = {
	        "name",         "image",           "command",         "args",
	        "env",          "workingDir",      "imagePullPolicy", "ports",
	        "resources",    "securityContext", "livenessProbe",   "readinessProbe",
	        "startupProbe", "volumeMounts",    "envFrom",         NULL};
	const struct ceb_yaml_node *v[15];
	char p[300];

	if (!ceb_config_get_fields_shown(r, n, path, fields, 6, v, NULL))
		return;
	if (v[0])
		ceb_config_get_str(r, v[0], ceb_config_path_key(p, sizeof(p), path, "name"),
		                   &ct->name);
	if (!ct->name && !(ct->name = ceb_config_strdup(r, "container")))
		return;
	if (v[1])
		ceb_config_get_str(r, v[1], ceb_config_path_key(p, sizeof(p), path, "image"),
		                   &ct->image);
	if (v[2])
		parse_strings(r, v[2], ceb_config_path_key(p, sizeof(p), path, "command"), ct);
	if (!ct->argc)
		ceb_config_err(r, v[2] ? v[2] : n,
		               ceb_config_path_key(p, sizeof(p), path, "command"),
		               "required field missing: cebroker runs a container's command "
		               "(and args) as a local process; it does not run images%s%s",
		               ct->image ? ", so the image's entrypoint is unknown: " : "",
		               ct->image ? ct->image : "");
	if (v[3] && ct->argc)
		parse_strings(r, v[3], ceb_config_path_key(p, sizeof(p), path, "args"), ct);
	if (v[4])
		parse_env(r, v[4], ceb_config_path_key(p, sizeof(p), path, "env"), ct);
	if (v[5])
		ceb_config_get_str(r, v[5], ceb_config_path_key(p, sizeof(p), path, "workingDir"),
		                   &ct->workdir);
	if (v[14])
		ceb_config_err(r, v[14], ceb_config_path_key(p, sizeof(p), path, "envFrom"),
		               "not supported: give each variable in env");
}

static void parse_template(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           struct ceb_container_source_cfg *cs)
{
	static const char *const tfields[] = {"metadata", "spec", NULL};
	static const char *const sfields[] = {"containers",      "terminationGracePeriodSeconds",
	                                      "initContainers",  "serviceAccountName",
	                                      "restartPolicy",   "volumes",
	                                      "nodeSelector",    "imagePullSecrets",
	                                      "securityContext", NULL};
	const struct ceb_yaml_node *tv[2], *sv[9];
	char p[128];
	size_t nc;

	if (!ceb_config_get_fields(r, n, "spec.template", tfields, tv, NULL))
		return;
	if (!tv[1]) {
		ceb_config_err(r, n, "spec.template.spec", "required field missing");
		return;
	}
	if (!ceb_config_get_fields_shown(r, tv[1], "spec.template.spec", sfields, 3, sv, NULL))
		return;
	if (sv[1])
		ceb_config_get_int(r, sv[1], "spec.template.spec.terminationGracePeriodSeconds", 0,
		                   3600, &cs->grace_s);
	if (sv[2])
		ceb_config_err(r, sv[2], "spec.template.spec.initContainers",
		               "not supported: run the steps before the command in the command");
	if (!sv[0] || !ceb_config_want_seq(r, sv[0], "spec.template.spec.containers") ||
	    !(nc = ceb_yaml_size(sv[0]))) {
		ceb_config_err(r, sv[0] ? sv[0] : tv[1], "spec.template.spec.containers",
		               "required field missing: at least one container");
		return;
	}
	if (!(cs->ctrs = calloc(nc, sizeof(*cs->ctrs)))) {
		ceb_config_oom(r);
		return;
	}
	cs->nctrs = nc;
	for (size_t i = 0; i < nc; i++)
		parse_container(
		        r, ceb_yaml_seq_item(sv[0], i),
		        ceb_config_path_idx(p, sizeof(p), "spec.template.spec.containers", i),
		        &cs->ctrs[i]);
}

static void parse_container_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                                   const struct ceb_yaml_node *root,
                                   const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"sink", "ceOverrides", "template", NULL};
	const struct ceb_yaml_node *v[3];
	struct ceb_container_source_cfg *cs;

	if (!md->name)
		return;
	if (!(cs = calloc(1, sizeof(*cs)))) {
		ceb_config_oom(r);
		return;
	}
	cs->ns = md->ns;
	cs->name = md->name;
	md->ns = md->name = NULL;
	cs->grace_s = DEFAULT_GRACE_S;
	cs->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	cs->source.own = cs;
	cs->source.own_free = container_cfg_free;
	ceb_config_add_source(r, &cs->source);
	ceb_config_add_entry(r, CONTAINER_KIND, cs->ns, cs->name, md, cs);

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a ContainerSource needs spec.sink and "
		               "spec.template)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	if (!v[0])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[0], "spec.sink", &cs->sink);
	if (v[1])
		ceb_config_parse_ce_overrides(r, v[1], &cs->ce_ext_keys, &cs->ce_ext_values,
		                              &cs->nce_ext);
	if (!v[2])
		ceb_config_err(r, vals[0], "spec.template", "required field missing");
	else
		parse_template(r, v[2], cs);
out:
	cs->source = (struct ceb_source_cfg){
	        .kind = CONTAINER_KIND,
	        .ns = cs->ns,
	        .name = cs->name,
	        .sink = &cs->sink,
	        .delivery = NULL,
	        .ce_ext_keys = cs->ce_ext_keys,
	        .ce_ext_values = cs->ce_ext_values,
	        .nce_ext = cs->nce_ext,
	        .own = cs,
	        .own_free = container_cfg_free,
	        .loc = cs->loc,
	        .next = cs->source.next,
	};
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const container_versions[] = {"sources.knative.dev/v1", NULL};

const struct ceb_kind ceb_kind_container_source = {container_versions, CONTAINER_KIND, spec_only,
                                                   parse_container_source, false};
