/* Sender authentication's cryptography: a JWKS document (RSA and EC P-256 public keys) and the
 * verification of a bearer JWT against it (RS256, ES256), with GnuTLS doing every signature check.
 * No daemon state here: the ingress (broker/auth/auth.c), the unit tests and the fuzzer call it. */
#ifndef CEB_AUTH_JWT_H
#define CEB_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A token longer than this is refused before any parsing (a JWT of a Kubernetes service account is
 * about 1 KiB). */
#define CEB_JWT_MAX_LEN 8192
/* Clock skew allowed on exp, nbf and iat, in seconds. */
#define CEB_JWT_LEEWAY_S 30
/* Keys in one JWKS document at most. */
#define CEB_JWKS_MAX_KEYS 64

/* Why a token was refused; each has a metric label (ceb_jwt_reason_name). */
enum ceb_jwt_reason {
	CEB_JWT_OK = 0,
	CEB_JWT_MISSING,       /* no Authorization: Bearer header */
	CEB_JWT_MALFORMED,     /* not three base64url parts of JSON, a claim of the wrong type */
	CEB_JWT_ALGORITHM,     /* alg none, HS*, anything but RS256/ES256, or not the key's type */
	CEB_JWT_UNKNOWN_KEY,   /* no key with the token's kid */
	CEB_JWT_SIGNATURE,     /* the signature does not verify */
	CEB_JWT_EXPIRED,       /* exp is past (or missing) */
	CEB_JWT_NOT_YET_VALID, /* nbf or iat in the future */
	CEB_JWT_ISSUER,        /* iss is not the configured issuer */
	CEB_JWT_AUDIENCE,      /* aud does not hold the address's audience */
	CEB_JWT_FORBIDDEN,     /* valid, but no EventPolicy allows it (403; auth.c's) */
	CEB_JWT_NREASONS
};

/* "missing", "malformed", "algorithm", "unknown_key", "signature", "expired", "not_yet_valid",
 * "issuer", "audience", "forbidden": the reason label of cebroker_auth_rejected_total. */
const char *ceb_jwt_reason_name(enum ceb_jwt_reason reason);

struct ceb_jwks;

/* Parse a JWKS document ({"keys": [...]}, RFC 7517): RSA keys (n, e; 2048 bits at least) and EC
 * keys on P-256 (x, y), each with a kid. Keys of other types (oct, OKP, other curves) and keys
 * whose "use" is not "sig" are skipped, counted in *skipped (may be NULL). Returns 0 and *out
 * (ceb_jwks_free) with at least one key; CEB_EINVAL with a message in err for a document that is
 * not a JWKS, a key that is broken, or no usable key; CEB_ENOMEM. Any thread. */
int ceb_jwks_parse(const char *json, size_t len, struct ceb_jwks **out, size_t *skipped, char *err,
                   size_t errlen);
/* The same from a file (at most 1 MiB); the message names the file. */
int ceb_jwks_load(const char *path, struct ceb_jwks **out, size_t *skipped, char *err,
                  size_t errlen);
size_t ceb_jwks_count(const struct ceb_jwks *keys);
void ceb_jwks_free(struct ceb_jwks *keys);

/* What a token must satisfy besides its signature. */
struct ceb_jwt_expect {
	const char *issuer;   /* iss must equal it */
	const char *audience; /* aud (a string or an array of strings) must hold it */
	int64_t now;          /* seconds since the epoch */
};

/* Verify a compact JWS token (len bytes, no "Bearer "): its header's alg (RS256 or ES256 only;
 * the key's type must match and a key's own "alg", when given, too), its kid (a token without
 * one is tried against every key of its algorithm's type, as OIDC verifiers do), the signature,
 * then iss, exp, nbf, iat and aud. On CEB_JWT_OK the token's sub (empty when absent; cut to subsz)
 * is copied into sub. why (may be NULL) gets one line for the log: what was wrong, never the token.
 * Thread-safe: keys are only read. */
enum ceb_jwt_reason ceb_jwt_verify(const struct ceb_jwks *keys, const char *token, size_t len,
                                   const struct ceb_jwt_expect *exp, char *sub, size_t subsz,
                                   char *why, size_t whylen);

/* What a verified token says besides its subject: when it stops being valid (exp) and when it
 * starts (the later of nbf and iat; 0 without either), seconds since the epoch. */
struct ceb_jwt_times {
	double exp, not_before;
};
/* ceb_jwt_verify that also gives those times (times may be NULL). */
enum ceb_jwt_reason ceb_jwt_verify_times(const struct ceb_jwks *keys, const char *token, size_t len,
                                         const struct ceb_jwt_expect *exp, char *sub, size_t subsz,
                                         struct ceb_jwt_times *times, char *why, size_t whylen);

#endif
