/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer run: the node, in the foreground.
 *
 * It opens the store as its only writer and starts the writer thread
 * (group commit, folding, retention), then the SIP listeners: sockets are
 * bound first, then, if started as root, the process switches to an
 * unprivileged user, then the listener threads start. SIGINT or SIGTERM
 * stops it cleanly: listeners first, then everything queued is committed
 * and folded, then the store is closed.
 *
 * Signals are blocked in every thread and taken by sigtimedwait() here, so
 * no handler runs inside library code; the same loop logs drops.
 */
#include "cli.h"
#include "events_out.h"
#include "honeypot.h"
#include "listen.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "writer.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct sp_opt run_opts[] = { { NULL, 0, NULL, 0, NULL } };

static int no_opt(int id, const char *arg, void *ud) { return 2; }

struct node {
	struct sp_config cfg;
	sp_store *st;
	sp_writer *w;
	sp_honeypot *hp;
	sp_listeners *ls;
	sp_events_out *out;
	gnutls_certificate_credentials_t tls_cred;
	/* counters already written to the store (writer thread only) */
	uint64_t saved[20];
};

/* Parts of the node that later work adds; say so rather than pretend. */
static void warn_missing(const struct sp_config *cfg)
{
	if (cfg->api)
		log_warn("the HTTP API (--api) is not part of this build yet");
	if (cfg->webhook_url)
		log_warn("webhooks (--webhook-url) are not part of this build yet");
	if (cfg->peer_to_peer)
		log_warn("peer-to-peer sharing is not part of this build yet: nothing is shared");
}

/* Writer thread, inside each transaction: counter increases since the last. */
static void collect(sp_wtxn *tx, void *ud)
{
	struct node *n = ud;
	if (!n->hp)
		return;
	struct sp_honeypot_counters *h = sp_honeypot_counters(n->hp);
	struct sp_listen_counters *l = n->ls ? sp_listeners_counters(n->ls) : NULL;
	struct {
		const char *name;
		_Atomic uint64_t *v;
	} c[] = {
		{ "sip_received", &h->received },
		{ "sip_parse_errors", &h->parse_errors },
		{ "sip_oversized", &h->oversized },
		{ "sip_replies", &h->replies },
		{ "sip_replies_rate_limited", &h->replies_limited },
		{ "events_udp", &h->udp },
		{ "events_tcp", &h->tcp },
		{ "events_tls", &h->tls },
		{ "tcp_connections", l ? &l->conns_accepted : NULL },
		{ "tcp_connections_refused", l ? &l->conns_refused : NULL },
		{ "tcp_connections_timed_out", l ? &l->conns_timed_out : NULL },
		{ "tls_handshakes_failed", l ? &l->tls_failed : NULL },
		{ "udp_truncated", l ? &l->udp_truncated : NULL },
		{ "udp_dropped_kernel", l ? &l->udp_dropped_kernel : NULL },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (!c[i].v)
			continue;
		uint64_t now = atomic_load_explicit(c[i].v, memory_order_relaxed);
		if (now != n->saved[i] && sp_wtxn_counter_add(tx, c[i].name, now - n->saved[i]) == 0)
			n->saved[i] = now;
	}
}

static void on_events(sp_event *const *events, size_t count, void *ud)
{
	struct node *n = ud;
	if (n->out)
		sp_events_out_write(n->out, events, count);
}

static int drop_privileges(const char *user)
{
	if (geteuid() != 0 || !user || !*user)
		return 0;
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_error("cannot switch to user '%s': %s", user,
			  errno ? strerror(errno) : "no such user (set --user)");
		return -EINVAL;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot switch to user '%s': %s", user, strerror(errno));
		return -errno;
	}
	if (setuid(0) == 0) { /* must be impossible now */
		log_error("still root after switching to '%s'", user);
		return -EPERM;
	}
	log_info("ports bound; now running as user %s", user);
	return 0;
}

static int start_honeypot(struct node *n)
{
	struct sp_config *cfg = &n->cfg;
	int rc;

	if (cfg->sip_disable || (!cfg->sip_udp && !cfg->sip_tcp && !cfg->sip_tls)) {
		log_info("SIP is off: this node only keeps the store");
		return 0;
	}
	if (cfg->sip_tls &&
	    (rc = sp_tls_credentials(cfg->tls_cert, cfg->tls_key, cfg->data_dir, &n->tls_cred)))
		return rc;
	struct sp_honeypot_options ho = {
		.responsive = cfg->sip_responsive,
		.redirect_uri = cfg->sip_redirect,
		.raw_max = cfg->raw_max,
		.reply_rate = (unsigned)cfg->sip_reply_rate,
		.reply_burst = (unsigned)cfg->sip_reply_rate * 2,
		.debug = cfg->debug,
	};
	if ((rc = sp_honeypot_new(&n->hp, n->w, &ho)))
		return rc;
	struct sp_listen_options lo = {
		.addresses = &cfg->sip_addresses,
		.port = (uint16_t)cfg->sip_port,
		.tls_port = (uint16_t)cfg->sip_tls_port,
		.udp = cfg->sip_udp,
		.tcp = cfg->sip_tcp,
		.tls = cfg->sip_tls,
		.tls_cred = n->tls_cred,
		.max_conns = (unsigned)cfg->sip_max_conns,
		.max_conns_per_source = (unsigned)cfg->sip_max_conns_per_source,
		.idle_timeout_ns = cfg->sip_idle_timeout_ns,
		.message_timeout_ns = cfg->sip_idle_timeout_ns / 3,
		.handshake_timeout_ns = 5 * SP_NS_PER_SEC,
		.max_header = cfg->sip_max_header,
		.max_body = cfg->sip_max_body,
		.udp_rcvbuf = 32u << 20,
	};
	if ((rc = sp_listeners_bind(&n->ls, n->hp, &lo)))
		return rc;
	if ((rc = drop_privileges(cfg->run_user)))
		return rc;
	if ((rc = sp_listeners_run(n->ls))) {
		log_error("cannot start the SIP listeners: %s", sp_strerror(rc));
		return rc;
	}
	log_info("SIP honeypot running (%s mode)", cfg->sip_responsive ? "responsive" : "passive");
	return 0;
}

/* Every 10 s: say what was lost, if anything. */
static void log_losses(struct node *n, uint64_t *last_dropped, uint64_t *last_bad)
{
	struct sp_writer_stats ws;
	sp_writer_get_stats(n->w, &ws);
	uint64_t kernel = n->ls ? atomic_load(&sp_listeners_counters(n->ls)->udp_dropped_kernel) : 0;
	uint64_t dropped = ws.dropped_queue_full + ws.dropped_store + kernel;
	uint64_t bad = n->hp ? atomic_load(&sp_honeypot_counters(n->hp)->parse_errors) : 0;
	if (dropped != *last_dropped)
		log_warn("%llu events dropped in the last 10 s (in all: UDP buffer full %llu, "
			 "queue full %llu, store %llu)",
			 (unsigned long long)(dropped - *last_dropped), (unsigned long long)kernel,
			 (unsigned long long)ws.dropped_queue_full, (unsigned long long)ws.dropped_store);
	if (bad != *last_bad)
		log_info("%llu messages that are not SIP in the last 10 s",
			 (unsigned long long)(bad - *last_bad));
	*last_dropped = dropped;
	*last_bad = bad;
}

int cmd_run(int argc, char **argv)
{
	struct node n;
	char **pos = NULL, d[64], path[PATH_MAX];
	int npos, rc, status = SP_EXIT_ERROR;
	sigset_t sigs;

	memset(&n, 0, sizeof(n));
	rc = sp_settings_load(&n.cfg, argc, argv, SP_SCOPE_ANY | SP_SCOPE_RUN, run_opts, no_opt, NULL,
			      &pos, &npos, "sentrypeer run [settings]");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	sp_log_set_level(n.cfg.debug ? SP_LOG_DEBUG : SP_LOG_INFO);
	if (npos) {
		fprintf(stderr, "sentrypeer run: unexpected argument '%s'\n", pos[0]);
		goto out;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cli_open_store(&n.cfg, false, true, &n.st))
		goto out;
	if (n.cfg.json_log || n.cfg.syslog || n.cfg.json_log_file) {
		char jl[PATH_MAX];
		const char *jpath = NULL;
		if (n.cfg.json_log || n.cfg.json_log_file) {
			if (n.cfg.json_log_file)
				snprintf(jl, sizeof(jl), "%s", n.cfg.json_log_file);
			else
				snprintf(jl, sizeof(jl), "%s/sentrypeer_json.log", n.cfg.data_dir);
			jpath = jl;
		}
		uint8_t id[16];
		sp_store_node_id(n.st, id);
		if (sp_events_out_open(&n.out, jpath, n.cfg.syslog, id))
			goto out;
	}
	struct sp_writer_options wo = {
		.queue_max = n.cfg.queue_size,
		.queue_bytes_max = n.cfg.queue_memory,
		.batch_max = n.cfg.batch_size,
		.sweep_interval_ns = n.cfg.sweep_interval_ns,
		.on_events = n.out ? on_events : NULL, /* decoding for no output costs */
		.collect = collect,
		.ud = &n,
	};
	if ((rc = sp_writer_start(&n.w, n.st, &wo))) {
		log_error("cannot start the writer: %s", sp_strerror(rc));
		goto out;
	}
	log_info("sentrypeer %s running: store %s, retention %s, sync %s", SP_VERSION,
		 sp_config_db_path(&n.cfg, path, sizeof(path)),
		 sp_duration_format(n.cfg.retention_ns, d, sizeof(d)),
		 (const char *[]){ "full", "nometa", "none" }[n.cfg.sync]);
	if (start_honeypot(&n))
		goto out;
	warn_missing(&n.cfg);

	uint64_t last_dropped = 0, last_bad = 0;
	for (;;) {
		struct timespec ts = { 10, 0 };
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig < 0) {
			if (errno == EAGAIN)
				log_losses(&n, &last_dropped, &last_bad);
			continue;
		}
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload yet; send SIGTERM to stop");
			continue;
		}
		log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	status = SP_EXIT_OK;
out:
	sp_listeners_stop(n.ls); /* no new events; their counters stay readable */
	if (n.w)
		sp_writer_stop(n.w); /* commits and folds what is queued, saves the counters */
	sp_listeners_free(n.ls);
	if (n.tls_cred)
		gnutls_certificate_free_credentials(n.tls_cred);
	sp_honeypot_free(n.hp);
	sp_events_out_close(n.out);
	sp_store_close(n.st);
	if (status == SP_EXIT_OK && n.st)
		log_info("stopped cleanly");
	free(pos);
	sp_config_free(&n.cfg);
	return status;
}
