/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#ifndef SP_THREAD_H
#define SP_THREAD_H

/* Names the calling thread (at most 15 characters show, in top -H and
 * /proc/PID/task/TID/comm). */
void sp_thread_name(const char *name);

/* Names the calling thread and marks it as throughput work (SCHED_BATCH,
 * the same nice level): its wake-ups do not preempt a running thread, so
 * a flood of SIP datagrams or the writer's commits do not add to the
 * latency of API lookups that a VoIP server waits on. Its share of the
 * CPU under load is unchanged. Failure is ignored. */
void sp_thread_background(const char *name);

/* Marks the calling thread as latency work, once (later calls return
 * at once): a short time slice, SP_THREAD_LATENCY_SLICE_NS, asked for
 * with sched_setattr(2)'s sched_runtime. Since Linux 6.12 (EEVDF) a
 * thread with a shorter slice gets an earlier deadline when it wakes and
 * preempts a thread running a longer one (a time-slice, 0.75-3 ms, that
 * an API lookup would otherwise wait behind); its share of the CPU is
 * unchanged. Older kernels accept and ignore it. Only the slice changes
 * (sched_getattr first); a thread not under SCHED_OTHER (chrt, systemd's
 * CPUSchedulingPolicy) is left alone. For the API's threads, which a VoIP
 * server waits on in call set-up. Returns 0 or -errno. */
#define SP_THREAD_LATENCY_SLICE_NS 100000u /* the kernel's least: 0.1 ms */
int sp_thread_latency(void);

#endif
