/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "share.h"

#include "sp_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char **list_of(const struct sp_strlist *l, size_t *n, bool none_means_empty)
{
	*n = 0;
	if (!l->n || (none_means_empty && l->n == 1 && strcmp(l->v[0], "none") == 0))
		return NULL;
	const char **v = calloc(l->n, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		v[i] = l->v[i];
	*n = l->n;
	return v;
}

void sp_share_options(const struct sp_config *cfg, struct sp_dht_options *o,
		      struct sp_share_lists *lists)
{
	memset(o, 0, sizeof(*o));
	lists->bootstrap = list_of(&cfg->bootstrap, &o->n_bootstrap, true);
	lists->allow = list_of(&cfg->dht_allow, &o->n_allow, false);
	lists->deny = list_of(&cfg->dht_deny, &o->n_deny, false);
	o->bootstrap = lists->bootstrap;
	o->allow = lists->allow;
	o->deny = lists->deny;
	o->port = (uint16_t)cfg->dht_port;
	o->network = (uint32_t)cfg->dht_network;
	o->proxy = cfg->dht_proxy;
	o->ttl_ns = cfg->dht_ttl_ns;
	o->publish_interval_ns = cfg->dht_publish_interval_ns;
	o->bandwidth = cfg->dht_bandwidth;
	o->backfill_ns = cfg->retention_ns;
}

void sp_share_options_free(struct sp_share_lists *lists)
{
	free(lists->bootstrap);
	free(lists->allow);
	free(lists->deny);
	memset(lists, 0, sizeof(*lists));
}

bool sp_share_listed(const struct sp_agg_summary *s, uint64_t min_reporters)
{
	return s->local || (s->peers && s->peers >= min_reporters);
}

char *sp_agg_to_hex(const sp_agg *a)
{
	static const char hex[] = "0123456789abcdef";
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	sp_agg_encode(a, &sb);
	char *out = malloc(2 * sb.size + 1);
	if (out) {
		for (size_t i = 0; i < sb.size; i++) {
			out[2 * i] = hex[(uint8_t)sb.data[i] >> 4];
			out[2 * i + 1] = hex[(uint8_t)sb.data[i] & 15];
		}
		out[2 * sb.size] = '\0';
	}
	msgpack_sbuffer_destroy(&sb);
	return out;
}

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sp_agg_from_hex(const char *hex, sp_agg *a)
{
	size_t n = strcspn(hex, "\r\n");
	if (n % 2 || n > 65536)
		return SP_EPARSE;
	uint8_t *buf = malloc(n / 2 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(buf);
			return SP_EPARSE;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	int rc = sp_agg_decode(buf, n / 2, a);
	free(buf);
	return rc;
}
