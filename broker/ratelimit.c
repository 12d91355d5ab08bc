/* Token buckets per client address in a fixed, direct-mapped table: O(1) per request, no allocation
 * after start-up, bounded memory against any number of clients. */
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ratelimit.h"

struct bucket {
	uint8_t key[16]; /* IPv6 address, or IPv4 mapped into ::ffff:a.b.c.d */
	int used;
	double tokens;
	uint64_t last_ms;
};

struct ceb_ratelimit {
	pthread_mutex_t lock;
	double rate, burst;
	size_t nslots;
	struct bucket *slots;
};

struct ceb_ratelimit *ceb_ratelimit_new(double rate, double burst, size_t slots)
{
	struct ceb_ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	rl->slots = calloc(slots ? slots : 1, sizeof(*rl->slots));
	if (!rl->slots) {
		free(rl);
		return NULL;
	}
	pthread_mutex_init(&rl->lock, NULL);
	rl->rate = rate;
	rl->burst = burst < 1 ? 1 : burst;
	rl->nslots = slots ? slots : 1;
	return rl;
}

static int addr_key(const struct sockaddr *addr, uint8_t key[16])
{
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		return 0;
	}
	if (addr->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* FNV-1a over the address bytes. */
static size_t key_hash(const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

bool ceb_ratelimit_allow(struct ceb_ratelimit *rl, const struct sockaddr *addr, uint64_t now_ms,
                         unsigned *retry_after_s)
{
	uint8_t key[16];
	struct bucket *b;
	bool ok;

	if (!addr || addr_key(addr, key) < 0)
		return true;
	pthread_mutex_lock(&rl->lock);
	b = &rl->slots[key_hash(key) % rl->nslots];
	if (!b->used || memcmp(b->key, key, 16) != 0) {
		memcpy(b->key, key, 16);
		b->used = 1;
		b->tokens = rl->burst;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000.0;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last_ms = now_ms;
	}
	ok = b->tokens >= 1.0;
	if (ok) {
		b->tokens -= 1.0;
	} else if (retry_after_s) {
		double wait = (1.0 - b->tokens) / rl->rate;
		*retry_after_s = wait < 1.0 ? 1 : (unsigned)ceil(wait);
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

void ceb_ratelimit_free(struct ceb_ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slots);
	free(rl);
}
