/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_thread.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

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

int sp_thread_latency(void)
{
	static __thread int done; /* 1 when set or left alone, -errno when refused */
	if (done)
		return done < 0 ? done : 0;
	/* struct sched_attr of sched_setattr(2); glibc 2.36 has no wrapper,
	 * and <linux/sched/types.h> clashes with <sched.h> */
	struct {
		uint32_t size, sched_policy;
		uint64_t sched_flags;
		int32_t sched_nice;
		uint32_t sched_priority;
		uint64_t sched_runtime, sched_deadline, sched_period;
	} a;
	_Static_assert(sizeof(a) == 48, "sched_attr, version 0");
	memset(&a, 0, sizeof(a));
	/* only the slice changes: policy, nice and flags stay what the
	 * operator set (chrt, systemd); other policies are left alone */
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0) {
		done = -errno;
		return done;
	}
	done = 1;
	if (a.sched_policy != SCHED_OTHER)
		return 0;
	a.size = sizeof(a);
	a.sched_flags &= 0x01; /* SCHED_FLAG_RESET_ON_FORK; clamps need a larger struct */
	a.sched_runtime = SP_THREAD_LATENCY_SLICE_NS;
	if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
		done = -errno;
	return done < 0 ? done : 0;
}
