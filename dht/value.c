/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "value.h"

#include "sp_error.h"
#include "sp_msgpack.h"
#include "sp_time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_DOMAIN "sentrypeer:v1:sig"
#define COUNT_MAX (UINT64_C(1) << 40)

/* body map keys */
enum { B_VERSION = 0, B_TYPE, B_REPORTER, B_PUBLISHED, B_KIND, B_KEY, B_FIRST, B_LAST, B_COUNT,
       B_METHODS, B_TRANSPORTS, B_UAS, B_EXPIRES, B_HOUR, B_RECORDS };

const char *sp_dht_record_name(enum sp_kind kind, const char *key, char buf[SP_DHT_NAME_MAX])
{
	snprintf(buf, SP_DHT_NAME_MAX, "sentrypeer:v%d:%s:%s", SP_DHT_VERSION,
		 kind == SP_KIND_IP ? "ip" : "number", key);
	return buf;
}

const char *sp_dht_feed_name(uint64_t hour, char buf[SP_DHT_NAME_MAX])
{
	snprintf(buf, SP_DHT_NAME_MAX, "sentrypeer:v%d:feed:%" PRIu64, SP_DHT_VERSION, hour);
	return buf;
}

int sp_dht_record_from_agg(const sp_agg *a, uint64_t ttl_s, struct sp_dht_record *out)
{
	const sp_report *r = NULL;
	for (unsigned i = 0; i < a->n_reports; i++)
		if (a->reports[i].reporter[0] == '\0')
			r = &a->reports[i];
	if (!r || !r->count)
		return SP_ENOTFOUND;
	memset(out, 0, sizeof(*out));
	out->kind = a->kind;
	memcpy(out->key, a->key, sizeof(out->key));
	out->first_s = r->first_ns / SP_NS_PER_SEC;
	out->last_s = r->last_ns / SP_NS_PER_SEC;
	out->count = r->count;
	out->expires_s = out->last_s + ttl_s;
	out->methods = a->methods;
	out->transports = a->transports;
	return 0;
}

/* ---- encoding ------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_header(msgpack_packer *pk, const sp_identity *id, uint8_t type, uint64_t now_s,
			size_t fields)
{
	msgpack_pack_map(pk, fields + 4);
	msgpack_pack_uint8(pk, B_VERSION); msgpack_pack_uint8(pk, SP_DHT_VERSION);
	msgpack_pack_uint8(pk, B_TYPE); msgpack_pack_uint8(pk, type);
	msgpack_pack_uint8(pk, B_REPORTER);
	msgpack_pack_bin_with_body(pk, sp_identity_pubkey(id), SP_PUBKEY_LEN);
	msgpack_pack_uint8(pk, B_PUBLISHED); msgpack_pack_uint64(pk, now_s);
}

static void pack_record_array(msgpack_packer *pk, const struct sp_dht_record *r)
{
	msgpack_pack_array(pk, 8);
	msgpack_pack_uint8(pk, r->kind);
	pack_str(pk, r->key);
	msgpack_pack_uint64(pk, r->first_s);
	msgpack_pack_uint64(pk, r->last_s);
	msgpack_pack_uint64(pk, r->count);
	msgpack_pack_uint32(pk, r->methods);
	msgpack_pack_uint8(pk, r->transports);
	msgpack_pack_uint64(pk, r->expires_s);
}

/* Wrap body as [version, body, signature] onto sb. */
static int seal(const sp_identity *id, const msgpack_sbuffer *body, msgpack_sbuffer *sb)
{
	size_t dlen = sizeof(SIG_DOMAIN) + body->size;
	uint8_t *msg = malloc(dlen), sig[SP_SIG_LEN];
	if (!msg)
		return -ENOMEM;
	memcpy(msg, SIG_DOMAIN, sizeof(SIG_DOMAIN));
	memcpy(msg + sizeof(SIG_DOMAIN), body->data, body->size);
	int rc = sp_identity_sign(id, msg, dlen, sig);
	free(msg);
	if (rc)
		return rc;
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, SP_DHT_VERSION);
	msgpack_pack_bin_with_body(&pk, body->data, body->size);
	msgpack_pack_bin_with_body(&pk, sig, SP_SIG_LEN);
	return 0;
}

int sp_dht_encode_record(const sp_identity *id, const struct sp_dht_record *r, const sp_agg *uas,
			 uint64_t now_s, msgpack_sbuffer *sb)
{
	msgpack_sbuffer body;
	msgpack_packer pk;
	msgpack_sbuffer_init(&body);
	msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
	pack_header(&pk, id, SP_DHT_RECORD, now_s, 9);
	msgpack_pack_uint8(&pk, B_KIND); msgpack_pack_uint8(&pk, r->kind);
	msgpack_pack_uint8(&pk, B_KEY); pack_str(&pk, r->key);
	msgpack_pack_uint8(&pk, B_FIRST); msgpack_pack_uint64(&pk, r->first_s);
	msgpack_pack_uint8(&pk, B_LAST); msgpack_pack_uint64(&pk, r->last_s);
	msgpack_pack_uint8(&pk, B_COUNT); msgpack_pack_uint64(&pk, r->count);
	msgpack_pack_uint8(&pk, B_METHODS); msgpack_pack_uint32(&pk, r->methods);
	msgpack_pack_uint8(&pk, B_TRANSPORTS); msgpack_pack_uint8(&pk, r->transports);
	msgpack_pack_uint8(&pk, B_EXPIRES); msgpack_pack_uint64(&pk, r->expires_s);
	msgpack_pack_uint8(&pk, B_UAS);
	unsigned n = uas ? uas->n_uas : 0;
	msgpack_pack_array(&pk, n);
	for (unsigned i = 0; i < n; i++)
		pack_str(&pk, uas->uas[i]);
	int rc = seal(id, &body, sb);
	msgpack_sbuffer_destroy(&body);
	return rc;
}

static size_t record_bytes(const struct sp_dht_record *r)
{
	/* array hdr 1, kind 1, key 2+len, 3 times 5 each, count <= 9,
	 * methods <= 5, transports 1, expires 5 */
	return 1 + 1 + 2 + strlen(r->key) + 15 + 9 + 5 + 1 + 5;
}

size_t sp_dht_batch_fit(const struct sp_dht_record *rec, size_t n)
{
	size_t used = 200, i; /* header, signature, framing */
	for (i = 0; i < n && i < SP_DHT_BATCH_MAX; i++) {
		used += record_bytes(&rec[i]);
		if (used > SP_DHT_BATCH_BYTES)
			break;
	}
	return i;
}

int sp_dht_encode_batch(const sp_identity *id, uint64_t hour, const struct sp_dht_record *rec,
			size_t n, uint64_t now_s, msgpack_sbuffer *sb)
{
	if (n > SP_DHT_BATCH_MAX)
		return SP_ETOOBIG;
	msgpack_sbuffer body;
	msgpack_packer pk;
	msgpack_sbuffer_init(&body);
	msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
	pack_header(&pk, id, SP_DHT_BATCH, now_s, 2);
	msgpack_pack_uint8(&pk, B_HOUR); msgpack_pack_uint64(&pk, hour);
	msgpack_pack_uint8(&pk, B_RECORDS);
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++)
		pack_record_array(&pk, &rec[i]);
	int rc = seal(id, &body, sb);
	msgpack_sbuffer_destroy(&body);
	return rc;
}

/* ---- decoding ------------------------------------------------------ */

static int u64_of(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return SP_EPARSE;
	*out = o->via.u64;
	return 0;
}

static int str_of(const msgpack_object *o, char *field, size_t size)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size))
		return SP_EPARSE;
	memcpy(field, o->via.str.ptr, o->via.str.size);
	field[o->via.str.size] = '\0';
	return 0;
}

/* Shape and range of one record; the key must already be normalised. */
static int record_check(const struct sp_dht_record *r, uint64_t now_s)
{
	char norm[SP_KEY_MAX];
	int rc = r->kind == SP_KIND_IP ? sp_ip_normalize(r->key, norm, NULL)
		 : r->kind == SP_KIND_NUMBER ? sp_number_normalize(r->key, norm)
					      : SP_EPARSE;
	if (rc || strcmp(norm, r->key) != 0)
		return SP_EPARSE;
	/* a peer may not list loopback, private or reserved addresses: a
	 * firewall fed from this list would block the LAN */
	if (r->kind == SP_KIND_IP && !sp_ip_scope_is_shareable(sp_ip_scope(r->key)))
		return SP_EPARSE;
	if (r->first_s > r->last_s || r->last_s > now_s + SP_DHT_SKEW || r->count == 0 ||
	    r->transports > 31 || r->expires_s <= r->last_s || r->expires_s > r->last_s + SP_DHT_TTL_MAX)
		return SP_EPARSE;
	if (r->expires_s <= now_s)
		return SP_EEXPIRED;
	return 0;
}

static int record_of_array(const msgpack_object *o, struct sp_dht_record *r)
{
	uint64_t kind, methods, tp;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 8)
		return SP_EPARSE;
	const msgpack_object *f = o->via.array.ptr;
	if (u64_of(&f[0], SP_KIND_NUMBER, &kind) || str_of(&f[1], r->key, sizeof(r->key)) ||
	    u64_of(&f[2], UINT32_MAX * 64ull, &r->first_s) ||
	    u64_of(&f[3], UINT32_MAX * 64ull, &r->last_s) || u64_of(&f[4], COUNT_MAX, &r->count) ||
	    u64_of(&f[5], UINT32_MAX, &methods) || u64_of(&f[6], 255, &tp) ||
	    u64_of(&f[7], UINT32_MAX * 64ull, &r->expires_s))
		return SP_EPARSE;
	r->kind = (uint8_t)kind;
	r->methods = (uint32_t)methods;
	r->transports = (uint8_t)tp;
	return 0;
}

struct body_fields {
	const msgpack_object *f[B_RECORDS + 1];
};

static int body_decode(const msgpack_object *obj, const struct sp_dht_expect *want,
		       uint64_t now_s, struct sp_dht_value *v, size_t *dropped)
{
	struct body_fields b = { 0 };
	uint64_t x;

	if (obj->type != MSGPACK_OBJECT_MAP)
		return SP_EPARSE;
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		const msgpack_object_kv *kv = &obj->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER && kv->key.via.u64 <= B_RECORDS)
			b.f[kv->key.via.u64] = &kv->val;
	}
	if (!b.f[B_VERSION] || u64_of(b.f[B_VERSION], UINT64_MAX, &x))
		return SP_EPARSE;
	if (x != SP_DHT_VERSION)
		return SP_ESCHEMA;
	if (!b.f[B_TYPE] || u64_of(b.f[B_TYPE], 255, &x) || !b.f[B_PUBLISHED] ||
	    u64_of(b.f[B_PUBLISHED], UINT32_MAX * 64ull, &v->published_s))
		return SP_EPARSE;
	v->type = (uint8_t)x;
	if (v->type != want->type)
		return SP_EKEYMISMATCH;
	if (v->published_s > now_s + SP_DHT_SKEW)
		return SP_EPARSE;

	if (v->type == SP_DHT_RECORD) {
		struct sp_dht_record *r = &v->rec[0];
		uint64_t kind = 0, methods = 0, tp = 0;
		for (int k = B_KIND; k <= B_EXPIRES; k++)
			if (!b.f[k])
				return SP_EPARSE;
		if (u64_of(b.f[B_KIND], SP_KIND_NUMBER, &kind) ||
		    str_of(b.f[B_KEY], r->key, sizeof(r->key)) ||
		    u64_of(b.f[B_FIRST], UINT32_MAX * 64ull, &r->first_s) ||
		    u64_of(b.f[B_LAST], UINT32_MAX * 64ull, &r->last_s) ||
		    u64_of(b.f[B_COUNT], COUNT_MAX, &r->count) ||
		    u64_of(b.f[B_METHODS], UINT32_MAX, &methods) ||
		    u64_of(b.f[B_TRANSPORTS], 255, &tp) ||
		    u64_of(b.f[B_EXPIRES], UINT32_MAX * 64ull, &r->expires_s))
			return SP_EPARSE;
		r->kind = (uint8_t)kind;
		r->methods = (uint32_t)methods;
		r->transports = (uint8_t)tp;
		const msgpack_object *u = b.f[B_UAS];
		if (u->type != MSGPACK_OBJECT_ARRAY || u->via.array.size > SP_AGG_MAX_UAS)
			return SP_EPARSE;
		for (uint32_t i = 0; i < u->via.array.size; i++)
			if (str_of(&u->via.array.ptr[i], v->uas[i], SP_UA_MAX))
				return SP_EPARSE;
		v->n_uas = (uint8_t)u->via.array.size;
		/* the key inside must be the key asked: a value copied under
		 * another key verifies but does not match */
		if (r->kind != want->kind || strcmp(r->key, want->key) != 0)
			return SP_EKEYMISMATCH;
		int rc = record_check(r, now_s);
		if (rc)
			return rc;
		v->n = 1;
		return 0;
	}
	if (v->type == SP_DHT_BATCH) {
		const msgpack_object *recs = b.f[B_RECORDS];
		if (!b.f[B_HOUR] || u64_of(b.f[B_HOUR], UINT32_MAX, &v->hour) || !recs ||
		    recs->type != MSGPACK_OBJECT_ARRAY || recs->via.array.size > SP_DHT_BATCH_MAX)
			return SP_EPARSE;
		if (v->hour != want->hour)
			return SP_EKEYMISMATCH;
		if (v->published_s + SP_DHT_SKEW < v->hour * SP_DHT_FEED_PERIOD)
			return SP_EPARSE; /* published before its hour began */
		size_t n = 0;
		for (uint32_t i = 0; i < recs->via.array.size; i++) {
			struct sp_dht_record *r = &v->rec[n];
			if (record_of_array(&recs->via.array.ptr[i], r) || record_check(r, now_s)) {
				(*dropped)++;
				continue;
			}
			n++;
		}
		v->n = n;
		return n ? 0 : SP_EEXPIRED;
	}
	return SP_EPARSE;
}

/* Unpack a body (checked first) and take its reporter key. */
static int body_open(const char *bp, size_t blen, msgpack_zone *zone, msgpack_object *body,
		     struct sp_dht_value *out)
{
	size_t boff = 0;
	if (sp_msgpack_check(bp, blen, 4) ||
	    msgpack_unpack(bp, blen, &boff, zone, body) != MSGPACK_UNPACK_SUCCESS ||
	    body->type != MSGPACK_OBJECT_MAP)
		return SP_EPARSE;
	const msgpack_object *rep = NULL;
	for (uint32_t i = 0; i < body->via.map.size; i++) {
		const msgpack_object_kv *kv = &body->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER && kv->key.via.u64 == B_REPORTER)
			rep = &kv->val;
	}
	if (!rep || rep->type != MSGPACK_OBJECT_BIN || rep->via.bin.size != SP_PUBKEY_LEN)
		return SP_EBADSIG;
	memcpy(out->reporter, rep->via.bin.ptr, SP_PUBKEY_LEN);
	sp_keyid_format(out->reporter, out->reporter_id);
	return 0;
}

int sp_dht_decode_body(const void *body, size_t len, const struct sp_dht_expect *want,
		       uint64_t now_s, struct sp_dht_value *out, size_t *dropped)
{
	msgpack_zone zone;
	msgpack_object obj;
	size_t dummy = 0;
	if (!dropped)
		dropped = &dummy;
	*dropped = 0;
	out->n = 0;
	out->n_uas = 0;
	if (len > SP_DHT_VALUE_MAX)
		return SP_ETOOBIG;
	if (!msgpack_zone_init(&zone, 2048))
		return -ENOMEM;
	int rc = body_open(body, len, &zone, &obj, out);
	if (rc == 0)
		rc = body_decode(&obj, want, now_s, out, dropped);
	msgpack_zone_destroy(&zone);
	if (rc)
		out->n = 0;
	return rc;
}

int sp_dht_decode(const void *buf, size_t len, const struct sp_dht_expect *want, uint64_t now_s,
		  struct sp_dht_value *out, size_t *dropped)
{
	msgpack_zone zone;
	msgpack_object obj, body;
	size_t off = 0, dummy = 0;
	int rc;

	if (!dropped)
		dropped = &dummy;
	*dropped = 0;
	out->n = 0;
	out->n_uas = 0;
	if (len > SP_DHT_VALUE_MAX)
		return SP_ETOOBIG;
	if (sp_msgpack_check(buf, len, 2))
		return SP_EPARSE;
	if (!msgpack_zone_init(&zone, 2048))
		return -ENOMEM;
	rc = SP_EPARSE;
	if (msgpack_unpack(buf, len, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
	    obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size < 2 || obj.via.array.size > 3)
		goto out;
	const msgpack_object *f = obj.via.array.ptr;
	if (obj.via.array.size == 2) { /* [version, body]: our shape, unsigned */
		if (f[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[1].type == MSGPACK_OBJECT_BIN)
			rc = SP_EBADSIG;
		goto out;
	}
	if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		goto out;
	if (f[0].via.u64 != SP_DHT_VERSION) {
		rc = SP_ESCHEMA;
		goto out;
	}
	if (f[1].type != MSGPACK_OBJECT_BIN)
		goto out;
	if (f[2].type != MSGPACK_OBJECT_BIN || f[2].via.bin.size != SP_SIG_LEN) {
		rc = SP_EBADSIG;
		goto out;
	}
	const char *bp = f[1].via.bin.ptr;
	size_t blen = f[1].via.bin.size;
	/* the body, then the signature before any field is believed */
	if ((rc = body_open(bp, blen, &zone, &body, out)))
		goto out;
	uint8_t *msg = malloc(sizeof(SIG_DOMAIN) + blen);
	if (!msg) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(msg, SIG_DOMAIN, sizeof(SIG_DOMAIN));
	memcpy(msg + sizeof(SIG_DOMAIN), bp, blen);
	rc = sp_signature_verify(out->reporter, msg, sizeof(SIG_DOMAIN) + blen,
				 (const uint8_t *)f[2].via.bin.ptr);
	free(msg);
	if (rc)
		goto out;
	rc = body_decode(&body, want, now_s, out, dropped);
out:
	msgpack_zone_destroy(&zone);
	if (rc)
		out->n = 0;
	return rc;
}

void sp_dht_record_to_agg(const struct sp_dht_value *v, size_t i, sp_agg *out)
{
	const struct sp_dht_record *r = &v->rec[i];
	sp_agg_init(out, (enum sp_kind)r->kind, r->key);
	out->methods = r->methods;
	out->transports = r->transports;
	if (v->type == SP_DHT_RECORD)
		for (unsigned u = 0; u < v->n_uas; u++)
			sp_agg_add_ua(out, v->uas[u]);
	sp_report *rep = sp_agg_report(out, v->reporter_id, true);
	if (rep) {
		rep->first_ns = r->first_s * SP_NS_PER_SEC;
		rep->last_ns = r->last_s * SP_NS_PER_SEC;
		rep->count = r->count;
		rep->expires_ns = r->expires_s * SP_NS_PER_SEC;
	}
}
