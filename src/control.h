/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The node's control socket: DATA_DIR/sentrypeer.sock, a Unix stream socket
 * only its owner may use (mode 0600). The CLI asks a running node through
 * it, so `sentrypeer lookup` uses the node's warm DHT connection.
 *
 * Protocol: the client sends one line (at most 512 bytes); the node answers
 * with lines and closes. Requests:
 *     lookup ip|number KEY TIMEOUT_MS  ->  "found HEX" (an encoded sp_agg
 *                                          of the peer reports), "notfound",
 *                                          "timeout" or "error TEXT"
 *     status                           ->  one JSON object
 */
#ifndef SP_CONTROL_H
#define SP_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SP_CONTROL_FILE "sentrypeer.sock"
#define SP_CONTROL_LINE_MAX 512

typedef struct sp_control sp_control;

/* Handles one request line; writes the answer to out. Runs on a thread of
 * its own per connection (at most a few at once). */
typedef void (*sp_control_fn)(const char *line, FILE *out, void *ud);

int sp_control_start(sp_control **out, const char *path, sp_control_fn fn, void *ud);
/* Stops accepting, waits for the requests being answered, frees c. */
void sp_control_stop(sp_control *c);

/* Client: send line, read the answer (NUL-terminated, malloc'd) within
 * timeout_ns. Returns 0, SP_ENONODE when no node listens there,
 * SP_ETIMEDOUT, or -errno. */
int sp_control_ask(const char *path, const char *line, uint64_t timeout_ns, char **answer);

/* DATA_DIR/sentrypeer.sock into buf; NULL if it does not fit. */
const char *sp_control_path(const char *data_dir, char *buf, size_t len);

#endif
