/* JWKS keys and bearer JWT verification (RFC 7515, 7517, 7518, 7519) for sender authentication:
 * the parsing is ours, every signature check is GnuTLS's (gnutls_pubkey_verify_data2). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/auth/jwt.h"
#include "broker/buf.h"
#include "broker/error.h"

#define JWKS_MAX_FILE (1 << 20)
#define KID_MAX       256

enum key_type {
	KEY_RSA,
	KEY_EC256,
};

struct jwk {
	char kid[KID_MAX]; /* "" when the key has none */
	enum key_type type;
	char alg[16]; /* the key's own "alg", or "" */
	gnutls_pubkey_t pub;
};

struct ceb_jwks {
	size_t n;
	struct jwk keys[CEB_JWKS_MAX_KEYS];
};

const char *ceb_jwt_reason_name(enum ceb_jwt_reason reason)
{
	static const char *const names[CEB_JWT_NREASONS] = {
	        [CEB_JWT_OK] = "ok",
	        [CEB_JWT_MISSING] = "missing",
	        [CEB_JWT_MALFORMED] = "malformed",
	        [CEB_JWT_ALGORITHM] = "algorithm",
	        [CEB_JWT_UNKNOWN_KEY] = "unknown_key",
	        [CEB_JWT_SIGNATURE] = "signature",
	        [CEB_JWT_EXPIRED] = "expired",
	        [CEB_JWT_NOT_YET_VALID] = "not_yet_valid",
	        [CEB_JWT_ISSUER] = "issuer",
	        [CEB_JWT_AUDIENCE] = "audience",
	        [CEB_JWT_FORBIDDEN] = "forbidden",
	};

	return (unsigned)reason < CEB_JWT_NREASONS ? names[reason] : "unknown";
}

/* base64url without padding (RFC 7515 section 2), strict: any other character, a length of 1 mod
 * 4, or unused bits set are refused. Appends to out. */
static int b64url_decode(const char *s, size_t len, struct ceb_buf *out)
{
	unsigned acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return CEB_EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v = c >= 'A' && c <= 'Z'   ? c - 'A'
		        : c >= 'a' && c <= 'z' ? c - 'a' + 26
		        : c >= '0' && c <= '9' ? c - '0' + 52
		        : c == '-'             ? 62
		        : c == '_'             ? 63
		                               : -1;
		char byte;

		if (v < 0)
			return CEB_EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			byte = (char)((acc >> bits) & 0xff);
			if (ceb_buf_append(out, &byte, 1) < 0)
				return CEB_ENOMEM;
		}
	}
	if (acc & ((1u << bits) - 1))
		return CEB_EINVAL; /* non-canonical: the unused low bits must be zero */
	return 0;
}

static void key_free(struct jwk *k)
{
	if (k->pub)
		gnutls_pubkey_deinit(k->pub);
	k->pub = NULL;
}

void ceb_jwks_free(struct ceb_jwks *keys)
{
	if (!keys)
		return;
	for (size_t i = 0; i < keys->n; i++)
		key_free(&keys->keys[i]);
	free(keys);
}

size_t ceb_jwks_count(const struct ceb_jwks *keys)
{
	return keys ? keys->n : 0;
}

/* A base64url member of a JWK, decoded into out (cleared first). */
static int jwk_bytes(const cJSON *jk, const char *name, struct ceb_buf *out, size_t idx, char *err,
                     size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(jk, name);
	int rc;

	out->len = 0;
	if (!cJSON_IsString(v) || !v->valuestring[0]) {
		ceb_seterr(err, errlen, "keys[%zu]: \"%s\" is missing or not a string", idx, name);
		return CEB_EINVAL;
	}
	rc = b64url_decode(v->valuestring, strlen(v->valuestring), out);
	if (rc == CEB_EINVAL)
		ceb_seterr(err, errlen, "keys[%zu]: \"%s\" is not base64url", idx, name);
	return rc;
}

/* One JWK into k: 0, 1 (skipped: a type or use we do not verify with), or an error. */
static int parse_key(const cJSON *jk, size_t idx, struct jwk *k, char *err, size_t errlen)
{
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jk, "kty");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jk, "kid");
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(jk, "use");
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jk, "alg");
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jk, "crv");
	struct ceb_buf a = CEB_BUF_INIT, b = CEB_BUF_INIT;
	gnutls_datum_t da, db;
	unsigned bits = 0;
	int rc = CEB_EINVAL;

	memset(k, 0, sizeof(*k));
	if (!cJSON_IsObject(jk)) {
		ceb_seterr(err, errlen, "keys[%zu] is not an object", idx);
		goto out;
	}
	if (!cJSON_IsString(kty)) {
		ceb_seterr(err, errlen, "keys[%zu]: \"kty\" is missing or not a string", idx);
		goto out;
	}
	if (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig") != 0)) {
		rc = 1; /* an encryption key */
		goto out;
	}
	if (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) >= sizeof(k->kid))) {
		ceb_seterr(err, errlen, "keys[%zu]: \"kid\" is not a string of at most %d bytes",
		           idx, KID_MAX - 1);
		goto out;
	}
	if (alg && (!cJSON_IsString(alg) || strlen(alg->valuestring) >= sizeof(k->alg))) {
		ceb_seterr(err, errlen, "keys[%zu]: \"alg\" is not a string", idx);
		goto out;
	}
	snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid->valuestring : "");
	snprintf(k->alg, sizeof(k->alg), "%s", alg ? alg->valuestring : "");
	if (strcmp(kty->valuestring, "RSA") == 0) {
		if (k->alg[0] && strcmp(k->alg, "RS256") != 0) {
			rc = 1; /* an RSA key for PS256, RS512...: not one we verify with */
			goto out;
		}
		k->type = KEY_RSA;
		if ((rc = jwk_bytes(jk, "n", &a, idx, err, errlen)) < 0 ||
		    (rc = jwk_bytes(jk, "e", &b, idx, err, errlen)) < 0)
			goto out;
		rc = CEB_EINVAL;
		da = (gnutls_datum_t){(unsigned char *)a.p, (unsigned)a.len};
		db = (gnutls_datum_t){(unsigned char *)b.p, (unsigned)b.len};
		if (gnutls_pubkey_init(&k->pub) < 0) {
			rc = CEB_ENOMEM;
			goto out;
		}
		if (gnutls_pubkey_import_rsa_raw(k->pub, &da, &db) < 0) {
			ceb_seterr(err, errlen,
			           "keys[%zu] (kid '%.64s'): not a valid RSA public key", idx,
			           k->kid);
			goto out;
		}
		gnutls_pubkey_get_pk_algorithm(k->pub, &bits);
		if (bits < 2048) {
			ceb_seterr(
			        err, errlen,
			        "keys[%zu] (kid '%.64s'): an RSA key of %u bits; at least 2048 are "
			        "needed",
			        idx, k->kid, bits);
			goto out;
		}
	} else if (strcmp(kty->valuestring, "EC") == 0) {
		if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0 ||
		    (k->alg[0] && strcmp(k->alg, "ES256") != 0)) {
			rc = 1; /* P-384, P-521: not supported */
			goto out;
		}
		k->type = KEY_EC256;
		if ((rc = jwk_bytes(jk, "x", &a, idx, err, errlen)) < 0 ||
		    (rc = jwk_bytes(jk, "y", &b, idx, err, errlen)) < 0)
			goto out;
		rc = CEB_EINVAL;
		if (a.len != 32 || b.len != 32) {
			ceb_seterr(
			        err, errlen,
			        "keys[%zu] (kid '%.64s'): a P-256 key's x and y are 32 bytes each",
			        idx, k->kid);
			goto out;
		}
		da = (gnutls_datum_t){(unsigned char *)a.p, (unsigned)a.len};
		db = (gnutls_datum_t){(unsigned char *)b.p, (unsigned)b.len};
		if (gnutls_pubkey_init(&k->pub) < 0) {
			rc = CEB_ENOMEM;
			goto out;
		}
		if (gnutls_pubkey_import_ecc_raw(k->pub, GNUTLS_ECC_CURVE_SECP256R1, &da, &db) <
		            0 ||
		    gnutls_pubkey_verify_params(k->pub) < 0) {
			ceb_seterr(err, errlen,
			           "keys[%zu] (kid '%.64s'): not a point of the P-256 curve", idx,
			           k->kid);
			goto out;
		}
	} else {
		rc = 1; /* oct (a shared secret), OKP: never used to verify */
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		key_free(k);
	ceb_buf_free(&a);
	ceb_buf_free(&b);
	return rc;
}

int ceb_jwks_parse(const char *json, size_t len, struct ceb_jwks **out, size_t *skipped, char *err,
                   size_t errlen)
{
	struct ceb_jwks *keys = NULL;
	cJSON *doc = cJSON_ParseWithLength(json, len);
	const cJSON *arr, *jk;
	size_t idx = 0, nskip = 0;
	int rc = CEB_EINVAL;

	if (!doc || !cJSON_IsObject(doc)) {
		ceb_seterr(err, errlen, "not a JSON object");
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(doc, "keys");
	if (!cJSON_IsArray(arr)) {
		ceb_seterr(err, errlen, "no \"keys\" array: not a JWKS document (RFC 7517)");
		goto out;
	}
	if (!(keys = calloc(1, sizeof(*keys)))) {
		rc = CEB_ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(jk, arr)
	{
		int krc;

		if (keys->n == CEB_JWKS_MAX_KEYS) {
			ceb_seterr(err, errlen, "more than %d keys", CEB_JWKS_MAX_KEYS);
			goto out;
		}
		krc = parse_key(jk, idx++, &keys->keys[keys->n], err, errlen);
		if (krc < 0) {
			rc = krc;
			goto out;
		}
		if (krc == 1)
			nskip++;
		else
			keys->n++;
	}
	if (keys->n == 0) {
		ceb_seterr(err, errlen,
		           "no key to verify tokens with (RSA of 2048 bits or more, or EC P-256; "
		           "%zu other skipped)",
		           nskip);
		goto out;
	}
	if (skipped)
		*skipped = nskip;
	*out = keys;
	keys = NULL;
	rc = 0;
out:
	ceb_jwks_free(keys);
	cJSON_Delete(doc);
	return rc;
}

int ceb_jwks_load(const char *path, struct ceb_jwks **out, size_t *skipped, char *err,
                  size_t errlen)
{
	struct ceb_buf b = CEB_BUF_INIT;
	char chunk[4096], why[256];
	FILE *f = fopen(path, "re");
	size_t n;
	int rc = CEB_EIO;

	if (!f) {
		ceb_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return CEB_EIO;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > JWKS_MAX_FILE) {
			ceb_seterr(err, errlen, "%s: over %d bytes: not a JWKS document", path,
			           JWKS_MAX_FILE);
			rc = CEB_ETOOBIG;
			goto out;
		}
		if (ceb_buf_append(&b, chunk, n) < 0) {
			rc = CEB_ENOMEM;
			goto out;
		}
	}
	if (ferror(f)) {
		ceb_seterr(err, errlen, "%s: read error", path);
		goto out;
	}
	why[0] = '\0';
	rc = ceb_jwks_parse(b.p ? b.p : "", b.len, out, skipped, why, sizeof(why));
	if (rc < 0)
		ceb_seterr(err, errlen, "%s: %s", path, why[0] ? why : ceb_strerror(rc));
out:
	fclose(f);
	ceb_buf_free(&b);
	return rc;
}

/* A JSON object's member that must appear at most once (a second "alg" or "aud" would let two
 * readers of one token disagree); NULL when absent, *dup set when repeated. */
static const cJSON *member(const cJSON *obj, const char *name, bool *dup)
{
	const cJSON *found = NULL, *it;

	cJSON_ArrayForEach(it, obj)
	{
		if (it->string && strcmp(it->string, name) == 0) {
			if (found)
				*dup = true;
			found = it;
		}
	}
	return found;
}

/* Decode one part of the token into a JSON object. */
static cJSON *part_json(const char *s, size_t len)
{
	struct ceb_buf b = CEB_BUF_INIT;
	cJSON *j = NULL;

	/* a NUL, raw or escaped, would cut a claim short where we compare it (cJSON gives C
	 * strings): no token has a reason to hold one */
	if (b64url_decode(s, len, &b) == 0 && b.len && !memchr(b.p, '\0', b.len) &&
	    !memmem(b.p, b.len, "\\u0000", 6))
		j = cJSON_ParseWithLength(b.p, b.len);
	ceb_buf_free(&b);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = NULL;
	}
	return j;
}

static bool aud_holds(const cJSON *aud, const char *want)
{
	const cJSON *it;

	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, want) == 0;
	cJSON_ArrayForEach(it, aud)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
			return true;
	}
	return false;
}

/* Check the signature with key k (of the token's algorithm's type). */
static bool sig_ok(const struct jwk *k, const char *signed_part, size_t slen,
                   const struct ceb_buf *sig)
{
	gnutls_datum_t data = {(unsigned char *)signed_part, (unsigned)slen};
	gnutls_datum_t s = {(unsigned char *)sig->p, (unsigned)sig->len};
	gnutls_datum_t der = {NULL, 0}, r, sv;
	bool ok;

	if (k->type == KEY_RSA)
		return gnutls_pubkey_verify_data2(k->pub, GNUTLS_SIGN_RSA_SHA256, 0, &data, &s) >=
		       0;
	/* ES256 signs with r || s, 32 bytes each (RFC 7518 section 3.4); GnuTLS takes DER. */
	if (sig->len != 64)
		return false;
	r = (gnutls_datum_t){(unsigned char *)sig->p, 32};
	sv = (gnutls_datum_t){(unsigned char *)sig->p + 32, 32};
	if (gnutls_encode_rs_value(&der, &r, &sv) < 0)
		return false;
	ok = gnutls_pubkey_verify_data2(k->pub, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der) >= 0;
	gnutls_free(der.data);
	return ok;
}

enum ceb_jwt_reason ceb_jwt_verify(const struct ceb_jwks *keys, const char *token, size_t len,
                                   const struct ceb_jwt_expect *want, char *sub, size_t subsz,
                                   char *why, size_t whylen)
{
	return ceb_jwt_verify_times(keys, token, len, want, sub, subsz, NULL, why, whylen);
}

enum ceb_jwt_reason ceb_jwt_verify_times(const struct ceb_jwks *keys, const char *token, size_t len,
                                         const struct ceb_jwt_expect *want, char *sub, size_t subsz,
                                         struct ceb_jwt_times *times, char *why, size_t whylen)
{
	const char *dot1, *dot2;
	cJSON *hdr = NULL, *pl = NULL;
	const cJSON *alg, *kid, *crit, *typ, *iss, *aud, *exp, *nbf, *iat, *jsub;
	struct ceb_buf sig = CEB_BUF_INIT;
	enum key_type type;
	enum ceb_jwt_reason rs = CEB_JWT_MALFORMED;
	bool dup = false, tried = false, verified = false;
	char ex[48];

	if (sub && subsz)
		sub[0] = '\0';
	if (len == 0) {
		ceb_seterr(why, whylen, "empty bearer token");
		goto out;
	}
	if (len > CEB_JWT_MAX_LEN) {
		ceb_seterr(why, whylen, "token of %zu bytes, over %d", len, CEB_JWT_MAX_LEN);
		goto out;
	}
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
		ceb_seterr(why, whylen,
		           "not a compact JWS (three base64url parts separated by dots)");
		goto out;
	}
	hdr = part_json(token, (size_t)(dot1 - token));
	if (!hdr) {
		ceb_seterr(why, whylen, "the header is not base64url of a JSON object");
		goto out;
	}
	alg = member(hdr, "alg", &dup);
	kid = member(hdr, "kid", &dup);
	crit = member(hdr, "crit", &dup);
	typ = member(hdr, "typ", &dup);
	if (dup || !cJSON_IsString(alg) || (kid && !cJSON_IsString(kid)) ||
	    (typ && !cJSON_IsString(typ))) {
		ceb_seterr(why, whylen,
		           "the header's alg, kid or typ is missing, repeated or not a "
		           "string");
		goto out;
	}
	if (crit) {
		ceb_seterr(why, whylen, "the header has crit extensions, which are not supported");
		goto out;
	}
	rs = CEB_JWT_ALGORITHM;
	if (strcmp(alg->valuestring, "RS256") == 0) {
		type = KEY_RSA;
	} else if (strcmp(alg->valuestring, "ES256") == 0) {
		type = KEY_EC256;
	} else {
		ceb_seterr(why, whylen, "algorithm '%s' refused: only RS256 and ES256 are accepted",
		           ceb_excerpt(ex, sizeof(ex), alg->valuestring, strlen(alg->valuestring)));
		goto out;
	}
	rs = CEB_JWT_MALFORMED;
	if (b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig) < 0 || !sig.len) {
		ceb_seterr(why, whylen, "the signature is not base64url");
		goto out;
	}
	for (size_t i = 0; i < keys->n && !verified; i++) {
		const struct jwk *k = &keys->keys[i];

		if (kid && strcmp(k->kid, kid->valuestring) != 0)
			continue;
		if (k->type != type || (k->alg[0] && strcmp(k->alg, alg->valuestring) != 0)) {
			if (kid) {
				ceb_seterr(why, whylen,
				           "algorithm %s does not fit key '%s' (an %s key%s%s)",
				           alg->valuestring, k->kid,
				           k->type == KEY_RSA ? "RSA" : "EC P-256",
				           k->alg[0] ? " for " : "", k->alg);
				rs = CEB_JWT_ALGORITHM;
				goto out;
			}
			continue;
		}
		tried = true;
		verified = sig_ok(k, token, (size_t)(dot2 - token), &sig);
	}
	if (!tried) {
		rs = CEB_JWT_UNKNOWN_KEY;
		if (kid)
			ceb_seterr(why, whylen, "no key with kid '%s' in the JWKS",
			           ceb_excerpt(ex, sizeof(ex), kid->valuestring,
			                       strlen(kid->valuestring)));
		else
			ceb_seterr(why, whylen, "no kid, and no %s key in the JWKS",
			           alg->valuestring);
		goto out;
	}
	if (!verified) {
		rs = CEB_JWT_SIGNATURE;
		ceb_seterr(why, whylen, "the %s signature does not verify", alg->valuestring);
		goto out;
	}
	/* Signed by a key we trust: now what it says. */
	pl = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!pl) {
		ceb_seterr(why, whylen, "the payload is not base64url of a JSON object");
		goto out;
	}
	iss = member(pl, "iss", &dup);
	aud = member(pl, "aud", &dup);
	exp = member(pl, "exp", &dup);
	nbf = member(pl, "nbf", &dup);
	iat = member(pl, "iat", &dup);
	jsub = member(pl, "sub", &dup);
	if (dup || (iss && !cJSON_IsString(iss)) || (exp && !cJSON_IsNumber(exp)) ||
	    (nbf && !cJSON_IsNumber(nbf)) || (iat && !cJSON_IsNumber(iat)) ||
	    (jsub && !cJSON_IsString(jsub)) ||
	    (aud && !cJSON_IsString(aud) && !cJSON_IsArray(aud))) {
		ceb_seterr(why, whylen, "a registered claim is repeated or of the wrong type");
		goto out;
	}
	if (!iss || strcmp(iss->valuestring, want->issuer) != 0) {
		rs = CEB_JWT_ISSUER;
		ceb_seterr(why, whylen, "issuer '%s' is not '%s'",
		           iss ? ceb_excerpt(ex, sizeof(ex), iss->valuestring,
		                             strlen(iss->valuestring))
		               : "(none)",
		           want->issuer);
		goto out;
	}
	if (!exp) {
		rs = CEB_JWT_EXPIRED;
		ceb_seterr(why, whylen, "no exp claim: a token must expire");
		goto out;
	}
	if (!isfinite(exp->valuedouble) ||
	    exp->valuedouble + CEB_JWT_LEEWAY_S <= (double)want->now) {
		rs = CEB_JWT_EXPIRED;
		ceb_seterr(why, whylen, "expired (exp %.0f, now %lld)", exp->valuedouble,
		           (long long)want->now);
		goto out;
	}
	if (nbf && !(nbf->valuedouble - CEB_JWT_LEEWAY_S <= (double)want->now)) {
		rs = CEB_JWT_NOT_YET_VALID;
		ceb_seterr(why, whylen, "not valid yet (nbf %.0f, now %lld)", nbf->valuedouble,
		           (long long)want->now);
		goto out;
	}
	if (iat && !(iat->valuedouble - CEB_JWT_LEEWAY_S <= (double)want->now)) {
		rs = CEB_JWT_NOT_YET_VALID;
		ceb_seterr(why, whylen, "issued in the future (iat %.0f, now %lld)",
		           iat->valuedouble, (long long)want->now);
		goto out;
	}
	if (!aud || !aud_holds(aud, want->audience)) {
		rs = CEB_JWT_AUDIENCE;
		ceb_seterr(why, whylen, "audience is not '%s'", want->audience);
		goto out;
	}
	if (sub && subsz)
		snprintf(sub, subsz, "%s", jsub ? jsub->valuestring : "");
	if (times) {
		times->exp = exp->valuedouble;
		times->not_before = 0;
		if (nbf)
			times->not_before = nbf->valuedouble;
		if (iat && iat->valuedouble > times->not_before)
			times->not_before = iat->valuedouble;
	}
	rs = CEB_JWT_OK;
out:
	ceb_buf_free(&sig);
	cJSON_Delete(hdr);
	cJSON_Delete(pl);
	return rs;
}
