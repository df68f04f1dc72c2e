/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "events_out.h"
#include "config.h"
#include "json_stream.h"
#include "sp_file.h"
#include "sp_log.h"
#include "sp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct sp_events_out {
	FILE *json;
	char *json_path;
	bool syslog_on;
	char node_id[SP_UUID_LEN];
	bool json_error_logged;
};

/* Open for appending, as fopen "ae" would; with no_links, only a regular
 * file of its own at the path itself (sp_open_plain). */
static FILE *open_log(const char *path, bool no_links)
{
	int flags = O_WRONLY | O_APPEND | O_CREAT;
	int fd = no_links ? sp_open_plain(path, flags, 0666) : open(path, flags | O_CLOEXEC, 0666);
	if (fd < 0) {
		if (no_links)
			errno = -fd;
		return NULL;
	}
	FILE *f = fdopen(fd, "a");
	if (!f) {
		int err = errno;
		close(fd);
		errno = err;
	}
	return f;
}

int sp_events_out_open(sp_events_out **out, const char *json_log_path, bool no_links,
		       bool syslog_on, const uint8_t node_id[16])
{
	sp_events_out *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	sp_uuid_format(node_id, o->node_id);
	if (json_log_path) {
		o->json = open_log(json_log_path, no_links);
		if (!o->json) {
			int err = errno;
			log_error("cannot open the JSON log %s: %s%s", json_log_path, strerror(err),
				  no_links && (err == ELOOP || err == EINVAL || err == ENXIO ||
					       err == EISDIR)
					  ? " (in the data directory it must be a regular file, not a "
					    "link; give another file with -l FILE)"
					  : "");
			free(o);
			return -err;
		}
		o->json_path = strdup(json_log_path);
		log_info("writing events to the JSON log %s", json_log_path);
	}
	if (syslog_on) {
		openlog("sentrypeer", LOG_PID | LOG_NDELAY, LOG_USER);
		o->syslog_on = true;
	}
	*out = o;
	return 0;
}

/* "2021-11-23 20:13:36.427515810", upstream's event_timestamp. */
static void upstream_time(uint64_t ns, char *buf)
{
	sp_timestamp_format(ns, buf);
	buf[10] = ' ';
	buf[29] = '\0';
}

static void field(FILE *f, const char *name, const char *v, size_t len, bool first)
{
	if (!first)
		putc_unlocked(',', f);
	putc_unlocked('"', f);
	fputs_unlocked(name, f);
	fputs_unlocked("\":", f);
	sp_json_write_string(f, v, len);
}

static void json_line(sp_events_out *o, const sp_event *e)
{
	char ts[SP_TIMESTAMP_LEN], id[SP_UUID_LEN];
	FILE *f = o->json;
	upstream_time(e->ts_ns, ts);
	sp_uuid_format(e->id, id);
	putc_unlocked('{', f);
	field(f, "app_name", "sentrypeer", 10, true);
	field(f, "app_version", SP_VERSION, strlen(SP_VERSION), false);
	field(f, "event_timestamp", ts, strlen(ts), false);
	field(f, "event_uuid", id, strlen(id), false);
	field(f, "created_by_node_id", o->node_id, strlen(o->node_id), false);
	const char *mode = sp_mode_name(e->mode), *tp = sp_transport_name(e->transport);
	field(f, "collected_method", mode, strlen(mode), false);
	field(f, "transport_type", tp, strlen(tp), false);
	field(f, "source_ip", e->src_ip, strlen(e->src_ip), false);
	field(f, "destination_ip", e->dst_ip, strlen(e->dst_ip), false);
	field(f, "called_number", e->to_user, strlen(e->to_user), false);
	field(f, "sip_method", e->method, strlen(e->method), false);
	field(f, "sip_user_agent", e->user_agent, strlen(e->user_agent), false);
	field(f, "sip_message", e->raw, e->raw_len, false);
	fputs_unlocked("}\n", f);
}

/* Syslog takes a format: everything from the network goes in as %s, with
 * control characters (log injection: fake lines) replaced. */
static void clean(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; *src && i + 1 < size; src++)
		dst[i++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? '?' : *src;
	dst[i] = '\0';
}

void sp_events_out_write(sp_events_out *o, sp_event *const *events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const sp_event *e = events[i];
		if (o->json)
			json_line(o, e);
		if (o->syslog_on) {
			char method[SP_METHOD_MAX], ua[SP_UA_MAX];
			clean(method, sizeof(method), e->method);
			clean(ua, sizeof(ua), e->user_agent);
			syslog(LOG_NOTICE, "Source IP: %s, Method: %s, Agent: %s", e->src_ip, method, ua);
		}
	}
	if (o->json && (fflush(o->json) != 0 || ferror(o->json))) {
		if (!o->json_error_logged)
			log_error("writing the JSON log %s failed: %s (events are still stored)",
				  o->json_path, strerror(errno));
		o->json_error_logged = true;
		clearerr(o->json);
	}
}

void sp_events_out_close(sp_events_out *o)
{
	if (!o)
		return;
	if (o->json)
		fclose(o->json);
	if (o->syslog_on)
		closelog();
	free(o->json_path);
	free(o);
}
