/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The node's part in the DHT: an OpenDHT runner and what runs around it.
 *
 * - Publishing (when opt.publish): the producers tell sp_dht_note_prepared()
 *   which keys their queued events touch; a publisher thread signs each
 *   changed IP and number as a record value under its own key, and packs
 *   the same records into compact signed batches under the hour's feed key.
 *   A key is published at most once per publish_interval; new keys go out
 *   within a second. Every keepalive round (9 min 30 s, inside OpenDHT's 10
 *   minute value lifetime) the newest live records are published again, as
 *   many as the bandwidth budget allows. Loopback, private, reserved and
 *   this host's own addresses are never published.
 * - Receiving (when opt.listen): the feed keys of this hour and the last
 *   are listened to, and the feed hours of the retention window are fetched
 *   once after start (back-fill). Every value is checked (value.h) and by
 *   the trust settings; accepted records wait in a bounded queue until the
 *   writer takes them with sp_dht_drain().
 * - Lookups: sp_dht_lookup() gets a record key with a deadline.
 *
 * Every value from the network is untrusted: sizes are capped, duplicates
 * dropped, each reporter rate limited, and every refusal counted by reason.
 */
#ifndef SP_DHT_H
#define SP_DHT_H

#include "identity.h"
#include "sp_record.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sp_dht sp_dht;

struct sp_dht_options {
	const sp_identity *id;          /* signs what is published; NULL: lookups only */
	sp_store *store;                /* local aggregates to publish (publish only) */
	uint16_t port;                  /* 0: any free port */
	uint32_t network;               /* 0: the public network */
	const char *const *bootstrap;   /* "host[:port]" (port 4222 if none) */
	size_t n_bootstrap;
	const char *proxy;              /* DHT proxy URL, or NULL */
	bool publish;                   /* sign and publish this node's records */
	bool listen;                    /* follow the feed and back-fill */
	uint64_t ttl_ns;                /* a record expires this long after last seen */
	uint64_t publish_interval_ns;   /* at most one publish per key per interval */
	uint64_t bandwidth;             /* bytes/s budget for what we publish */
	uint64_t backfill_ns;           /* how far back to fetch the feed */
	const char *const *allow;       /* key ids; empty: everyone not denied */
	size_t n_allow;
	const char *const *deny;
	size_t n_deny;
	bool quick_stop;                /* stop without waiting for pending operations */
	/* Called (any thread, must not block) when records wait in the queue. */
	void (*wake)(void *ud);
	void *ud;
};

enum sp_dht_reject {
	SP_REJ_MALFORMED, SP_REJ_OVERSIZED, SP_REJ_VERSION, SP_REJ_SIGNATURE, SP_REJ_WRONG_KEY,
	SP_REJ_EXPIRED, SP_REJ_DENIED, SP_REJ_RATE, SP_REJ_N
};
const char *sp_dht_reject_name(enum sp_dht_reject r);

struct sp_dht_stats {
	bool connected;
	uint16_t port;
	uint64_t last_contact_ns;       /* wall clock; 0: never */
	uint64_t puts, puts_ok, puts_failed, put_bytes;
	uint64_t gets, gets_ok;
	uint64_t values_received, values_accepted, values_duplicate, values_own;
	uint64_t records_accepted, records_dropped;   /* dropped: intake queue full */
	uint64_t rejected[SP_REJ_N];
	uint64_t peers;                 /* distinct reporters accepted since start */
	uint64_t published_records, published_batches, deferred_budget, keepalive_rounds;
	uint64_t backfill_hours_done, backfill_hours_total;
};

/* Start the runner (binds the port), then bootstrap in the background. */
int sp_dht_start(sp_dht **out, const struct sp_dht_options *opt);
/* Stop publishing and receiving, shut the runner down, free d. */
void sp_dht_stop(sp_dht *d);

/* Producer threads, as events are queued for the store: the keys this
 * node's events touch (sp_prepared_keys); the publisher reads each from
 * the store once the writer has folded it. Any thread. */
void sp_dht_note_prepared(sp_dht *d, sp_prepared *const *p, size_t n);
/* Writer thread, inside a transaction: hand queued peer records to fn
 * (at most max); returns how many were handed. */
size_t sp_dht_drain(sp_dht *d, int (*fn)(const sp_agg *a, void *ud), void *ud, size_t max);

/* Get a key from the DHT, waiting at most timeout_ns. Every accepted
 * record is merged into out (one report per reporter) and also queued for
 * the store. Returns 0 (at least one), SP_ENOTFOUND, or SP_ETIMEDOUT when
 * the deadline came first and nothing had arrived. */
int sp_dht_lookup(sp_dht *d, enum sp_kind kind, const char *key, uint64_t timeout_ns, sp_agg *out);

void sp_dht_get_stats(sp_dht *d, struct sp_dht_stats *out);
/* Wait until the node has heard from the network, at most timeout_ns.
 * Returns true when connected. */
bool sp_dht_wait_connected(sp_dht *d, uint64_t timeout_ns);

#endif
