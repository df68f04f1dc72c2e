/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Error codes shared by every module.
 *
 * Functions return int: 0 on success, a negative errno value for a system
 * error, an LMDB code (-30800..-30780) passed through from the store, or one
 * of the SP_E* codes below, which live in a range of their own.  A published
 * code is never renumbered; retired ones stay as SP_E_OBSOLETE_*.
 */
#ifndef SP_ERROR_H
#define SP_ERROR_H

enum sp_error {
	SP_OK = 0,
	SP_ENOTFOUND = -40001,  /* no such record */
	SP_EBADIP = -40002,     /* not an IPv4 or IPv6 address */
	SP_EBADNUMBER = -40003, /* not a telephone number */
	SP_ECORRUPT = -40004,   /* a stored record does not decode */
	SP_ESCHEMA = -40005,    /* store written by a newer schema version */
	SP_EFOREIGN = -40006,   /* file is not a SentryPeer store */
	SP_ENOSTORE = -40007,   /* no store at the given path */
	SP_EQUEUEFULL = -40008, /* writer queue full, event dropped */
	SP_ETOOBIG = -40009,    /* input larger than its cap */
	SP_EFULL = -40010,      /* store map is full */
	SP_EPARSE = -40011,     /* malformed input (codec, config, json) */
	SP_ESTOPPED = -40012,   /* writer is shutting down */
	SP_EACCESS = -40013,    /* store path not readable/writable by us */
	SP_EBADSIG = -40014,    /* signature missing or does not verify */
	SP_EEXPIRED = -40015,   /* a peer value past its expiry */
	SP_EKEYMISMATCH = -40016, /* a peer value found under another key */
	SP_ETIMEDOUT = -40017,  /* the network did not answer in time */
	SP_EDENIED = -40018,    /* refused by the trust settings */
	SP_ERATELIMIT = -40019, /* over its rate limit */
	SP_EKEYPERM = -40020,   /* identity file readable by others */
	SP_ENOSHARE = -40021,   /* sharing is off (tit for tat) */
	SP_ENONODE = -40022,    /* no running node to ask */
	SP_ECLOSED = -40023,    /* the store's environment could not be reopened */
};

/* Explain any code this project returns: ours, LMDB's or -errno. The
 * returned string is static. */
const char *sp_strerror(int err);
/* The same, for a failed write to the store: LMDB reports a short write
 * (a full disk, mostly) as EIO, so say so. */
const char *sp_strerror_write(int err);

#endif
