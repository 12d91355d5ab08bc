/* What the resource loader's unit tests share (config_fixture.h). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "broker/error.h"
#include "tests/unit/config_fixture.h"

struct ceb_config *load_ok(const char *yaml)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string("test.yaml", yaml, strlen(yaml), &cfg, &errs);

	ck_assert_msg(rc == 0, "load failed (%d):\n%s", rc, errs.text.p ? errs.text.p : "");
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_nonnull(cfg);
	ceb_buf_free(&errs.text);
	return cfg;
}

/* Loads yaml that must be refused; returns the error text (caller frees) and the count. */
char *load_err(const char *yaml, size_t len, size_t *count)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string("test.yaml", yaml, len, &cfg, &errs);

	ck_assert_int_eq(rc, CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errs.text.p);
	if (count)
		*count = errs.count;
	return ceb_buf_steal(&errs.text, NULL);
}

const struct ceb_trigger_cfg *trigger_named(const struct ceb_config *cfg, const char *name)
{
	for (const struct ceb_trigger_cfg *t = cfg->triggers; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	ck_abort_msg("no trigger %s", name);
	return NULL;
}

/* The notes of a config, one line each, in a buffer of the caller's. */
const char *notes(const struct ceb_config *cfg, char *buf, size_t sz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nnotes && len < sz; i++)
		len += (size_t)snprintf(buf + len, sz - len, "%s\n", cfg->notes[i].text);
	return buf;
}
