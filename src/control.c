/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "control.h"

#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"
#include "sp_thread.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_ACTIVE 8
#define ANSWER_MAX (1u << 20)

struct sp_control {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	sp_control_fn fn;
	void *ud;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	bool stopping;
	int active;
};

struct conn {
	sp_control *c;
	int fd;
};

const char *sp_control_path(const char *data_dir, char *buf, size_t len)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = snprintf(buf, len, "%s/%s", data_dir, SP_CONTROL_FILE);
	return n > 0 && (size_t)n < len && (size_t)n < max ? buf : NULL;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* One line, bounded in size and time. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	if (n + 1 >= len)
		return -1;
	buf[n] = '\0';
	return 0;
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	sp_control *c = cn->c;
	char line[SP_CONTROL_LINE_MAX];
	struct timeval tv = { 2, 0 };
	setsockopt(cn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	FILE *out = NULL;
	if (read_line(cn->fd, line, sizeof(line)) == 0 && (out = fdopen(cn->fd, "w"))) {
		c->fn(line, out, c->ud);
		fclose(out); /* closes fd */
	} else {
		close(cn->fd);
	}
	free(cn);
	pthread_mutex_lock(&c->lock);
	if (--c->active == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void *accept_main(void *arg)
{
	sp_control *c = arg;
	sp_thread_name("sp-control");
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		struct pollfd p = { c->fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&c->lock);
		bool full = c->active >= MAX_ACTIVE;
		if (!full)
			c->active++;
		pthread_mutex_unlock(&c->lock);
		if (full) {
			static const char busy[] = "error busy: too many requests at once\n";
			(void)!write(fd, busy, sizeof(busy) - 1);
			close(fd);
			continue;
		}
		struct conn *cn = malloc(sizeof(*cn));
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (cn) {
			cn->c = c;
			cn->fd = fd;
		}
		if (!cn || pthread_create(&t, &at, conn_main, cn) != 0) {
			free(cn);
			close(fd);
			pthread_mutex_lock(&c->lock);
			c->active--;
			pthread_mutex_unlock(&c->lock);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int sp_control_start(sp_control **out, const char *path, sp_control_fn fn, void *ud)
{
	struct sockaddr_un sa;
	int rc = unix_addr(path, &sa);
	*out = NULL;
	if (rc)
		return rc;
	/* a node already answering there: refuse; a stale file: replace. Only
	 * a socket is asked: root must not connect through a link planted in
	 * a data directory the node's user owns (the link itself is removed) */
	struct stat sb;
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
		char *answer = NULL;
		rc = sp_control_ask(path, "status", SP_NS_PER_SEC, &answer);
		free(answer);
		if (rc == 0)
			return -EADDRINUSE;
	}
	unlink(path);
	sp_control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->fn = fn;
	c->ud = ud;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* the socket file: owner only */
	rc = c->fd < 0 ? -errno : bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (rc == 0 && listen(c->fd, 16) != 0)
		rc = -errno;
	if (rc == 0 && (rc = -pthread_create(&c->thread, NULL, accept_main, c)) != 0)
		unlink(path);
	if (rc) {
		if (c->fd >= 0)
			close(c->fd);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->idle);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void sp_control_stop(sp_control *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	close(c->fd);
	unlink(c->path);
	pthread_mutex_lock(&c->lock);
	while (c->active)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
}

int sp_control_ask(const char *path, const char *line, uint64_t timeout_ns, char **answer)
{
	struct sockaddr_un sa;
	int rc = unix_addr(path, &sa);
	*answer = NULL;
	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno;
		close(fd);
		return rc == ENOENT || rc == ECONNREFUSED ? SP_ENONODE : -rc;
	}
	uint64_t end = sp_mono_ns() + timeout_ns;
	size_t n = strlen(line), len = 0, cap = 4096;
	char *buf = malloc(cap);
	if (!buf || write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
		free(buf);
		close(fd);
		return buf ? -EPIPE : -ENOMEM;
	}
	for (;;) {
		uint64_t now = sp_mono_ns();
		if (now >= end) {
			rc = SP_ETIMEDOUT;
			break;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		int pr = poll(&p, 1, (int)((end - now) / 1000000 + 1));
		if (pr <= 0)
			continue;
		if (len + 1 >= cap) {
			char *nb = cap < ANSWER_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				rc = SP_ETOOBIG;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r == 0 ? 0 : -errno;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*answer = buf;
	return 0;
}
