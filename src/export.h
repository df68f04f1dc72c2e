/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Bulk export of the aggregates, streamed from one store snapshot: memory
 * does not grow with the store. Used by `sentrypeer export` and the API.
 *
 * By default addresses that must not leave the node are left out:
 * loopback, private, link-local, reserved, and this host's own addresses.
 */
#ifndef SP_EXPORT_H
#define SP_EXPORT_H

#include "store.h"

#include <stdbool.h>
#include <stdio.h>

enum sp_export_format {
	SP_FMT_JSON, SP_FMT_JSONL, SP_FMT_CSV, SP_FMT_TXT, SP_FMT_NFT, SP_FMT_IPSET,
	SP_FMT_CROWDSEC,
};

enum sp_export_kind { SP_EXPORT_ALL, SP_EXPORT_IP, SP_EXPORT_NUMBER };

struct sp_export_options {
	enum sp_export_format format;
	enum sp_export_kind kind;
	enum sp_source source;
	uint64_t since_ns;  /* 0: everything; else last seen at or after */
	uint64_t now_ns;    /* clock for expiry; 0 = now */
	bool include_private;
	unsigned min_reporters; /* peer-only records need this many peers (0, 1: any) */
	const char *nft_table;  /* default "sentrypeer" */
	const char *set_prefix; /* nft set / ipset names; default "sentrypeer" */
};

struct sp_export_stats { uint64_t written, skipped_private, corrupt; };

/* The export options as text, shared by `sentrypeer export` (--NAME VALUE)
 * and GET /api/v1/export (?NAME=VALUE), so both give the same output for
 * the same request: format, kind, since (a duration back from now),
 * source, include-private (yes/no; the flag takes no value), nft-table,
 * set-name. Set opt->format = SP_FMT_TXT and kind_given = false first.
 * Returns 0, SP_ENOTFOUND for an unknown name, or SP_EPARSE with the reason
 * in err ("'x': expected ..."). value may be NULL only for include-private. */
int sp_export_option_set(struct sp_export_options *opt, bool *kind_given, const char *name,
			 const char *value, char *err, size_t errlen);
/* After the last option: the default kind (ip for txt and the firewall
 * formats, else all) and the check that IP-only formats list IPs only.
 * Returns 0 or SP_EPARSE with the reason in err. */
int sp_export_options_finish(struct sp_export_options *opt, bool kind_given, char *err,
			     size_t errlen);

int sp_export_format_parse(const char *s, enum sp_export_format *out);
const char *sp_export_format_name(enum sp_export_format f);
/* Formats that only make sense for IP addresses. */
bool sp_export_format_ip_only(enum sp_export_format f);

/* Which addresses may leave the node: with include_private all, else not
 * loopback, private, link-local, reserved, nor this host's own (read once,
 * when the filter is made). */
typedef struct sp_addr_filter sp_addr_filter;
sp_addr_filter *sp_addr_filter_new(bool include_private);
bool sp_addr_filter_allows(const sp_addr_filter *f, const char *ip);
void sp_addr_filter_free(sp_addr_filter *f);

/* Returns 0, a store error, or -EIO when writing to out failed. */
int sp_export(sp_store *st, const struct sp_export_options *opt, FILE *out,
	      struct sp_export_stats *stats);

#endif
