/* See libcurl.h: libcurl opened with dlopen on first use, its functions in one table. */
#define CEB_LIBCURL_SELF 1
#include "autoconfig.h"
#include "broker/libcurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The soname Debian's libcurl4 (OpenSSL flavour) installs, the one configure found the headers of. */
#ifndef LIBCURL_SONAME
#define LIBCURL_SONAME "libcurl.so.4"
#endif

/* ---- stubs: what each call gives when libcurl cannot be opened ---- */

static CURLcode stub_global_init(long flags)
{
	(void)flags;
	return CURLE_FAILED_INIT;
}
static void stub_global_cleanup(void)
{
}
static CURL *stub_easy_init(void)
{
	return NULL;
}
static CURLcode stub_easy_setopt(CURL *c, CURLoption o, ...)
{
	(void)c;
	(void)o;
	return CURLE_FAILED_INIT;
}
static CURLcode stub_easy_getinfo(CURL *c, CURLINFO i, ...)
{
	(void)c;
	(void)i;
	return CURLE_FAILED_INIT;
}
static CURLcode stub_easy_perform(CURL *c)
{
	(void)c;
	return CURLE_FAILED_INIT;
}
static void stub_easy_cleanup(CURL *c)
{
	(void)c;
}
static const char *stub_easy_strerror(CURLcode code)
{
	(void)code;
	return "libcurl cannot be loaded";
}
static char *stub_easy_escape(CURL *c, const char *s, int n)
{
	(void)c;
	(void)s;
	(void)n;
	return NULL;
}
static void stub_free(void *p)
{
	(void)p;
}
static struct curl_slist *stub_slist_append(struct curl_slist *l, const char *s)
{
	(void)l;
	(void)s;
	return NULL;
}
static void stub_slist_free_all(struct curl_slist *l)
{
	(void)l;
}
static time_t stub_getdate(const char *s, const time_t *unused)
{
	(void)s;
	(void)unused;
	return -1;
}
static CURLM *stub_multi_init(void)
{
	return NULL;
}
static CURLMcode stub_multi_setopt(CURLM *m, CURLMoption o, ...)
{
	(void)m;
	(void)o;
	return CURLM_INTERNAL_ERROR;
}
static CURLMcode stub_multi_handle(CURLM *m, CURL *c)
{
	(void)m;
	(void)c;
	return CURLM_INTERNAL_ERROR;
}
static CURLMcode stub_multi_socket_action(CURLM *m, curl_socket_t s, int mask, int *running)
{
	(void)m;
	(void)s;
	(void)mask;
	*running = 0;
	return CURLM_INTERNAL_ERROR;
}
static CURLMsg *stub_multi_info_read(CURLM *m, int *left)
{
	(void)m;
	*left = 0;
	return NULL;
}
static CURLMcode stub_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
	(void)m;
	(void)s;
	(void)p;
	return CURLM_INTERNAL_ERROR;
}
static CURLMcode stub_multi_cleanup(CURLM *m)
{
	(void)m;
	return CURLM_OK;
}

static struct ceb_libcurl fns = {
        .curl_global_init = stub_global_init,
        .curl_global_cleanup = stub_global_cleanup,
        .curl_easy_init = stub_easy_init,
        .curl_easy_setopt = stub_easy_setopt,
        .curl_easy_getinfo = stub_easy_getinfo,
        .curl_easy_perform = stub_easy_perform,
        .curl_easy_cleanup = stub_easy_cleanup,
        .curl_easy_strerror = stub_easy_strerror,
        .curl_easy_escape = stub_easy_escape,
        .curl_free = stub_free,
        .curl_slist_append = stub_slist_append,
        .curl_slist_free_all = stub_slist_free_all,
        .curl_getdate = stub_getdate,
        .curl_multi_init = stub_multi_init,
        .curl_multi_setopt = stub_multi_setopt,
        .curl_multi_add_handle = stub_multi_handle,
        .curl_multi_remove_handle = stub_multi_handle,
        .curl_multi_socket_action = stub_multi_socket_action,
        .curl_multi_info_read = stub_multi_info_read,
        .curl_multi_assign = stub_multi_assign,
        .curl_multi_cleanup = stub_multi_cleanup,
};
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;
static char error[256];

static void load(void)
{
	struct ceb_libcurl got;
	void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL), *p;
	const char *e;

	if (!h) {
		e = dlerror();
		snprintf(error, sizeof(error), "cannot load %s: %s", LIBCURL_SONAME,
		         e ? e : "dlopen failed");
		return;
	}
#define LOAD_SYM(f)                                                                            \
	if (!(p = dlsym(h, #f))) {                                                             \
		snprintf(error, sizeof(error), "cannot load %s: it has no %s", LIBCURL_SONAME, \
		         #f);                                                                  \
		return;                                                                        \
	}                                                                                      \
	memcpy(&got.f, &p, sizeof(p));
	CEB_LIBCURL_FNS(LOAD_SYM)
#undef LOAD_SYM
	if (got.curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		snprintf(error, sizeof(error), "%s: curl_global_init failed", LIBCURL_SONAME);
		return;
	}
	fns = got;
	__atomic_store_n(&loaded, true, __ATOMIC_RELEASE);
}

const struct ceb_libcurl *ceb_libcurl(void)
{
	pthread_once(&once, load);
	return &fns;
}

bool ceb_libcurl_loaded(void)
{
	return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
}

const char *ceb_libcurl_error(void)
{
	return error;
}

void ceb_libcurl_cleanup(void)
{
	if (ceb_libcurl_loaded())
		fns.curl_global_cleanup();
}

/* libcurl 7.88's words (lib/strerror.c) for the codes broker/delivery/h1.c reports. */
const char *ceb_libcurl_strerror(CURLcode code)
{
	if (ceb_libcurl_loaded())
		return fns.curl_easy_strerror(code);
	switch (code) {
	case CURLE_OK: return "No error";
	case CURLE_FAILED_INIT: return error[0] ? error : "Failed initialization";
	case CURLE_COULDNT_CONNECT: return "Couldn't connect to server";
	case CURLE_WEIRD_SERVER_REPLY: return "Weird server reply";
	case CURLE_PARTIAL_FILE: return "Transferred a partial file";
	case CURLE_WRITE_ERROR: return "Failed writing received data to disk/application";
	case CURLE_OUT_OF_MEMORY: return "Out of memory";
	case CURLE_OPERATION_TIMEDOUT: return "Timeout was reached";
	case CURLE_ABORTED_BY_CALLBACK: return "Operation was aborted by an application callback";
	case CURLE_GOT_NOTHING: return "Server returned nothing (no headers, no data)";
	case CURLE_SEND_ERROR: return "Failed sending data to the peer";
	case CURLE_RECV_ERROR: return "Failure when receiving data from the peer";
	default: return ceb_libcurl()->curl_easy_strerror(code);
	}
}
