/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The local HTTP API and the web dashboard (libmicrohttpd), read-only.
 *
 * Routes (docs/api.md): upstream's /health-check, /ip-addresses[/IP],
 * /numbers[/N]; /api/v1/ip-addresses[/IP], /api/v1/numbers[/N] with the
 * full record and a change cursor; /api/v1/lookup/Q; /api/v1/export (the
 * bytes of `sentrypeer export`); /api/v1/events; /api/v1/summary; /metrics
 * (Prometheus text); the dashboard at /.
 *
 * Threads: api-threads workers answer requests from the store (one LMDB
 * read transaction each, no lock shared with the writer). Work that can
 * take long never runs on them: exports and full lists are produced by a
 * thread each (at most max_exports) into a bounded buffer while the
 * connection is parked (MHD suspend/resume); DHT lookups run on their own
 * threads with a deadline watched apart from them; the dashboard summary
 * is recomputed by one background thread while someone looks at it.
 *
 * Every buffer fed by a client has a cap: request line and headers
 * (max_header: 431 or 414), bodies (none accepted: 413), connections
 * (max_conns, max_conns_per_source), idle time (idle_timeout_ns), values
 * in the path and query (400). Errors are JSON: {"status":N,"error":"..."}.
 */
#ifndef SP_API_H
#define SP_API_H

#include "honeypot.h"
#include "listen.h"
#include "settings.h"
#include "store.h"
#include "writer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sp_api sp_api;

/* What the DHT part says about itself, for /metrics and the dashboard. */
struct sp_api_dht_status {
	bool connected;   /* has DHT peers and answers */
	bool sharing;     /* this node publishes and receives */
	uint64_t peers;   /* distinct peers whose values were accepted since start */
	uint64_t puts, puts_failed, gets, values_accepted, values_rejected;
	char node_id[SP_REPORTER_MAX]; /* this node's key id (hex), "" if none */
};

/*
 * The DHT as the API sees it: optional (NULL = no DHT, because sharing is
 * off or the part is not built; lookups then answer from the local store
 * and say "dht":"off"). The functions are called from API threads, several
 * at once; ud must stay valid until sp_api_stop() returns.
 */
struct sp_api_dht {
	void *ud;
	/* Blocking lookup of kind/key (normalised) taking at most timeout_ns.
	 * Fills out (the merged peer aggregate) and returns 0, SP_ENOTFOUND,
	 * or another error. The API answers its caller at the deadline even
	 * when this overruns, and drops a late result. */
	int (*lookup)(void *ud, enum sp_kind kind, const char *key, uint64_t timeout_ns, sp_agg *out);
	/* Status and counters; may be NULL. */
	void (*status)(void *ud, struct sp_api_dht_status *out);
};

struct sp_api_options {
	const struct sp_strlist *addresses; /* normalised IPs; one listener each */
	uint16_t port;                      /* 0: a free port (sp_api_port says which) */
	const char *token;                  /* NULL or "": no token; copied */
	unsigned threads;                   /* request workers per address; 0: one
					     * per two CPUs, at least 1 */
	unsigned max_conns, max_conns_per_source;
	unsigned max_exports;               /* streams at once (exports, full lists) */
	unsigned dht_lookups;               /* DHT lookups at once */
	uint64_t idle_timeout_ns;
	uint64_t dht_timeout_ns;            /* when the caller gives no ?timeout= */
	uint64_t stream_timeout_ns;         /* longest one export may take; 0: 10 min */
	size_t max_header;
	bool sharing;                       /* for the dashboard when there is no DHT */
	unsigned min_reporters;             /* dht-min-reporters: peer-only records need this many */
};

/* What the node runs by the time the API starts serving: the parts whose
 * live counters /metrics and the dashboard show, and the DHT. Each may be
 * NULL and must outlive the API (the DHT struct itself is copied). */
struct sp_api_live {
	sp_writer *writer;
	sp_honeypot *honeypot;
	sp_listeners *listeners;
	const struct sp_api_dht *dht;       /* NULL: no DHT, answers say "dht":"off" */
};

/* Options from the node's settings (api-*); reads api-token-file. The
 * token, if any, is in *token (free it after sp_api_start). Returns 0 or
 * prints why not and returns an error. */
int sp_api_options_from_config(struct sp_api_options *o, const struct sp_config *cfg,
			       char **token);

/* Two steps, so that a node started as root binds (and has read the token
 * file) before it gives up root, and serves once its other parts run:
 * sp_api_open() binds every address (errors: -errno, logged with the
 * address; -ENOMEM; SP_EPARSE for bad options); sp_api_run() starts the
 * threads and logs where it listens. sp_api_start() does both. The store
 * must stay open until sp_api_stop() returns. */
int sp_api_open(sp_api **out, sp_store *st, const struct sp_api_options *opt);
int sp_api_run(sp_api *api, const struct sp_api_live *live);
int sp_api_start(sp_api **out, sp_store *st, const struct sp_api_options *opt,
		 const struct sp_api_live *live);
/* The port the first address is bound to. */
uint16_t sp_api_port(const sp_api *api);
/* Stops accepting, answers what is parked, ends streams, joins every
 * thread, frees api. NULL is fine. */
void sp_api_stop(sp_api *api);

#endif
