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

int sp_export_format_parse(const char *s, enum sp_export_format *out);
const char *sp_export_format_name(enum sp_export_format f);
/* Formats that only make sense for IP addresses. */
bool sp_export_format_ip_only(enum sp_export_format f);

/* Returns 0, a store error, or -EIO when writing to out failed. */
int sp_export(sp_store *st, const struct sp_export_options *opt, FILE *out,
	      struct sp_export_stats *stats);

#endif
