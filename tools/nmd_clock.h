/*
 * nmd_clock.h: wall and CPU clocks for the project's traffic programs and
 * benchmarks (tools/, bench/, Tests/net).
 */
#ifndef NMD_CLOCK_H
#define NMD_CLOCK_H

#include <sys/resource.h>
#include <time.h>

/* Monotonic seconds. */
static inline double nmd_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* User + system CPU seconds of this process. */
static inline double nmd_cpu(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
	       (double)u.ru_stime.tv_usec * 1e-6;
}

#endif
