/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer lookup <ip|number>: is it listed, and what is known of it.
 * Answers from the local store. Exit 0 listed, 1 not listed, 2 error.
 *
 * Peer data arrives in the same store (as reports from peer key ids), so
 * this answers for the network too; a DHT get on a local miss is the
 * fallback that plugs in at lookup_miss() below.
 */
#include "cli.h"
#include "render.h"
#include "sp_error.h"
#include "sp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 1 };

static const struct sp_opt lookup_opts[] = {
	{ "json", 0, NULL, OPT_JSON, "print the answer as one JSON object" },
	{ NULL, 0, NULL, 0, NULL },
};

struct lookup_args {
	bool json;
};

static int on_opt(int id, const char *arg, void *ud)
{
	struct lookup_args *a = ud;
	if (id == OPT_JSON)
		a->json = true;
	return 0;
}

/* The answer when the local store does not know the key. */
static int lookup_miss(const char *query, enum sp_kind kind, const char *key, bool json)
{
	if (json) {
		json_t *j = json_object();
		json_object_set_new(j, "query", json_string(query));
		json_object_set_new(j, "kind", json_string(sp_kind_name(kind)));
		json_object_set_new(j, "key", json_string(key));
		json_object_set_new(j, "listed", json_false());
		json_object_set_new(j, "answered_by", json_string("local store"));
		json_dumpf(j, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(j);
	} else {
		printf("%s is not listed (local store)\n", query);
	}
	return SP_EXIT_NOT_LISTED;
}

static void print_human(const char *query, const sp_agg *a, uint64_t now, uint64_t retention)
{
	struct sp_agg_summary s;
	char t1[SP_TIMESTAMP_LEN], t2[SP_TIMESTAMP_LEN], buf[512];

	sp_agg_summarize(a, SP_SOURCE_ALL, now, retention, &s);
	printf("%s is listed\n", query);
	printf("  %-12s %s %s\n", "key:", sp_kind_name(a->kind), a->key);
	printf("  %-12s %llu time%s, first %s, last %s\n", "seen:", (unsigned long long)s.count,
	       s.count == 1 ? "" : "s", sp_timestamp_format_sec(s.first_ns, t1),
	       sp_timestamp_format_sec(s.last_ns, t2));
	printf("  %-12s ", "reported by:");
	if (s.local)
		printf("this node (%llu)%s", (unsigned long long)s.local_count, s.peers ? ", " : "");
	if (s.peers)
		printf("%u peer%s (%llu)", s.peers, s.peers == 1 ? "" : "s",
		       (unsigned long long)(s.count - s.local_count));
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
	printf("  %-12s %s\n", "expires:", sp_timestamp_format_sec(s.expires_ns, t1));
}

int cmd_lookup(int argc, char **argv)
{
	struct sp_config cfg;
	struct lookup_args args = { 0 };
	char **pos = NULL, key[SP_KEY_MAX];
	int npos, rc, status = SP_EXIT_ERROR;
	enum sp_kind kind;
	sp_store *st = NULL;
	sp_agg *a = NULL;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, lookup_opts, on_opt, &args, &pos,
			      &npos, "sentrypeer lookup [--json] <ip-address|number>");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos != 1) {
		fprintf(stderr, "sentrypeer lookup: give exactly one IP address or number\n");
		goto out;
	}
	rc = sp_key_classify(pos[0], &kind, key);
	if (rc) {
		fprintf(stderr, "sentrypeer lookup: '%s': %s\n", pos[0], sp_strerror(rc));
		goto out;
	}
	if (cli_open_store(&cfg, true, false, &st))
		goto out;
	a = malloc(sizeof(*a));
	if (!a)
		goto out;
	uint64_t now = sp_now_ns(), retention = sp_store_retention(st);
	struct sp_agg_summary sum;
	rc = sp_store_get(st, kind, key, a);
	if (rc == SP_ENOTFOUND || (rc == 0 && !sp_agg_summarize(a, SP_SOURCE_ALL, now, retention, &sum))) {
		status = lookup_miss(pos[0], kind, key, args.json);
		goto out;
	}
	if (rc) {
		fprintf(stderr, "sentrypeer lookup: %s: %s\n", key, sp_strerror(rc));
		goto out;
	}
	if (args.json) {
		json_t *j = sp_agg_to_json(a, SP_SOURCE_ALL, now, retention);
		json_t *o = json_object();
		json_object_set_new(o, "query", json_string(pos[0]));
		json_object_set_new(o, "listed", json_true());
		json_object_set_new(o, "answered_by", json_string("local store"));
		json_object_update(o, j);
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(j);
		json_decref(o);
	} else {
		print_human(pos[0], a, now, retention);
	}
	status = SP_EXIT_OK;
out:
	if (fflush(stdout) != 0 && status != SP_EXIT_ERROR)
		status = SP_EXIT_ERROR;
	free(a);
	sp_store_close(st);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
