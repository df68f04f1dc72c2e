/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer run: the node, in the foreground. It opens the store as its
 * only writer, starts the writer thread (group commit and retention sweep)
 * and stops cleanly on SIGINT or SIGTERM: queued events are committed,
 * then the store is closed.
 *
 * Signals are blocked in every thread and taken by sigwait() here, so no
 * handler runs inside library code.
 */
#include "cli.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "writer.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const struct sp_opt run_opts[] = { { NULL, 0, NULL, 0, NULL } };

static int no_opt(int id, const char *arg, void *ud) { return 2; }

/* Parts of the node that later work adds; say so rather than pretend. */
static void warn_missing(const struct sp_config *cfg)
{
	if (!cfg->sip_disable)
		log_warn("the SIP listeners are not part of this build yet: nothing is collected");
	if (cfg->json_log || cfg->syslog)
		log_warn("event logging (--json-log, --syslog) comes with the SIP listeners");
	if (cfg->api)
		log_warn("the HTTP API (--api) is not part of this build yet");
	if (cfg->webhook_url)
		log_warn("webhooks (--webhook-url) are not part of this build yet");
	if (cfg->peer_to_peer)
		log_warn("peer-to-peer sharing is not part of this build yet: nothing is shared");
}

int cmd_run(int argc, char **argv)
{
	struct sp_config cfg;
	char **pos = NULL, d[64], path[PATH_MAX];
	int npos, rc, status = SP_EXIT_ERROR;
	sp_store *st = NULL;
	sp_writer *w = NULL;
	sigset_t sigs;

	rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY | SP_SCOPE_RUN, run_opts, no_opt, NULL,
			      &pos, &npos, "sentrypeer run [settings]");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	sp_log_set_level(cfg.debug ? SP_LOG_DEBUG : SP_LOG_INFO);
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

	if (cli_open_store(&cfg, false, true, &st))
		goto out;
	struct sp_writer_options wo = {
		.queue_max = cfg.queue_size,
		.batch_max = cfg.batch_size,
		.sweep_interval_ns = cfg.sweep_interval_ns,
	};
	if ((rc = sp_writer_start(&w, st, &wo))) {
		log_error("cannot start the writer: %s", sp_strerror(rc));
		goto out;
	}
	log_info("sentrypeer %s running: store %s, retention %s, sync %s", SP_VERSION,
		 sp_config_db_path(&cfg, path, sizeof(path)),
		 sp_duration_format(cfg.retention_ns, d, sizeof(d)),
		 (const char *[]){ "full", "nometa", "none" }[cfg.sync]);
	warn_missing(&cfg);

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload yet; send SIGTERM to stop");
			continue;
		}
		log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	status = SP_EXIT_OK;
out:
	if (w) {
		
		sp_writer_stop(w); /* commits what is queued */
		
	}
	sp_store_close(st);
	if (status == SP_EXIT_OK && st)
		log_info("stopped cleanly");
	free(pos);
	sp_config_free(&cfg);
	return status;
}
