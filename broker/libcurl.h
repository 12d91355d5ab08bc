/* libcurl, opened on first use rather than linked. Plain http:// deliveries to addresses go through
 * the native client (broker/delivery/h1.c), so a daemon whose subscribers are all such never needs
 * libcurl; linked, it and what it brings (Kerberos, LDAP, ssh2, nghttp2, rtmp) cost about 1.2 MB of
 * resident pages in every daemon, and its global init touches 1.7 MB more of libcrypto.
 *
 * Include this instead of <curl/curl.h>: each curl_* name below becomes a call through the table
 * that ceb_libcurl() fills the first time (dlopen, then curl_global_init), from any thread. When
 * libcurl cannot be opened, the table holds stubs that fail as libcurl fails (NULL handles,
 * CURLE_FAILED_INIT), and ceb_libcurl_error() says why. */
#ifndef CEB_LIBCURL_H
#define CEB_LIBCURL_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stdbool.h>

#define CEB_LIBCURL_FNS(X)          \
	X(curl_global_init)         \
	X(curl_global_cleanup)      \
	X(curl_easy_init)           \
	X(curl_easy_setopt)         \
	X(curl_easy_getinfo)        \
	X(curl_easy_perform)        \
	X(curl_easy_cleanup)        \
	X(curl_easy_strerror)       \
	X(curl_easy_escape)         \
	X(curl_free)                \
	X(curl_slist_append)        \
	X(curl_slist_free_all)      \
	X(curl_getdate)             \
	X(curl_multi_init)          \
	X(curl_multi_setopt)        \
	X(curl_multi_add_handle)    \
	X(curl_multi_remove_handle) \
	X(curl_multi_socket_action) \
	X(curl_multi_info_read)     \
	X(curl_multi_assign)        \
	X(curl_multi_cleanup)

struct ceb_libcurl {
#define CEB_LIBCURL_PTR(f) __typeof__(&f) f;
	CEB_LIBCURL_FNS(CEB_LIBCURL_PTR)
#undef CEB_LIBCURL_PTR
};

/* The table, opening libcurl and running curl_global_init(CURL_GLOBAL_ALL) the first time. */
const struct ceb_libcurl *ceb_libcurl(void);
/* Whether libcurl is open (without opening it). */
bool ceb_libcurl_loaded(void);
/* Why libcurl could not be opened; "" when it was, or was not tried yet. */
const char *ceb_libcurl_error(void);
/* curl_easy_strerror's words for code, without opening libcurl for the codes the native client
 * reports (libcurl's own words once it is open). */
const char *ceb_libcurl_strerror(CURLcode code);
/* At exit: curl_global_cleanup if libcurl was opened. */
void ceb_libcurl_cleanup(void);

#ifndef CEB_LIBCURL_SELF
/* curl.h defines these three as macros of themselves, to check the argument count */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         (ceb_libcurl()->curl_global_init)
#define curl_global_cleanup      (ceb_libcurl()->curl_global_cleanup)
#define curl_easy_init           (ceb_libcurl()->curl_easy_init)
#define curl_easy_setopt         (ceb_libcurl()->curl_easy_setopt)
#define curl_easy_getinfo        (ceb_libcurl()->curl_easy_getinfo)
#define curl_easy_perform        (ceb_libcurl()->curl_easy_perform)
#define curl_easy_cleanup        (ceb_libcurl()->curl_easy_cleanup)
#define curl_easy_strerror       ceb_libcurl_strerror
#define curl_easy_escape         (ceb_libcurl()->curl_easy_escape)
#define curl_free                (ceb_libcurl()->curl_free)
#define curl_slist_append        (ceb_libcurl()->curl_slist_append)
#define curl_slist_free_all      (ceb_libcurl()->curl_slist_free_all)
#define curl_getdate             (ceb_libcurl()->curl_getdate)
#define curl_multi_init          (ceb_libcurl()->curl_multi_init)
#define curl_multi_setopt        (ceb_libcurl()->curl_multi_setopt)
#define curl_multi_add_handle    (ceb_libcurl()->curl_multi_add_handle)
#define curl_multi_remove_handle (ceb_libcurl()->curl_multi_remove_handle)
#define curl_multi_socket_action (ceb_libcurl()->curl_multi_socket_action)
#define curl_multi_info_read     (ceb_libcurl()->curl_multi_info_read)
#define curl_multi_assign        (ceb_libcurl()->curl_multi_assign)
#define curl_multi_cleanup       (ceb_libcurl()->curl_multi_cleanup)
#endif

#endif
