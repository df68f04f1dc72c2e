/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_thread.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

void sp_thread_name(const char *name)
{
	char n[16];
	size_t len = strlen(name);
	if (len > sizeof(n) - 1)
		len = sizeof(n) - 1;
	memcpy(n, name, len);
	n[len] = '\0';
	pthread_setname_np(pthread_self(), n);
}

void sp_thread_background(const char *name)
{
	struct sched_param p = { .sched_priority = 0 };
	sp_thread_name(name);
	pthread_setschedparam(pthread_self(), SCHED_BATCH, &p);
}
