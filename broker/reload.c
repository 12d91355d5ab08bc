/* Reload (SIGHUP, run --watch): load and check a new configuration whole, then apply only the
 * difference to the running daemon. A unit is an endpoint (a Broker, a KafkaSink, a channel, a
 * source) with its subscriptions; a unit whose fingerprint did not change keeps running untouched,
 * a changed one is replaced, a removed one stops taking events and drains, a new one starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth/auth.h"
#include "broker/auth/policy.h"
#include "broker/daemon.h"
#include "broker/error.h"
#include "broker/log.h"
#include "broker/runtime.h"
#include "broker/service.h"

#define LOG_ID "reload"

/* ---- fingerprints: FNV-1a over the canonical documents and what resolving them gave ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "\1", 1);
}

/* An order-free sum of the subscriptions' fingerprints needs them spread over 64 bits. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdu;
	x ^= x >> 33;
	return x;
}

#define FNV_START 0xcbf29ce484222325u

static uint64_t doc_fp(uint64_t h, const struct ceb_config *cfg, const struct ceb_loc *loc)
{
	static uint64_t unique;
	const struct ceb_config_doc *d = ceb_config_doc_at(cfg, loc);

	if (!d) { /* no document known: never taken for unchanged */
		CEB_LOG_DEBUG(LOG_ID, "no document at %s:%d:%d: taken for changed",
		              loc->file ? loc->file : "?", loc->line, loc->col);
		unique++;
		return fnv(h, &unique, sizeof(unique));
	}
	return fnv(h, d->canon, d->len);
}

/* Whether a document of this kind holds settings others read (a ConfigMap, a Secret, a
 * RabbitmqBrokerConfig) rather than being a unit itself. */
static bool settings_kind(const struct ceb_config *cfg, const char *kind)
{
	if (!strcmp(kind, "ConfigMap") || !strcmp(kind, "Secret"))
		return true;
	for (const struct ceb_config_object *obj = cfg->objects; obj; obj = obj->next)
		if (!strcmp(obj->kind, kind))
			return true;
	return false;
}

/* The settings a resource of namespace ns may read: those of its namespace and Knative's
 * knative-eventing (config-br-defaults...). Any change there replaces what may read them. */
static uint64_t ctx_fp(uint64_t h, const struct ceb_config *cfg, const char *ns)
{
	for (size_t i = 0; i < cfg->ndocs; i++) {
		const struct ceb_config_doc *d = &cfg->docs[i];

		if ((!strcmp(d->ns, ns) || !strcmp(d->ns, "knative-eventing")) &&
		    settings_kind(cfg, d->kind))
			h = fnv(h, d->canon, d->len);
	}
	return h;
}

static uint64_t dest_fp(uint64_t h, const struct ceb_dest *d)
{
	h = fnv_str(h, d->uri);
	h = fnv_str(h, d->ref_kind);
	h = fnv_str(h, d->ref_ns);
	h = fnv_str(h, d->ref_name);
	return fnv_str(h, d->ca_certs);
}

uint64_t ceb_rt_fp_trigger(const struct ceb_config *cfg, const struct ceb_trigger_cfg *tc)
{
	uint64_t h = fnv_str(FNV_START, "Trigger");

	h = fnv_str(h, tc->ns);
	h = fnv_str(h, tc->name);
	h = doc_fp(h, cfg, &tc->loc);
	h = dest_fp(h, &tc->subscriber);
	if (tc->delivery.has_dls)
		h = dest_fp(h, &tc->delivery.dls);
	return h;
}

uint64_t ceb_rt_fp_broker_own(const struct ceb_config *cfg, const struct ceb_broker_cfg *bc)
{
	uint64_t h = fnv_str(FNV_START, "Broker");

	h = fnv_str(h, bc->ns);
	h = fnv_str(h, bc->name);
	h = doc_fp(h, cfg, &bc->loc);
	h = ctx_fp(h, cfg, bc->ns);
	if (bc->delivery.has_dls)
		h = dest_fp(h, &bc->delivery.dls);
	return h;
}

/* A unit: its endpoint's own fingerprint and an order-free sum of its subscriptions'. */
static uint64_t unit_fp(uint64_t own, uint64_t subs)
{
	return fnv(own, &subs, sizeof(subs));
}

uint64_t ceb_rt_fp_broker(const struct ceb_config *cfg, const struct ceb_broker_cfg *bc)
{
	uint64_t subs = 0;

	for (const struct ceb_trigger_cfg *tc = cfg->triggers; tc; tc = tc->next)
		if (tc->broker_cfg == bc)
			subs += mix(ceb_rt_fp_trigger(cfg, tc));
	return unit_fp(ceb_rt_fp_broker_own(cfg, bc), subs);
}

uint64_t ceb_rt_fp_endpoint(const struct ceb_config *cfg, const struct ceb_endpoint_cfg *ec)
{
	uint64_t h = fnv_str(FNV_START, ec->kind), subs = 0;

	h = fnv_str(h, ec->ns);
	h = fnv_str(h, ec->name);
	h = fnv_str(h, ec->address);
	h = fnv_str(h, ec->owner);
	h = doc_fp(h, cfg, &ec->loc);
	h = ctx_fp(h, cfg, ec->ns);
	for (const struct ceb_subscription_cfg *sc = cfg->subscriptions; sc; sc = sc->next) {
		uint64_t s;

		if (!sc->channel || &sc->channel->ep != ec)
			continue;
		s = fnv_str(FNV_START, "Subscription");
		s = fnv_str(s, sc->ns);
		s = fnv_str(s, sc->name);
		s = doc_fp(s, cfg, &sc->loc);
		s = dest_fp(s, &sc->subscriber);
		if (sc->has_reply)
			s = dest_fp(s, &sc->reply);
		if (sc->delivery.has_dls)
			s = dest_fp(s, &sc->delivery.dls);
		subs += mix(s);
	}
	return fnv(h, &subs, sizeof(subs));
}

uint64_t ceb_rt_fp_source(const struct ceb_config *cfg, const struct ceb_source_cfg *sc,
                          bool takes_requests)
{
	uint64_t h = fnv_str(FNV_START, sc->kind);

	h = fnv_str(h, sc->ns);
	h = fnv_str(h, sc->name);
	h = doc_fp(h, cfg, &sc->loc);
	h = ctx_fp(h, cfg, sc->ns);
	if (sc->sink)
		h = dest_fp(h, sc->sink);
	if (sc->delivery && sc->delivery->has_dls)
		h = dest_fp(h, &sc->delivery->dls);
	/* A source that takes requests stores straight into its sink's channel when the sink is a
	 * Broker of this daemon: a new sink unit means a new source. */
	if (takes_requests && sc->sink && !sc->sink->uri && sc->sink->ref_ns &&
	    sc->sink->ref_name) {
		const struct ceb_broker_cfg *bc =
		        ceb_config_find_broker(cfg, sc->sink->ref_ns, sc->sink->ref_name);
		uint64_t sink = bc ? ceb_rt_fp_broker(cfg, bc) : 0;

		/* or an endpoint of another kind at that address (a KafkaSink) */
		for (const struct ceb_endpoint_cfg *ec = cfg->endpoints; !bc && ec; ec = ec->next)
			if (!strcmp(ec->ns, sc->sink->ref_ns) &&
			    !strcmp(ec->address ? ec->address : ec->name, sc->sink->ref_name))
				sink += ceb_rt_fp_endpoint(cfg, ec);
		h = fnv(h, &sink, sizeof(sink));
	}
	return h;
}

/* ---- the read sections: wait until no reader can still see what was unlinked ---- */

static void wait_readers(struct ceb_daemon *dmn, unsigned slot)
{
	struct timespec ms = {0, 1000 * 1000};

	while (atomic_load(&dmn->rcu_readers[slot & 1]))
		nanosleep(&ms, NULL);
}

/* Two turns, as SRCU does: a reader that read the epoch before a turn and counted itself after
 * the wait is waited for by the next turn. */
static void synchronize(struct ceb_daemon *dmn)
{
	for (int i = 0; i < 2; i++)
		wait_readers(dmn, atomic_fetch_add(&dmn->rcu_epoch, 1));
}

static void store_ep(struct ceb_endpoint **pp, struct ceb_endpoint *v)
{
	__atomic_store_n(pp, v, __ATOMIC_RELEASE);
}

static void store_sub(struct ceb_subscription **pp, struct ceb_subscription *v)
{
	__atomic_store_n(pp, v, __ATOMIC_RELEASE);
}

/* ---- drain of what was retired ---- */

static bool durable(const struct ceb_endpoint *brk)
{
	return brk->src_channel || ceb_channel_has(&brk->ch, CEB_CHANNEL_DURABLE);
}

static bool nothing_held(struct ceb_daemon *dmn, const struct ceb_endpoint *brk)
{
	for (struct ceb_subscription *trg = dmn->retired_subs; trg; trg = trg->rnext)
		if (trg->brk == brk && atomic_load(&trg->held))
			return false;
	return true;
}

/* ---- sender authentication across reloads ---- */

/* One ceb_auth_attach: its targets point into gen's EventPolicies, so it holds gen. A request reads
 * its endpoint's target once when routed and may use it until it ends, which --request-timeout
 * bounds: a replaced set is freed that long (and a margin) after the reload that replaced it. */
struct ceb_auth_hold {
	struct ceb_auth_targets *ts;
	struct ceb_gen *gen;
	uint64_t retired_at; /* ms; 0 while in force */
	struct ceb_auth_hold *next;
};

#define AUTH_HOLD_MARGIN_MS 5000

/* Targets for the endpoints that run and those about to (news), from gen's policies. */
static int auth_attach(struct ceb_daemon *dmn, struct ceb_gen *gen, struct ceb_endpoint *news,
                       char *err, size_t errlen)
{
	struct ceb_endpoint *lists[2] = {dmn->brokers, news};
	struct ceb_auth_hold *h;

	if (!dmn->auth)
		return 0;
	if (!(h = calloc(1, sizeof(*h)))) {
		snprintf(err, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	if (!(h->ts = ceb_auth_attach(dmn->auth, gen->cfg, lists, news ? 2 : 1, err, errlen))) {
		free(h);
		return CEB_ENOMEM;
	}
	h->gen = gen;
	gen->refs++;
	for (struct ceb_auth_hold *o = dmn->auth_held; o; o = o->next)
		if (!o->retired_at)
			o->retired_at = ceb_now_ms();
	h->next = dmn->auth_held;
	dmn->auth_held = h;
	return 0;
}

static void auth_reap(struct ceb_daemon *dmn, bool all)
{
	uint64_t keep = (uint64_t)dmn->set.request_timeout_s * 1000 + AUTH_HOLD_MARGIN_MS;

	for (struct ceb_auth_hold **hp = &dmn->auth_held; *hp;) {
		struct ceb_auth_hold *h = *hp;

		/* without a request timeout nothing bounds a request: kept until exit */
		if (!all && (!h->retired_at || !dmn->set.request_timeout_s ||
		             ceb_now_ms() < h->retired_at + keep)) {
			hp = &h->next;
			continue;
		}
		*hp = h->next;
		ceb_auth_targets_free(h->ts);
		ceb_gen_unref(h->gen);
		free(h);
	}
}

void ceb_rt_auth_free(struct ceb_daemon *dmn)
{
	auth_reap(dmn, true);
}

int ceb_daemon_auth(struct ceb_daemon *dmn, struct ceb_auth *a, char *errbuf, size_t errlen)
{
	dmn->auth = a;
	return auth_attach(dmn, dmn->gen, NULL, errbuf, errlen);
}

size_t ceb_rt_reap(struct ceb_daemon *dmn, bool force)
{
	auth_reap(dmn, false);
	uint64_t now = ceb_now_ms();
	size_t left = 0;

	/* Triggers removed from a running Broker: gone once the channel has nothing of theirs
	 * unsettled and the dispatchers hold nothing of theirs. (Those of a retired endpoint go with
	 * it, below.) */
	for (struct ceb_subscription **tp = &dmn->retired_subs; *tp;) {
		struct ceb_subscription *trg = *tp;

		if (!trg->detached || trg->brk->retired_at) {
			tp = &trg->rnext;
			continue;
		}
		if (trg->sub && !trg->brk->ch.ops->unsubscribe(trg->brk->ch.ctx, trg->sub))
			trg->sub = NULL;
		if (trg->sub || atomic_load(&trg->held)) {
			tp = &trg->rnext;
			left++;
			continue;
		}
		*tp = trg->rnext;
		CEB_LOG_INFO(LOG_ID, "%s (configuration %u): drained and removed", trg->label,
		             trg->gen        ? trg->gen->seq
		             : trg->brk->gen ? trg->brk->gen->seq
		                             : 0);
		ceb_rt_free_subscription(trg);
	}

	for (struct ceb_endpoint **pp = &dmn->retired; *pp;) {
		struct ceb_endpoint *brk = *pp;
		size_t pending = brk->ch.ops ? brk->ch.ops->pending(brk->ch.ctx) : 0;
		bool late = now - brk->retired_at > dmn->set.drain_timeout_ms;

		/* A channel in memory hands out what it holds to the old subscriptions, then
		 * stops; a durable one stopped at once (what it did not hand out stays stored). Each
		 * message ends by the delivery rules (attempts, timeouts, dead letter), so the drain
		 * ends too: it is not cut short, which would lose events accepted for Triggers that
		 * may well still exist in the new configuration. */
		/* (no request that routed to it may still publish: they hold references) */
		bool unused = atomic_load(&brk->refs) == 0;

		if (!brk->stopped && unused && (durable(brk) || !brk->started))
			ceb_rt_stop(brk);
		if (!brk->stopped && ((unused && pending == 0 && nothing_held(dmn, brk)) || force))
			ceb_rt_stop(brk);
		if (!brk->stopped && late && !brk->drain_warned) {
			CEB_LOG_WARN(
			        LOG_ID,
			        "%s (configuration %u): %zu events still draining after %llu ms",
			        brk->label, brk->gen ? brk->gen->seq : 0, pending,
			        (unsigned long long)dmn->set.drain_timeout_ms);
			brk->drain_warned = true;
		}
		if (!brk->stopped || !nothing_held(dmn, brk)) {
			left++;
			pp = &brk->rnext;
			continue;
		}
		*pp = brk->rnext;
		for (struct ceb_subscription **tp = &dmn->retired_subs; *tp;) {
			struct ceb_subscription *trg = *tp;

			if (trg->brk != brk) {
				tp = &trg->rnext;
				continue;
			}
			*tp = trg->rnext;
			ceb_rt_free_subscription(trg);
		}
		CEB_LOG_INFO(LOG_ID, "%s (configuration %u): drained and removed", brk->label,
		             brk->gen ? brk->gen->seq : 0);
		ceb_rt_free_endpoint(brk);
	}
	return left;
}

/* ---- applying a new configuration ---- */

/* A Broker kept running whose Triggers change: each added one is subscribed on its running channel,
 * each removed one unsubscribed and drained. */
struct live {
	struct ceb_endpoint *brk;
	uint64_t fp; /* its new unit fingerprint */
};

struct plan {
	struct ceb_daemon *dmn;
	struct ceb_endpoint **kept; /* unchanged, or changed in place (also in live) */
	size_t nkept, capkept;
	struct live *live;
	size_t nlive, caplive;
	bool nomem;
};

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *np;
	size_t ncap;

	if (n < *cap)
		return true;
	ncap = *cap ? 2 * *cap : 16;
	if (!(np = realloc(*p, ncap * size)))
		return false;
	*p = np;
	*cap = ncap;
	return true;
}

static bool live_capable(const struct ceb_endpoint *brk)
{
	return brk->cfg && brk->ch.ops && brk->ch.ops->subscribe_live && brk->ch.ops->unsubscribe;
}

static struct ceb_endpoint *keep_unit(void *arg, const char *label, const char *path, uint64_t fp,
                                      uint64_t own_fp)
{
	struct plan *pl = arg;

	for (struct ceb_endpoint *brk = pl->dmn->brokers; brk; brk = brk->next) {
		bool live;

		if (strcmp(brk->label, label) || strcmp(brk->path, path) || !brk->started)
			continue;
		if (brk->fp != fp)
			CEB_LOG_DEBUG(LOG_ID, "%s: changed (fingerprint %016llx, was %016llx)",
			              label, (unsigned long long)fp, (unsigned long long)brk->fp);
		live = brk->fp != fp && own_fp && brk->own_fp == own_fp && live_capable(brk);
		if (brk->fp != fp && !live)
			return NULL; /* replaced */
		if (!grow((void **)&pl->kept, &pl->capkept, pl->nkept, sizeof(*pl->kept)) ||
		    (live &&
		     !grow((void **)&pl->live, &pl->caplive, pl->nlive, sizeof(*pl->live)))) {
			pl->nomem = true;
			return NULL; /* built anew: correct, only not untouched */
		}
		pl->kept[pl->nkept++] = brk;
		if (live)
			pl->live[pl->nlive++] = (struct live){brk, fp};
		return brk;
	}
	return NULL;
}

static bool is_kept(const struct plan *pl, const struct ceb_endpoint *brk)
{
	for (size_t i = 0; i < pl->nkept; i++)
		if (pl->kept[i] == brk)
			return true;
	return false;
}

/* Undo a build that cannot be applied: nothing of it was linked, but a source started may have
 * emitted, so what the dispatchers hold for it ends first. */
static void discard(struct ceb_endpoint *eps, struct ceb_subscription *subs)
{
	struct timespec ms = {0, 1000 * 1000};

	for (struct ceb_endpoint *brk = eps; brk; brk = brk->next)
		ceb_rt_stop(brk);
	for (struct ceb_subscription *trg = subs; trg; trg = trg->next)
		while (atomic_load(&trg->held))
			nanosleep(&ms, NULL);
	for (struct ceb_endpoint *brk = eps, *next; brk; brk = next) {
		next = brk->next;
		ceb_rt_free_endpoint(brk);
	}
	for (struct ceb_subscription *trg = subs, *next; trg; trg = next) {
		next = trg->next;
		ceb_rt_free_subscription(trg);
	}
}

static void failed(struct ceb_daemon *dmn, const char *why)
{
	/* said before counted: whoever sees the count finds the line */
	CEB_LOG_ERR(LOG_ID, "%s; the running configuration stays", why);
	atomic_fetch_add(&dmn->reloads_failed, 1);
	ceb_service_notify("READY=1");
}

/* Log each line of text as an error of the reload. */
static void log_lines(const char *text)
{
	while (text && *text) {
		size_t n = strcspn(text, "\n");

		if (n)
			CEB_LOG_ERR(LOG_ID, "%.*s", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

/* Retire old (unlinked already): it takes no more events once the readers left. */
static void retire(struct ceb_daemon *dmn, struct ceb_endpoint *old)
{
	old->rnext = dmn->retired;
	dmn->retired = old;
}

/* The Trigger diff of the Brokers kept running (pl->live): the new Triggers built (not subscribed)
 * on *added, the old ones to remove on *gone (n of them). */
static int diff_live(struct ceb_daemon *dmn, struct plan *pl, struct ceb_gen *gen,
                     struct ceb_subscription **added, struct ceb_subscription ***gone,
                     size_t *ngone, char *errbuf, size_t errlen)
{
	const struct ceb_config *cfg = gen->cfg;
	struct ceb_subscription **tail = added, **same = NULL;
	size_t nsame = 0, capsame = 0, capgone = 0;
	char label[CEB_LABEL_MAX];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < pl->nlive; i++) {
		struct ceb_endpoint *brk = pl->live[i].brk;
		const struct ceb_broker_cfg *bc = ceb_config_find_broker(cfg, brk->ns, brk->name);

		for (const struct ceb_trigger_cfg *tc = cfg->triggers; rc == 0 && tc;
		     tc = tc->next) {
			uint64_t fp;
			struct ceb_subscription *old = NULL, *trg;

			if (tc->broker_cfg != bc)
				continue;
			fp = ceb_rt_fp_trigger(cfg, tc);
			snprintf(label, sizeof(label), "trigger %s/%s", tc->ns, tc->name);
			for (struct ceb_subscription *t = dmn->triggers; t && !old; t = t->next) {
				bool taken = false;

				for (size_t k = 0; k < nsame && !taken; k++)
					taken = same[k] == t;
				if (t->brk == brk && t->cfg && !t->source && !t->flow &&
				    t->fp == fp && !taken && !strcmp(t->label, label))
					old = t;
			}
			if (old) {
				if (!grow((void **)&same, &capsame, nsame, sizeof(*same)))
					rc = CEB_ENOMEM;
				else
					same[nsame++] = old;
				continue;
			}
			if (!(trg = ceb_rt_trigger_new(dmn, cfg, tc, brk, &tail))) {
				rc = CEB_ENOMEM;
				break;
			}
			trg->gen = gen;
			gen->refs++;
		}
		/* what is not the same goes */
		for (struct ceb_subscription *t = dmn->triggers; rc == 0 && t; t = t->next) {
			bool taken = false;

			if (t->brk != brk)
				continue;
			for (size_t k = 0; k < nsame && !taken; k++)
				taken = same[k] == t;
			if (taken)
				continue;
			if (!grow((void **)gone, &capgone, *ngone, sizeof(**gone)))
				rc = CEB_ENOMEM;
			else
				(*gone)[(*ngone)++] = t;
		}
	}
	free(same);
	if (rc == 0)
		rc = ceb_rt_resolve(dmn, *added, true, errbuf, errlen);
	else
		snprintf(errbuf, errlen, "out of memory");
	return rc;
}

int ceb_daemon_reload(struct ceb_daemon *dmn, const char *const *paths, size_t npaths,
                      const struct ceb_config_opts *opts, bool allow_empty)
{
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	struct ceb_buf chk = CEB_BUF_INIT;
	struct ceb_config *cfg = NULL;
	struct ceb_gen *gen = NULL;
	struct ceb_endpoint *eps = NULL, **news = NULL, **pp, *prev;
	struct ceb_subscription *subs = NULL, **tp, *ladded = NULL, **lgone = NULL;
	struct plan pl = {.dmn = dmn};
	size_t nnew = 0, nerr, replaced = 0, removed = 0, added = 0, left, nlgone = 0, nladded = 0;
	char err[1024], why[160];
	int rc;

	ceb_service_notify("RELOADING=1");
	CEB_LOG_INFO(LOG_ID, "reloading the configuration");
	ceb_rt_reap(dmn, false);
	rc = ceb_config_load_opts(paths, npaths, opts, &cfg, &errs);
	if (rc < 0) {
		log_lines(errs.text.p);
		snprintf(why, sizeof(why), "%zu error%s in the new configuration", errs.count,
		         errs.count == 1 ? "" : "s");
		ceb_buf_free(&errs.text);
		failed(dmn, why);
		return rc;
	}
	ceb_buf_free(&errs.text);
	nerr = ceb_daemon_check(&dmn->set, cfg, &chk);
	if (!dmn->auth && ceb_policy_first(cfg)) {
		const struct ceb_event_policy *p = ceb_policy_first(cfg);

		ceb_buf_printf(&chk,
		               "%s:%d:%d: EventPolicy %s/%s: EventPolicies need sender "
		               "authentication, which this daemon was not started with "
		               "(--auth-jwks)\n",
		               p->loc.file, p->loc.line, p->loc.col, p->ns, p->name);
		nerr++;
	}
	if (!nerr && !allow_empty && cfg->nbrokers + cfg->nendpoints + cfg->nsources == 0) {
		ceb_buf_puts(&chk,
		             "the new configuration declares no Broker, KafkaSink or "
		             "KafkaSource, so there is nothing to serve (--allow-empty accepts "
		             "it)\n");
		nerr = 1;
	}
	if (nerr) {
		log_lines(chk.p);
		ceb_buf_free(&chk);
		ceb_config_free(cfg);
		snprintf(why, sizeof(why), "%zu error%s in the new configuration", nerr,
		         nerr == 1 ? "" : "s");
		failed(dmn, why);
		return CEB_ECONFIG;
	}
	ceb_buf_free(&chk);
	for (size_t i = 0; i < cfg->nnotes; i++)
		if (cfg->notes[i].warning)
			CEB_LOG_WARN(LOG_ID, "%s", cfg->notes[i].text);
	if (!(gen = ceb_gen_new(cfg))) {
		ceb_config_free(cfg);
		failed(dmn, "out of memory");
		return CEB_ENOMEM;
	}
	gen->seq = dmn->gen ? dmn->gen->seq + 1 : 1;

	/* 1. Build what is new or changed, beside what runs; nothing of it is reachable yet. */
	rc = ceb_rt_build(dmn, gen, keep_unit, &pl, &eps, &subs, err, sizeof(err));
	if (rc == 0)
		rc = ceb_rt_resolve(dmn, subs, true, err, sizeof(err));
	for (struct ceb_endpoint *brk = eps; brk; brk = brk->next)
		nnew++;
	if (rc == 0 && nnew && !(news = calloc(nnew, sizeof(*news)))) {
		snprintf(err, sizeof(err), "out of memory");
		rc = CEB_ENOMEM;
	}
	nnew = 0;
	for (struct ceb_endpoint *brk = eps; news && brk; brk = brk->next)
		news[nnew++] = brk;
	/* 2. Start it, sources after what they feed, before any request can reach it. (A durable
	 * replacement shares its consumer groups with the channel it replaces, which stops right
	 * after the swap: what the old one's consumers held and had not settled may come again.) */
	for (int pass = 0; rc == 0 && pass < 2; pass++)
		for (size_t i = 0; rc == 0 && i < nnew; i++)
			if ((pass == 0) == !news[i]->src)
				rc = ceb_rt_start(news[i], err, sizeof(err));
	if (rc == 0 && !pl.nomem)
		rc = diff_live(dmn, &pl, gen, &ladded, &lgone, &nlgone, err, sizeof(err));
	/* the new policies, for what runs and what is about to, before any request can reach it */
	if (rc == 0)
		rc = auth_attach(dmn, gen, eps, err, sizeof(err));
	if (rc < 0) {
		discard(eps, subs);
		discard(NULL, ladded);
		free(lgone);
		free(news);
		free(pl.kept);
		free(pl.live);
		ceb_gen_unref(gen);
		CEB_LOG_ERR(LOG_ID, "%s", err);
		failed(dmn, "the new configuration cannot be built");
		return rc;
	}

	/* 3. Swap, one pointer store per endpoint: a path in both configurations is found at every
	 * moment (the old endpoint or its replacement), a removed one disappears, new ones are
	 * appended. */
	for (pp = &dmn->brokers; *pp;) {
		struct ceb_endpoint *old = *pp, *repl = NULL;

		if (is_kept(&pl, old)) {
			pp = &old->next;
			continue;
		}
		for (size_t i = 0; i < nnew && !repl; i++)
			if (news[i] && !strcmp(news[i]->label, old->label) &&
			    !strcmp(news[i]->path, old->path)) {
				repl = news[i];
				news[i] = NULL;
			}
		if (repl) {
			repl->next = old->next;
			store_ep(pp, repl);
			pp = &repl->next;
			replaced++;
		} else {
			store_ep(pp, old->next);
			removed++;
			CEB_LOG_INFO(LOG_ID,
			             "%s (configuration %u): removed; draining what it holds",
			             old->label, old->gen ? old->gen->seq : 0);
		}
		old->retired_at = ceb_now_ms();
		retire(dmn, old);
	}
	prev = NULL;
	for (size_t i = nnew; i-- > 0;) {
		if (!news[i])
			continue;
		news[i]->next = prev;
		prev = news[i];
		added++;
	}
	store_ep(pp, prev);
	/* what this reload built is in force now (a failed one never gets here) */
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->gen == gen)
			ceb_channel_committed(&brk->ch);
	/* subscriptions: those of retired endpoints out, the new ones in */
	for (tp = &dmn->triggers; *tp;) {
		struct ceb_subscription *trg = *tp;

		if (!trg->brk->retired_at) {
			tp = &trg->next;
			continue;
		}
		store_sub(tp, trg->next);
		trg->rnext = dmn->retired_subs;
		dmn->retired_subs = trg;
	}
	/* Triggers of Brokers kept running: the new ones subscribed on the running channel (it
	 * routes to them from now on), the removed ones unsubscribed (it routes them nothing more;
	 * they drain). */
	for (struct ceb_subscription **lp = &ladded; *lp;) {
		struct ceb_subscription *trg = *lp;

		if (ceb_rt_subscribe_live(dmn, trg, err, sizeof(err)) < 0) {
			CEB_LOG_ERR(LOG_ID, "%s", err);
			*lp = trg->next;
			ceb_rt_free_subscription(trg);
			continue;
		}
		CEB_LOG_INFO(LOG_ID, "%s: added to the running %s", trg->label, trg->brk->label);
		nladded++;
		lp = &trg->next;
	}
	for (size_t i = 0; i < nlgone; i++) {
		lgone[i]->detached = true;
		CEB_LOG_INFO(LOG_ID, "%s: removed from the running %s; draining what it holds",
		             lgone[i]->label, lgone[i]->brk->label);
	}
	for (tp = &dmn->triggers; *tp;) {
		struct ceb_subscription *trg = *tp;

		if (!trg->detached) {
			tp = &trg->next;
			continue;
		}
		store_sub(tp, trg->next);
		trg->rnext = dmn->retired_subs;
		dmn->retired_subs = trg;
	}
	/* the channel stops routing to them at once; what they hold drains (ceb_rt_reap) */
	for (size_t i = 0; i < nlgone; i++)
		if (!lgone[i]->brk->ch.ops->unsubscribe(lgone[i]->brk->ch.ctx, lgone[i]->sub))
			lgone[i]->sub = NULL;
	for (size_t i = 0; i < pl.nlive; i++)
		pl.live[i].brk->fp = pl.live[i].fp;
	if (ladded) {
		struct ceb_subscription *last = ladded;

		while (last->next)
			last = last->next;
		last->next = subs;
		subs = ladded;
	}
	store_sub(tp, subs);

	/* 4. Once no request can find a retired endpoint any more, it drains: a source emits nothing
	 * more; once the requests that routed to it ended (ceb_rt_reap), a durable channel stops
	 * handing out (what its consumers hold settles, the rest stays stored for its replacement),
	 * a channel in memory hands out what it holds. */
	synchronize(dmn);
	for (struct ceb_endpoint *old = dmn->retired; old; old = old->rnext)
		if (!old->stopped && old->src && old->src->stop)
			old->src->stop(old->src_ctx);
	ceb_gen_unref(dmn->gen);
	dmn->gen = gen;
	dmn->cfg = cfg;
	free(news);
	free(pl.kept);
	free(pl.live);
	free(lgone);
	left = ceb_rt_reap(dmn, false);
	CEB_LOG_INFO(LOG_ID,
	             "reloaded (configuration %u): %zu unchanged, %zu changed in place (%zu "
	             "Triggers added, %zu removed), %zu replaced, %zu removed, %zu added; %zu "
	             "draining",
	             gen->seq, pl.nkept - pl.nlive, pl.nlive, nladded, nlgone, replaced, removed,
	             added, left);
	atomic_store(&dmn->reload_last_ok, (long long)time(NULL));
	atomic_fetch_add(&dmn->reloads_ok, 1);
	ceb_service_notify("READY=1");
	return 0;
}

size_t ceb_daemon_reap(struct ceb_daemon *dmn)
{
	return ceb_rt_reap(dmn, false);
}
