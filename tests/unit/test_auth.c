/* Sender authentication's token verification and EventPolicy matching, with keys this test makes
 * with GnuTLS and tokens it signs itself: every refusal reason, the JWKS checks, Knative's names. */
#include <check.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth/auth.h"
#include "broker/auth/jwt.h"
#include "broker/ce/event.h"
#include "broker/auth/policy.h"
#include "broker/buf.h"
#include "broker/config/config.h"

#define ISS "https://issuer.test"
#define AUD "eventing.knative.dev/broker/default/orders"

static gnutls_privkey_t rsa_key, rsa_other, ec_key;
static char jwks_json[8192];
static struct ceb_jwks *keys;
static int64_t now;

static void b64url(const unsigned char *p, size_t n, struct ceb_buf *out)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		char c[4] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63], al[v & 63]};
		ceb_buf_append(out, c, 4);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		char c[2] = {al[v >> 18], al[(v >> 12) & 63]};
		ceb_buf_append(out, c, 2);
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		char c[3] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63]};
		ceb_buf_append(out, c, 3);
	}
}

static void b64url_str(const char *s, struct ceb_buf *out)
{
	b64url((const unsigned char *)s, strlen(s), out);
}

/* A datum without the leading zero GnuTLS adds to keep an integer positive. */
static void b64url_int(const gnutls_datum_t *d, struct ceb_buf *out)
{
	size_t skip = 0;

	while (skip + 1 < d->size && d->data[skip] == 0)
		skip++;
	b64url(d->data + skip, d->size - skip, out);
}

/* A fixed-width big-endian coordinate (32 bytes for P-256). */
static void b64url_fixed(const gnutls_datum_t *d, size_t width, struct ceb_buf *out)
{
	unsigned char buf[64] = {0};
	size_t skip = 0;

	while (d->size - skip > width)
		skip++;
	memcpy(buf + width - (d->size - skip), d->data + skip, d->size - skip);
	b64url(buf, width, out);
}

static gnutls_privkey_t generate(gnutls_pk_algorithm_t pk, unsigned bits)
{
	gnutls_privkey_t k;

	/* called before the tests run too: no ck_assert here */
	if (gnutls_privkey_init(&k) < 0 || gnutls_privkey_generate(k, pk, bits, 0) < 0) {
		fprintf(stderr, "cannot generate a test key\n");
		abort();
	}
	return k;
}

static void rsa_jwk_use(gnutls_privkey_t k, const char *kid, const char *use, struct ceb_buf *out)
{
	gnutls_pubkey_t pub;
	gnutls_datum_t m, e;

	gnutls_pubkey_init(&pub);
	gnutls_pubkey_import_privkey(pub, k, 0, 0);
	gnutls_pubkey_export_rsa_raw2(pub, &m, &e, 0);
	ceb_buf_printf(out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"%s\",\"n\":\"", kid, use);
	b64url_int(&m, out);
	ceb_buf_puts(out, "\",\"e\":\"");
	b64url_int(&e, out);
	ceb_buf_puts(out, "\"}");
	gnutls_free(m.data);
	gnutls_free(e.data);
	gnutls_pubkey_deinit(pub);
}

static void rsa_jwk(gnutls_privkey_t k, const char *kid, struct ceb_buf *out)
{
	rsa_jwk_use(k, kid, "sig", out);
}

static void ec_jwk(gnutls_privkey_t k, const char *kid, struct ceb_buf *out)
{
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x, y;

	gnutls_pubkey_init(&pub);
	gnutls_pubkey_import_privkey(pub, k, 0, 0);
	gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, 0);
	ceb_buf_printf(out, "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\",\"x\":\"", kid);
	b64url_fixed(&x, 32, out);
	ceb_buf_puts(out, "\",\"y\":\"");
	b64url_fixed(&y, 32, out);
	ceb_buf_puts(out, "\"}");
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_pubkey_deinit(pub);
}

/* A compact JWS of header and payload (JSON texts) signed with k: RS256 when k is RSA, ES256 when
 * EC; k NULL leaves the signature part as sig (may be ""). Caller frees the buffer. */
static struct ceb_buf sign(gnutls_privkey_t k, const char *header, const char *payload,
                           const char *sig)
{
	struct ceb_buf tok = CEB_BUF_INIT;
	gnutls_datum_t data, s = {NULL, 0}, r, sv;

	b64url_str(header, &tok);
	ceb_buf_puts(&tok, ".");
	b64url_str(payload, &tok);
	data = (gnutls_datum_t){(unsigned char *)tok.p, (unsigned)tok.len};
	ceb_buf_puts(&tok, ".");
	if (!k) {
		ceb_buf_puts(&tok, sig);
		return tok;
	}
	if (gnutls_privkey_get_pk_algorithm(k, NULL) == GNUTLS_PK_RSA) {
		ck_assert_int_eq(gnutls_privkey_sign_data2(k, GNUTLS_SIGN_RSA_SHA256, 0, &data, &s),
		                 0);
		b64url(s.data, s.size, &tok);
	} else {
		ck_assert_int_eq(
		        gnutls_privkey_sign_data2(k, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &s), 0);
		/* JWS wants r || s, 32 bytes each, where GnuTLS gives DER */
		unsigned char rs[64] = {0};
		size_t rskip, sskip;

		ck_assert_int_eq(gnutls_decode_rs_value(&s, &r, &sv), 0);
		rskip = r.size > 32 ? r.size - 32 : 0;
		sskip = sv.size > 32 ? sv.size - 32 : 0;
		memcpy(rs + 32 - (r.size - rskip), r.data + rskip, r.size - rskip);
		memcpy(rs + 64 - (sv.size - sskip), sv.data + sskip, sv.size - sskip);
		b64url(rs, 64, &tok);
		gnutls_free(r.data);
		gnutls_free(sv.data);
	}
	gnutls_free(s.data);
	return tok;
}

static char claims_buf[1024];

/* The usual claims, with extra JSON members appended (or replacing by being later: we do not;
 * each test writes what it needs). */
static const char *claims(const char *fmt_extra)
{
	snprintf(claims_buf, sizeof(claims_buf),
	         "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"system:serviceaccount:default:app\","
	         "\"iat\":%lld,\"exp\":%lld%s}",
	         ISS, AUD, (long long)now, (long long)now + 300, fmt_extra);
	return claims_buf;
}

static enum ceb_jwt_reason verify(const struct ceb_buf *tok, char *sub, size_t subsz)
{
	struct ceb_jwt_expect want = {ISS, AUD, now};
	char why[300];
	enum ceb_jwt_reason rs =
	        ceb_jwt_verify(keys, tok->p, tok->len, &want, sub, subsz, why, sizeof(why));

	if (rs != CEB_JWT_OK)
		ck_assert_msg(why[0], "a refusal says why");
	return rs;
}

static enum ceb_jwt_reason verify_signed(gnutls_privkey_t k, const char *header,
                                         const char *payload)
{
	struct ceb_buf tok = sign(k, header, payload, "");
	enum ceb_jwt_reason rs = verify(&tok, NULL, 0);

	ceb_buf_free(&tok);
	return rs;
}

#define RS_HDR "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa1\"}"
#define ES_HDR "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ec1\"}"

START_TEST(test_a_valid_rs256_token_is_accepted_and_gives_its_subject)
{
	struct ceb_buf tok = sign(rsa_key, RS_HDR, claims(""), "");
	char sub[64];

	ck_assert_int_eq(verify(&tok, sub, sizeof(sub)), CEB_JWT_OK);
	ck_assert_str_eq(sub, "system:serviceaccount:default:app");
	ceb_buf_free(&tok);
}
END_TEST

START_TEST(test_a_valid_es256_token_is_accepted)
{
	ck_assert_int_eq(verify_signed(ec_key, ES_HDR, claims("")), CEB_JWT_OK);
}
END_TEST

START_TEST(test_a_token_without_kid_is_tried_against_the_keys_of_its_algorithm)
{
	ck_assert_int_eq(verify_signed(rsa_key, "{\"alg\":\"RS256\"}", claims("")), CEB_JWT_OK);
	ck_assert_int_eq(verify_signed(ec_key, "{\"alg\":\"ES256\"}", claims("")), CEB_JWT_OK);
	ck_assert_int_eq(verify_signed(rsa_other, "{\"alg\":\"RS256\"}", claims("")),
	                 CEB_JWT_SIGNATURE);
}
END_TEST

START_TEST(test_alg_none_and_hmac_are_refused_whatever_the_signature)
{
	ck_assert_int_eq(verify_signed(NULL, "{\"alg\":\"none\",\"kid\":\"rsa1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
	ck_assert_int_eq(verify_signed(NULL, "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
	ck_assert_int_eq(verify_signed(NULL, "{\"alg\":\"RS512\",\"kid\":\"rsa1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
	ck_assert_int_eq(verify_signed(NULL, "{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
}
END_TEST

START_TEST(test_an_algorithm_that_does_not_fit_the_key_named_is_refused)
{
	/* ES256 naming the RSA key, RS256 naming the EC key: never tried */
	ck_assert_int_eq(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
	ck_assert_int_eq(verify_signed(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", claims("")),
	                 CEB_JWT_ALGORITHM);
}
END_TEST

START_TEST(test_an_unknown_kid_is_refused)
{
	ck_assert_int_eq(verify_signed(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"gone\"}", claims("")),
	                 CEB_JWT_UNKNOWN_KEY);
}
END_TEST

START_TEST(test_a_wrong_key_or_a_changed_payload_fails_the_signature)
{
	struct ceb_buf tok = sign(rsa_key, RS_HDR, claims(""), ""), other = CEB_BUF_INIT;
	const char *dot1 = memchr(tok.p, '.', tok.len), *dot2;

	ck_assert_int_eq(verify_signed(rsa_other, RS_HDR, claims("")), CEB_JWT_SIGNATURE);
	/* the same signature over another payload */
	dot2 = memchr(dot1 + 1, '.', tok.len - (size_t)(dot1 + 1 - tok.p));
	b64url_str(RS_HDR, &other);
	ceb_buf_puts(&other, ".");
	b64url_str(claims(",\"admin\":true"), &other);
	ceb_buf_append(&other, dot2, tok.len - (size_t)(dot2 - tok.p));
	ck_assert_int_eq(verify(&other, NULL, 0), CEB_JWT_SIGNATURE);
	ceb_buf_free(&tok);
	ceb_buf_free(&other);
	/* an ES256 signature of the wrong length */
	tok = sign(NULL, ES_HDR, claims(""), "AAAA");
	ck_assert_int_eq(verify(&tok, NULL, 0), CEB_JWT_SIGNATURE);
	ceb_buf_free(&tok);
}
END_TEST

START_TEST(test_time_claims_are_checked_with_a_small_leeway)
{
	char c[300];

	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
	         (long long)now - 3600);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_EXPIRED);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
	         (long long)now - 10);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_OK);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\"}", ISS, AUD);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_EXPIRED);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", ISS,
	         AUD, (long long)now + 7200, (long long)now + 3600);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_NOT_YET_VALID);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld}", ISS,
	         AUD, (long long)now + 7200, (long long)now + 3600);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_NOT_YET_VALID);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", ISS,
	         AUD, (long long)now + 7200, (long long)now + 10);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_OK);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":\"tomorrow\"}", ISS, AUD);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_MALFORMED);
}
END_TEST

START_TEST(test_issuer_and_audience_must_match)
{
	char c[400];

	snprintf(c, sizeof(c), "{\"iss\":\"https://other\",\"aud\":\"%s\",\"exp\":%lld}", AUD,
	         (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_ISSUER);
	snprintf(c, sizeof(c), "{\"aud\":\"%s\",\"exp\":%lld}", AUD, (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_ISSUER);
	snprintf(c, sizeof(c),
	         "{\"iss\":\"%s\",\"aud\":\"eventing.knative.dev/broker/default/other\","
	         "\"exp\":%lld}",
	         ISS, (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_AUDIENCE);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":[\"x\",\"%s\"],\"exp\":%lld}", ISS, AUD,
	         (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_OK);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":[\"x\"],\"exp\":%lld}", ISS,
	         (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_AUDIENCE);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"exp\":%lld}", ISS, (long long)now + 60);
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, c), CEB_JWT_AUDIENCE);
}
END_TEST

START_TEST(test_malformed_tokens_are_refused_before_any_crypto)
{
	static const char *const bad[] = {"",
	                                  "abc",
	                                  "a.b",
	                                  "a.b.c.d",
	                                  "!!.e30.AA",
	                                  "e30.e30.AA",
	                                  "eyJhbGciOiJSUzI1NiJ9.e30.!!"};
	char big[CEB_JWT_MAX_LEN + 10];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ceb_buf tok = CEB_BUF_INIT;

		ceb_buf_puts(&tok, bad[i]);
		ck_assert_msg(verify(&tok, NULL, 0) == CEB_JWT_MALFORMED, "%s", bad[i]);
		ceb_buf_free(&tok);
	}
	/* a repeated alg: two readers could disagree on it */
	ck_assert_int_eq(verify_signed(rsa_key,
	                               "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"rsa1\"}",
	                               claims("")),
	                 CEB_JWT_MALFORMED);
	ck_assert_int_eq(verify_signed(rsa_key, "{\"alg\":\"RS256\",\"crit\":[\"x\"]}", claims("")),
	                 CEB_JWT_MALFORMED);
	ck_assert_int_eq(verify_signed(rsa_key, "[1]", claims("")), CEB_JWT_MALFORMED);
	/* a NUL in a claim would cut it short where it is compared */
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, claims(",\"x\":\"a\\u0000b\"")),
	                 CEB_JWT_MALFORMED);
	/* a repeated claim, checked once the signature holds */
	ck_assert_int_eq(verify_signed(rsa_key, RS_HDR, claims(",\"aud\":\"x\"")),
	                 CEB_JWT_MALFORMED);
	memset(big, 'a', sizeof(big));
	{
		struct ceb_jwt_expect want = {ISS, AUD, now};
		ck_assert_int_eq(ceb_jwt_verify(keys, big, sizeof(big), &want, NULL, 0, NULL, 0),
		                 CEB_JWT_MALFORMED);
	}
}
END_TEST

static int jwks(const char *json, size_t *skipped, char *err, size_t errlen)
{
	struct ceb_jwks *k = NULL;
	int rc = ceb_jwks_parse(json, strlen(json), &k, skipped, err, errlen);

	ceb_jwks_free(k);
	return rc;
}

START_TEST(test_a_jwks_is_checked_and_keys_of_other_types_skipped)
{
	gnutls_privkey_t weak = generate(GNUTLS_PK_RSA, 1024);
	struct ceb_buf doc = CEB_BUF_INIT;
	size_t skipped = 0;
	char err[300];

	ck_assert_int_eq(jwks("not json", NULL, err, sizeof(err)), -2);
	ck_assert_int_eq(jwks("{\"kty\":\"RSA\"}", NULL, err, sizeof(err)), -2);
	ck_assert_ptr_nonnull(strstr(err, "no \"keys\" array"));
	ck_assert_int_eq(
	        jwks("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", NULL, err, sizeof(err)),
	        -2);
	ck_assert_ptr_nonnull(strstr(err, "no key to verify tokens with"));
	ck_assert_int_eq(jwks("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","
	                      "\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
	                      NULL, err, sizeof(err)),
	                 -2);
	ck_assert_ptr_nonnull(strstr(err, "32 bytes"));
	ceb_buf_puts(&doc, "{\"keys\":[");
	rsa_jwk(weak, "weak", &doc);
	ceb_buf_puts(&doc, "]}");
	ck_assert_int_eq(jwks(doc.p, NULL, err, sizeof(err)), -2);
	ck_assert_ptr_nonnull(strstr(err, "1024 bits"));
	ck_assert_int_eq(jwks(jwks_json, &skipped, err, sizeof(err)), 0);
	ck_assert_uint_eq(skipped, 2); /* the oct key and the encryption key */
	ceb_buf_free(&doc);
	gnutls_privkey_deinit(weak);
}
END_TEST

START_TEST(test_audiences_are_knatives_for_every_kind_with_an_address)
{
	static const char *const cases[][3] = {
	        {"Broker", "orders", "eventing.knative.dev/broker/ns1/orders"},
	        {"broker", "Orders", "eventing.knative.dev/broker/ns1/orders"},
	        {"KafkaSink", "s", "eventing.knative.dev/kafkasink/ns1/s"},
	        {"InMemoryChannel", "c", "messaging.knative.dev/inmemorychannel/ns1/c"},
	        {"KafkaChannel", "c", "messaging.knative.dev/kafkachannel/ns1/c"},
	        {"NatsJetStreamChannel", "c", "messaging.knative.dev/natsjetstreamchannel/ns1/c"},
	        {"webhooksource", "h", "sources.triggermesh.io/webhooksource/ns1/h"},
	};
	char buf[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ceb_auth_audience(ceb_auth_kind_group(cases[i][0]), cases[i][0], "ns1", cases[i][1],
		                  buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i][2]);
	}
	ck_assert_str_eq(ceb_auth_kind_group("Sequence"), "flows.knative.dev");
	ck_assert_str_eq(ceb_auth_kind_group("NoSuchKind"), "");
}
END_TEST

START_TEST(test_knatives_oidc_service_account_names)
{
	char buf[128];

	ceb_policy_oidc_account("group", "kind", "name", buf, sizeof(buf));
	ck_assert_str_eq(buf, "name-oidc-group-kind");
	ceb_policy_oidc_account("eventing.knative.dev", "Broker", "my-Broker", buf, sizeof(buf));
	ck_assert_str_eq(buf, "my-broker-oidc-eventing.knative.dev-broker");
	ceb_policy_oidc_account("eventing.knative.dev", "Broker",
	                        "my-loooooooooooooooooooooooooooooooooooooog-Broker", buf,
	                        sizeof(buf));
	ck_assert_str_eq(buf, "my-looooooooooooooooooooooooooo2dfc2a3825b8d82077b0f25518b36884");
	ceb_policy_oidc_account("sources.knative.dev", "PingSource", "my-source", buf, sizeof(buf));
	ck_assert_str_eq(buf, "my-source-oidc-sources.knative.dev-pingsource");
}
END_TEST

static const char policy_yaml[] =
        "apiVersion: eventing.knative.dev/v1alpha1\n"
        "kind: EventPolicy\n"
        "metadata:\n  name: p\n  namespace: ns1\n"
        "spec:\n"
        "  to:\n"
        "    - ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: orders}\n"
        "    - selector:\n"
        "        apiVersion: eventing.knative.dev/v1alpha1\n"
        "        kind: KafkaSink\n"
        "        matchLabels: {tier: gold}\n"
        "        matchExpressions:\n"
        "          - {key: env, operator: In, values: [prod, stage]}\n"
        "          - {key: legacy, operator: DoesNotExist}\n"
        "  from:\n"
        "    - sub: system:serviceaccount:ns1:app\n"
        "    - sub: \"system:serviceaccount:team-*\"\n"
        "    - ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: tick}\n"
        "  filters:\n"
        "    - exact: {type: order.created}\n";

START_TEST(test_a_policy_applies_by_ref_and_by_selector_in_its_namespace)
{
	struct ceb_config *cfg = NULL;
	const struct ceb_event_policy *p;
	char *k1[] = {"tier", "env"}, *v1[] = {"gold", "prod"};
	char *k2[] = {"tier", "env", "legacy"}, *v2[] = {"gold", "prod", "1"};
	char *v3[] = {"gold", "dev"};

	ck_assert_int_eq(
	        ceb_config_load_string("p.yaml", policy_yaml, strlen(policy_yaml), &cfg, NULL), 0);
	p = ceb_policy_first(cfg);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(ceb_policy_next(p));
	ck_assert(ceb_policy_applies(p, "eventing.knative.dev", "broker", "ns1", "Orders", NULL,
	                             NULL, 0));
	ck_assert(!ceb_policy_applies(p, "eventing.knative.dev", "Broker", "ns2", "orders", NULL,
	                              NULL, 0));
	ck_assert(!ceb_policy_applies(p, "eventing.knative.dev", "Broker", "ns1", "other", NULL,
	                              NULL, 0));
	ck_assert(
	        ceb_policy_applies(p, "eventing.knative.dev", "KafkaSink", "ns1", "s", k1, v1, 2));
	ck_assert(
	        !ceb_policy_applies(p, "eventing.knative.dev", "KafkaSink", "ns1", "s", k2, v2, 3));
	ck_assert(
	        !ceb_policy_applies(p, "eventing.knative.dev", "KafkaSink", "ns1", "s", k1, v3, 2));
	ck_assert(!ceb_policy_applies(p, "eventing.knative.dev", "KafkaSink", "ns1", "s", NULL,
	                              NULL, 0));
	ck_assert(ceb_policy_allows_sub(p, "system:serviceaccount:ns1:app"));
	ck_assert(!ceb_policy_allows_sub(p, "system:serviceaccount:ns1:app2"));
	ck_assert(ceb_policy_allows_sub(p, "system:serviceaccount:team-a:x"));
	ck_assert(ceb_policy_allows_sub(p,
	                                "system:serviceaccount:ns1:tick-oidc-sources.knative.dev-"
	                                "pingsource"));
	ck_assert_ptr_nonnull(p->filter);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_policy_without_to_applies_to_its_whole_namespace)
{
	static const char y[] = "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\n"
	                        "metadata:\n  name: all\nspec:\n  from:\n    - sub: x\n";
	struct ceb_config *cfg = NULL;
	const struct ceb_event_policy *p;

	ck_assert_int_eq(ceb_config_load_string("p.yaml", y, strlen(y), &cfg, NULL), 0);
	p = ceb_policy_first(cfg);
	ck_assert(ceb_policy_applies(p, "messaging.knative.dev", "InMemoryChannel", "default", "c",
	                             NULL, NULL, 0));
	ck_assert(!ceb_policy_applies(p, "messaging.knative.dev", "InMemoryChannel", "other", "c",
	                              NULL, NULL, 0));
	ck_assert_ptr_null(p->filter);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_policy_errors_are_located)
{
	static const char y[] = "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\n"
	                        "metadata:\n  name: bad\nspec:\n  to:\n    - {}\n  from:\n"
	                        "    - sub: \"*x\"\n    - {ref: {kind: A, name: b}}\n"
	                        "  filters:\n    - {exact: {}}\n  selector: {}\n";
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	struct ceb_config *cfg = NULL;

	ck_assert_int_eq(ceb_config_load_string("p.yaml", y, strlen(y), &cfg, &errs), -10);
	ck_assert_ptr_nonnull(strstr(errs.text.p, "p.yaml:7:7: EventPolicy default/bad: "
	                                          "spec.to[0]: needs ref or selector"));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "p.yaml:9:12: EventPolicy default/bad: "
	                                          "spec.from[0].sub: '*' is only allowed as "
	                                          "suffix"));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "p.yaml:10:13: EventPolicy default/bad: "
	                                          "spec.from[1].ref: needs apiVersion, kind and "
	                                          "name"));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "spec.filters[0].exact"));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "spec.selector: unknown field"));
	ck_assert_uint_eq(errs.count, 5);
	ceb_buf_free(&errs.text);
}
END_TEST

/* The ingress's check (auth.c) of one Authorization header (NULL: none) for target t. */
static int check(struct ceb_auth *a, const struct ceb_auth_target *t, const char *value, char *sub)
{
	struct ceb_http_header h = {"Authorization", value};
	char reason[200];

	return ceb_auth_check_token(a, t, "broker default/orders", &h, value ? 1 : 0, sub,
	                            CEB_AUTH_SUB_MAX, reason, sizeof(reason));
}

static struct ceb_auth *auth_new(void)
{
	struct ceb_auth *a = NULL;
	char err[200];

	ck_assert_int_eq(
	        ceb_auth_create_json(jwks_json, strlen(jwks_json), ISS, &a, err, sizeof(err)), 0);
	return a;
}

START_TEST(test_the_ingress_check_wants_one_bearer_token_and_remembers_it)
{
	struct ceb_auth *a = auth_new();
	struct ceb_auth_target t = {.audience = AUD, .ns = "default"};
	struct ceb_buf tok = sign(rsa_key, RS_HDR, claims(""), ""), value = CEB_BUF_INIT;
	char sub[CEB_AUTH_SUB_MAX], err[200];
	struct ceb_http_header two[2];

	ceb_buf_puts(&value, "bearer  ");
	ceb_buf_append(&value, tok.p, tok.len);
	ceb_buf_puts(&value, " ");
	ck_assert_int_eq(check(a, &t, NULL, sub), 401);
	ck_assert_int_eq(check(a, &t, "Basic dTpw", sub), 401);
	ck_assert_int_eq(check(a, &t, value.p, sub), 0);
	ck_assert_str_eq(sub, "system:serviceaccount:default:app");
	ck_assert_int_eq(check(a, &t, value.p, sub), 0); /* the second time from the cache */
	ck_assert_str_eq(sub, "system:serviceaccount:default:app");
	two[0] = two[1] = (struct ceb_http_header){"authorization", value.p};
	ck_assert_int_eq(
	        ceb_auth_check_token(a, &t, "x", two, 2, sub, sizeof(sub), err, sizeof(err)), 401);
	/* remembered for this address only */
	{
		struct ceb_auth_target other = {.audience = "eventing.knative.dev/broker/default/x",
		                                .ns = "default"};
		ck_assert_int_eq(check(a, &other, value.p, sub), 401);
	}
	/* the default modes */
	ceb_auth_set_default_mode(a, CEB_AUTH_DENY_ALL);
	ck_assert_int_eq(check(a, &t, value.p, sub), 403);
	ceb_auth_set_default_mode(a, CEB_AUTH_ALLOW_SAME_NAMESPACE);
	ck_assert_int_eq(check(a, &t, value.p, sub), 0);
	t.ns = "elsewhere";
	ck_assert_int_eq(check(a, &t, value.p, sub), 403);
	ceb_buf_free(&tok);
	ceb_buf_free(&value);
	ceb_auth_destroy(a);
}
END_TEST

START_TEST(test_policies_admit_their_subjects_and_filter_their_events)
{
	static const char y[] = "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\n"
	                        "metadata:\n  name: p\nspec:\n  from:\n"
	                        "    - sub: system:serviceaccount:default:app\n"
	                        "  filters:\n    - exact: {type: order.created}\n";
	struct ceb_config *cfg = NULL;
	struct ceb_auth *a = auth_new();
	const struct ceb_event_policy *pols[1];
	struct ceb_auth_target t = {
	        .audience = AUD, .ns = "default", .policies = pols, .npolicies = 1};
	struct ceb_buf tok = sign(rsa_key, RS_HDR, claims(""), ""), value = CEB_BUF_INIT;
	struct ceb_buf other = CEB_BUF_INIT, otok;
	struct ceb_event *ev = ceb_event_new();
	char sub[CEB_AUTH_SUB_MAX], reason[200], c[400];

	ck_assert_int_eq(ceb_config_load_string("p.yaml", y, strlen(y), &cfg, NULL), 0);
	pols[0] = ceb_policy_first(cfg);
	ceb_buf_puts(&value, "Bearer ");
	ceb_buf_append(&value, tok.p, tok.len);
	ck_assert_int_eq(check(a, &t, value.p, sub), 0);
	snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"someone\",\"exp\":%lld}",
	         ISS, AUD, (long long)now + 60);
	otok = sign(rsa_key, RS_HDR, c, "");
	ceb_buf_puts(&other, "Bearer ");
	ceb_buf_append(&other, otok.p, otok.len);
	ck_assert_int_eq(check(a, &t, other.p, sub), 403);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, "1", 1, NULL, 0), 0);
	ck_assert_int_eq(ceb_event_set(ev, "source", CEB_TYPE_URIREF, "/s", 2, NULL, 0), 0);
	ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, "order.created", 13, NULL, 0),
	                 0);
	ck_assert_int_eq(ceb_auth_check_event(a, &t, "x", "system:serviceaccount:default:app", ev,
	                                      reason, sizeof(reason)),
	                 0);
	ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, "order.deleted", 13, NULL, 0),
	                 0);
	ck_assert_int_eq(ceb_auth_check_event(a, &t, "x", "system:serviceaccount:default:app", ev,
	                                      reason, sizeof(reason)),
	                 403);
	ck_assert_ptr_nonnull(strstr(reason, "no EventPolicy"));
	ceb_event_unref(ev);
	ceb_buf_free(&tok);
	ceb_buf_free(&otok);
	ceb_buf_free(&value);
	ceb_buf_free(&other);
	ceb_auth_destroy(a);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_delivery_of_the_daemon_is_judged_by_the_identity_of_its_sender)
{
	struct ceb_auth *a = auth_new();
	struct ceb_auth_target t = {.audience = AUD, .ns = "default"};
	char sub[CEB_AUTH_SUB_MAX], reason[200];

	ck_assert_int_eq(ceb_auth_check_sender(a, &t, "x", "trigger default/forward", sub,
	                                       sizeof(sub), reason, sizeof(reason)),
	                 0);
	ck_assert_str_eq(sub, "system:serviceaccount:default:forward-oidc-eventing.knative.dev-"
	                      "trigger");
	ck_assert_int_eq(ceb_auth_check_sender(a, &t, "x", "pingsource ops/tick", sub, sizeof(sub),
	                                       reason, sizeof(reason)),
	                 0);
	ck_assert_str_eq(sub, "system:serviceaccount:ops:tick-oidc-sources.knative.dev-pingsource");
	ceb_auth_set_default_mode(a, CEB_AUTH_ALLOW_SAME_NAMESPACE);
	ck_assert_int_eq(ceb_auth_check_sender(a, &t, "x", "pingsource ops/tick", sub, sizeof(sub),
	                                       reason, sizeof(reason)),
	                 403);
	ck_assert_int_eq(
	        ceb_auth_check_sender(a, &t, "x", "", sub, sizeof(sub), reason, sizeof(reason)),
	        403);
	ceb_auth_destroy(a);
}
END_TEST

int main(void)
{
	struct ceb_buf doc = CEB_BUF_INIT;
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("tokens");
	TCase *tp = tcase_create("policies");
	SRunner *sr;
	char err[300];
	int failed;

	now = (int64_t)time(NULL);
	/* keys made once, before the tests fork */
	rsa_key = generate(GNUTLS_PK_RSA, 2048);
	rsa_other = generate(GNUTLS_PK_RSA, 2048);
	ec_key = generate(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	ceb_buf_puts(&doc, "{\"keys\":[");
	rsa_jwk(rsa_key, "rsa1", &doc);
	ceb_buf_puts(&doc, ",");
	ec_jwk(ec_key, "ec1", &doc);
	ceb_buf_puts(&doc, ",{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"},");
	rsa_jwk_use(rsa_other, "enc", "enc", &doc); /* an encryption key: never used to verify */
	ceb_buf_puts(&doc, "]}");
	snprintf(jwks_json, sizeof(jwks_json), "%s", doc.p);
	ceb_buf_free(&doc);
	if (ceb_jwks_parse(jwks_json, strlen(jwks_json), &keys, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "test JWKS: %s\n", err);
		return 1;
	}
	tcase_add_test(tc, test_a_valid_rs256_token_is_accepted_and_gives_its_subject);
	tcase_add_test(tc, test_a_valid_es256_token_is_accepted);
	tcase_add_test(tc, test_a_token_without_kid_is_tried_against_the_keys_of_its_algorithm);
	tcase_add_test(tc, test_alg_none_and_hmac_are_refused_whatever_the_signature);
	tcase_add_test(tc, test_an_algorithm_that_does_not_fit_the_key_named_is_refused);
	tcase_add_test(tc, test_an_unknown_kid_is_refused);
	tcase_add_test(tc, test_a_wrong_key_or_a_changed_payload_fails_the_signature);
	tcase_add_test(tc, test_time_claims_are_checked_with_a_small_leeway);
	tcase_add_test(tc, test_issuer_and_audience_must_match);
	tcase_add_test(tc, test_malformed_tokens_are_refused_before_any_crypto);
	tcase_add_test(tc, test_a_jwks_is_checked_and_keys_of_other_types_skipped);
	tcase_add_test(tc, test_the_ingress_check_wants_one_bearer_token_and_remembers_it);
	tcase_add_test(tp, test_policies_admit_their_subjects_and_filter_their_events);
	tcase_add_test(tp, test_audiences_are_knatives_for_every_kind_with_an_address);
	tcase_add_test(tp, test_a_delivery_of_the_daemon_is_judged_by_the_identity_of_its_sender);
	tcase_add_test(tp, test_knatives_oidc_service_account_names);
	tcase_add_test(tp, test_a_policy_applies_by_ref_and_by_selector_in_its_namespace);
	tcase_add_test(tp, test_a_policy_without_to_applies_to_its_whole_namespace);
	tcase_add_test(tp, test_policy_errors_are_located);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tp);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	ceb_jwks_free(keys);
	gnutls_privkey_deinit(rsa_key);
	gnutls_privkey_deinit(rsa_other);
	gnutls_privkey_deinit(ec_key);
	return failed ? 1 : 0;
}
