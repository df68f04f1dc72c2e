/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_thread.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
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
	static __thread int done; /* 1 when set, -errno when refused */
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
	} a = {
		.size = sizeof(a),
		.sched_policy = SCHED_OTHER,
		.sched_nice = getpriority(PRIO_PROCESS, (id_t)gettid()), /* as it was */
		.sched_runtime = SP_THREAD_LATENCY_SLICE_NS,
	};
	done = syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 1 : -errno;
	return done < 0 ? done : 0;
}
