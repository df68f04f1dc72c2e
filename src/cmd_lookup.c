/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer lookup <ip|number>: is it listed, and what is known of it.
 * Exit 0 listed, 1 not listed, 2 error.
 *
 * The local store answers first (this node's observations and the peer
 * data replication brought in). On a miss, or with --refresh, the DHT is
 * asked, within dht-timeout:
 *   - through the running node's control socket, using its warm DHT
 *     connection (the node caches what it finds in the store);
 *   - with no node running, through a short-lived DHT node of our own
 *     (what it finds is cached in the store), unless --local;
 *   - never with sharing off (tit for tat): the answer says so.
 * Peer data alone lists a key once dht-min-reporters peers reported it.
 */
#include "cli.h"
#include "control.h"
#include "render.h"
#include "share.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 1, OPT_REFRESH, OPT_LOCAL };

static const struct sp_opt lookup_opts[] = {
	{ "json", 0, NULL, OPT_JSON, "print the answer as one JSON object" },
	{ "refresh", 0, NULL, OPT_REFRESH, "ask the DHT even when the local store knows the key" },
	{ "local", 0, NULL, OPT_LOCAL, "answer from the local store only" },
	{ NULL, 0, NULL, 0, NULL },
};

struct lookup_args {
	bool json, refresh, local;
};

static int on_opt(int id, const char *arg, void *ud)
{
	struct lookup_args *a = ud;
	if (id == OPT_JSON)
		a->json = true;
	else if (id == OPT_REFRESH)
		a->refresh = true;
	else if (id == OPT_LOCAL)
		a->local = true;
	return 0;
}

/* How the DHT was (or was not) asked: for the answer's last line. */
struct dht_answer {
	int rc;          /* 0 found, SP_ENOTFOUND, SP_ETIMEDOUT, SP_ENOSHARE, ... */
	const char *via; /* "running node", "short-lived node", NULL: not asked */
	const char *why; /* not asked: why */
	sp_agg agg;      /* rc == 0: the peer reports found */
};

static int merge_into(const sp_agg *a, void *ud) { return sp_wtxn_merge(ud, a); }

/* No node running: a DHT node of our own for this one lookup. Found
 * records are cached in the store (reopened for writing). */
static void ask_short_lived(const struct sp_config *cfg, const struct lookup_args *args,
			    enum sp_kind kind, const char *key, struct dht_answer *ans, sp_store **st)
{
	struct sp_dht_options o;
	struct sp_share_lists lists;
	sp_dht *d = NULL;
	uint64_t start = sp_mono_ns(), budget = cfg->dht_timeout_ns;

	sp_share_options(cfg, &o, &lists);
	if (!o.n_bootstrap && !o.proxy) {
		ans->rc = SP_ENONODE;
		ans->why = "no running node and no bootstrap node to ask";
		sp_share_options_free(&lists);
		return;
	}
	if (!args->json)
		fprintf(stderr, "sentrypeer lookup: no running node; asking the DHT directly\n");
	o.port = 0;
	o.quick_stop = true; /* the caller waited long enough */
	ans->via = "short-lived node";
	if ((ans->rc = sp_dht_start(&d, &o))) {
		sp_share_options_free(&lists);
		return;
	}
	sp_dht_wait_connected(d, budget);
	uint64_t spent = sp_mono_ns() - start;
	ans->rc = spent >= budget ? SP_ETIMEDOUT
				  : sp_dht_lookup(d, kind, key, budget - spent, &ans->agg);
	if (ans->rc == 0) {
		/* cache: this process's read handle must go before a write one */
		sp_store_close(*st);
		*st = NULL;
		sp_wtxn *tx;
		if (cli_open_store(cfg, false, false, st) == 0 && sp_wtxn_begin(*st, &tx) == 0) {
			sp_dht_drain(d, merge_into, tx, SIZE_MAX);
			if (sp_wtxn_commit(tx) != 0)
				log_debug("lookup: could not cache the DHT answer");
		}
	}
	sp_dht_stop(d);
	sp_share_options_free(&lists);
}

static void ask_dht(const struct sp_config *cfg, const struct lookup_args *args,
		    enum sp_kind kind, const char *key, struct dht_answer *ans, sp_store **st)
{
	char path[PATH_MAX], line[SP_CONTROL_LINE_MAX], *reply = NULL;

	if (!cfg->peer_to_peer) {
		ans->rc = SP_ENOSHARE;
		ans->why = "sharing is off (--no-share): no DHT lookups (tit for tat)";
		return;
	}
	if (args->local) {
		ans->rc = SP_ENONODE;
		ans->why = "--local";
		return;
	}
	uint64_t ms = cfg->dht_timeout_ns / 1000000;
	snprintf(line, sizeof(line), "lookup %s %s %llu", sp_kind_name(kind), key,
		 (unsigned long long)ms);
	int rc = sp_control_path(cfg->data_dir, path, sizeof(path))
			 ? sp_control_ask(path, line, cfg->dht_timeout_ns + SP_NS_PER_SEC, &reply)
			 : SP_ENONODE;
	if (rc == SP_ENONODE) {
		ask_short_lived(cfg, args, kind, key, ans, st);
		return;
	}
	ans->via = "running node";
	if (rc) {
		ans->rc = rc;
	} else if (strncmp(reply, "found ", 6) == 0) {
		ans->rc = sp_agg_from_hex(reply + 6, &ans->agg);
		if (ans->rc == 0 && (ans->agg.kind != kind || strcmp(ans->agg.key, key) != 0))
			ans->rc = SP_EKEYMISMATCH;
	} else if (strncmp(reply, "notfound", 8) == 0) {
		ans->rc = SP_ENOTFOUND;
	} else if (strncmp(reply, "timeout", 7) == 0) {
		ans->rc = SP_ETIMEDOUT;
	} else if (strstr(reply, "sharing is off")) {
		ans->rc = SP_ENOSHARE;
		ans->via = NULL;
		ans->why = "sharing is off on the running node (--no-share): no DHT lookups";
	} else {
		ans->rc = SP_EPARSE;
		fprintf(stderr, "sentrypeer lookup: the node answered: %s", reply);
	}
	free(reply);
}

/* "local store", or where the DHT part of the answer came from. */
static const char *answered_by(const struct dht_answer *ans, bool listed_locally)
{
	if (ans->via && ans->rc == 0)
		return listed_locally ? "local store and DHT" : "DHT";
	return "local store";
}

static const char *dht_note(const struct dht_answer *ans, char *buf, size_t len)
{
	if (!ans->via && !ans->why)
		return NULL;
	if (!ans->via)
		snprintf(buf, len, "DHT not asked: %s", ans->why);
	else if (ans->rc == 0)
		snprintf(buf, len, "DHT asked via the %s: found", ans->via);
	else if (ans->rc == SP_ENOTFOUND)
		snprintf(buf, len, "DHT asked via the %s: no peer has reported it", ans->via);
	else
		snprintf(buf, len, "DHT asked via the %s: %s", ans->via, sp_strerror(ans->rc));
	return buf;
}

static void print_human(const char *query, const sp_agg *a, const struct sp_agg_summary *s,
			const char *note)
{
	char t1[SP_TIMESTAMP_LEN], t2[SP_TIMESTAMP_LEN], buf[512];

	printf("%s is listed\n", query);
	printf("  %-12s %s %s\n", "key:", sp_kind_name(a->kind), a->key);
	printf("  %-12s %llu time%s, first %s, last %s\n", "seen:", (unsigned long long)s->count,
	       s->count == 1 ? "" : "s", sp_timestamp_format_sec(s->first_ns, t1),
	       sp_timestamp_format_sec(s->last_ns, t2));
	printf("  %-12s ", "reported by:");
	if (s->local)
		printf("this node (%llu)%s", (unsigned long long)s->local_count, s->peers ? ", " : "");
	if (s->peers)
		printf("%u peer%s (%llu)", s->peers, s->peers == 1 ? "" : "s",
		       (unsigned long long)(s->count - s->local_count));
	printf("\n");
	if (a->methods)
		printf("  %-12s %s\n", "methods:", sp_methods_format(a->methods, buf, sizeof(buf)));
	if (a->transports)
		printf("  %-12s %s\n", "transports:",
		       sp_transports_format(a->transports, buf, sizeof(buf)));
	for (unsigned i = 0; i < a->n_uas; i++)
		printf("  %-12s %s\n", i ? "" : "user agents:", a->uas[i]);
	for (unsigned i = 0; i < a->n_raws; i++)
		printf("  %-12s %s\n", i ? "" : "dialled as:", a->raws[i]);
	printf("  %-12s %s\n", "expires:", sp_timestamp_format_sec(s->expires_ns, t1));
	if (note)
		printf("  %-12s %s\n", "dht:", note);
}

int cmd_lookup(int argc, char **argv)
{
	struct sp_config cfg;
	struct lookup_args args = { 0 };
	char **pos = NULL, key[SP_KEY_MAX], note[256];
	int npos, rc, status = SP_EXIT_ERROR;
	enum sp_kind kind;
	sp_store *st = NULL;
	sp_agg *a = NULL;
	struct dht_answer *ans = NULL;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, lookup_opts, on_opt, &args, &pos,
			      &npos, "sentrypeer lookup [--json] [--refresh|--local] <ip-address|number>");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos != 1) {
		fprintf(stderr, "sentrypeer lookup: give exactly one IP address or number\n");
		goto out;
	}
	if (args.refresh && args.local) {
		fprintf(stderr, "sentrypeer lookup: --refresh and --local contradict each other\n");
		goto out;
	}
	rc = sp_key_classify(pos[0], &kind, key);
	if (rc) {
		fprintf(stderr, "sentrypeer lookup: '%s': %s\n", pos[0], sp_strerror(rc));
		goto out;
	}
	/* no store is an error, not "not listed": a dialplan must not let a
	 * caller through because --data-dir is wrong */
	if (cli_open_store(&cfg, true, false, &st))
		goto out;
	a = malloc(sizeof(*a));
	ans = calloc(1, sizeof(*ans));
	if (!a || !ans)
		goto out;
	uint64_t now = sp_now_ns(), retention = sp_store_retention(st);
	struct sp_agg_summary sum;
	rc = sp_store_get(st, kind, key, a);
	if (rc && rc != SP_ENOTFOUND) {
		fprintf(stderr, "sentrypeer lookup: %s: %s\n", key, sp_strerror(rc));
		goto out;
	}
	if (rc == SP_ENOTFOUND)
		sp_agg_init(a, kind, key);
	/* peer data counts as listed from dht-min-reporters peers on */
	if (!cfg.peer_to_peer)
		sp_agg_summarize(a, SP_SOURCE_LOCAL, now, retention, &sum);
	else
		sp_agg_summarize(a, SP_SOURCE_ALL, now, retention, &sum);
	bool listed_locally = sp_share_listed(&sum, cfg.dht_min_reporters);

	if (!listed_locally || args.refresh) {
		ask_dht(&cfg, &args, kind, key, ans, &st);
		if (ans->rc == 0)
			sp_agg_merge(a, &ans->agg);
		else if (ans->rc == SP_ENONODE && args.local)
			ans->why = NULL; /* asked for: nothing to explain */
	}
	enum sp_source src = cfg.peer_to_peer ? SP_SOURCE_ALL : SP_SOURCE_LOCAL;
	bool listed = sp_agg_summarize(a, src, now, retention, &sum) &&
		      sp_share_listed(&sum, cfg.dht_min_reporters);
	const char *n = dht_note(ans, note, sizeof(note));

	if (args.json) {
		json_t *o = json_object();
		json_object_set_new(o, "query", json_string(pos[0]));
		json_object_set_new(o, "listed", json_boolean(listed));
		json_object_set_new(o, "answered_by", json_string(answered_by(ans, listed_locally)));
		if (n)
			json_object_set_new(o, "dht", json_string(n));
		if (listed) {
			json_t *j = sp_agg_to_json(a, src, now, retention);
			json_object_update(o, j);
			json_decref(j);
		} else {
			json_object_set_new(o, "kind", json_string(sp_kind_name(kind)));
			json_object_set_new(o, "key", json_string(key));
			if (sum.peers)
				json_object_set_new(o, "peers_reporting", json_integer(sum.peers));
		}
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	} else if (listed) {
		print_human(pos[0], a, &sum, n);
	} else {
		printf("%s is not listed (%s)\n", pos[0], answered_by(ans, false));
		if (sum.peers)
			printf("  %u peer%s reported it; dht-min-reporters asks for %llu\n", sum.peers,
			       sum.peers == 1 ? "" : "s", (unsigned long long)cfg.dht_min_reporters);
		if (n)
			printf("  %s\n", n);
	}
	status = listed ? SP_EXIT_OK : SP_EXIT_NOT_LISTED;
out:
	if (fflush(stdout) != 0 && status != SP_EXIT_ERROR)
		status = SP_EXIT_ERROR;
	free(a);
	free(ans);
	sp_store_close(st);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
