/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Logging: level-checked macros with printf checking. Messages go to stderr
 * with a UTC timestamp; sp_log_set_syslog() mirrors them to syslog.
 * sp_fatal() logs with strerror(errno) and exits 2; sp_fatalx() without.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdbool.h>

enum sp_log_level { SP_LOG_ERROR, SP_LOG_WARN, SP_LOG_INFO, SP_LOG_DEBUG };

void sp_log_set_level(enum sp_log_level level);
enum sp_log_level sp_log_get_level(void);
void sp_log_set_timestamps(bool on);

void sp_log_write(enum sp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void sp_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void sp_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define sp_log_at(lvl, ...)                                                     \
	do {                                                                    \
		if ((lvl) <= sp_log_get_level())                                \
			sp_log_write((lvl), __VA_ARGS__);                       \
	} while (0)
#define log_error(...) sp_log_at(SP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) sp_log_at(SP_LOG_WARN, __VA_ARGS__)
#define log_info(...) sp_log_at(SP_LOG_INFO, __VA_ARGS__)
#define log_debug(...) sp_log_at(SP_LOG_DEBUG, __VA_ARGS__)

#endif
