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
#include "api.h"
#include "cli.h"
#include "control.h"
#include "events_out.h"
#include "honeypot.h"
#include "listen.h"
#include "share.h"
#include "sp_error.h"
#include "sp_file.h"
#include "sp_log.h"
#include "sp_raw.h"
#include "sp_time.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
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
	sp_api *api;
	/* sharing */
	sp_identity *id;
	sp_dht *dht;
	_Atomic(sp_dht *) dht_for_producers; /* set once the DHT runs, cleared before it stops */
	struct sp_share_lists lists;
	sp_control *ctl;
	pthread_mutex_t kick_lock; /* guards kick_w: the DHT wakes the writer */
	sp_writer *kick_w;
	uint64_t started_ns;
	/* counters already written to the store (writer thread only) */
	uint64_t saved[20], dht_saved[32];
};

/* Parts of the node that later work adds; say so rather than pretend. */
static void warn_missing(const struct sp_config *cfg)
{
	if (cfg->webhook_url)
		log_warn("webhooks (--webhook-url) are not part of this build yet");
}

static int merge_peer(const sp_agg *a, void *ud) { return sp_wtxn_merge(ud, a); }

/* Writer thread: the DHT's counters, as increases since the last commit. */
static void collect_dht(sp_wtxn *tx, struct node *n)
{
	struct sp_dht_stats s;
	sp_dht_get_stats(n->dht, &s);
	struct {
		const char *name;
		uint64_t v;
	} c[] = {
		{ "dht_puts", s.puts }, { "dht_puts_failed", s.puts_failed },
		{ "dht_put_bytes", s.put_bytes }, { "dht_gets", s.gets },
		{ "dht_values_received", s.values_received },
		{ "dht_values_accepted", s.values_accepted },
		{ "dht_values_duplicate", s.values_duplicate },
		{ "dht_records_accepted", s.records_accepted },
		{ "dht_records_dropped", s.records_dropped },
		{ "dht_published_records", s.published_records },
		{ "dht_published_batches", s.published_batches },
		{ "dht_publish_deferred", s.deferred_budget },
		{ "dht_rejected_malformed", s.rejected[SP_REJ_MALFORMED] },
		{ "dht_rejected_oversized", s.rejected[SP_REJ_OVERSIZED] },
		{ "dht_rejected_version", s.rejected[SP_REJ_VERSION] },
		{ "dht_rejected_signature", s.rejected[SP_REJ_SIGNATURE] },
		{ "dht_rejected_wrong_key", s.rejected[SP_REJ_WRONG_KEY] },
		{ "dht_rejected_expired", s.rejected[SP_REJ_EXPIRED] },
		{ "dht_rejected_denied", s.rejected[SP_REJ_DENIED] },
		{ "dht_rejected_rate_limited", s.rejected[SP_REJ_RATE] },
	};
	_Static_assert(sizeof(c) / sizeof(c[0]) <= sizeof(n->dht_saved) / sizeof(n->dht_saved[0]),
		       "dht_saved too small");
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (c[i].v > n->dht_saved[i] &&
		    sp_wtxn_counter_add(tx, c[i].name, c[i].v - n->dht_saved[i]) == 0)
			n->dht_saved[i] = c[i].v;
	/* peer records waiting: into this transaction */
	sp_dht_drain(n->dht, merge_peer, tx, 8192);
}

/* Writer thread, inside each transaction: counter increases since the last. */
static void collect(sp_wtxn *tx, void *ud)
{
	struct node *n = ud;
	if (n->dht)
		collect_dht(tx, n);
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

/* Producer threads: the keys these events touch wait for the DHT publisher
 * (which reads them from the store once folded). */
static void on_submit(sp_prepared *const *p, size_t count, void *ud)
{
	struct node *n = ud;
	sp_dht *d = atomic_load_explicit(&n->dht_for_producers, memory_order_acquire);
	if (d)
		sp_dht_note_prepared(d, p, count);
}

/* DHT thread: peer records wait; have the writer take them soon. */
static void wake_writer(void *ud)
{
	struct node *n = ud;
	pthread_mutex_lock(&n->kick_lock);
	if (n->kick_w)
		sp_writer_kick(n->kick_w);
	pthread_mutex_unlock(&n->kick_lock);
}

static json_t *status_json(struct node *n)
{
	json_t *j = json_object();
	json_object_set_new(j, "version", json_string(SP_VERSION));
	json_object_set_new(j, "uptime_s",
			    json_integer((json_int_t)((sp_mono_ns() - n->started_ns) / SP_NS_PER_SEC)));
	json_object_set_new(j, "sharing", json_boolean(n->cfg.peer_to_peer));
	if (n->id)
		json_object_set_new(j, "key_id", json_string(sp_identity_keyid(n->id)));
	if (n->dht) {
		struct sp_dht_stats s;
		char ts[SP_TIMESTAMP_LEN];
		sp_dht_get_stats(n->dht, &s);
		json_t *d = json_object();
		json_object_set_new(d, "connected", json_boolean(s.connected));
		json_object_set_new(d, "port", json_integer(s.port));
		json_object_set_new(d, "network", json_integer((json_int_t)n->cfg.dht_network));
		json_object_set_new(d, "proxy", n->cfg.dht_proxy && *n->cfg.dht_proxy
			? json_string(n->cfg.dht_proxy) : json_null());
		json_object_set_new(d, "last_contact", s.last_contact_ns
			? json_string(sp_timestamp_format_sec(s.last_contact_ns, ts)) : json_null());
		json_object_set_new(d, "peers_reporting", json_integer((json_int_t)s.peers));
		json_object_set_new(d, "puts", json_integer((json_int_t)s.puts));
		json_object_set_new(d, "puts_ok", json_integer((json_int_t)s.puts_ok));
		json_object_set_new(d, "puts_failed", json_integer((json_int_t)s.puts_failed));
		json_object_set_new(d, "gets", json_integer((json_int_t)s.gets));
		json_object_set_new(d, "values_received", json_integer((json_int_t)s.values_received));
		json_object_set_new(d, "values_accepted", json_integer((json_int_t)s.values_accepted));
		json_object_set_new(d, "records_accepted", json_integer((json_int_t)s.records_accepted));
		json_object_set_new(d, "published_records", json_integer((json_int_t)s.published_records));
		json_object_set_new(d, "published_batches", json_integer((json_int_t)s.published_batches));
		json_object_set_new(d, "publish_deferred", json_integer((json_int_t)s.deferred_budget));
		json_t *r = json_object();
		for (int i = 0; i < SP_REJ_N; i++)
			json_object_set_new(r, sp_dht_reject_name(i), json_integer((json_int_t)s.rejected[i]));
		json_object_set_new(d, "rejected", r);
		json_object_set_new(d, "backfill_hours_done", json_integer((json_int_t)s.backfill_hours_done));
		json_object_set_new(d, "backfill_hours_total", json_integer((json_int_t)s.backfill_hours_total));
		json_object_set_new(j, "dht", d);
	}
	return j;
}

/* Control socket requests (control.h). */
static void on_control(const char *line, FILE *out, void *ud)
{
	struct node *n = ud;
	char kind[16], key[SP_KEY_MAX + 1];
	unsigned long ms;
	if (strcmp(line, "status") == 0) {
		json_t *j = status_json(n);
		json_dumpf(j, out, JSON_COMPACT);
		fputc('\n', out);
		json_decref(j);
		return;
	}
	if (sscanf(line, "lookup %15s %64s %lu", kind, key, &ms) == 3) {
		enum sp_kind k;
		char norm[SP_KEY_MAX];
		if (!n->dht) {
			fprintf(out, "error %s\n", sp_strerror(SP_ENOSHARE));
			return;
		}
		if (sp_key_classify(key, &k, norm) || strcmp(kind, sp_kind_name(k)) != 0) {
			fprintf(out, "error bad key\n");
			return;
		}
		if (ms > 60000)
			ms = 60000;
		sp_agg *a = malloc(sizeof(*a));
		int rc = a ? sp_dht_lookup(n->dht, k, norm, ms * 1000000ull, a) : -ENOMEM;
		if (rc == 0) {
			char *hex = sp_agg_to_hex(a);
			fprintf(out, "found %s\n", hex ? hex : "");
			free(hex);
		} else if (rc == SP_ENOTFOUND) {
			fputs("notfound\n", out);
		} else if (rc == SP_ETIMEDOUT) {
			fputs("timeout\n", out);
		} else {
			fprintf(out, "error %s\n", sp_strerror(rc));
		}
		free(a);
		return;
	}
	fputs("error unknown request (lookup, status)\n", out);
}

/* The control socket: made before dropping root, then given to the user
 * the node runs as, so that user's CLI can reach it (mode 0600). */
static int start_control(struct node *n)
{
	struct sp_config *cfg = &n->cfg;
	char path[PATH_MAX];
	int rc;

	if (!sp_control_path(cfg->data_dir, path, sizeof(path))) {
		log_warn("data directory path too long for the control socket; the CLI cannot "
			 "reach this node");
		return 0;
	}
	if ((rc = sp_control_start(&n->ctl, path, on_control, n))) {
		if (rc == -EADDRINUSE) {
			log_error("another node is running on this data directory (%s)", path);
			return rc;
		}
		log_warn("no control socket at %s: %s; the CLI cannot reach this node", path,
			 sp_strerror(rc));
	}
	if (n->ctl && geteuid() == 0 && cfg->run_user && *cfg->run_user) {
		struct passwd *pw = getpwnam(cfg->run_user);
		/* lchown: in a directory that user owns, what is at the path
		 * by now may be a link; root must not give away its target */
		if (pw && lchown(path, pw->pw_uid, pw->pw_gid) != 0)
			log_warn("cannot give %s to user %s: %s", path, cfg->run_user, strerror(errno));
	}
	return 0;
}

static int start_sharing(struct node *n)
{
	struct sp_config *cfg = &n->cfg;
	int rc;

	if (cfg->peer_to_peer) {
		struct sp_dht_options o;
		sp_share_options(cfg, &o, &n->lists);
		o.id = n->id;
		o.store = n->st;
		o.publish = true;
		o.listen = true;
		o.wake = wake_writer;
		o.ud = n;
		if ((rc = sp_dht_start(&n->dht, &o)))
			return rc;
		atomic_store_explicit(&n->dht_for_producers, n->dht, memory_order_release);
		struct sp_dht_stats ds;
		sp_dht_get_stats(n->dht, &ds);
		if (o.proxy && *o.proxy)
			log_info("sharing over the DHT as %s (network %llu) through the proxy %s",
				 sp_identity_keyid(n->id), (unsigned long long)cfg->dht_network, o.proxy);
		else if (o.n_bootstrap)
			log_info("sharing over the DHT as %s (network %llu, UDP port %u, bootstrap %s%s)",
				 sp_identity_keyid(n->id), (unsigned long long)cfg->dht_network,
				 (unsigned)ds.port, o.bootstrap[0], o.n_bootstrap > 1 ? ", ..." : "");
		else
			log_info("sharing over the DHT as %s (network %llu, UDP port %u, no bootstrap: "
				 "waiting for peers to join)",
				 sp_identity_keyid(n->id), (unsigned long long)cfg->dht_network,
				 (unsigned)ds.port);
	} else {
		log_info("sharing is off (--no-share): nothing is published and no peer data is taken");
	}
	return 0;
}

/* The directory that holds the store file at path. */
static void store_dir(const char *path, char *dir, size_t len)
{
	snprintf(dir, len, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, len, ".");
}

/* The store follows its directory: when the directory belongs to the user
 * the node switches to, so do the store and its lock file, which the
 * writer opens again by path after a flood (sp_store_reopen). A directory
 * root keeps, and what is in it, stay root's. */
static void give_store(sp_store *st, const struct passwd *pw)
{
	char dir[PATH_MAX];
	struct stat sb;
	store_dir(sp_store_path(st), dir, sizeof(dir));
	if (stat(dir, &sb) != 0 || sb.st_uid != pw->pw_uid)
		return;
	int rc = sp_store_give(st, pw->pw_uid, pw->pw_gid);
	if (rc)
		log_warn("cannot give %s to user %s: %s", sp_store_path(st), pw->pw_name,
			 sp_strerror(rc));
}

/* Root opens the store before it switches users: in a directory another
 * user may write, the store and lock file must be plain files of their
 * own, not links that make root write elsewhere. */
static int root_check_store(const struct sp_config *cfg)
{
	char path[PATH_MAX], lock[PATH_MAX + 8];
	struct stat sb;
	if (geteuid() != 0)
		return 0;
	sp_config_db_path(cfg, path, sizeof(path));
	snprintf(lock, sizeof(lock), "%s-lock", path);
	const char *files[] = { path, lock };
	for (int i = 0; i < 2; i++) {
		if (lstat(files[i], &sb) != 0)
			continue;
		if (!S_ISREG(sb.st_mode) || sb.st_nlink > 1) {
			log_error("refusing to open %s as root: %s", files[i],
				  S_ISLNK(sb.st_mode) ? "it is a symbolic link"
				  : S_ISREG(sb.st_mode) ? "it has other hard links"
							: "not a regular file");
			return -EPERM;
		}
	}
	return 0;
}

/* Root opens the store in a directory the node's user owns as that user
 * (setfsuid/setfsgid, no supplementary groups). LMDB opens the store and
 * its lock file by path after root_check_store() looked at them: a link
 * swapped in between then reaches only what the user may write anyway.
 * Store files root made there (`sentrypeer import` as root) are handed to
 * the user first, each opened without following a link and only if it is
 * a file of its own. Left open: the directory's owner is read by path, so
 * a user who also controls its parent could make it look like root's. */
static int open_store(const struct sp_config *cfg, sp_store **st)
{
	char path[PATH_MAX], lock[PATH_MAX + 8], dir[PATH_MAX];
	struct stat sb;
	struct passwd *pw = NULL;
	if (root_check_store(cfg))
		return -EPERM;
	if (geteuid() == 0 && cfg->run_user && *cfg->run_user) {
		sp_config_db_path(cfg, path, sizeof(path));
		store_dir(path, dir, sizeof(dir));
		if (stat(dir, &sb) == 0 && sb.st_uid != 0 && (pw = getpwnam(cfg->run_user)) &&
		    sb.st_uid != pw->pw_uid)
			pw = NULL;
	}
	if (!pw)
		return cli_open_store(cfg, false, true, st);
	const uid_t uid = pw->pw_uid;
	const gid_t gid = pw->pw_gid;
	const char *user = cfg->run_user;
	if (setgroups(0, NULL) != 0) {
		int err = errno;
		log_error("cannot drop supplementary groups: %s", strerror(err));
		return -err;
	}
	snprintf(lock, sizeof(lock), "%s-lock", path);
	const char *files[] = { path, lock };
	for (int i = 0; i < 2; i++) {
		int fd = sp_open_plain(files[i], O_RDONLY, 0), err = 0;
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			err = -fd;
		else if (fchown(fd, uid, gid) != 0)
			err = errno;
		if (fd >= 0)
			close(fd);
		if (err) {
			log_error("cannot give %s to user %s: %s", files[i], user,
				  err == ELOOP || err == EINVAL ? "not a regular file of its own"
								: strerror(err));
			return -err;
		}
	}
	const int old_gid = setfsgid(gid), old_uid = setfsuid(uid);
	if ((uid_t)setfsuid(uid) != uid || (gid_t)setfsgid(gid) != gid) {
		setfsuid((uid_t)old_uid);
		setfsgid((gid_t)old_gid);
		log_error("cannot open the store as user %s (setfsuid)", user);
		return -EPERM;
	}
	/* a user who cannot reach or write the directory (a parent closed to
	 * it) could not reopen the store either: root opens it, as before */
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		close(dfd);
	if (dfd < 0 || (sb.st_mode & (S_IWUSR | S_IXUSR)) != (S_IWUSR | S_IXUSR)) {
		setfsuid((uid_t)old_uid);
		setfsgid((gid_t)old_gid);
		log_debug("user %s cannot reach or write %s: root opens the store", user, dir);
		return cli_open_store(cfg, false, true, st);
	}
	log_debug("opening the store as user %s, who owns %s", user, dir);
	int rc = cli_open_store(cfg, false, true, st);
	setfsuid((uid_t)old_uid);
	setfsgid((gid_t)old_gid);
	if (rc == SP_EACCESS || rc == -EACCES)
		log_error("root opened the store in %s as user %s, who owns that directory, and "
			  "that user may not open it", dir, user);
	return rc;
}

static int drop_privileges(const char *user, sp_store *st)
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
	if (st)
		give_store(st, pw);
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
	if ((rc = drop_privileges(cfg->run_user, n->st)))
		return rc;
	if ((rc = sp_listeners_run(n->ls))) {
		log_error("cannot start the SIP listeners: %s", sp_strerror(rc));
		return rc;
	}
	log_info("SIP honeypot running (%s mode)", cfg->sip_responsive ? "responsive" : "passive");
	return 0;
}

/* The HTTP API (api.h): opened before the honeypot gives up root (the
 * token file, the port), run once the parts whose counters it shows run.
 * Stopped first, before what it reads. */
static int open_api(struct node *n)
{
	struct sp_api_options o;
	char *token = NULL;
	int rc = sp_api_options_from_config(&o, &n->cfg, &token);
	if (rc == 0)
		rc = sp_api_open(&n->api, n->st, &o);
	free(token);
	return rc;
}

static int api_dht_lookup(void *ud, enum sp_kind kind, const char *key, uint64_t timeout_ns,
			  sp_agg *out)
{
	struct node *n = ud;
	return sp_dht_lookup(n->dht, kind, key, timeout_ns, out);
}

static void api_dht_status(void *ud, struct sp_api_dht_status *out)
{
	struct node *n = ud;
	struct sp_dht_stats s;
	sp_dht_get_stats(n->dht, &s);
	out->connected = s.connected;
	out->sharing = true;
	out->peers = s.peers;
	out->puts = s.puts;
	out->puts_failed = s.puts_failed;
	out->gets = s.gets;
	out->values_accepted = s.values_accepted;
	uint64_t rej = 0;
	for (int i = 0; i < SP_REJ_N; i++)
		rej += s.rejected[i];
	out->values_rejected = rej;
	snprintf(out->node_id, sizeof(out->node_id), "%s", sp_identity_keyid(n->id));
}

static int run_api(struct node *n)
{
	static struct sp_api_dht dht;
	struct sp_api_live live = { .writer = n->w, .honeypot = n->hp, .listeners = n->ls };
	if (n->dht) {
		dht = (struct sp_api_dht){ .ud = n, .lookup = api_dht_lookup, .status = api_dht_status };
		live.dht = &dht;
	}
	return n->api ? sp_api_run(n->api, &live) : 0;
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
			 "queue full %llu, store %llu; fold catch-up commits %llu)",
			 (unsigned long long)(dropped - *last_dropped), (unsigned long long)kernel,
			 (unsigned long long)ws.dropped_queue_full, (unsigned long long)ws.dropped_store,
			 (unsigned long long)ws.catch_ups);
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

	/* A node stays small between floods: blocks of 128 KiB and more get
	 * pages of their own and give them back when freed. glibc otherwise
	 * raises this threshold to the largest block freed, and a big buffer
	 * allocated later (LMDB's 2 MiB dirty list, when the writer reopens
	 * the store) is cleared in the heap, where it stays resident. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	memset(&n, 0, sizeof(n));
	pthread_mutex_init(&n.kick_lock, NULL);
	n.started_ns = sp_mono_ns();
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

	if (open_store(&n.cfg, &n.st))
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
		uint8_t nid[16];
		sp_store_node_id(n.st, nid);
		/* the default log is in the data directory: no links there */
		if (sp_events_out_open(&n.out, jpath, !n.cfg.json_log_file, n.cfg.syslog, nid))
			goto out;
	}
	struct sp_writer_options wo = {
		.queue_max = n.cfg.queue_size,
		.queue_bytes_max = n.cfg.queue_memory,
		.batch_max = n.cfg.batch_size,
		.sweep_interval_ns = n.cfg.sweep_interval_ns,
		.on_events = n.out ? on_events : NULL, /* decoding for no output costs */
		.on_submit = n.cfg.peer_to_peer ? on_submit : NULL,
		.collect = collect,
		.ud = &n,
	};
	if (n.cfg.peer_to_peer) {
		bool created = false;
		if ((rc = sp_identity_open(&n.id, n.cfg.data_dir, true, &created))) {
			log_error("cannot open the node identity %s/%s: %s", n.cfg.data_dir,
				  SP_IDENTITY_FILE, sp_strerror(rc));
			goto out;
		}
		if (created)
			log_info("made a new node identity: key id %s", sp_identity_keyid(n.id));
	}
	sp_raw_set_enabled(n.cfg.store_compress);
	if ((rc = sp_writer_start(&n.w, n.st, &wo))) {
		log_error("cannot start the writer: %s", sp_strerror(rc));
		goto out;
	}
	pthread_mutex_lock(&n.kick_lock);
	n.kick_w = n.w;
	pthread_mutex_unlock(&n.kick_lock);
	log_info("sentrypeer %s running: store %s, retention %s, sync %s", SP_VERSION,
		 sp_config_db_path(&n.cfg, path, sizeof(path)),
		 sp_duration_format(n.cfg.retention_ns, d, sizeof(d)),
		 (const char *[]){ "full", "nometa", "none" }[n.cfg.sync]);
	if (start_control(&n))
		goto out;
	if (n.cfg.api && open_api(&n))
		goto out;
	if (start_honeypot(&n))
		goto out;
	/* SIP off: no ports bound by the honeypot, but root is dropped all the same */
	if (!n.ls && drop_privileges(n.cfg.run_user, n.st))
		goto out;
	if (start_sharing(&n) || run_api(&n))
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
	sp_api_stop(n.api); /* it reads the store and the counters below */
	sp_control_stop(n.ctl);
	sp_listeners_stop(n.ls); /* no new events; their counters stay readable */
	if (n.w) {
		pthread_mutex_lock(&n.kick_lock);
		n.kick_w = NULL;
		pthread_mutex_unlock(&n.kick_lock);
		sp_writer_stop(n.w); /* commits and folds what is queued, saves the counters */
	}
	atomic_store(&n.dht_for_producers, NULL);
	sp_dht_stop(n.dht);
	sp_share_options_free(&n.lists);
	sp_identity_free(n.id);
	pthread_mutex_destroy(&n.kick_lock);
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
