/* The ingress's certificate and key, served to libmicrohttpd through GnuTLS's retrieve callback so
 * that a new pair replaces the old one without stopping the listener. A pair once served is kept
 * until the ingress stops: a session that took it may still hold it. */
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/error.h"
#include "broker/ingress/tls.h"

#define CHAIN_MAX 16 /* certificates in a chain file */

/* One certificate chain and its key, as read once. */
struct pair {
	gnutls_pcert_st pcert[CHAIN_MAX];
	unsigned n;
	gnutls_privkey_t key;
	char cn[128];
	time_t not_after;
	struct pair *older; /* the pairs served before this one */
};

struct ceb_tls {
	char *cert_path, *key_path;
	struct pair *cur; /* the one served; older ones hang from it */
};

/* The pair handshakes get: one ingress per process serves TLS. */
static _Atomic(struct pair *) serving;

static void pair_free(struct pair *p)
{
	while (p) {
		struct pair *older = p->older;

		for (unsigned i = 0; i < p->n; i++)
			gnutls_pcert_deinit(&p->pcert[i]);
		if (p->key)
			gnutls_privkey_deinit(p->key);
		free(p);
		p = older;
	}
}

/* The key's public half in DER, for comparing with the certificate's. */
static int pubkey_der(gnutls_pubkey_t pk, gnutls_datum_t *out)
{
	return gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, out);
}

static bool key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert_pk)
{
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
	bool ok = false;

	if (gnutls_pubkey_init(&pk) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(pk, key, 0, 0) < 0 || pubkey_der(pk, &a) < 0 ||
	    pubkey_der(cert_pk, &b) < 0)
		goto out;
	ok = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
out:
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pk);
	return ok;
}

/* The leaf's common name and validity; an error unless valid now. */
static int check_leaf(struct pair *p, const char *cert_path, char *errbuf, size_t errlen)
{
	gnutls_x509_crt_t crt = NULL;
	size_t cnlen = sizeof(p->cn) - 1;
	time_t now = time(NULL), not_before;
	int rc = CEB_ECONFIG;

	if (gnutls_pcert_export_x509(&p->pcert[0], &crt) < 0) {
		snprintf(errbuf, errlen, "%s: cannot read the certificate", cert_path);
		return rc;
	}
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, p->cn, &cnlen) <
	    0)
		snprintf(p->cn, sizeof(p->cn), "(no common name)");
	p->not_after = gnutls_x509_crt_get_expiration_time(crt);
	not_before = gnutls_x509_crt_get_activation_time(crt);
	if (p->not_after != (time_t)-1 && p->not_after < now) {
		snprintf(errbuf, errlen, "%s: the certificate (CN %s) expired", cert_path, p->cn);
		goto out;
	}
	if (not_before != (time_t)-1 && not_before > now) {
		snprintf(errbuf, errlen, "%s: the certificate (CN %s) is not valid yet", cert_path,
		         p->cn);
		goto out;
	}
	rc = 0;
out:
	gnutls_x509_crt_deinit(crt);
	return rc;
}

static int pair_load(const char *cert_path, const char *key_path, struct pair **out, char *errbuf,
                     size_t errlen)
{
	struct pair *p = calloc(1, sizeof(*p));
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	int rc = CEB_ECONFIG, e;

	if (!p) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	if ((e = gnutls_load_file(cert_path, &cert)) < 0) {
		snprintf(errbuf, errlen, "%s: cannot read (%s)", cert_path, gnutls_strerror(e));
		goto out;
	}
	if ((e = gnutls_load_file(key_path, &key)) < 0) {
		snprintf(errbuf, errlen, "%s: cannot read (%s)", key_path, gnutls_strerror(e));
		goto out;
	}
	p->n = CHAIN_MAX;
	e = gnutls_pcert_list_import_x509_raw(p->pcert, &p->n, &cert, GNUTLS_X509_FMT_PEM, 0);
	if (e < 0 || p->n == 0) {
		p->n = 0;
		snprintf(errbuf, errlen, "%s: not a PEM certificate chain of at most %d (%s)",
		         cert_path, CHAIN_MAX, e < 0 ? gnutls_strerror(e) : "none found");
		goto out;
	}
	if ((e = gnutls_privkey_init(&p->key)) < 0 ||
	    (e = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(errbuf, errlen, "%s: not an unencrypted PEM private key (%s)", key_path,
		         gnutls_strerror(e));
		goto out;
	}
	if (!key_matches(p->key, p->pcert[0].pubkey)) {
		snprintf(errbuf, errlen, "%s: the key is not the one of the certificate in %s",
		         key_path, cert_path);
		goto out;
	}
	if ((rc = check_leaf(p, cert_path, errbuf, errlen)) < 0)
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	if (key.data) {
		/* the key's bytes are not left in freed memory */
		memset(key.data, 0, key.size);
		gnutls_free(key.data);
	}
	gnutls_free(cert.data);
	pair_free(p);
	return rc;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	struct pair *p = atomic_load(&serving);

	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!p)
		return -1;
	*pcert = p->pcert;
	*pcert_length = p->n;
	*privkey = p->key;
	return 0;
}

void *ceb_tls_callback(void)
{
	return (void *)&retrieve;
}

int ceb_tls_create(const char *cert, const char *key, struct ceb_tls **out, char *errbuf,
                   size_t errlen)
{
	struct ceb_tls *tls = calloc(1, sizeof(*tls));
	int rc;

	if (!tls || !(tls->cert_path = strdup(cert)) || !(tls->key_path = strdup(key))) {
		ceb_tls_destroy(tls);
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	rc = pair_load(cert, key, &tls->cur, errbuf, errlen);
	if (rc < 0) {
		ceb_tls_destroy(tls);
		return rc;
	}
	atomic_store(&serving, tls->cur);
	*out = tls;
	return 0;
}

int ceb_tls_reload(struct ceb_tls *tls, char *errbuf, size_t errlen)
{
	struct pair *p = NULL;
	int rc = pair_load(tls->cert_path, tls->key_path, &p, errbuf, errlen);

	if (rc < 0)
		return rc;
	p->older = tls->cur;
	tls->cur = p;
	atomic_store(&serving, p);
	return 0;
}

void ceb_tls_describe(const struct ceb_tls *tls, char *buf, size_t len)
{
	struct tm tm;
	char date[32] = "?";

	if (gmtime_r(&tls->cur->not_after, &tm))
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, len, "CN %s, valid until %s", tls->cur->cn, date);
}

void ceb_tls_destroy(struct ceb_tls *tls)
{
	if (!tls)
		return;
	if (tls->cur && atomic_load(&serving) == tls->cur)
		atomic_store(&serving, NULL);
	pair_free(tls->cur);
	free(tls->cert_path);
	free(tls->key_path);
	free(tls);
}
