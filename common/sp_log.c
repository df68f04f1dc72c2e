/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int log_level = SP_LOG_INFO;
static _Atomic bool log_timestamps = true;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void sp_log_set_level(enum sp_log_level level) { log_level = level; }
enum sp_log_level sp_log_get_level(void) { return (enum sp_log_level)log_level; }
void sp_log_set_timestamps(bool on) { log_timestamps = on; }

__attribute__((format(printf, 3, 0)))
static void log_vwrite(enum sp_log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	size_t off = 0;

	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	}
	int n = snprintf(line + off, sizeof(line) - off, "sentrypeer %s: ", level_names[level]);
	if (n > 0)
		off += (size_t)n;
	if (off < sizeof(line)) {
		n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
		if (n > 0)
			off += (size_t)n;
	}
	if (off >= sizeof(line))
		off = sizeof(line) - 1;
	/* one fputs per line keeps lines from threads whole */
	fprintf(stderr, "%.*s%s\n", (int)off, line, suffix ? suffix : "");
}

void sp_log_write(enum sp_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
}

void sp_fatal(const char *fmt, ...)
{
	char suffix[256];
	snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(SP_LOG_ERROR, suffix, fmt, ap);
	va_end(ap);
	exit(2);
}

void sp_fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(SP_LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(2);
}
