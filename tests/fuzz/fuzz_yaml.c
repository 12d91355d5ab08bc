/* libFuzzer target for the YAML resource loader: any bytes through ceb_config_load_string, then the
 * result's invariants, then everything freed. Also built as a replay program over its corpus. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &errs);

	/* Loaded means no errors and a config; refused means at least one error line, each naming the
	 * file, and no config. Anything else is a bug worth a crash report. */
	if (rc == 0 && (!cfg || errs.count))
		abort();
	if (rc == CEB_ECONFIG) {
		size_t lines = 0;

		if (cfg || !errs.count || !errs.text.p || strncmp(errs.text.p, "fuzz.yaml", 9) ||
		    errs.text.p[errs.text.len - 1] != '\n')
			abort();
		for (size_t i = 0; i < errs.text.len; i++)
			lines += errs.text.p[i] == '\n';
		if (lines != errs.count)
			abort();
	}
	for (const struct ceb_trigger_cfg *t = cfg ? cfg->triggers : NULL; t; t = t->next)
		if (!t->filter || !t->broker_cfg || (!t->subscriber.uri && !t->subscriber.ref_name))
			abort();
	ceb_config_free(cfg);
	ceb_buf_free(&errs.text);
	return 0;
}
