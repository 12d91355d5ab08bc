/* The ingress's TLS certificate and key (GnuTLS, through libmicrohttpd's certificate callback): read
 * from files at start, read again on SIGHUP, swapped in without restarting the listener. */
#ifndef CEB_INGRESS_TLS_H
#define CEB_INGRESS_TLS_H

#include <stddef.h>

/* The GnuTLS priority string of the HTTPS listener: TLS 1.2 and 1.3 only, AEAD ciphers with forward
 * secrecy, the server's order. */
#define CEB_TLS_PRIORITIES                                                                   \
	"SECURE128:+SECURE192:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:" \
	"+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:"    \
	"%SERVER_PRECEDENCE"

struct ceb_tls;

/* Read the PEM certificate chain (cert) and its private key (key) and check that they belong
 * together and that the certificate is valid now. The paths are copied. 0, or an error with a reason
 * in errbuf. Main thread. */
int ceb_tls_create(const char *cert, const char *key, struct ceb_tls **out, char *errbuf,
                   size_t errlen);
/* Read the files again; on success connections from now on get the new certificate, on failure the
 * old one stays and errbuf says why. Connections in progress keep theirs. Main thread. */
int ceb_tls_reload(struct ceb_tls *tls, char *errbuf, size_t errlen);
/* The function libmicrohttpd calls for each handshake (a gnutls_certificate_retrieve_function2),
 * serving the current certificate of the one ceb_tls made last: a process serves one. */
void *ceb_tls_callback(void);
/* The subject's common name and expiry of the current certificate, for the log. */
void ceb_tls_describe(const struct ceb_tls *tls, char *buf, size_t len);
/* Free everything; no connection may be using it (the listener stopped). NULL is fine. */
void ceb_tls_destroy(struct ceb_tls *tls);

#endif
