/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Test helper: feeds synthetic events to a store through the node's writer
 * and prints "committed N" after every commit (flushed), so a test can kill
 * it with SIGKILL mid-load and then check that at least N events are there.
 *
 * usage: store_loader DBFILE EVENTS [sync: full|nometa|none]
 */
#include "sp_error.h"
#include "store.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_commit(uint64_t total, void *ud)
{
	printf("committed %llu\n", (unsigned long long)total);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: store_loader DBFILE EVENTS [full|nometa|none]\n");
		return 2;
	}
	enum sp_sync sync = SP_SYNC_FULL;
	if (argc > 3)
		sync = strcmp(argv[3], "none") == 0 ? SP_SYNC_NONE
		       : strcmp(argv[3], "nometa") == 0 ? SP_SYNC_NOMETA : SP_SYNC_FULL;
	long n = atol(argv[2]);
	struct sp_store_options o = { .path = argv[1], .map_size = UINT64_C(4) << 30, .sync = sync,
				      .retention_ns = UINT64_C(7) * 86400 * 1000000000,
				      .batch_max = 1000 };
	sp_store *st;
	int rc = sp_store_open(&st, &o);
	if (rc) {
		fprintf(stderr, "store_loader: %s\n", sp_strerror(rc));
		return 2;
	}
	sp_writer *w;
	struct sp_writer_options wo = { .queue_max = 1 << 20, .batch_max = 1000,
					.on_commit = on_commit };
	if ((rc = sp_writer_start(&w, st, &wo))) {
		fprintf(stderr, "store_loader: %s\n", sp_strerror(rc));
		return 2;
	}
	static const char raw[] = "INVITE sip:441234@198.51.100.1 SIP/2.0\r\n\r\n";
	for (long i = 0; i < n; i++) {
		sp_event *e = sp_event_new(raw, sizeof(raw) - 1, 8192);
		snprintf(e->src_ip, sizeof(e->src_ip), "203.0.%ld.%ld", (i / 250) % 250, i % 250);
		snprintf(e->to_user, sizeof(e->to_user), "+44%ld", i % 9973);
		strcpy(e->method, "INVITE");
		e->transport = SP_TP_UDP;
		while (sp_writer_submit(w, e) == SP_EQUEUEFULL) {
			/* the event was freed: make it again after a pause */
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			e = sp_event_new(raw, sizeof(raw) - 1, 8192);
			snprintf(e->src_ip, sizeof(e->src_ip), "203.0.%ld.%ld", (i / 250) % 250, i % 250);
			strcpy(e->method, "INVITE");
		}
	}
	sp_writer_stop(w);
	sp_store_close(st);
	return 0;
}
