/* libFuzzer target for sender authentication's token path: any bytes as a bearer token verified
 * against a fixed JWKS (tests/fuzz/fuzz_keys.h), and, when they start with '{', as a JWKS document
 * too. Checks that every refusal has a reason and a known code. Also built as a replay program. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/jwt.h"
#include "fuzz_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ceb_jwks *keys;
	const struct ceb_jwt_expect want = {FUZZ_ISSUER, FUZZ_AUDIENCE, FUZZ_NOW};
	enum ceb_jwt_reason rs;
	char sub[64], why[300], err[300];

	if (!keys &&
	    ceb_jwks_parse(fuzz_jwks, sizeof(fuzz_jwks) - 1, &keys, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_jwt: the fixed JWKS: %s\n", err);
		abort();
	}
	if (size && data[0] == '{') {
		struct ceb_jwks *k = NULL;
		size_t skipped = 0;
		int rc;

		err[0] = '\0';
		rc = ceb_jwks_parse((const char *)data, size, &k, &skipped, err, sizeof(err));
		/* parsed: at least one key; refused: a message and no keys */
		if ((rc == 0 && (!k || !ceb_jwks_count(k))) || (rc < 0 && (k || !err[0])))
			abort();
		ceb_jwks_free(k);
	}
	why[0] = '\0';
	rs = ceb_jwt_verify(keys, (const char *)data, size, &want, sub, sizeof(sub), why,
	                    sizeof(why));
	if (rs >= CEB_JWT_NREASONS || rs == CEB_JWT_MISSING || rs == CEB_JWT_FORBIDDEN)
		abort();
	if ((rs != CEB_JWT_OK && !why[0]) || memchr(sub, '\0', sizeof(sub)) == NULL)
		abort();
	return 0;
}
