/* Kafka credentials from Secrets, as Knative's eventing-kafka-broker reads them (a KafkaSource's
 * spec.net secretKeyRefs; a KafkaSink's or a Kafka Broker's Secret with the keys protocol,
 * sasl.mechanism, user, password, ca.crt, user.crt, user.key), mapped to librdkafka's properties
 * with the PEM in memory (ssl.*.pem): no file is written. */
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"
#include "broker/error.h"
#include "channels/kafka/kinds.h"

static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};
static const char *const rdk_protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};

/* The index of s (n bytes) in list, case-insensitive, or -1. */
static int lookup(const char *s, size_t n, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strlen(list[i]) == n && !strncasecmp(s, list[i], n))
			return i;
	return -1;
}

/* "file:line:col: Secret ns/name: data.<key>: " for an error about a Secret's value. */
static void secret_err(const struct ceb_secret *s, const char *key, char *errbuf, size_t errlen,
                       const char *what)
{
	snprintf(errbuf, errlen, "%s:%d:%d: Secret %s/%s: data.%s: %s", s->loc.file, s->loc.line,
	         s->loc.col, s->ns, s->name, key, what);
}

static void ref_err(const struct ceb_secret_ref *ref, char *errbuf, size_t errlen, const char *what)
{
	if (ref->secret && ref->key) {
		secret_err(ref->secret, ref->key, errbuf, errlen, what);
		return;
	}
	snprintf(errbuf, errlen, "%s:%d:%d: Secret %s/%s: data.%s: %s", ref->at.file, ref->at.line,
	         ref->at.col, ref->ns ? ref->ns : "?", ref->name ? ref->name : "?",
	         ref->key ? ref->key : "?", what);
}

/* Whether s is PEM certificates (key false) or a PEM private key (key true): librdkafka reads
 * them only when it connects, so that `validate` and the start say it first. */
static bool pem_ok(const char *s, bool key)
{
	gnutls_datum_t in = {(unsigned char *)(uintptr_t)s, (unsigned)strlen(s)};
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t pk = NULL;
	unsigned n = 0;
	int e;

	if (key) {
		if (gnutls_x509_privkey_init(&pk) < 0)
			return false;
		e = gnutls_x509_privkey_import2(pk, &in, GNUTLS_X509_FMT_PEM, NULL, 0);
		gnutls_x509_privkey_deinit(pk);
		return e >= 0;
	}
	e = gnutls_x509_crt_list_import2(&crts, &n, &in, GNUTLS_X509_FMT_PEM, 0);
	for (unsigned i = 0; e >= 0 && i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return e >= 0 && n > 0;
}

#define NOT_CERTS "not PEM certificates (-----BEGIN CERTIFICATE----- blocks)"
#define NOT_KEY   "not an unencrypted PEM private key"

static void add(struct ceb_kafka_prop *out, size_t *n, const char *name, const char *value)
{
	if (value && *n < CEB_KAFKA_AUTH_PROPS)
		out[(*n)++] = (struct ceb_kafka_prop){name, value};
}

/* A whole Secret with Knative's keys. */
static int whole_props(const struct ceb_secret *s, struct ceb_kafka_prop *out, size_t *n,
                       char *errbuf, size_t errlen)
{
	const char *proto = ceb_secret_get(s, "protocol", NULL);
	const char *mech = ceb_secret_get(s, "sasl.mechanism", NULL);
	const char *user = ceb_secret_get(s, "user", NULL);
	const char *pass = ceb_secret_get(s, "password", NULL);
	const char *ca = ceb_secret_get(s, "ca.crt", NULL);
	const char *cert = ceb_secret_get(s, "user.crt", NULL);
	const char *key = ceb_secret_get(s, "user.key", NULL);
	int p, m = 0;

	if (!proto) {
		secret_err(s, "protocol", errbuf, errlen,
		           "required key missing (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)");
		return CEB_ECONFIG;
	}
	if ((p = lookup(proto, strlen(proto), protocols)) < 0) {
		secret_err(s, "protocol", errbuf, errlen,
		           "not a Kafka security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or "
		           "SASL_SSL)");
		return CEB_ECONFIG;
	}
	add(out, n, "security.protocol", rdk_protocols[p]);
	if (p >= 2) { /* SASL */
		if (mech && (m = lookup(mech, strlen(mech), mechanisms)) < 0) {
			secret_err(
			        s, "sasl.mechanism", errbuf, errlen,
			        "not a SASL mechanism cebroker supports (PLAIN, SCRAM-SHA-256 or "
			        "SCRAM-SHA-512)");
			return CEB_ECONFIG;
		}
		if (!user || !pass) {
			secret_err(s, user ? "password" : "user", errbuf, errlen,
			           "required key missing for SASL");
			return CEB_ECONFIG;
		}
		add(out, n, "sasl.mechanisms", mechanisms[m]);
		add(out, n, "sasl.username", user);
		add(out, n, "sasl.password", pass);
	}
	if (p == 1 || p == 3) { /* TLS */
		if (!cert != !key) {
			secret_err(
			        s, cert ? "user.key" : "user.crt", errbuf, errlen,
			        "user.crt and user.key go together (a client certificate and its "
			        "key)");
			return CEB_ECONFIG;
		}
		if ((ca && !pem_ok(ca, false)) || (cert && !pem_ok(cert, false))) {
			secret_err(s, ca && !pem_ok(ca, false) ? "ca.crt" : "user.crt", errbuf,
			           errlen, NOT_CERTS);
			return CEB_ECONFIG;
		}
		if (key && !pem_ok(key, true)) {
			secret_err(s, "user.key", errbuf, errlen, NOT_KEY);
			return CEB_ECONFIG;
		}
		add(out, n, "ssl.ca.pem", ca);
		add(out, n, "ssl.certificate.pem", cert);
		add(out, n, "ssl.key.pem", key);
	}
	return 0;
}

/* A KafkaSource's spec.net. */
static int net_props(const struct ceb_kafka_auth *a, struct ceb_kafka_prop *out, size_t *n,
                     char *errbuf, size_t errlen)
{
	int m = 0;

	add(out, n, "security.protocol", rdk_protocols[(a->sasl ? 2 : 0) + (a->tls ? 1 : 0)]);
	if (a->sasl) {
		if (a->type.value && (m = lookup(a->type.value, a->type.len, mechanisms)) < 0) {
			ref_err(&a->type, errbuf, errlen,
			        "not a SASL mechanism cebroker supports (PLAIN, SCRAM-SHA-256 or "
			        "SCRAM-SHA-512)");
			return CEB_ECONFIG;
		}
		add(out, n, "sasl.mechanisms", mechanisms[m]);
		add(out, n, "sasl.username", a->user.value);
		add(out, n, "sasl.password", a->password.value);
	}
	if (a->tls) {
		const struct ceb_secret_ref *bad =
		        a->ca.value && !pem_ok(a->ca.value, false)       ? &a->ca
		        : a->cert.value && !pem_ok(a->cert.value, false) ? &a->cert
		        : a->key.value && !pem_ok(a->key.value, true)    ? &a->key
		                                                         : NULL;

		if (bad) {
			ref_err(bad, errbuf, errlen, bad == &a->key ? NOT_KEY : NOT_CERTS);
			return CEB_ECONFIG;
		}
		add(out, n, "ssl.ca.pem", a->ca.value);
		add(out, n, "ssl.certificate.pem", a->cert.value);
		add(out, n, "ssl.key.pem", a->key.value);
	}
	return 0;
}

int ceb_kafka_auth_props(const struct ceb_kafka_auth *a, struct ceb_kafka_prop *out, size_t *n,
                         char *errbuf, size_t errlen)
{
	*n = 0;
	if (a->whole)
		return a->secret.secret ? whole_props(a->secret.secret, out, n, errbuf, errlen) : 0;
	if (a->sasl || a->tls)
		return net_props(a, out, n, errbuf, errlen);
	return 0;
}

/* One spec.net value: {secretKeyRef: {name, key}}, into ref. */
static void net_value(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                      struct ceb_secret_ref *ref)
{
	static const char *const fields[] = {"secretKeyRef", NULL};
	const struct ceb_yaml_node *skr;
	char p[128];

	if (!ceb_config_get_fields(r, n, path, fields, &skr, NULL))
		return;
	if (!skr) {
		ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), path, "secretKeyRef"),
		               "required field missing");
		return;
	}
	ceb_config_get_secret_key_ref(r, skr,
	                              ceb_config_path_key(p, sizeof(p), path, "secretKeyRef"), ref);
}

void ceb_kafka_auth_parse_net(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                              struct ceb_kafka_auth *a)
{
	static const char *const fields[] = {"sasl", "tls", NULL};
	static const char *const sasl_fields[] = {"enable",        "user",    "password", "type",
	                                          "tokenProvider", "roleARN", NULL};
	static const char *const tls_fields[] = {"enable", "cert", "key", "caCert", NULL};
	const struct ceb_yaml_node *v[2], *sv[6], *tv[4];
	char p[128];

	if (!ceb_config_get_fields(r, n, "spec.net", fields, v, NULL))
		return;
	if (v[0] && ceb_config_get_fields(r, v[0], "spec.net.sasl", sasl_fields, sv, NULL)) {
		if (sv[0])
			ceb_config_get_bool(r, sv[0], "spec.net.sasl.enable", &a->sasl);
		for (size_t i = 4; i < 6 && a->sasl; i++) /* read past when SASL is off */
			if (sv[i])
				ceb_config_err(r, sv[i],
				               ceb_config_path_key(p, sizeof(p), "spec.net.sasl",
				                                   sasl_fields[i]),
				               "not supported (AWS MSK IAM): cebroker speaks SASL "
				               "PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512");
		if (a->sasl) {
			for (size_t i = 1; i < 3; i++)
				if (!sv[i])
					ceb_config_err(
					        r, v[0],
					        ceb_config_path_key(p, sizeof(p), "spec.net.sasl",
					                            sasl_fields[i]),
					        "required field missing when SASL is enabled");
			if (sv[1])
				net_value(r, sv[1], "spec.net.sasl.user", &a->user);
			if (sv[2])
				net_value(r, sv[2], "spec.net.sasl.password", &a->password);
			if (sv[3])
				net_value(r, sv[3], "spec.net.sasl.type", &a->type);
		}
	}
	if (v[1] && ceb_config_get_fields(r, v[1], "spec.net.tls", tls_fields, tv, NULL)) {
		if (tv[0])
			ceb_config_get_bool(r, tv[0], "spec.net.tls.enable", &a->tls);
		if (a->tls) {
			if (!tv[1] != !tv[2])
				ceb_config_err(r, v[1],
				               tv[1] ? "spec.net.tls.key" : "spec.net.tls.cert",
				               "cert and key go together (a client certificate and "
				               "its key)");
			if (tv[1])
				net_value(r, tv[1], "spec.net.tls.cert", &a->cert);
			if (tv[2])
				net_value(r, tv[2], "spec.net.tls.key", &a->key);
			if (tv[3])
				net_value(r, tv[3], "spec.net.tls.caCert", &a->ca);
		}
	}
}

void ceb_kafka_auth_parse_sink(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               struct ceb_kafka_auth *a)
{
	static const char *const auth_fields[] = {"secret", NULL};
	static const char *const secret_fields[] = {"ref", NULL};
	static const char *const ref_fields[] = {"name", NULL};
	const struct ceb_yaml_node *secret, *ref, *name;
	char *s = NULL;

	if (ceb_config_get_fields(r, n, "spec.auth", auth_fields, &secret, NULL) && secret &&
	    ceb_config_get_fields(r, secret, "spec.auth.secret", secret_fields, &ref, NULL) &&
	    ref && ceb_config_get_fields(r, ref, "spec.auth.secret.ref", ref_fields, &name, NULL) &&
	    name && ceb_config_get_str(r, name, "spec.auth.secret.ref.name", &s)) {
		a->whole = true;
		ceb_config_secret_ref(r, name, "spec.auth.secret.ref.name", NULL, s, NULL,
		                      &a->secret);
	}
	free(s);
}

void ceb_kafka_auth_broker_secret(struct ceb_config_res *r, const char *ns, const char *name,
                                  const struct ceb_loc *at, const char *path,
                                  struct ceb_kafka_auth *a)
{
	const struct ceb_secret *s = ceb_config_loaded_secret(r, ns, name);

	if (!s) {
		ceb_config_err_at(r, at, path, "Secret %s/%s not found", ns, name);
		return;
	}
	a->whole = true;
	a->secret.secret = s;
	a->secret.at = *at;
}

void ceb_kafka_auth_free(struct ceb_kafka_auth *a)
{
	ceb_secret_ref_free(&a->secret);
	ceb_secret_ref_free(&a->user);
	ceb_secret_ref_free(&a->password);
	ceb_secret_ref_free(&a->type);
	ceb_secret_ref_free(&a->cert);
	ceb_secret_ref_free(&a->key);
	ceb_secret_ref_free(&a->ca);
}
