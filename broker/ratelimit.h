/* Per-client request rate limiting for the ingress: a token bucket per client address, in a fixed
 * table so that memory stays bounded whatever the number of clients. Thread-safe. */
#ifndef CEB_RATELIMIT_H
#define CEB_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ceb_ratelimit;

/* rate requests per second per client, bursts of up to burst requests; slots bounds the number of
 * clients tracked at once (a client whose slot was taken by another starts again with a full
 * bucket: the limiter errs on the side of letting requests through). NULL on ENOMEM. */
struct ceb_ratelimit *ceb_ratelimit_new(double rate, double burst, size_t slots);

/* May a request from addr pass at now_ms (monotonic)? If not, *retry_after_s is how many whole
 * seconds until one token is back (at least 1). An address of another family than IPv4/IPv6 always
 * passes. */
bool ceb_ratelimit_allow(struct ceb_ratelimit *rl, const struct sockaddr *addr, uint64_t now_ms,
                         unsigned *retry_after_s);

void ceb_ratelimit_free(struct ceb_ratelimit *rl);

#endif
