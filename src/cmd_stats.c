/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* sentrypeer stats: what the store holds and what the node counted. */
#include "cli.h"
#include "control.h"
#include "sp_error.h"
#include "sp_time.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

enum { OPT_JSON = 1 };

static const struct sp_opt stats_opts[] = {
	{ "json", 0, NULL, OPT_JSON, "print as one JSON object" },
	{ NULL, 0, NULL, 0, NULL },
};

static int on_opt(int id, const char *arg, void *ud)
{
	*(bool *)ud = true;
	return 0;
}

struct split {
	uint64_t now, retention, local, peers, expired;
};

static int count_split(const sp_agg *a, void *ud)
{
	struct split *s = ud;
	struct sp_agg_summary sum;
	if (!sp_agg_summarize(a, SP_SOURCE_ALL, s->now, s->retention, &sum)) {
		s->expired++;
		return 0;
	}
	if (sum.local)
		s->local++;
	if (sum.peers)
		s->peers++;
	return 0;
}

static void add_counter(const char *name, uint64_t value, void *ud)
{
	json_object_set_new(ud, name, json_integer((json_int_t)value));
}

static const char *human_size(uint64_t b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
	return buf;
}

/* The running node's own view (control socket), or {"running": false}. */
static json_t *node_status(const struct sp_config *cfg)
{
	char path[PATH_MAX], *answer = NULL;
	json_t *j = NULL;
	if (sp_control_path(cfg->data_dir, path, sizeof(path)) &&
	    sp_control_ask(path, "status", SP_NS_PER_SEC, &answer) == 0)
		j = json_loads(answer, 0, NULL);
	free(answer);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		j = json_object();
		json_object_set_new(j, "running", json_false());
	} else {
		json_object_set_new(j, "running", json_true());
	}
	return j;
}

static void print_node(json_t *n)
{
	if (!json_is_true(json_object_get(n, "running"))) {
		printf("node:         not running\n");
		return;
	}
	printf("node:         running %s for %lld s\n",
	       json_string_value(json_object_get(n, "version")),
	       (long long)json_integer_value(json_object_get(n, "uptime_s")));
	json_t *d = json_object_get(n, "dht");
	if (!json_is_true(json_object_get(n, "sharing")) || !d) {
		printf("sharing:      off (--no-share): nothing published, no peer data taken\n");
		return;
	}
	printf("sharing:      as %s\n", json_string_value(json_object_get(n, "key_id")));
	const char *last = json_string_value(json_object_get(d, "last_contact"));
	const char *proxy = json_string_value(json_object_get(d, "proxy"));
	char where[300];
	if (proxy)
		snprintf(where, sizeof(where), "through the proxy %s", proxy);
	else
		snprintf(where, sizeof(where), "UDP port %lld",
			 (long long)json_integer_value(json_object_get(d, "port")));
	printf("dht:          %s, %s, network %lld, last contact %s\n",
	       json_is_true(json_object_get(d, "connected")) ? "connected" : "NOT connected (retrying)",
	       where, (long long)json_integer_value(json_object_get(d, "network")), last ? last : "never");
	printf("              %lld peers reporting; values accepted %lld of %lld received; "
	       "published %lld records in %lld batches\n",
	       (long long)json_integer_value(json_object_get(d, "peers_reporting")),
	       (long long)json_integer_value(json_object_get(d, "values_accepted")),
	       (long long)json_integer_value(json_object_get(d, "values_received")),
	       (long long)json_integer_value(json_object_get(d, "published_records")),
	       (long long)json_integer_value(json_object_get(d, "published_batches")));
	const char *k;
	json_t *v;
	printf("              rejected:");
	json_object_foreach(json_object_get(d, "rejected"), k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	printf("\n");
}

int cmd_stats(int argc, char **argv)
{
	struct sp_config cfg;
	struct sp_store_stats s;
	struct split ips = { 0 }, nums = { 0 };
	bool json = false;
	char **pos = NULL;
	int npos, rc, status = SP_EXIT_ERROR;
	uint64_t corrupt = 0;
	sp_store *st = NULL;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, stats_opts, on_opt, &json, &pos, &npos,
			      "sentrypeer stats [--json]");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos) {
		fprintf(stderr, "sentrypeer stats: unexpected argument '%s'\n", pos[0]);
		goto out;
	}
	if (cli_open_store(&cfg, true, false, &st))
		goto out;
	if ((rc = sp_store_stats(st, &s))) {
		fprintf(stderr, "sentrypeer stats: %s\n", sp_strerror(rc));
		goto out;
	}
	ips.now = nums.now = sp_now_ns();
	ips.retention = nums.retention = sp_store_retention(st);
	if ((rc = sp_store_foreach(st, SP_KIND_IP, count_split, &ips, &corrupt)) ||
	    (rc = sp_store_foreach(st, SP_KIND_NUMBER, count_split, &nums, &corrupt))) {
		fprintf(stderr, "sentrypeer stats: %s\n", sp_strerror(rc));
		goto out;
	}
	json_t *counters = json_object();
	sp_store_counters(st, add_counter, counters);
	json_t *node = node_status(&cfg);

	char t1[SP_TIMESTAMP_LEN], t2[SP_TIMESTAMP_LEN], d[64], b1[32], b2[32], b3[32];
	if (json) {
		json_t *j = json_pack("{s:s, s:i, s:s, s:{s:I, s:s?, s:s?}, s:{s:I, s:I, s:I, s:I},"
				      " s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:I, s:o, s:o}",
			"store", sp_store_path(st), "schema", (int)s.schema, "retention",
			sp_duration_format(s.retention_ns, d, sizeof(d)),
			"events", "count", (json_int_t)s.events,
			"oldest", s.events ? sp_timestamp_format(s.oldest_event_ns, t1) : NULL,
			"newest", s.events ? sp_timestamp_format(s.newest_event_ns, t2) : NULL,
			"ip_addresses", "count", (json_int_t)s.ips, "local", (json_int_t)ips.local,
			"peers", (json_int_t)ips.peers, "expired", (json_int_t)ips.expired,
			"numbers", "count", (json_int_t)s.numbers, "local", (json_int_t)nums.local,
			"peers", (json_int_t)nums.peers, "expired", (json_int_t)nums.expired,
			"bytes", "file", (json_int_t)s.file_bytes, "used", (json_int_t)s.used_bytes,
			"map", (json_int_t)s.map_size, "corrupt_records", (json_int_t)corrupt,
			"counters", counters, "node", node);
		json_dumpf(j, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(j);
	} else {
		printf("store:        %s (schema %u)\n", sp_store_path(st), s.schema);
		printf("size:         %s on disk, %s used of a %s map\n",
		       human_size(s.file_bytes, b1, sizeof(b1)), human_size(s.used_bytes, b2, sizeof(b2)),
		       human_size(s.map_size, b3, sizeof(b3)));
		printf("retention:    %s\n", sp_duration_format(s.retention_ns, d, sizeof(d)));
		printf("events:       %llu", (unsigned long long)s.events);
		if (s.events)
			printf(" (oldest %s, newest %s)", sp_timestamp_format_sec(s.oldest_event_ns, t1),
			       sp_timestamp_format_sec(s.newest_event_ns, t2));
		printf("\nip addresses: %llu (seen here %llu, from peers %llu, expired %llu)\n",
		       (unsigned long long)s.ips, (unsigned long long)ips.local,
		       (unsigned long long)ips.peers, (unsigned long long)ips.expired);
		printf("numbers:      %llu (seen here %llu, from peers %llu, expired %llu)\n",
		       (unsigned long long)s.numbers, (unsigned long long)nums.local,
		       (unsigned long long)nums.peers, (unsigned long long)nums.expired);
		if (corrupt)
			printf("corrupt:      %llu records do not decode\n", (unsigned long long)corrupt);
		const char *name;
		json_t *v;
		if (json_object_size(counters))
			printf("counters:\n");
		json_object_foreach(counters, name, v)
			printf("  %-28s %lld\n", name, (long long)json_integer_value(v));
		json_decref(counters);
		print_node(node);
		json_decref(node);
	}
	status = SP_EXIT_OK;
out:
	sp_store_close(st);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
