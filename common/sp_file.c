/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int sp_open_plain(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	struct stat sb;
	int err = 0;
	if (fstat(fd, &sb) != 0)
		err = errno;
	else if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1)
		err = EINVAL;
	else if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & O_APPEND) != 0)
		err = errno;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}
