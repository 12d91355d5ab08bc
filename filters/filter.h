/* Trigger filters: the Subscriptions API dialects (exact, prefix, suffix, all, any, not, cesql) and
 * Knative's legacy `filter.attributes`, compiled once when the configuration loads, matched per event.
 * A compiled filter is immutable and may be matched from any number of threads at once. */
#ifndef CEB_FILTER_H
#define CEB_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/ce/event.h"
#include "filters/cesql/cesql.h"

struct ceb_filter;

enum ceb_filter_kind {
	CEB_FILTER_TRUE = 0, /* matches everything (no filter, or an empty `filters` list) */
	CEB_FILTER_EXACT,
	CEB_FILTER_PREFIX,
	CEB_FILTER_SUFFIX,
	CEB_FILTER_LEGACY, /* filter.attributes: exact, but "" means "present, any value" */
	CEB_FILTER_ALL,
	CEB_FILTER_ANY,
	CEB_FILTER_NOT,
	CEB_FILTER_CESQL,
};

/* A filter that matches every event. NULL on ENOMEM. */
struct ceb_filter *ceb_filter_true(void);

/* exact / prefix / suffix / legacy over n (name, value) pairs that must all hold. The strings are
 * copied. Names and values must be non-empty (except legacy values, where "" means "present");
 * otherwise CEB_EINVAL with a reason in errbuf. */
int ceb_filter_attrs(enum ceb_filter_kind kind, size_t n, const char *const *names,
                     const char *const *values, struct ceb_filter **out, char *errbuf,
                     size_t errlen);

/* all / any over n children (n >= 1), not over exactly one. Takes ownership of the children, also on
 * failure. */
int ceb_filter_group(enum ceb_filter_kind kind, struct ceb_filter **children, size_t n,
                     struct ceb_filter **out, char *errbuf, size_t errlen);

/* Compile a CESQL v1 expression. On a parse error returns CEB_EINVAL, writes the reason to errbuf
 * and the 1-based column inside the expression to *errcol (when errcol is not NULL). lim may be NULL. */
int ceb_filter_cesql(const char *expr, const struct ceb_cesql_limits *lim, struct ceb_filter **out,
                     char *errbuf, size_t errlen, int *errcol);

/* Does the event pass? flt NULL (no filter) passes everything. Never allocates for exact, prefix,
 * suffix and legacy. Thread-safe. */
bool ceb_filter_match(const struct ceb_filter *flt, const struct ceb_event *ev);

/* For the Trigger index: if every event this filter matches must have attribute `type` equal to one
 * fixed value, return that value (owned by the filter); otherwise NULL (also for no filter). */
const char *ceb_filter_required_type(const struct ceb_filter *flt);

/* The attributes every event this filter matches must have with one fixed value (exact and
 * filter.attributes entries with a value, at the top or under `all`), each name once (the first
 * given wins): up to max pairs into names/values (owned by the filter); returns how many. 0 for
 * no filter, and for filters where no such pair holds (any, not, prefix, CESQL). */
size_t ceb_filter_required_attrs(const struct ceb_filter *flt, const char **names,
                                 const char **values, size_t max);

enum ceb_filter_kind ceb_filter_kind(const struct ceb_filter *flt);
void ceb_filter_free(struct ceb_filter *flt);

/* The Trigger index: finds the items (Triggers) whose filter can match an event without testing
 * every one. Items with a required type are found by hash; the others are always candidates.
 * Build it once (not thread-safe while adding), then look up from any thread. */
struct ceb_filter_index;

struct ceb_filter_index *ceb_filter_index_new(void);
/* Add an item; flt must outlive the index, NULL matches every event (a source's subscription on
 * the memory channel the daemon gives it). 0 or CEB_ENOMEM. */
int ceb_filter_index_add(struct ceb_filter_index *idx, const struct ceb_filter *flt, void *item);
/* Call cb for every item whose filter matches ev (the filter is evaluated here), in the order
 * added within each bucket. Stops early if cb returns non-zero, and returns that value; else 0. */
typedef int ceb_filter_index_cb(void *arg, void *item);
int ceb_filter_index_match(const struct ceb_filter_index *idx, const struct ceb_event *ev,
                           ceb_filter_index_cb *cb, void *arg);
void ceb_filter_index_free(struct ceb_filter_index *idx);

#endif
