/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_error.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>

const char *sp_strerror(int err)
{
	switch (err) {
	case SP_OK: return "success";
	case SP_ENOTFOUND: return "not found";
	case SP_EBADIP: return "not a valid IPv4 or IPv6 address";
	case SP_EBADNUMBER: return "not a valid telephone number (digits, optionally after + or 00)";
	case SP_ECORRUPT: return "stored record is corrupt";
	case SP_ESCHEMA: return "store was written by a newer version of sentrypeer; upgrade to read it";
	case SP_EFOREIGN: return "file is not a SentryPeer store";
	case SP_ENOSTORE: return "no store there yet (start the node or import data first)";
	case SP_EQUEUEFULL: return "writer queue is full; event dropped";
	case SP_ETOOBIG: return "input is larger than allowed";
	case SP_EFULL: return "store is full: raise map-size or lower retention";
	case SP_EPARSE: return "malformed input";
	case SP_ESTOPPED: return "writer is stopped";
	case SP_EACCESS: return "permission denied on the store (run as the node's user)";
	case SP_EBADSIG: return "signature missing or invalid";
	case SP_EEXPIRED: return "expired";
	case SP_EKEYMISMATCH: return "value is not for the key it was stored under";
	case SP_ETIMEDOUT: return "the DHT did not answer in time";
	case SP_EDENIED: return "refused by the trust settings (dht-allow / dht-deny)";
	case SP_ERATELIMIT: return "over the rate limit";
	case SP_EKEYPERM: return "identity file is readable by others (chmod 600 it)";
	case SP_ENOSHARE: return "sharing is off (--no-share): this node neither gives nor gets peer data";
	case SP_ENONODE: return "no running node to ask";
	case SP_ECLOSED: return "the store could not be reopened (see the log)";
	case MDB_MAP_FULL: return "store is full: raise map-size or lower retention";
	case MDB_INVALID: return "file is not an LMDB store (corrupt or foreign file)";
	case MDB_VERSION_MISMATCH: return "store was made by an incompatible LMDB version";
	default: break;
	}
	if (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)
		return mdb_strerror(err);
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

const char *sp_strerror_write(int err)
{
	if (err == -EIO || err == -ENOSPC || err == -EDQUOT)
		return "write failed: disk full or I/O error (free space, then retry)";
	return sp_strerror(err);
}
