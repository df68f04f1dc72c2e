/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_record.h"
#include "sp_error.h"
#include "sp_msgpack.h"
#include "sp_raw.h"
#include "sp_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* ---- methods and transports ---------------------------------------- */

static const char *const method_names[] = {
	"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE",
	"NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
};
#define N_METHODS (sizeof(method_names) / sizeof(method_names[0]))

uint32_t sp_method_bit(const char *method)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (strcmp(method, method_names[i]) == 0)
			return UINT32_C(1) << i;
	return SP_METHOD_OTHER;
}

/* Plain copies: this runs for every record an export or a lookup writes. */
static char *list_format(char *buf, size_t len, uint32_t mask, const char *const *names,
			 size_t n, const char *other)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i <= n; i++) {
		const char *name = i < n ? names[i] : other;
		uint32_t bit = i < n ? UINT32_C(1) << i : SP_METHOD_OTHER;
		if (!name || !(mask & bit))
			continue;
		size_t nl = strlen(name);
		if ((off ? 1 : 0) + nl >= len - off)
			break;
		if (off)
			buf[off++] = ',';
		memcpy(buf + off, name, nl + 1);
		off += nl;
	}
	return buf;
}

char *sp_methods_format(uint32_t mask, char *buf, size_t len)
{
	return list_format(buf, len, mask, method_names, N_METHODS, "OTHER");
}

static int list_parse(const char *list, uint32_t *mask, uint32_t (*bit)(const char *))
{
	char tmp[256];
	uint32_t m = 0;
	if (strlen(list) >= sizeof(tmp))
		return SP_EPARSE;
	strcpy(tmp, list);
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint32_t b = bit(t);
		if (!b)
			return SP_EPARSE;
		m |= b;
	}
	*mask = m;
	return 0;
}

static uint32_t method_bit_strict(const char *name)
{
	if (strcmp(name, "OTHER") == 0)
		return SP_METHOD_OTHER;
	uint32_t b = sp_method_bit(name);
	return b == SP_METHOD_OTHER ? 0 : b;
}

int sp_methods_parse(const char *list, uint32_t *mask)
{
	return list_parse(list, mask, method_bit_strict);
}

static const char *const transport_names[] = { "UDP", "TCP", "TLS", "WS", "WSS" };
#define N_TRANSPORTS (sizeof(transport_names) / sizeof(transport_names[0]))

uint8_t sp_transport_bit(const char *name)
{
	for (size_t i = 0; i < N_TRANSPORTS; i++)
		if (strcasecmp(name, transport_names[i]) == 0)
			return (uint8_t)(1u << i);
	return 0;
}

static uint32_t transport_bit32(const char *name) { return sp_transport_bit(name); }

const char *sp_transport_name(uint8_t bit)
{
	for (size_t i = 0; i < N_TRANSPORTS; i++)
		if (bit == (1u << i))
			return transport_names[i];
	return "UNKNOWN";
}

char *sp_transports_format(uint8_t mask, char *buf, size_t len)
{
	return list_format(buf, len, mask, transport_names, N_TRANSPORTS, NULL);
}

int sp_transports_parse(const char *list, uint8_t *mask)
{
	uint32_t m;
	int rc = list_parse(list, &m, transport_bit32);
	if (rc == 0)
		*mask = (uint8_t)m;
	return rc;
}

const char *sp_mode_name(uint8_t mode)
{
	switch (mode) {
	case SP_MODE_PASSIVE: return "passive";
	case SP_MODE_RESPONSIVE: return "responsive";
	case SP_MODE_PEER: return "peer";
	default: return "unknown";
	}
}

/* ---- events -------------------------------------------------------- */

void sp_field_set(char *field, size_t size, const char *s)
{
	size_t n = strnlen(s, size - 1);
	memcpy(field, s, n);
	field[n] = '\0';
}

void sp_uuid_new(uint8_t id[16])
{
	/* one getrandom(2) per 256 ids */
	static _Thread_local uint8_t pool[4096];
	static _Thread_local size_t left;
	if (left < 16) {
		size_t got = 0;
		while (got < sizeof(pool)) {
			ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
			if (n > 0)
				got += (size_t)n;
		}
		left = sizeof(pool);
	}
	memcpy(id, pool + sizeof(pool) - left, 16);
	left -= 16;
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

char *sp_uuid_format(const uint8_t id[16], char *buf)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[id[i] >> 4];
		buf[o++] = hex[id[i] & 15];
	}
	buf[o] = '\0';
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int sp_uuid_parse(const char *s, uint8_t id[16])
{
	int n = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23))
			continue;
		int hi = hexval(s[i]), lo = s[i + 1] ? hexval(s[i + 1]) : -1;
		if (hi < 0 || lo < 0 || n >= 16)
			return SP_EPARSE;
		id[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return n == 16 ? 0 : SP_EPARSE;
}

sp_event *sp_event_new(const char *raw, size_t raw_len, size_t raw_cap)
{
	if (raw_len > raw_cap)
		raw_len = raw_cap;
	sp_event *e = calloc(1, sizeof(*e) + raw_len + 1);
	if (!e)
		return NULL;
	char *body = (char *)(e + 1);
	if (raw_len)
		memcpy(body, raw, raw_len);
	body[raw_len] = '\0';
	e->raw = body;
	e->raw_len = (uint32_t)raw_len;
	e->ts_ns = sp_now_ns();
	sp_uuid_new(e->id);
	return e;
}

void sp_event_init(sp_event *e, const char *raw, size_t raw_len, size_t raw_cap)
{
	memset(e, 0, sizeof(*e));
	e->raw = raw;
	e->raw_len = (uint32_t)(raw_len < raw_cap ? raw_len : raw_cap);
	e->ts_ns = sp_now_ns();
	sp_uuid_new(e->id);
}

/* ---- aggregates ---------------------------------------------------- */

void sp_agg_init(sp_agg *a, enum sp_kind kind, const char *key)
{
	a->kind = (uint8_t)kind;
	sp_field_set(a->key, sizeof(a->key), key);
	a->methods = 0;
	a->transports = 0;
	a->n_uas = a->n_raws = a->n_reports = 0;
}

static void set_add(char *set, size_t width, uint8_t *n, size_t max, const char *s)
{
	if (!*s)
		return;
	for (uint8_t i = 0; i < *n; i++)
		if (strncmp(set + i * width, s, width - 1) == 0)
			return;
	if (*n < max) {
		sp_field_set(set + *n * width, width, s);
		(*n)++;
	}
}

void sp_agg_add_ua(sp_agg *a, const char *ua)
{
	set_add(&a->uas[0][0], SP_UA_MAX, &a->n_uas, SP_AGG_MAX_UAS, ua);
}

void sp_agg_add_raw(sp_agg *a, const char *raw)
{
	set_add(&a->raws[0][0], SP_USER_MAX, &a->n_raws, SP_AGG_MAX_RAWS, raw);
}

sp_report *sp_agg_report(sp_agg *a, const char *reporter, bool create)
{
	for (unsigned i = 0; i < a->n_reports; i++)
		if (strcmp(a->reports[i].reporter, reporter) == 0)
			return &a->reports[i];
	if (!create || a->n_reports >= SP_AGG_MAX_REPORTS)
		return NULL;
	unsigned at = a->n_reports;
	if (reporter[0] == '\0' && at > 0) { /* this node first */
		memmove(&a->reports[1], &a->reports[0], at * sizeof(a->reports[0]));
		at = 0;
	}
	sp_report *r = &a->reports[at];
	memset(r, 0, sizeof(*r));
	sp_field_set(r->reporter, sizeof(r->reporter), reporter);
	a->n_reports++;
	return r;
}

void sp_agg_merge(sp_agg *dst, const sp_agg *src)
{
	dst->methods |= src->methods;
	dst->transports |= src->transports;
	for (unsigned i = 0; i < src->n_uas; i++)
		sp_agg_add_ua(dst, src->uas[i]);
	for (unsigned i = 0; i < src->n_raws; i++)
		sp_agg_add_raw(dst, src->raws[i]);
	for (unsigned i = 0; i < src->n_reports; i++) {
		const sp_report *s = &src->reports[i];
		sp_report *d = sp_agg_report(dst, s->reporter, false);
		if (!d) {
			d = sp_agg_report(dst, s->reporter, true);
			if (!d)
				continue; /* full: keep the reports we have */
			*d = *s;
			continue;
		}
		if (s->first_ns && (!d->first_ns || s->first_ns < d->first_ns))
			d->first_ns = s->first_ns;
		if (s->last_ns > d->last_ns)
			d->last_ns = s->last_ns;
		if (s->count > d->count)
			d->count = s->count;
		if (s->expires_ns > d->expires_ns)
			d->expires_ns = s->expires_ns;
	}
}

uint64_t sp_report_expiry(const sp_report *r, uint64_t retention_ns)
{
	if (r->reporter[0] != '\0' && r->expires_ns)
		return r->expires_ns;
	return r->last_ns > UINT64_MAX - retention_ns ? UINT64_MAX : r->last_ns + retention_ns;
}

unsigned sp_agg_expire(sp_agg *a, uint64_t now_ns, uint64_t retention_ns)
{
	unsigned w = 0;
	for (unsigned i = 0; i < a->n_reports; i++) {
		if (sp_report_expiry(&a->reports[i], retention_ns) > now_ns) {
			if (w != i)
				a->reports[w] = a->reports[i];
			w++;
		}
	}
	a->n_reports = (uint8_t)w;
	return w;
}

bool sp_agg_summarize(const sp_agg *a, enum sp_source src, uint64_t now_ns,
		      uint64_t retention_ns, struct sp_agg_summary *out)
{
	memset(out, 0, sizeof(*out));
	bool any = false;
	for (unsigned i = 0; i < a->n_reports; i++) {
		const sp_report *r = &a->reports[i];
		bool local = r->reporter[0] == '\0';
		if ((src == SP_SOURCE_LOCAL && !local) || (src == SP_SOURCE_PEERS && local))
			continue;
		uint64_t exp = sp_report_expiry(r, retention_ns);
		if (exp <= now_ns)
			continue;
		any = true;
		if (!out->first_ns || (r->first_ns && r->first_ns < out->first_ns))
			out->first_ns = r->first_ns;
		if (r->last_ns > out->last_ns)
			out->last_ns = r->last_ns;
		if (exp > out->expires_ns)
			out->expires_ns = exp;
		out->count += r->count;
		if (local) {
			out->local = true;
			out->local_count += r->count;
		} else {
			out->peers++;
		}
	}
	return any;
}

/* ---- codec --------------------------------------------------------- */

enum { EV_VERSION, EV_TS, EV_ID, EV_SRC_IP, EV_SRC_PORT, EV_DST_IP, EV_DST_PORT,
       EV_TRANSPORT, EV_METHOD, EV_RURI_USER, EV_TO_USER, EV_UA, EV_RAW, EV_MODE,
       EV_ORIGIN, EV_NFIELDS };
#define EV_RAW_Z 15 /* the message compressed (sp_raw.h), in EV_RAW's place */
enum { AG_VERSION, AG_KIND, AG_KEY, AG_METHODS, AG_TRANSPORTS, AG_UAS, AG_RAWS,
       AG_REPORTS, AG_NFIELDS };

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int sp_event_encode(const sp_event *e, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, EV_NFIELDS);
	msgpack_pack_uint8(&pk, EV_VERSION); msgpack_pack_uint8(&pk, SP_RECORD_VERSION);
	/* fixed width, at SP_EVENT_TS_OFFSET: a queued record's time can be
	 * set in place (writer.h) */
	msgpack_pack_uint8(&pk, EV_TS); msgpack_pack_fix_uint64(&pk, e->ts_ns);
	msgpack_pack_uint8(&pk, EV_ID); msgpack_pack_bin_with_body(&pk, e->id, 16);
	msgpack_pack_uint8(&pk, EV_SRC_IP); pack_str(&pk, e->src_ip);
	msgpack_pack_uint8(&pk, EV_SRC_PORT); msgpack_pack_uint16(&pk, e->src_port);
	msgpack_pack_uint8(&pk, EV_DST_IP); pack_str(&pk, e->dst_ip);
	msgpack_pack_uint8(&pk, EV_DST_PORT); msgpack_pack_uint16(&pk, e->dst_port);
	msgpack_pack_uint8(&pk, EV_TRANSPORT); msgpack_pack_uint8(&pk, e->transport);
	msgpack_pack_uint8(&pk, EV_METHOD); pack_str(&pk, e->method);
	msgpack_pack_uint8(&pk, EV_RURI_USER); pack_str(&pk, e->ruri_user);
	msgpack_pack_uint8(&pk, EV_TO_USER); pack_str(&pk, e->to_user);
	msgpack_pack_uint8(&pk, EV_UA); pack_str(&pk, e->user_agent);
	size_t zlen = 0;
	const void *z = e->raw ? sp_raw_pack(e->raw, e->raw_len, &zlen) : NULL;
	if (z) {
		msgpack_pack_uint8(&pk, EV_RAW_Z); msgpack_pack_bin_with_body(&pk, z, zlen);
	} else {
		msgpack_pack_uint8(&pk, EV_RAW); msgpack_pack_bin_with_body(&pk, e->raw ? e->raw : "", e->raw_len);
	}
	msgpack_pack_uint8(&pk, EV_MODE); msgpack_pack_uint8(&pk, e->mode);
	msgpack_pack_uint8(&pk, EV_ORIGIN); pack_str(&pk, e->origin);
	return 0;
}

static int get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return SP_ECORRUPT;
	*out = o->via.u64;
	return 0;
}

static int get_str(const msgpack_object *o, char *field, size_t size)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size))
		return SP_ECORRUPT;
	memcpy(field, o->via.str.ptr, o->via.str.size);
	field[o->via.str.size] = '\0';
	return 0;
}

/* One zone per thread, cleared after each decode: no allocation per record. */
static pthread_key_t zone_key;
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;

static void zone_free(void *z) { msgpack_zone_free(z); }
static void zone_key_init(void) { pthread_key_create(&zone_key, zone_free); }

static msgpack_zone *thread_zone(void)
{
	pthread_once(&zone_once, zone_key_init);
	msgpack_zone *z = pthread_getspecific(zone_key);
	if (!z && (z = msgpack_zone_new(8192)))
		pthread_setspecific(zone_key, z);
	return z;
}

/* Unpack one checked map; returns its kv pairs and the version check.
 * The objects live in *zone until the caller clears it. */
static int open_map(const void *buf, size_t len, msgpack_zone **zone, const msgpack_object_kv **kv,
		    uint32_t *n)
{
	size_t off = 0;
	msgpack_object obj;
	*zone = NULL;
	if (sp_msgpack_check(buf, len, 4))
		return SP_ECORRUPT;
	if (!(*zone = thread_zone()))
		return -ENOMEM;
	if (msgpack_unpack(buf, len, &off, *zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
	    obj.type != MSGPACK_OBJECT_MAP)
		return SP_ECORRUPT;
	*kv = obj.via.map.ptr;
	*n = obj.via.map.size;
	for (uint32_t i = 0; i < *n; i++) {
		if ((*kv)[i].key.type == MSGPACK_OBJECT_POSITIVE_INTEGER && (*kv)[i].key.via.u64 == 0) {
			uint64_t v;
			if (get_u64(&(*kv)[i].val, UINT64_MAX, &v))
				return SP_ECORRUPT;
			return v > SP_RECORD_VERSION ? SP_ESCHEMA : v == 0 ? SP_ECORRUPT : 0;
		}
	}
	return SP_ECORRUPT; /* no version */
}

static void close_map(msgpack_zone *zone)
{
	if (zone)
		msgpack_zone_clear(zone);
}

int sp_event_decode(const void *buf, size_t len, sp_event *e)
{
	msgpack_zone *zone;
	const msgpack_object_kv *kv = NULL;
	uint32_t n = 0;
	uint64_t v = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	e->raw = "";
	rc = open_map(buf, len, &zone, &kv, &n);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		const msgpack_object *o = &kv[i].val;
		if (kv[i].key.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			continue;
		switch (kv[i].key.via.u64) {
		case EV_TS: rc = get_u64(o, UINT64_MAX, &e->ts_ns); break;
		case EV_ID:
			if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 16)
				rc = SP_ECORRUPT;
			else
				memcpy(e->id, o->via.bin.ptr, 16);
			break;
		case EV_SRC_IP: rc = get_str(o, e->src_ip, sizeof(e->src_ip)); break;
		case EV_DST_IP: rc = get_str(o, e->dst_ip, sizeof(e->dst_ip)); break;
		case EV_SRC_PORT: rc = get_u64(o, 65535, &v); e->src_port = (uint16_t)v; break;
		case EV_DST_PORT: rc = get_u64(o, 65535, &v); e->dst_port = (uint16_t)v; break;
		case EV_TRANSPORT: rc = get_u64(o, 255, &v); e->transport = (uint8_t)v; break;
		case EV_MODE: rc = get_u64(o, 255, &v); e->mode = (uint8_t)v; break;
		case EV_METHOD: rc = get_str(o, e->method, sizeof(e->method)); break;
		case EV_RURI_USER: rc = get_str(o, e->ruri_user, sizeof(e->ruri_user)); break;
		case EV_TO_USER: rc = get_str(o, e->to_user, sizeof(e->to_user)); break;
		case EV_UA: rc = get_str(o, e->user_agent, sizeof(e->user_agent)); break;
		case EV_ORIGIN: rc = get_str(o, e->origin, sizeof(e->origin)); break;
		case EV_RAW:
			if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > SP_RAW_MAX_LIMIT) {
				rc = SP_ECORRUPT;
			} else {
				/* msgpack_unpack() points bin bodies into buf: no copy */
				e->raw = o->via.bin.ptr;
				e->raw_len = o->via.bin.size;
			}
			break;
		case EV_RAW_Z: {
			const char *raw;
			size_t raw_len;
			if (o->type != MSGPACK_OBJECT_BIN) {
				rc = SP_ECORRUPT;
			} else if ((rc = sp_raw_unpack(o->via.bin.ptr, o->via.bin.size, &raw,
						       &raw_len)) == 0) {
				e->raw = raw, e->raw_len = (uint32_t)raw_len;
			} else if (rc != -ENOMEM) {
				/* a damaged message (bit rot, an unknown codec)
				 * costs the message, not the event and its counts */
				e->raw = "", e->raw_len = 0;
				rc = 0;
			}
			break;
		}
		default: break;
		}
	}
	close_map(zone);
	return rc;
}

int sp_agg_encode(const sp_agg *a, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, AG_NFIELDS);
	msgpack_pack_uint8(&pk, AG_VERSION); msgpack_pack_uint8(&pk, SP_RECORD_VERSION);
	msgpack_pack_uint8(&pk, AG_KIND); msgpack_pack_uint8(&pk, a->kind);
	msgpack_pack_uint8(&pk, AG_KEY); pack_str(&pk, a->key);
	msgpack_pack_uint8(&pk, AG_METHODS); msgpack_pack_uint32(&pk, a->methods);
	msgpack_pack_uint8(&pk, AG_TRANSPORTS); msgpack_pack_uint8(&pk, a->transports);
	msgpack_pack_uint8(&pk, AG_UAS);
	msgpack_pack_array(&pk, a->n_uas);
	for (unsigned i = 0; i < a->n_uas; i++)
		pack_str(&pk, a->uas[i]);
	msgpack_pack_uint8(&pk, AG_RAWS);
	msgpack_pack_array(&pk, a->n_raws);
	for (unsigned i = 0; i < a->n_raws; i++)
		pack_str(&pk, a->raws[i]);
	msgpack_pack_uint8(&pk, AG_REPORTS);
	msgpack_pack_array(&pk, a->n_reports);
	for (unsigned i = 0; i < a->n_reports; i++) {
		const sp_report *r = &a->reports[i];
		msgpack_pack_array(&pk, 5);
		pack_str(&pk, r->reporter);
		msgpack_pack_uint64(&pk, r->first_ns);
		msgpack_pack_uint64(&pk, r->last_ns);
		msgpack_pack_uint64(&pk, r->count);
		msgpack_pack_uint64(&pk, r->expires_ns);
	}
	return 0;
}

static int get_str_array(const msgpack_object *o, char *set, size_t width, size_t max, uint8_t *n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max)
		return SP_ECORRUPT;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (get_str(&o->via.array.ptr[i], set + i * width, width))
			return SP_ECORRUPT;
	*n = (uint8_t)o->via.array.size;
	return 0;
}

static int get_reports(const msgpack_object *o, sp_agg *a)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > SP_AGG_MAX_REPORTS)
		return SP_ECORRUPT;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *r = &o->via.array.ptr[i];
		sp_report *d = &a->reports[i];
		if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size < 5)
			return SP_ECORRUPT;
		const msgpack_object *f = r->via.array.ptr;
		if (get_str(&f[0], d->reporter, sizeof(d->reporter)) ||
		    get_u64(&f[1], UINT64_MAX, &d->first_ns) || get_u64(&f[2], UINT64_MAX, &d->last_ns) ||
		    get_u64(&f[3], UINT64_MAX, &d->count) || get_u64(&f[4], UINT64_MAX, &d->expires_ns))
			return SP_ECORRUPT;
	}
	a->n_reports = (uint8_t)o->via.array.size;
	return 0;
}

int sp_agg_decode(const void *buf, size_t len, sp_agg *a)
{
	msgpack_zone *zone;
	const msgpack_object_kv *kv = NULL;
	uint32_t n = 0;
	uint64_t v = 0;
	int rc;

	a->kind = 0;
	a->key[0] = '\0';
	a->methods = 0;
	a->transports = 0;
	a->n_uas = a->n_raws = a->n_reports = 0;
	rc = open_map(buf, len, &zone, &kv, &n);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		const msgpack_object *o = &kv[i].val;
		if (kv[i].key.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			continue;
		switch (kv[i].key.via.u64) {
		case AG_KIND:
			rc = get_u64(o, SP_KIND_NUMBER, &v);
			a->kind = (uint8_t)v;
			break;
		case AG_KEY: rc = get_str(o, a->key, sizeof(a->key)); break;
		case AG_METHODS: rc = get_u64(o, UINT32_MAX, &v); a->methods = (uint32_t)v; break;
		case AG_TRANSPORTS: rc = get_u64(o, 255, &v); a->transports = (uint8_t)v; break;
		case AG_UAS: rc = get_str_array(o, &a->uas[0][0], SP_UA_MAX, SP_AGG_MAX_UAS, &a->n_uas); break;
		case AG_RAWS: rc = get_str_array(o, &a->raws[0][0], SP_USER_MAX, SP_AGG_MAX_RAWS, &a->n_raws); break;
		case AG_REPORTS: rc = get_reports(o, a); break;
		default: break;
		}
	}
	if (rc == 0 && (a->kind != SP_KIND_IP && a->kind != SP_KIND_NUMBER))
		rc = SP_ECORRUPT;
	close_map(zone);
	return rc;
}
