/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * DHT values: what a node publishes and what it accepts from others.
 *
 * Keys. A record for an IP or a number is stored under the infohash
 * (OpenDHT's SHA-1) of a namespaced, versioned name:
 *     sentrypeer:v1:ip:203.0.113.5        sentrypeer:v1:number:441234
 * and the replication feed under one name per hour:
 *     sentrypeer:v1:feed:<hours since 1970-01-01T00:00Z>
 *
 * Wire format (msgpack):  [ 1, body (bin), signature (bin, 64 bytes) ]
 * The signature is Ed25519 by the reporter over "sentrypeer:v1:sig\0" ||
 * body, and the body names the reporter's public key, the kind and key (or
 * the feed hour), so a value copied under another key, or altered, or from
 * an unknown signer, does not verify. body is a msgpack map with small
 * integer keys (docs/dht.md lists them); times are seconds since the epoch.
 *
 * Decoding is defensive: size cap first, then the msgpack walker, then the
 * signature, then every field's type and range, then the key and expiry.
 * Each refusal has its own code so the node can count them by reason.
 */
#ifndef SP_DHT_VALUE_H
#define SP_DHT_VALUE_H

#include "identity.h"
#include "sp_record.h"

#include <stddef.h>
#include <stdint.h>

#define SP_DHT_VERSION 1
#define SP_DHT_VALUE_MAX 8192            /* larger values are refused unread */
#define SP_DHT_BATCH_BYTES 4000          /* a feed batch we publish stays under this */
#define SP_DHT_BATCH_MAX 256             /* records per batch accepted */
#define SP_DHT_TTL_MAX (30ull * 86400)   /* longest expiry after last seen accepted */
#define SP_DHT_SKEW 300                  /* seconds of clock difference tolerated */
#define SP_DHT_FEED_PERIOD 3600          /* seconds per feed key */
#define SP_DHT_NAME_MAX 96

enum sp_dht_type { SP_DHT_RECORD = 1, SP_DHT_BATCH = 2 };

/* One IP or number as one reporter saw it. */
struct sp_dht_record {
	uint8_t kind; /* enum sp_kind */
	char key[SP_KEY_MAX];
	uint64_t first_s, last_s, count, expires_s;
	uint32_t methods;
	uint8_t transports;
};

struct sp_dht_value {
	uint8_t type;
	uint8_t reporter[SP_PUBKEY_LEN];
	char reporter_id[SP_KEYID_LEN];
	uint64_t published_s;
	uint64_t hour;          /* batches: the feed hour */
	/* records: one; batches: up to SP_DHT_BATCH_MAX */
	size_t n;
	struct sp_dht_record rec[SP_DHT_BATCH_MAX];
	/* records only: user agents seen */
	uint8_t n_uas;
	char uas[SP_AGG_MAX_UAS][SP_UA_MAX];
};

/* What the reader asked for: decode refuses a value for anything else. */
struct sp_dht_expect {
	uint8_t type;
	uint8_t kind;           /* records */
	const char *key;        /* records: the normalised key */
	uint64_t hour;          /* batches */
};

/* Names that are hashed into infohashes. Return buf. */
const char *sp_dht_record_name(enum sp_kind kind, const char *key, char buf[SP_DHT_NAME_MAX]);
const char *sp_dht_feed_name(uint64_t hour, char buf[SP_DHT_NAME_MAX]);

/* A record from this node's view of an aggregate (its local report only:
 * a node signs what it saw itself, never what peers told it). Returns
 * SP_ENOTFOUND when the aggregate has no local report. */
int sp_dht_record_from_agg(const sp_agg *a, uint64_t ttl_s, struct sp_dht_record *out);

/* Encode and sign. A record value carries uas (may be NULL); a batch the
 * records rec[0..n). The value is appended to sb. */
int sp_dht_encode_record(const sp_identity *id, const struct sp_dht_record *r, const sp_agg *uas,
			 uint64_t now_s, msgpack_sbuffer *sb);
int sp_dht_encode_batch(const sp_identity *id, uint64_t hour, const struct sp_dht_record *rec,
			size_t n, uint64_t now_s, msgpack_sbuffer *sb);
/* How many of rec[0..n) fit one batch of at most SP_DHT_BATCH_BYTES. */
size_t sp_dht_batch_fit(const struct sp_dht_record *rec, size_t n);

/* Decode and check a value against what was asked, at now_s. Returns 0, or
 * SP_ETOOBIG, SP_EPARSE (malformed), SP_ESCHEMA (another version),
 * SP_EBADSIG, SP_EKEYMISMATCH, SP_EEXPIRED. Records of a batch that
 * are expired or malformed are dropped from it (*dropped counts them);
 * a batch with none left is SP_EEXPIRED. */
int sp_dht_decode(const void *buf, size_t len, const struct sp_dht_expect *want, uint64_t now_s,
		  struct sp_dht_value *out, size_t *dropped);

/* The checks after the signature, on a bare body (the fuzz target uses it
 * to reach what a forged signature never would). Never for network input. */
int sp_dht_decode_body(const void *body, size_t len, const struct sp_dht_expect *want,
		       uint64_t now_s, struct sp_dht_value *out, size_t *dropped);

/* The aggregate a peer's record stands for: one report by the reporter. */
void sp_dht_record_to_agg(const struct sp_dht_value *v, size_t i, sp_agg *out);

#endif
