/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * /metrics in the Prometheus text format (version 0.0.4). Counters are
 * this process's, from its start (Prometheus handles the reset at a
 * restart); the store's sizes are gauges. DHT series appear only when the
 * node has a DHT; sentrypeer_dht_enabled says which.
 */
#include "api_internal.h"
#include "sp_error.h"
#include "sp_time.h"

#include <stdlib.h>
#include <string.h>

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	family(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void api_live_counters(sp_api *api, void (*fn)(const char *name, uint64_t v, void *ud), void *ud)
{
	if (api->live.honeypot) {
		struct sp_honeypot_counters *h = sp_honeypot_counters(api->live.honeypot);
		fn("sip_received", LOAD(h->received), ud);
		fn("sip_parse_errors", LOAD(h->parse_errors), ud);
		fn("sip_oversized", LOAD(h->oversized), ud);
		fn("sip_replies", LOAD(h->replies), ud);
		fn("sip_replies_rate_limited", LOAD(h->replies_limited), ud);
		fn("events_udp", LOAD(h->udp), ud);
		fn("events_tcp", LOAD(h->tcp), ud);
		fn("events_tls", LOAD(h->tls), ud);
	}
	if (api->live.listeners) {
		struct sp_listen_counters *l = sp_listeners_counters(api->live.listeners);
		fn("tcp_connections", LOAD(l->conns_accepted), ud);
		fn("tcp_connections_refused", LOAD(l->conns_refused), ud);
		fn("tcp_connections_timed_out", LOAD(l->conns_timed_out), ud);
		fn("tls_handshakes_failed", LOAD(l->tls_failed), ud);
		fn("udp_truncated", LOAD(l->udp_truncated), ud);
		fn("udp_dropped_kernel", LOAD(l->udp_dropped_kernel), ud);
	}
	if (api->live.writer) {
		struct sp_writer_stats w;
		sp_writer_get_stats(api->live.writer, &w);
		fn("events_submitted", w.submitted, ud);
		fn("events_recorded", w.committed, ud);
		fn("events_dropped_queue_full", w.dropped_queue_full, ud);
		fn("events_dropped_store_error", w.dropped_store, ud);
		fn("writer_queue_length", w.queue_len, ud);
	}
}

enum MHD_Result api_route_metrics(sp_api *api, struct MHD_Connection *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;

	fprintf(f, "# HELP sentrypeer_build_info The running version.\n"
		   "# TYPE sentrypeer_build_info gauge\n"
		   "sentrypeer_build_info{version=\"%s\"} 1\n", SP_VERSION);
	metric(f, "sentrypeer_start_time_seconds", "gauge", "When this node started (Unix time).",
	       api->started_ns / SP_NS_PER_SEC);

	if (api->live.honeypot) {
		struct sp_honeypot_counters *h = sp_honeypot_counters(api->live.honeypot);
		metric(f, "sentrypeer_sip_messages_received_total", "counter",
		       "SIP messages received (UDP datagrams and framed TCP/TLS messages).",
		       LOAD(h->received));
		metric(f, "sentrypeer_sip_parse_errors_total", "counter",
		       "Messages that are not SIP (not recorded).", LOAD(h->parse_errors));
		metric(f, "sentrypeer_sip_oversized_total", "counter",
		       "Messages over the size caps (not recorded).", LOAD(h->oversized));
		family(f, "sentrypeer_events_total", "counter",
		       "SIP requests turned into events, by transport.");
		fprintf(f, "sentrypeer_events_total{transport=\"udp\"} %llu\n"
			   "sentrypeer_events_total{transport=\"tcp\"} %llu\n"
			   "sentrypeer_events_total{transport=\"tls\"} %llu\n",
			(unsigned long long)LOAD(h->udp), (unsigned long long)LOAD(h->tcp),
			(unsigned long long)LOAD(h->tls));
		metric(f, "sentrypeer_sip_replies_total", "counter", "Responsive mode replies sent.",
		       LOAD(h->replies));
		metric(f, "sentrypeer_sip_replies_rate_limited_total", "counter",
		       "Replies not sent: the source's reply rate was used up.",
		       LOAD(h->replies_limited));
	}
	if (api->live.listeners) {
		struct sp_listen_counters *l = sp_listeners_counters(api->live.listeners);
		family(f, "sentrypeer_tcp_connections_total", "counter",
		       "SIP TCP and TLS connections, by what became of them.");
		fprintf(f, "sentrypeer_tcp_connections_total{result=\"accepted\"} %llu\n"
			   "sentrypeer_tcp_connections_total{result=\"refused\"} %llu\n"
			   "sentrypeer_tcp_connections_total{result=\"timed_out\"} %llu\n",
			(unsigned long long)LOAD(l->conns_accepted),
			(unsigned long long)LOAD(l->conns_refused),
			(unsigned long long)LOAD(l->conns_timed_out));
		metric(f, "sentrypeer_tls_handshakes_failed_total", "counter",
		       "TLS handshakes that failed.", LOAD(l->tls_failed));
		metric(f, "sentrypeer_udp_truncated_total", "counter",
		       "UDP datagrams larger than the receive buffer.", LOAD(l->udp_truncated));
	}
	if (api->live.writer || api->live.listeners) {
		struct sp_writer_stats w = { 0 };
		uint64_t kernel = 0;
		if (api->live.writer)
			sp_writer_get_stats(api->live.writer, &w);
		if (api->live.listeners)
			kernel = LOAD(sp_listeners_counters(api->live.listeners)->udp_dropped_kernel);
		family(f, "sentrypeer_events_dropped_total", "counter",
		       "Events lost, by where: the kernel's UDP buffer, the writer queue, the store.");
		fprintf(f, "sentrypeer_events_dropped_total{reason=\"udp_buffer_full\"} %llu\n"
			   "sentrypeer_events_dropped_total{reason=\"queue_full\"} %llu\n"
			   "sentrypeer_events_dropped_total{reason=\"store_error\"} %llu\n",
			(unsigned long long)kernel, (unsigned long long)w.dropped_queue_full,
			(unsigned long long)w.dropped_store);
		if (api->live.writer) {
			metric(f, "sentrypeer_events_recorded_total", "counter",
			       "Events committed to the store.", w.committed);
			metric(f, "sentrypeer_writer_commits_total", "counter",
			       "Store transactions committed by the writer.", w.commits);
			metric(f, "sentrypeer_writer_folds_total", "counter",
			       "Folds of events into aggregates.", w.folds);
			metric(f, "sentrypeer_writer_catch_ups_total", "counter",
			       "Fold-only commits made because new keys nearly filled the "
			       "pending table (meanwhile the queue fills).", w.catch_ups);
			metric(f, "sentrypeer_writer_store_reopens_total", "counter",
			       "Times the idle writer reopened the store to give back the "
			       "memory LMDB keeps for its largest transaction.", w.reopens);
			metric(f, "sentrypeer_writer_queue_length", "gauge",
			       "Events waiting for the writer.", w.queue_len);
			metric(f, "sentrypeer_writer_queue_peak", "gauge",
			       "Most events that waited at once.", w.queue_peak);
		}
	}

	struct sp_store_stats s;
	if (sp_store_stats(api->st, &s) == 0) {
		metric(f, "sentrypeer_store_events", "gauge", "Events in the store.", s.events);
		family(f, "sentrypeer_store_records", "gauge",
		       "Aggregates in the store (expired ones until the sweep removes them).");
		fprintf(f, "sentrypeer_store_records{kind=\"ip\"} %llu\n"
			   "sentrypeer_store_records{kind=\"number\"} %llu\n",
			(unsigned long long)s.ips, (unsigned long long)s.numbers);
		family(f, "sentrypeer_store_bytes", "gauge",
		       "Store size: on disk, used inside the file, and the map limit.");
		fprintf(f, "sentrypeer_store_bytes{what=\"file\"} %llu\n"
			   "sentrypeer_store_bytes{what=\"used\"} %llu\n"
			   "sentrypeer_store_bytes{what=\"map\"} %llu\n",
			(unsigned long long)s.file_bytes, (unsigned long long)s.used_bytes,
			(unsigned long long)s.map_size);
		if (s.events)
			metric(f, "sentrypeer_store_newest_event_timestamp_seconds", "gauge",
			       "Time of the newest event (Unix time).", s.newest_event_ns / SP_NS_PER_SEC);
	}

	struct sp_api_dht_status d;
	bool dht = api_dht_status(api, &d);
	metric(f, "sentrypeer_dht_enabled", "gauge", "1 when this node runs a DHT node.", dht);
	metric(f, "sentrypeer_dht_sharing", "gauge", "1 when this node shares and receives.",
	       d.sharing);
	if (dht) {
		metric(f, "sentrypeer_dht_connected", "gauge", "1 when the DHT node has peers.",
		       d.connected);
		metric(f, "sentrypeer_dht_peers", "gauge",
		       "Distinct peers whose values this node accepted since it started.", d.peers);
		metric(f, "sentrypeer_dht_puts_total", "counter", "Values published.", d.puts);
		metric(f, "sentrypeer_dht_puts_failed_total", "counter", "Publications that failed.",
		       d.puts_failed);
		metric(f, "sentrypeer_dht_gets_total", "counter", "DHT lookups.", d.gets);
		family(f, "sentrypeer_dht_values_total", "counter",
		       "Values received from peers, by what was done with them.");
		fprintf(f, "sentrypeer_dht_values_total{result=\"accepted\"} %llu\n"
			   "sentrypeer_dht_values_total{result=\"rejected\"} %llu\n",
			(unsigned long long)d.values_accepted, (unsigned long long)d.values_rejected);
	}

	static const char *const codes[API_N_CODES] = {
		"200", "304", "400", "401", "404", "405", "413", "414", "431", "500", "503", "other",
	};
	family(f, "sentrypeer_api_responses_total", "counter", "HTTP API responses, by status.");
	for (int i = 0; i < API_N_CODES; i++)
		fprintf(f, "sentrypeer_api_responses_total{code=\"%s\"} %llu\n", codes[i],
			(unsigned long long)LOAD(api->c.codes[i]));
	metric(f, "sentrypeer_api_connections_total", "counter", "HTTP API connections accepted.",
	       LOAD(api->c.connections));
	family(f, "sentrypeer_api_lookups_total", "counter",
	       "Lookups through the API, by kind and answer.");
	for (int k = SP_KIND_IP; k <= SP_KIND_NUMBER; k++) {
		uint64_t all = LOAD(api->c.lookups[k]), listed = LOAD(api->c.lookups_listed[k]);
		fprintf(f, "sentrypeer_api_lookups_total{kind=\"%s\",listed=\"yes\"} %llu\n"
			   "sentrypeer_api_lookups_total{kind=\"%s\",listed=\"no\"} %llu\n",
			sp_kind_name(k), (unsigned long long)listed, sp_kind_name(k),
			(unsigned long long)(all - listed));
	}
	if (dht) {
		family(f, "sentrypeer_api_dht_fallbacks_total", "counter",
		       "Lookups the local store could not answer, by what the DHT did.");
		for (int o = DHT_FOUND; o < DHT_N_OUTCOMES; o++) {
			char name[32];
			snprintf(name, sizeof(name), "%s", api_dht_outcome_name(o));
			for (char *p = name; *p; p++)
				if (*p == ' ')
					*p = '_';
			fprintf(f, "sentrypeer_api_dht_fallbacks_total{result=\"%s\"} %llu\n", name,
				(unsigned long long)LOAD(api->c.dht[o]));
		}
	}
	metric(f, "sentrypeer_api_exports_total", "counter", "Streamed answers started.",
	       LOAD(api->c.streams));
	metric(f, "sentrypeer_api_exports_refused_total", "counter",
	       "Streamed answers refused (too many at once).", LOAD(api->c.streams_refused));
	metric(f, "sentrypeer_api_export_bytes_total", "counter", "Bytes of streamed answers sent.",
	       LOAD(api->c.stream_bytes));

	if (fclose(f) != 0) {
		free(buf);
		return MHD_NO;
	}
	return api_reply(api, c, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}
