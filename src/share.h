/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Sharing, as the CLI and the node see it: DHT options from the settings,
 * the trust rule for "listed", and aggregates over the control socket.
 */
#ifndef SP_SHARE_H
#define SP_SHARE_H

#include "dht.h"
#include "settings.h"

#include <stdbool.h>

/* Options for sp_dht_start from the settings. Pointers point into cfg and
 * into *lists (free with sp_share_options_free). */
struct sp_share_lists {
	const char **bootstrap, **allow, **deny;
};
void sp_share_options(const struct sp_config *cfg, struct sp_dht_options *o,
		      struct sp_share_lists *lists);
void sp_share_options_free(struct sp_share_lists *lists);

/* Listed: this node saw it, or at least min_reporters peers reported it. */
bool sp_share_listed(const struct sp_agg_summary *s, uint64_t min_reporters);

/* An aggregate as one line of hex (malloc'd), and back (checked). */
char *sp_agg_to_hex(const sp_agg *a);
int sp_agg_from_hex(const char *hex, sp_agg *a);

#endif
