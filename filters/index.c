/* The Trigger index: a hash map from the `type` a filter requires to its items, plus the items that
 * require no type, so that routing an event costs the same whether 1 or 10 000 Triggers exist. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "filters/filter.h"

struct entry {
	const struct ceb_filter *flt;
	void *item;
	size_t seq; /* insertion order, to merge a bucket with the untyped items */
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

struct bucket {
	const char *type; /* owned by the filter; NULL for an empty slot */
	size_t len;
	uint64_t hash;
	struct entries items;
};

struct ceb_filter_index {
	struct bucket *table; /* open addressing, linear probing, power-of-two size */
	size_t cap, used;
	struct entries untyped;
	size_t seq;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static int entries_push(struct entries *es, const struct entry *e)
{
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 4;
		struct entry *v = realloc(es->v, cap * sizeof(*v));

		if (!v)
			return CEB_ENOMEM;
		es->v = v;
		es->cap = cap;
	}
	es->v[es->n++] = *e;
	return 0;
}

static struct bucket *find(const struct ceb_filter_index *idx, const char *type, size_t len,
                           uint64_t h)
{
	if (!idx->cap)
		return NULL;
	for (size_t i = h & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
		struct bucket *b = &idx->table[i];

		if (!b->type)
			return NULL;
		if (b->hash == h && b->len == len && memcmp(b->type, type, len) == 0)
			return b;
	}
}

static int grow(struct ceb_filter_index *idx)
{
	size_t cap = idx->cap ? idx->cap * 2 : 16;
	struct bucket *table = calloc(cap, sizeof(*table));

	if (!table)
		return CEB_ENOMEM;
	for (size_t i = 0; i < idx->cap; i++) {
		struct bucket *b = &idx->table[i];
		size_t j;

		if (!b->type)
			continue;
		for (j = b->hash & (cap - 1); table[j].type; j = (j + 1) & (cap - 1))
			;
		table[j] = *b;
	}
	free(idx->table);
	idx->table = table;
	idx->cap = cap;
	return 0;
}

struct ceb_filter_index *ceb_filter_index_new(void)
{
	return calloc(1, sizeof(struct ceb_filter_index));
}

int ceb_filter_index_add(struct ceb_filter_index *idx, const struct ceb_filter *flt, void *item)
{
	const char *type = ceb_filter_required_type(flt);
	struct entry e = {.flt = flt, .item = item, .seq = idx->seq};
	struct bucket *b;
	size_t len;
	uint64_t h;
	int rc;

	if (!type) {
		rc = entries_push(&idx->untyped, &e);
		goto out;
	}
	len = strlen(type);
	h = hash_bytes(type, len);
	b = find(idx, type, len, h);
	if (!b) {
		/* Keep the load at most one half so that probes stay short. */
		if ((idx->used + 1) * 2 > idx->cap && (rc = grow(idx)) != 0)
			goto out;
		for (size_t i = h & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
			if (!idx->table[i].type) {
				b = &idx->table[i];
				break;
			}
		}
		rc = entries_push(&b->items, &e);
		if (rc)
			goto out;
		b->type = type;
		b->len = len;
		b->hash = h;
		idx->used++;
		goto out;
	}
	rc = entries_push(&b->items, &e);
out:
	if (rc == 0)
		idx->seq++;
	return rc;
}

int ceb_filter_index_match(const struct ceb_filter_index *idx, const struct ceb_event *ev,
                           ceb_filter_index_cb *cb, void *arg)
{
	const struct ceb_attr *type = ceb_event_get(ev, "type");
	const struct bucket *b = NULL;
	const struct entries *u = &idx->untyped;
	size_t i = 0, j = 0, nb;
	int rc;

	if (type)
		b = find(idx, type->value, type->len, hash_bytes(type->value, type->len));
	nb = b ? b->items.n : 0;
	/* Merge the two candidate lists by insertion order, so Triggers fire in the order they were
	 * added whatever bucket they live in. */
	while (i < nb || j < u->n) {
		const struct entry *e;

		if (j == u->n || (i < nb && b->items.v[i].seq < u->v[j].seq))
			e = &b->items.v[i++];
		else
			e = &u->v[j++];
		if (ceb_filter_match(e->flt, ev) && (rc = cb(arg, e->item)) != 0)
			return rc;
	}
	return 0;
}

void ceb_filter_index_free(struct ceb_filter_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->cap; i++)
		free(idx->table[i].items.v);
	free(idx->table);
	free(idx->untyped.v);
	free(idx);
}
