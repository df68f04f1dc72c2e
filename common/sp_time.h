/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* Clock, durations, sizes and UTC timestamps in text. */
#ifndef SP_TIME_H
#define SP_TIME_H

#include <stddef.h>
#include <stdint.h>

#define SP_NS_PER_SEC UINT64_C(1000000000)
#define SP_TIMESTAMP_LEN 31 /* "2026-11-27T12:00:00.123456789Z" + NUL */

/* Wall clock, nanoseconds since the Unix epoch (UTC). */
uint64_t sp_now_ns(void);
/* Monotonic clock in nanoseconds, for intervals. */
uint64_t sp_mono_ns(void);

/* "90", "90s", "15m", "1h30m", "7d", "2w", "250ms": a duration. Plain
 * numbers are seconds. Returns 0, or SP_EPARSE on anything else or on
 * overflow. */
int sp_duration_parse(const char *s, uint64_t *out_ns);
/* Shortest exact form, e.g. "7d", "1h30m", "250ms"; returns buf. */
char *sp_duration_format(uint64_t ns, char *buf, size_t len);

/* "4096", "64K", "512M", "2G" (powers of 1024; "KiB"/"KB" accepted). */
int sp_size_parse(const char *s, uint64_t *out);

/* RFC 3339 UTC with nanoseconds: 2026-11-27T12:00:00.123456789Z.
 * buf must hold SP_TIMESTAMP_LEN bytes; returns buf. */
char *sp_timestamp_format(uint64_t ns, char *buf);
/* Same, seconds only (2026-11-27T12:00:00Z). */
char *sp_timestamp_format_sec(uint64_t ns, char *buf);
/* Parse an RFC 3339 UTC timestamp ("Z" or "+00:00"; fraction optional). */
int sp_timestamp_parse(const char *s, uint64_t *out_ns);

#endif
