/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#ifndef SP_FILE_H
#define SP_FILE_H

#include <sys/types.h>

/* Opens a file the node keeps in its data directory, which may belong to
 * the user a root node switches to: only a regular file at that very path
 * with no other hard link (O_NOFOLLOW; opened O_NONBLOCK so a FIFO cannot
 * hold the open, then blocking again). flags as for open(2) (O_CLOEXEC is
 * added). Returns the descriptor, or -errno: -ELOOP for a symbolic link,
 * -EINVAL for anything not a regular file of its own. */
int sp_open_plain(const char *path, int flags, mode_t mode);

#endif
