/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The two records the node keeps, and their msgpack codec.
 *
 * An event is one SIP message the honeypot saw (or one a peer reported).
 * An aggregate summarises every event for one IP or one called number, per
 * reporter (this node, and each peer by key id), so that a lookup answers
 * from one read. Both encode as msgpack maps with small integer keys and a
 * schema version under key 0; decoders ignore keys they do not know and
 * reject a newer version with SP_ESCHEMA.
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include "sp_key.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_RECORD_VERSION 1

#define SP_REPORTER_MAX 65  /* peer key id as hex, NUL included; "" = this node */
#define SP_METHOD_MAX 32
#define SP_USER_MAX 128
#define SP_UA_MAX 128
#define SP_UUID_LEN 37       /* text form with NUL */
#define SP_AGG_MAX_UAS 8
#define SP_AGG_MAX_RAWS 4
#define SP_AGG_MAX_REPORTS 33 /* this node + 32 peers */
#define SP_RAW_MAX_LIMIT 65536

enum sp_transport_bits {
	SP_TP_UDP = 1 << 0,
	SP_TP_TCP = 1 << 1,
	SP_TP_TLS = 1 << 2,
	SP_TP_WS = 1 << 3,
	SP_TP_WSS = 1 << 4,
};

enum sp_mode { SP_MODE_PASSIVE = 0, SP_MODE_RESPONSIVE = 1, SP_MODE_PEER = 2 };

/* SIP methods as bits; anything else is SP_METHOD_OTHER. */
uint32_t sp_method_bit(const char *method);
#define SP_METHOD_OTHER (UINT32_C(1) << 31)
/* "INVITE,OPTIONS" into buf; returns buf. */
char *sp_methods_format(uint32_t mask, char *buf, size_t len);
int sp_methods_parse(const char *list, uint32_t *mask);
uint8_t sp_transport_bit(const char *name); /* 0 if unknown */
const char *sp_transport_name(uint8_t bit);
char *sp_transports_format(uint8_t mask, char *buf, size_t len);
int sp_transports_parse(const char *list, uint8_t *mask);
const char *sp_mode_name(uint8_t mode);

typedef struct sp_event {
	uint64_t ts_ns; /* receive time, UTC */
	uint8_t id[16]; /* UUID v4 */
	char src_ip[SP_KEY_MAX];
	char dst_ip[SP_KEY_MAX];
	uint16_t src_port, dst_port;
	uint8_t transport; /* one SP_TP_* bit */
	uint8_t mode;      /* enum sp_mode */
	char method[SP_METHOD_MAX];
	char ruri_user[SP_USER_MAX]; /* Request-URI user, raw */
	char to_user[SP_USER_MAX];   /* To user: the called number, raw */
	char user_agent[SP_UA_MAX];
	char origin[SP_REPORTER_MAX]; /* "" = this node, else peer key id */
	uint32_t raw_len;
	const char *raw; /* the message, capped; see sp_event_new/decode */
} sp_event;

/* Allocate an event whose raw message (first min(raw_len, raw_cap) bytes)
 * lives in the same allocation; free with free(). Fields are zeroed, ts_ns
 * and id are set. Returns NULL on allocation failure. */
sp_event *sp_event_new(const char *raw, size_t raw_len, size_t raw_cap);
/* The same for an event the caller holds (on its stack): raw is not
 * copied, e->raw points at it (min(raw_len, raw_cap) bytes, not
 * NUL-terminated), so it must outlive e. */
void sp_event_init(sp_event *e, const char *raw, size_t raw_len, size_t raw_cap);
/* Copy s into a fixed field, truncating. */
void sp_field_set(char *field, size_t size, const char *s);
void sp_uuid_new(uint8_t id[16]);
char *sp_uuid_format(const uint8_t id[16], char *buf);
int sp_uuid_parse(const char *s, uint8_t id[16]);

typedef struct sp_report {
	char reporter[SP_REPORTER_MAX]; /* "" = this node */
	uint64_t first_ns, last_ns, count;
	uint64_t expires_ns; /* peers: as reported; this node: 0, i.e. last + retention */
} sp_report;

typedef struct sp_agg {
	uint8_t kind; /* enum sp_kind */
	char key[SP_KEY_MAX];
	uint32_t methods;
	uint8_t transports;
	uint8_t n_uas, n_raws, n_reports;
	char uas[SP_AGG_MAX_UAS][SP_UA_MAX];
	char raws[SP_AGG_MAX_RAWS][SP_USER_MAX]; /* numbers: forms seen, e.g. "+441234" */
	sp_report reports[SP_AGG_MAX_REPORTS];
} sp_agg;

enum sp_source { SP_SOURCE_ALL = 0, SP_SOURCE_LOCAL = 1, SP_SOURCE_PEERS = 2 };

/* Everything a lookup or an export line says about an aggregate, over the
 * reports that match a source and have not expired. */
struct sp_agg_summary {
	uint64_t first_ns, last_ns, count, expires_ns;
	bool local;        /* this node saw it */
	unsigned peers;    /* distinct peers that reported it */
	uint64_t local_count;
};

void sp_agg_init(sp_agg *a, enum sp_kind kind, const char *key);
void sp_agg_add_ua(sp_agg *a, const char *ua);
void sp_agg_add_raw(sp_agg *a, const char *raw);
/* Report for a reporter, created (zeroed) if create and room is left;
 * NULL otherwise. Reports from this node sort first. */
sp_report *sp_agg_report(sp_agg *a, const char *reporter, bool create);
/* Fold src into dst (same kind and key): first = min, last/expires/count =
 * max per reporter, sets united. Idempotent: merging twice changes nothing. */
void sp_agg_merge(sp_agg *dst, const sp_agg *src);
/* Report expiry: peers' own, this node's last + retention. */
uint64_t sp_report_expiry(const sp_report *r, uint64_t retention_ns);
/* Drop expired reports; returns how many remain. */
unsigned sp_agg_expire(sp_agg *a, uint64_t now_ns, uint64_t retention_ns);
/* false when no live report matches the source. */
bool sp_agg_summarize(const sp_agg *a, enum sp_source src, uint64_t now_ns,
		      uint64_t retention_ns, struct sp_agg_summary *out);

/* Encoders append to sb; an event's raw message is stored compressed when
 * that makes it smaller (sp_raw.h). Decoders return 0, SP_EPARSE/SP_ECORRUPT
 * for bad input or SP_ESCHEMA for a newer version. A decoded event's raw
 * points into buf when it was stored as it is, and into this thread's
 * buffer when it was compressed: it is valid as long as buf is and until
 * this thread decodes the next event (copy it to keep it longer). A
 * compressed message that does not decompress is left out (raw_len 0):
 * the event and its counts stay. */
int sp_event_encode(const sp_event *e, msgpack_sbuffer *sb);
/* An encoded event has its timestamp as a big-endian uint64 at this
 * offset (after the map header, key 0 and the version, key 1 and 0xcf). */
#define SP_EVENT_TS_OFFSET 5
int sp_event_decode(const void *buf, size_t len, sp_event *e);
int sp_agg_encode(const sp_agg *a, msgpack_sbuffer *sb);
int sp_agg_decode(const void *buf, size_t len, sp_agg *a);

#endif
