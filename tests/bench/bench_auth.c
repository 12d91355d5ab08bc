/* Sender authentication benchmark (a program, not a test): bearer tokens verified per second on one
 * thread, RS256 (2048-bit key) and ES256 (P-256), and a refused token (unknown kid, no crypto) as the
 * parsing baseline. Keys are made here with GnuTLS. */
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth/auth.h"
#include "broker/auth/jwt.h"
#include "broker/buf.h"

#define ROUNDS        3 /* best of, to dampen noise on a shared machine */
#define ROUND_SECONDS 0.5
#define AUD           "eventing.knative.dev/broker/default/orders"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void b64url(const unsigned char *p, size_t n, struct ceb_buf *out)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			ceb_buf_append(out, &al[(acc >> bits) & 63], 1);
		}
	}
	if (bits)
		ceb_buf_append(out, &al[(acc << (6 - bits)) & 63], 1);
}

/* A big-endian integer without GnuTLS's leading zeros, or padded to width (EC coordinates). */
static void b64url_num(const gnutls_datum_t *d, size_t width, struct ceb_buf *out)
{
	unsigned char buf[600] = {0};
	size_t skip = 0, n;

	while (skip + 1 < d->size && d->data[skip] == 0)
		skip++;
	n = d->size - skip;
	if (width && n <= width) {
		memcpy(buf + width - n, d->data + skip, n);
		b64url(buf, width, out);
	} else {
		b64url(d->data + skip, n, out);
	}
}

static gnutls_privkey_t keygen(gnutls_pk_algorithm_t pk, unsigned bits, const char *kid,
                               struct ceb_buf *jwks)
{
	gnutls_privkey_t k;
	gnutls_pubkey_t pub;
	gnutls_datum_t a, b;
	gnutls_ecc_curve_t curve;

	if (gnutls_privkey_init(&k) < 0 || gnutls_privkey_generate(k, pk, bits, 0) < 0 ||
	    gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, k, 0, 0) < 0)
		abort();
	if (pk == GNUTLS_PK_RSA) {
		gnutls_pubkey_export_rsa_raw2(pub, &a, &b, 0);
		ceb_buf_printf(jwks, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"", kid);
		b64url_num(&a, 0, jwks);
		ceb_buf_puts(jwks, "\",\"e\":\"");
		b64url_num(&b, 0, jwks);
	} else {
		gnutls_pubkey_export_ecc_raw2(pub, &curve, &a, &b, 0);
		ceb_buf_printf(jwks, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"",
		               kid);
		b64url_num(&a, 32, jwks);
		ceb_buf_puts(jwks, "\",\"y\":\"");
		b64url_num(&b, 32, jwks);
	}
	ceb_buf_puts(jwks, "\"}");
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pub);
	return k;
}

static void token(gnutls_privkey_t k, const char *alg, const char *kid, struct ceb_buf *tok)
{
	char hdr[128], pl[512];
	gnutls_datum_t data, s, r, sv;

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	snprintf(pl, sizeof(pl),
	         "{\"iss\":\"https://issuer.bench\",\"aud\":\"%s\",\"sub\":\"system:serviceaccount:"
	         "default:app\",\"iat\":%lld,\"exp\":%lld}",
	         AUD, (long long)time(NULL), (long long)time(NULL) + 3600);
	b64url((const unsigned char *)hdr, strlen(hdr), tok);
	ceb_buf_puts(tok, ".");
	b64url((const unsigned char *)pl, strlen(pl), tok);
	data = (gnutls_datum_t){(unsigned char *)tok->p, (unsigned)tok->len};
	if (gnutls_privkey_sign_data2(
	            k, alg[0] == 'R' ? GNUTLS_SIGN_RSA_SHA256 : GNUTLS_SIGN_ECDSA_SHA256, 0, &data,
	            &s) < 0)
		abort();
	ceb_buf_puts(tok, ".");
	if (alg[0] == 'R') {
		b64url(s.data, s.size, tok);
	} else {
		/* JWS wants r || s, 32 bytes each, where GnuTLS gives DER */
		unsigned char raw[64] = {0};
		size_t rn, sn;

		if (gnutls_decode_rs_value(&s, &r, &sv) < 0)
			abort();
		rn = r.size > 32 ? 32 : r.size;
		sn = sv.size > 32 ? 32 : sv.size;
		memcpy(raw + 32 - rn, r.data + r.size - rn, rn);
		memcpy(raw + 64 - sn, sv.data + sv.size - sn, sn);
		b64url(raw, 64, tok);
		gnutls_free(r.data);
		gnutls_free(sv.data);
	}
	gnutls_free(s.data);
}

static double rate(const struct ceb_jwks *keys, const struct ceb_buf *tok,
                   enum ceb_jwt_reason expect)
{
	const struct ceb_jwt_expect want = {"https://issuer.bench", AUD, (int64_t)time(NULL)};
	double best = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now(), t;
		unsigned long n = 0;

		do {
			for (int i = 0; i < 16; i++, n++)
				if (ceb_jwt_verify(keys, tok->p, tok->len, &want, NULL, 0, NULL,
				                   0) != expect)
					abort();
			t = now() - t0;
		} while (t < ROUND_SECONDS);
		if (n / t > best)
			best = n / t;
	}
	return best;
}

/* The ingress's whole check of a request's Authorization header, the same token each time: after
 * the first, a SHA-256 and a look-up in the verified tokens. */
static double rate_check(struct ceb_auth *a, const struct ceb_buf *tok)
{
	struct ceb_auth_target t = {.audience = AUD, .ns = "default"};
	struct ceb_buf value = CEB_BUF_INIT;
	struct ceb_http_header h;
	char sub[CEB_AUTH_SUB_MAX], reason[200];
	double best = 0;

	ceb_buf_puts(&value, "Bearer ");
	ceb_buf_append(&value, tok->p, tok->len);
	ceb_buf_append(&value, "", 1);
	h = (struct ceb_http_header){"Authorization", value.p};
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now(), el;
		unsigned long n = 0;

		do {
			for (int i = 0; i < 16; i++, n++)
				if (ceb_auth_check_token(a, &t, "bench", &h, 1, sub, sizeof(sub),
				                         reason, sizeof(reason)) != 0)
					abort();
			el = now() - t0;
		} while (el < ROUND_SECONDS);
		if (n / el > best)
			best = n / el;
	}
	ceb_buf_free(&value);
	return best;
}

int main(void)
{
	struct ceb_buf jwks = CEB_BUF_INIT, rs = CEB_BUF_INIT, es = CEB_BUF_INIT,
	               bad = CEB_BUF_INIT;
	gnutls_privkey_t rk, ek;
	struct ceb_jwks *keys;
	char err[256];
	struct ceb_auth *auth;
	double r, e, b, c;

	ceb_buf_puts(&jwks, "{\"keys\":[");
	rk = keygen(GNUTLS_PK_RSA, 2048, "rsa", &jwks);
	ceb_buf_puts(&jwks, ",");
	ek = keygen(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), "ec", &jwks);
	ceb_buf_puts(&jwks, "]}");
	if (ceb_jwks_parse(jwks.p, jwks.len, &keys, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_auth: %s\n", err);
		return 1;
	}
	token(rk, "RS256", "rsa", &rs);
	token(ek, "ES256", "ec", &es);
	token(rk, "RS256", "nobody", &bad);
	if (ceb_auth_create_json(jwks.p, jwks.len, "https://issuer.bench", &auth, err,
	                         sizeof(err)) < 0) {
		fprintf(stderr, "bench_auth: %s\n", err);
		return 1;
	}
	c = rate_check(auth, &rs);
	ceb_auth_destroy(auth);
	r = rate(keys, &rs, CEB_JWT_OK);
	e = rate(keys, &es, CEB_JWT_OK);
	b = rate(keys, &bad, CEB_JWT_UNKNOWN_KEY);
	printf("bearer tokens verified per second, one thread (best of %d rounds of %.1f s):\n",
	       ROUNDS, ROUND_SECONDS);
	printf("  RS256 (2048-bit RSA)  %9.0f/s  %7.1f us each\n", r, 1e6 / r);
	printf("  ES256 (P-256)         %9.0f/s  %7.1f us each\n", e, 1e6 / e);
	printf("  refused, unknown kid  %9.0f/s  %7.1f us each (parsing only, no signature)\n", b,
	       1e6 / b);
	printf("  the ingress's check of a token it verified before (either algorithm): %.0f/s, "
	       "%.1f us each\n",
	       c, 1e6 / c);
	ceb_jwks_free(keys);
	gnutls_privkey_deinit(rk);
	gnutls_privkey_deinit(ek);
	ceb_buf_free(&jwks);
	ceb_buf_free(&rs);
	ceb_buf_free(&es);
	ceb_buf_free(&bad);
	return 0;
}
