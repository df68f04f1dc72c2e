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

#endif
