/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Aggregates as JSON: the one shape used by `lookup --json`, the json and
 * jsonl exports (which `import` reads back) and the HTTP API.
 *
 * {"kind":"ip","key":"203.0.113.5","first_seen":"...Z","last_seen":"...Z",
 *  "count":3,"expires":"...Z","local":true,"peers":0,
 *  "methods":["INVITE"],"transports":["UDP"],"user_agents":["..."],
 *  "raw_forms":[],"reports":[{"reporter":"local","first_seen":...,
 *  "last_seen":...,"count":3,"expires":...}]}
 *
 * Timestamps are RFC 3339 UTC with nanoseconds, so they read back exactly.
 */
#ifndef SP_RENDER_H
#define SP_RENDER_H

#include "sp_record.h"

#include <jansson.h>

#define SP_REPORTER_LOCAL "local"

/* NULL when no live report matches src (or on allocation failure). */
json_t *sp_agg_to_json(const sp_agg *a, enum sp_source src, uint64_t now_ns,
		       uint64_t retention_ns);
/* Parse one record; on failure returns SP_EPARSE with a reason in err. */
int sp_agg_from_json(const json_t *j, sp_agg *a, char *err, size_t errlen);
/* A JSON string from bytes that may not be UTF-8: bad bytes become U+FFFD. */
json_t *sp_json_string_lossy(const char *s, size_t len);

#endif
