/* The Secret kind (v1) and references to its keys: credentials that other resources name (a
 * RabbitmqBrokerConfig's connectionSecret, a secretKeyRef). A Secret's values are never written to
 * a message, a log line or /metrics: errors about one name the key, not the value. A Secret read
 * from a file that others may read is taken, with a warning naming the file. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/buf.h"
#include "broker/ce/base64.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/loader.h"
#include "broker/config/yaml.h"

/* Overwrite memory the compiler may not drop: secrets do not linger in freed heap. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
}

void ceb_ld_secret_free(struct ceb_secret *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->values[i])
			wipe(s->values[i], s->lens[i]);
		free(s->values[i]);
		free(s->keys[i]);
	}
	free(s->keys);
	free(s->values);
	free(s->lens);
	free(s->ns);
	free(s->name);
	free(s);
}

void ceb_secret_ref_free(struct ceb_secret_ref *ref)
{
	if (!ref)
		return;
	free(ref->ns);
	free(ref->name);
	free(ref->key);
	ref->ns = ref->name = ref->key = NULL;
	ref->secret = NULL;
	ref->value = NULL;
	ref->len = 0;
}

const struct ceb_secret *ceb_config_find_secret(const struct ceb_config *cfg, const char *ns,
                                                const char *name)
{
	for (const struct ceb_secret *s = cfg ? cfg->secrets : NULL; s; s = s->next)
		if (!strcmp(s->ns, ns) && !strcmp(s->name, name))
			return s;
	return NULL;
}

const char *ceb_secret_get(const struct ceb_secret *s, const char *key, size_t *len)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!strcmp(s->keys[i], key)) {
			if (len)
				*len = s->lens[i];
			return s->values[i];
		}
	return NULL;
}

/* Kubernetes: a Secret key is [-._a-zA-Z0-9]+, at most 253 characters. */
static bool key_valid(const char *k)
{
	size_t n = strlen(k);

	if (!n || n > 253)
		return false;
	for (; *k; k++)
		if (!(*k == '-' || *k == '.' || *k == '_' || (*k >= 'a' && *k <= 'z') ||
		      (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9')))
			return false;
	return true;
}

/* Set key to value (len bytes, copied), replacing what data gave when stringData gives it too. */
static bool secret_put(struct ceb_secret *s, const char *key, const char *value, size_t len)
{
	char *v = malloc(len + 1);
	size_t i;

	if (!v)
		return false;
	memcpy(v, value, len);
	v[len] = '\0';
	for (i = 0; i < s->n && strcmp(s->keys[i], key); i++)
		;
	if (i < s->n) {
		wipe(s->values[i], s->lens[i]);
		free(s->values[i]);
	} else {
		char **k = realloc(s->keys, (s->n + 1) * sizeof(*k));
		char **vv;
		size_t *l;

		if (k)
			s->keys = k;
		vv = k ? realloc(s->values, (s->n + 1) * sizeof(*vv)) : NULL;
		if (vv)
			s->values = vv;
		l = vv ? realloc(s->lens, (s->n + 1) * sizeof(*l)) : NULL;
		if (l)
			s->lens = l;
		if (!l || !(s->keys[i] = strdup(key))) {
			wipe(v, len);
			free(v);
			return false;
		}
		s->n++;
	}
	s->values[i] = v;
	s->lens[i] = len;
	return true;
}

/* data (base64) or stringData (text) at n into s. */
static void read_values(struct ceb_config_res *r, struct ceb_secret *s,
                        const struct ceb_yaml_node *n, const char *path, bool base64)
{
	char **keys = NULL, **vals = NULL, p[512], q[80];
	size_t cnt = 0;

	if (!ceb_config_get_strmap(r, n, path, &keys, &vals, &cnt))
		return;
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(n, i);
		struct ceb_buf b = {0};
		bool ok;

		ceb_config_path_key(p, sizeof(p), path, keys[i]);
		if (!key_valid(keys[i])) {
			ceb_config_err(
			        r, k, p,
			        "\"%s\" is not a valid Secret key (letters, digits, '-', '_' "
			        "and '.', at most 253)",
			        ceb_config_quoted(q, sizeof(q), keys[i]));
			continue;
		}
		if (!base64) {
			ok = secret_put(s, keys[i], vals[i], strlen(vals[i]));
		} else if (ceb_base64_decode(vals[i], strlen(vals[i]), &b) != 0) {
			/* the value is not shown: it is a secret */
			ceb_config_err(
			        r, ceb_yaml_map_value(n, i), p,
			        "not base64 (data holds base64; put plain text in stringData)");
			ok = true;
		} else {
			ok = !b.failed && secret_put(s, keys[i], b.p ? b.p : "", b.len);
		}
		if (b.p)
			wipe(b.p, b.len);
		ceb_buf_free(&b);
		if (!ok)
			ceb_config_oom(r);
	}
	for (size_t i = 0; i < cnt; i++)
		if (vals[i])
			wipe(vals[i], strlen(vals[i]));
	ceb_config_strv_free(keys, cnt);
	ceb_config_strv_free(vals, cnt);
}

/* fields: data, stringData, type, immutable */
static void parse_secret(struct ceb_config_res *r, struct ceb_config_meta *md,
                         const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	struct ceb_secret *s;
	struct stat st;

	if (!md->name)
		return;
	s = calloc(1, sizeof(*s));
	if (!s) {
		ceb_config_oom(r);
		return;
	}
	s->ns = md->ns;
	s->name = md->name;
	md->ns = md->name = NULL;
	s->loc = ceb_config_loc(r, root);
	if (vals[0])
		read_values(r, s, vals[0], "data", true);
	if (vals[1])
		read_values(r, s, vals[1], "stringData", false);
	if (vals[2]) {
		char *type = NULL;

		ceb_config_get_str(r, vals[2], "type", &type);
		free(type);
	}
	if (vals[3]) {
		bool b;

		ceb_config_get_bool(r, vals[3], "immutable", &b);
	}
	if (r->file && stat(r->file, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IROTH))
		ceb_config_note_at(r, true, &s->loc, "metadata.name",
		                   "Secret read from %s, which any user of this machine can read "
		                   "(chmod o-r it)",
		                   r->file);
	*r->ld->secret_tail = s;
	r->ld->secret_tail = &s->next;
	ceb_config_add_entry(r, "Secret", s->ns, s->name, md, s);
}

void ceb_config_secret_ref(struct ceb_config_res *r, const struct ceb_yaml_node *at,
                           const char *path, const char *ns, const char *name, const char *key,
                           struct ceb_secret_ref *ref)
{
	struct ceb_loc loc = ceb_config_loc(r, at);
	struct check *c;

	ceb_secret_ref_free(ref);
	ref->at = loc;
	ref->ns = ceb_config_strdup(r, ns ? ns : r->ns);
	ref->name = ceb_config_strdup(r, name);
	ref->key = ceb_config_strdup(r, key);
	if (!ref->ns || !ref->name || (key && !ref->key))
		return;
	if (r->templ)
		return;
	c = ceb_ld_add_check(r, "Secret", ref->ns, ref->name, &loc, path, NULL, NULL);
	if (!c)
		return;
	c->secret_out = ref;
	c->optional = ref->optional;
}

const struct ceb_secret *ceb_config_loaded_secret(struct ceb_config_res *r, const char *ns,
                                                  const char *name)
{
	return ceb_config_find_secret(r->ld->cfg, ns, name);
}

bool ceb_config_get_secret_key_ref(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   const char *path, struct ceb_secret_ref *ref)
{
	static const char *const fields[] = {"name", "key", "optional", NULL};
	const struct ceb_yaml_node *v[3];
	char *name = NULL, *key = NULL, p[512];
	size_t nerr = r->nerr;
	bool optional = false;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return false;
	if (!v[0])
		ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), path, "name"),
		               "required field missing");
	else
		ceb_config_get_str(r, v[0], ceb_config_path_key(p, sizeof(p), path, "name"), &name);
	if (!v[1])
		ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), path, "key"),
		               "required field missing");
	else
		ceb_config_get_str(r, v[1], ceb_config_path_key(p, sizeof(p), path, "key"), &key);
	if (v[2])
		ceb_config_get_bool(r, v[2], ceb_config_path_key(p, sizeof(p), path, "optional"),
		                    &optional);
	if (r->nerr == nerr && name && key) {
		ref->optional = optional;
		ceb_config_secret_ref(r, n, path, NULL, name, key, ref);
	}
	free(name);
	free(key);
	return r->nerr == nerr;
}

void ceb_ld_secret_bind(struct ceb_config_loader *ld, const struct check *c,
                        const struct ceb_secret *s)
{
	struct ceb_secret_ref *ref = c->secret_out;

	ref->secret = s;
	if (!ref->key)
		return;
	ref->value = ceb_secret_get(s, ref->key, &ref->len);
	if (!ref->value && !ref->optional)
		ceb_ld_file_err(ld, c->loc.file, c->loc.line, c->loc.col,
		                "%s: %s: Secret %s/%s has no key \"%s\"", c->who, c->path, c->ns,
		                c->name, ref->key);
}

static const char *const secret_fields[] = {"data", "stringData", "type", "immutable", NULL};
static const char *const core_v1[] = {"v1", NULL};

const struct ceb_kind ceb_kind_secret = {core_v1, "Secret", secret_fields, parse_secret, false};
