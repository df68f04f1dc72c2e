/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "cli.h"
#include "sp_error.h"
#include "sp_log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void cli_apply_logging(const struct sp_config *cfg)
{
	sp_log_set_level(cfg->debug ? SP_LOG_DEBUG : cfg->verbose ? SP_LOG_INFO : SP_LOG_WARN);
}

/* mkdir -p with mode 0700 for what we create. */
int cli_make_dirs(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return -errno;
			if (c == '\0')
				break;
			*p = c;
		}
	}
	return 0;
}

int cli_open_store(const struct sp_config *cfg, bool readonly, bool set_retention, sp_store **st)
{
	char path[PATH_MAX], dir[PATH_MAX];
	sp_config_db_path(cfg, path, sizeof(path));
	struct sp_store_options o = {
		.path = path,
		.map_size = cfg->map_size,
		.sync = (enum sp_sync)cfg->sync,
		.readonly = readonly,
		.retention_ns = cfg->retention_ns,
		.set_retention = set_retention,
		.batch_max = cfg->batch_size,
	};

	if (!readonly) {
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			int rc = cli_make_dirs(dir);
			if (rc) {
				fprintf(stderr, "sentrypeer: cannot create data directory %s: %s\n", dir,
					sp_strerror(rc));
				return rc;
			}
		}
	}
	int rc = sp_store_open(st, &o);
	if (rc) {
		if (rc == SP_ENOSTORE)
			fprintf(stderr, "sentrypeer: no store at %s yet (start the node, or import data"
					" first; --data-dir chooses another)\n", path);
		else if (rc == SP_EACCESS || rc == -EACCES || rc == -EROFS)
			fprintf(stderr, "sentrypeer: cannot open store %s %s: %s\n", path,
				readonly ? "for reading" : "for writing",
				rc == -EROFS ? "read-only file system"
					     : "permission denied (run as the node's user)");
		else
			fprintf(stderr, "sentrypeer: cannot open store %s: %s\n", path, sp_strerror(rc));
	}
	return rc;
}
