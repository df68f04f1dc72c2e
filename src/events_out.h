/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Event outputs for other tools, written on the writer thread after each
 * commit (so they list only what was stored, and never slow the listeners):
 *
 * - the JSON log (-j, -l FILE): one object per line with upstream's keys,
 *   which T-Pot reads: app_name, app_version, event_timestamp, event_uuid,
 *   created_by_node_id, collected_method, transport_type, source_ip,
 *   destination_ip, called_number, sip_method, sip_user_agent, sip_message;
 * - syslog (-s): ident "sentrypeer", LOG_USER | LOG_NOTICE,
 *   "Source IP: 203.0.113.5, Method: OPTIONS, Agent: friendly-scanner"
 *   (tools/fail2ban/ has the filter and jail for it).
 */
#ifndef SP_EVENTS_OUT_H
#define SP_EVENTS_OUT_H

#include "sp_record.h"

#include <stdbool.h>

typedef struct sp_events_out sp_events_out;

/* json_log_path NULL: no JSON log. Fails (with a message) when the log
 * cannot be opened for appending. no_links: the log must be a regular
 * file at that very path, not a link nor a FIFO (the default log lives in
 * the data directory, which may belong to the user a root node switches
 * to; root opens it before it switches). */
int sp_events_out_open(sp_events_out **out, const char *json_log_path, bool no_links,
		       bool syslog_on, const uint8_t node_id[16]);
void sp_events_out_write(sp_events_out *o, sp_event *const *events, size_t n);
void sp_events_out_close(sp_events_out *o);

#endif
