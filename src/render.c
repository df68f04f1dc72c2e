/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "render.h"
#include "json_stream.h"
#include "sp_error.h"
#include "sp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t utf8_valid_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0, n;
	while (i < len && (n = sp_utf8_seq(s + i, len - i)))
		i += n;
	return i;
}

json_t *sp_json_string_lossy(const char *s, size_t len)
{
	size_t ok = utf8_valid_prefix((const unsigned char *)s, len);
	if (ok == len)
		return json_stringn_nocheck(s, len);
	char *buf = malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	size_t o = 0, i = 0;
	while (i < len) {
		ok = utf8_valid_prefix((const unsigned char *)s + i, len - i);
		memcpy(buf + o, s + i, ok);
		o += ok;
		i += ok;
		if (i < len) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn_nocheck(buf, o);
	free(buf);
	return j;
}

static json_t *json_str(const char *s)
{
	return sp_json_string_lossy(s, strlen(s));
}

static json_t *json_time(uint64_t ns)
{
	char buf[SP_TIMESTAMP_LEN];
	return json_string(sp_timestamp_format(ns, buf));
}

static json_t *name_list(const char *csv)
{
	json_t *arr = json_array();
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", csv);
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(arr, json_string(t));
	return arr;
}

json_t *sp_agg_to_json(const sp_agg *a, enum sp_source src, uint64_t now_ns,
		       uint64_t retention_ns)
{
	struct sp_agg_summary sum;
	char buf[512];
	if (!sp_agg_summarize(a, src, now_ns, retention_ns, &sum))
		return NULL;

	json_t *j = json_object();
	json_object_set_new(j, "kind", json_string(sp_kind_name(a->kind)));
	json_object_set_new(j, "key", json_str(a->key));
	json_object_set_new(j, "first_seen", json_time(sum.first_ns));
	json_object_set_new(j, "last_seen", json_time(sum.last_ns));
	json_object_set_new(j, "count", json_integer((json_int_t)sum.count));
	json_object_set_new(j, "expires", json_time(sum.expires_ns));
	json_object_set_new(j, "local", json_boolean(sum.local));
	json_object_set_new(j, "peers", json_integer(sum.peers));
	json_object_set_new(j, "methods", name_list(sp_methods_format(a->methods, buf, sizeof(buf))));
	json_object_set_new(j, "transports",
			    name_list(sp_transports_format(a->transports, buf, sizeof(buf))));
	json_t *uas = json_array();
	for (unsigned i = 0; i < a->n_uas; i++)
		json_array_append_new(uas, json_str(a->uas[i]));
	json_object_set_new(j, "user_agents", uas);
	json_t *raws = json_array();
	for (unsigned i = 0; i < a->n_raws; i++)
		json_array_append_new(raws, json_str(a->raws[i]));
	json_object_set_new(j, "raw_forms", raws);
	json_t *reps = json_array();
	for (unsigned i = 0; i < a->n_reports; i++) {
		const sp_report *r = &a->reports[i];
		bool local = r->reporter[0] == '\0';
		uint64_t exp = sp_report_expiry(r, retention_ns);
		if ((src == SP_SOURCE_LOCAL && !local) || (src == SP_SOURCE_PEERS && local) ||
		    exp <= now_ns)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "reporter", json_str(local ? SP_REPORTER_LOCAL : r->reporter));
		json_object_set_new(o, "first_seen", json_time(r->first_ns));
		json_object_set_new(o, "last_seen", json_time(r->last_ns));
		json_object_set_new(o, "count", json_integer((json_int_t)r->count));
		json_object_set_new(o, "expires", json_time(exp));
		json_array_append_new(reps, o);
	}
	json_object_set_new(j, "reports", reps);
	return j;
}

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return SP_EPARSE;                        \
	} while (0)

static int get_time(const json_t *o, const char *name, uint64_t *out, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(o, name));
	if (!s || sp_timestamp_parse(s, out))
		FAIL("'%s' must be an RFC 3339 UTC timestamp", name);
	return 0;
}

static int get_strings(const json_t *j, const char *name, void (*add)(sp_agg *, const char *),
		       sp_agg *a, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(j, name);
	size_t i;
	const json_t *v;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		FAIL("'%s' must be an array of strings", name);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			FAIL("'%s' must be an array of strings", name);
		add(a, json_string_value(v));
	}
	return 0;
}

int sp_agg_from_json(const json_t *j, sp_agg *a, char *err, size_t errlen)
{
	char key[SP_KEY_MAX];
	const char *kind, *k;
	const json_t *arr, *v;
	size_t i;

	if (!json_is_object(j))
		FAIL("not a JSON object");
	kind = json_string_value(json_object_get(j, "kind"));
	k = json_string_value(json_object_get(j, "key"));
	if (!kind || !k)
		FAIL("'kind' and 'key' are required strings");
	if (strcmp(kind, "ip") == 0) {
		if (sp_ip_normalize(k, key, NULL))
			FAIL("'%s' is not an IP address", k);
		sp_agg_init(a, SP_KIND_IP, key);
	} else if (strcmp(kind, "number") == 0) {
		if (sp_number_normalize(k, key))
			FAIL("'%s' is not a number", k);
		sp_agg_init(a, SP_KIND_NUMBER, key);
	} else {
		FAIL("'kind' must be \"ip\" or \"number\"");
	}

	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass ? "transports" : "methods";
		arr = json_object_get(j, name);
		if (!arr)
			continue;
		if (!json_is_array(arr))
			FAIL("'%s' must be an array", name);
		json_array_foreach(arr, i, v) {
			const char *s = json_string_value(v);
			uint32_t m;
			uint8_t t;
			if (!s || (pass ? sp_transports_parse(s, &t) : sp_methods_parse(s, &m)))
				FAIL("unknown %s '%s'", pass ? "transport" : "method", s ? s : "?");
			if (pass)
				a->transports |= t;
			else
				a->methods |= m;
		}
	}
	if (get_strings(j, "user_agents", sp_agg_add_ua, a, err, errlen) ||
	    get_strings(j, "raw_forms", sp_agg_add_raw, a, err, errlen))
		return SP_EPARSE;

	arr = json_object_get(j, "reports");
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		FAIL("'reports' must be a non-empty array");
	json_array_foreach(arr, i, v) {
		const char *who = json_string_value(json_object_get(v, "reporter"));
		const json_t *count = json_object_get(v, "count");
		sp_report r = { 0 };
		if (!who || strlen(who) >= SP_REPORTER_MAX)
			FAIL("report %zu: 'reporter' must be \"local\" or a peer key id", i);
		if (strcmp(who, SP_REPORTER_LOCAL) != 0)
			snprintf(r.reporter, sizeof(r.reporter), "%s", who);
		if (!json_is_integer(count) || json_integer_value(count) < 0)
			FAIL("report %zu: 'count' must be a non-negative integer", i);
		r.count = (uint64_t)json_integer_value(count);
		if (get_time(v, "first_seen", &r.first_ns, err, errlen) ||
		    get_time(v, "last_seen", &r.last_ns, err, errlen))
			return SP_EPARSE;
		if (r.reporter[0] && get_time(v, "expires", &r.expires_ns, err, errlen))
			return SP_EPARSE;
		if (r.first_ns > r.last_ns)
			FAIL("report %zu: first_seen is after last_seen", i);
		sp_report *d = sp_agg_report(a, r.reporter, true);
		if (!d)
			FAIL("more than %d reports", SP_AGG_MAX_REPORTS);
		if (d->count) {
			sp_agg tmp;
			sp_agg_init(&tmp, a->kind, a->key);
			*sp_agg_report(&tmp, r.reporter, true) = r;
			sp_agg_merge(a, &tmp);
		} else {
			*d = r;
		}
	}
	return 0;
}
