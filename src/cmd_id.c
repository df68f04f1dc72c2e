/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * sentrypeer id: this node's key id, the public half of its signing
 * identity (DATA_DIR/identity.pem). Peers name it in dht-allow/dht-deny.
 * The identity is made on first use, by this command or by the node.
 */
#include "cli.h"
#include "identity.h"
#include "sp_error.h"

#include <stdio.h>
#include <stdlib.h>

static const struct sp_opt id_opts[] = { { NULL, 0, NULL, 0, NULL } };

static int no_opt(int id, const char *arg, void *ud) { return 2; }

int cmd_id(int argc, char **argv)
{
	struct sp_config cfg;
	char **pos = NULL;
	int npos, status = SP_EXIT_ERROR;
	sp_identity *id = NULL;
	bool created = false;

	int rc = sp_settings_load(&cfg, argc, argv, SP_SCOPE_ANY, id_opts, no_opt, NULL, &pos, &npos,
				  "sentrypeer id");
	if (rc) {
		status = rc == 1 ? SP_EXIT_OK : SP_EXIT_ERROR;
		goto out;
	}
	cli_apply_logging(&cfg);
	if (npos) {
		fprintf(stderr, "sentrypeer id: unexpected argument '%s'\n", pos[0]);
		goto out;
	}
	if ((rc = cli_make_dirs(cfg.data_dir))) {
		fprintf(stderr, "sentrypeer id: cannot create %s: %s\n", cfg.data_dir, sp_strerror(rc));
		goto out;
	}
	if ((rc = sp_identity_open(&id, cfg.data_dir, true, &created))) {
		fprintf(stderr, "sentrypeer id: %s/%s: %s\n", cfg.data_dir, SP_IDENTITY_FILE,
			sp_strerror(rc));
		goto out;
	}
	if (created)
		fprintf(stderr, "sentrypeer id: made a new identity in %s/%s\n", cfg.data_dir,
			SP_IDENTITY_FILE);
	printf("%s\n", sp_identity_keyid(id));
	status = fflush(stdout) == 0 ? SP_EXIT_OK : SP_EXIT_ERROR;
out:
	sp_identity_free(id);
	free(pos);
	sp_config_free(&cfg);
	return status;
}
