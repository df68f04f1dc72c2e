/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Streaming JSON for the bulk exports. Building a jansson tree per record
 * and dumping it cost about 21 us a record (43,000 records/s); this writes
 * the same bytes as json_dumpf(sp_agg_to_json(), JSON_COMPACT) straight to
 * the stream, with no allocation. tests/unit/test_export.c checks that the
 * two agree byte for byte, so jansson stays the reference.
 */
#ifndef SP_JSON_STREAM_H
#define SP_JSON_STREAM_H

#include "sp_record.h"

#include <stdio.h>

/* Writes the record; returns false when no live report matches src. */
bool sp_agg_write_json(FILE *out, const sp_agg *a, enum sp_source src, uint64_t now_ns,
		       uint64_t retention_ns);
/* The same members without the braces around them, so a caller can put
 * fields of its own first in the same object (the API's lookup answers). */
bool sp_agg_write_json_members(FILE *out, const sp_agg *a, enum sp_source src, uint64_t now_ns,
			       uint64_t retention_ns);
/* A JSON string: quotes, escapes, and U+FFFD for bytes that are not UTF-8. */
void sp_json_write_string(FILE *out, const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (1 to 4 bytes), or 0 when the
 * bytes there are not UTF-8 (overlong, surrogate, NUL, truncated). */
size_t sp_utf8_seq(const unsigned char *s, size_t left);
/* RFC 3339 UTC with nanoseconds, as sp_timestamp_format(), unquoted. */
void sp_json_write_time(FILE *out, uint64_t ns);

#endif
