/*
 * fuse_smoke.c: drives the FUSE-file front end through a real file, against
 * the fake device of Tests/FUSEProbe (see its header for what the fake
 * answers). Built and run by Tests/device/fuse-smoke.sh.
 *
 *   fuse_smoke test  PATH REGION_SIZE   functional checks, TAP-style lines,
 *                                       "N passed, N failed"; exit 1 on failure
 *   fuse_smoke bench PATH COUNT         NIOCTXSYNC round trip in us/call
 *   fuse_smoke hold  PATH               open, sleep in poll on a second thread,
 *                                       print "held", wait for a line on stdin
 *                                       (the daemon stops meanwhile), then
 *                                       expect the sleeping poll to have ended,
 *                                       ioctl to fail with ENOTCONN/ENODEV and
 *                                       a new poll not to hang
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"

#define PROBE_CHECK_REGION _IO('N', 0x42)
#define PROBE_COUNTERS     _IOR('N', 0x43, struct counters)
#define PROBE_NEVER_READY  _IO('N', 0x44)
#define BODY_SIZE 56

struct counters {
	uint32_t opens, releases, double_releases, wakes;
};

static int passed, failed;

static void check(int ok, const char *what)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("not ok - %s (errno %d: %s)\n", what, errno, strerror(errno));
	}
	fflush(stdout);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

static int counters(int fd, struct counters *c)
{
	memset(c, 0xff, sizeof(*c));
	return ioctl(fd, PROBE_COUNTERS, c);
}

/* Waits until the fake has seen `releases` releases (RELEASE is sent in the
 * background after close). */
static int wait_releases(int fd, uint32_t releases, struct counters *c)
{
	for (int i = 0; i < 200; i++) {
		if (counters(fd, c) != 0)
			return -1;
		if (c->releases >= releases)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* NIOCGINFO: 60 bytes in, every byte + 1 back. */
static int ginfo_roundtrip(int fd)
{
	unsigned char req[sizeof(struct nmreq)];
	for (size_t i = 0; i < sizeof(req); i++)
		req[i] = (unsigned char)i;
	if (ioctl(fd, NIOCGINFO, req) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(req); i++)
		if (req[i] != (unsigned char)(i + 1))
			return 0;
	return 1;
}

/* NIOCCTRL: header in the argument, body fetched by process_vm_readv from
 * the calling thread and written back by process_vm_writev. */
static int ctrl_roundtrip(int fd)
{
	struct nmreq_header hdr;
	unsigned char body[BODY_SIZE];
	memset(&hdr, 0, sizeof(hdr));
	hdr.nr_version = NETMAP_API;
	hdr.nr_reqtype = NETMAP_REQ_REGISTER;
	strcpy(hdr.nr_name, "probe0");
	for (int i = 0; i < BODY_SIZE; i++)
		body[i] = (unsigned char)(0x11 * i);
	hdr.nr_body = (uint64_t)(uintptr_t)body;
	if (ioctl(fd, NIOCCTRL, &hdr) != 0)
		return 0;
	if (strcmp(hdr.nr_name, "fake-done") != 0 || hdr.nr_body != (uint64_t)(uintptr_t)body ||
	    hdr.nr_version != NETMAP_API)
		return 0;
	for (int i = 0; i < BODY_SIZE; i++)
		if (body[i] != (unsigned char)((0x11 * i) ^ 0x5a))
			return 0;
	return 1;
}

static void *ctrl_thread(void *arg)
{
	return (void *)(intptr_t)ctrl_roundtrip(*(int *)arg);
}

static int run_tests(const char *path, size_t region_size)
{
	struct counters c0, c;
	int fd = open(path, O_RDWR);
	check(fd >= 0, "open O_RDWR");
	if (fd < 0)
		return 1;

	struct stat st;
	check(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == region_size &&
	      (st.st_mode & 07777) == 0666, "fstat: regular file, region size, mode 0666");

	check(counters(fd, &c0) == 0 && c0.opens >= 1, "_IOR ioctl written back by process_vm_writev");

	{
		int fdt = open(path, O_RDWR | O_TRUNC);
		struct stat st2;
		check(fdt >= 0 && fstat(fdt, &st2) == 0 && (size_t)st2.st_size == region_size,
		      "open with O_TRUNC: allowed, size unchanged");
		if (fdt >= 0)
			close(fdt);
		errno = 0;
		check(chmod(path, 0600) == -1 && errno == EPERM, "chmod: EPERM");
	}

	check(ginfo_roundtrip(fd), "NIOCGINFO (_IOWR 60 bytes) returns the fake's bytes");
	check(ctrl_roundtrip(fd), "NIOCCTRL (_IOWR 88 bytes) with .needMemory body, body written back");

	pthread_t t;
	void *ok = 0;
	check(pthread_create(&t, NULL, ctrl_thread, &fd) == 0 && pthread_join(t, &ok) == 0 && ok,
	      "NIOCCTRL from a second thread (caller memory by tid)");

	{
		struct nmreq_header hdr;
		memset(&hdr, 0, sizeof(hdr));
		hdr.nr_version = NETMAP_API;
		hdr.nr_reqtype = NETMAP_REQ_REGISTER;
		hdr.nr_body = 0x10; /* unreadable */
		errno = 0;
		int rc = ioctl(fd, NIOCCTRL, &hdr);
		check(rc == -1 && errno == EFAULT && strcmp(hdr.nr_name, "efault-wb") == 0,
		      "NIOCCTRL with unreadable body: EFAULT, header written back");
	}

	errno = 0;
	check(ioctl(fd, NIOCTXSYNC) == 0, "NIOCTXSYNC (_IO) returns 0");

	{
		struct nmreq req;
		memset(&req, 0, sizeof(req));
		req.nr_version = 14;
		strcpy(req.nr_name, "x");
		errno = 0;
		int rc = ioctl(fd, NIOCREGIF, &req);
		check(rc == -1 && errno == EINVAL && req.nr_version == 0xdeadbeef,
		      "NIOCREGIF error: errno EINVAL and argument written back");
	}

	errno = 0;
	check(ioctl(fd, _IO('i', 200)) == -1 && errno == EOPNOTSUPP, "unknown ioctl: EOPNOTSUPP");

	{
		char b[16];
		errno = 0;
		int r = (int)read(fd, b, sizeof(b));
		int re = errno;
		errno = 0;
		int w = (int)write(fd, b, sizeof(b));
		int we = errno;
		errno = re;
		check(r == -1 && re == EINVAL && w == -1 && we == EINVAL, "read and write: EINVAL");
	}

	{
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double t0 = now_ms();
		int n = poll(&p, 1, 5000);
		double dt = now_ms() - t0;
		check(n == 1 && (p.revents & POLLIN) && dt >= 250 && dt < 2000,
		      "poll blocks until the fake's waker fires (~300 ms)");
		printf("# poll woke after %.0f ms\n", dt);
		p.revents = 0;
		check(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "poll again: ready at once");
	}

	{
		unsigned char *m = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		check(m != MAP_FAILED, "mmap region size, shared, read-write");
		if (m != MAP_FAILED) {
			int same = 1;
			size_t probes[] = { 0, 1, 4095, 4097, 65536 + 13, region_size - 1 };
			for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
				if (m[probes[i]] != pattern(probes[i]))
					same = 0;
			check(same, "mapping shows the region's bytes");
			m[4096] = 0xa5;
			check(ioctl(fd, PROBE_CHECK_REGION) == 0 && m[8192] == 0x5a,
			      "writes shared both ways (client -> daemon -> client)");
			munmap(m, region_size);
		}
	}

	/* close -> exactly one release */
	{
		struct counters before;
		counters(fd, &before);
		int fd2 = open(path, O_RDWR);
		int fd2b = dup(fd2);
		ioctl(fd2, NIOCTXSYNC);
		close(fd2);
		close(fd2b);
		int got = wait_releases(fd, before.releases + 1, &c) == 0;
		usleep(200000);
		counters(fd, &c);
		check(got && c.releases == before.releases + 1 && c.double_releases == 0,
		      "close of the last descriptor: one release");
	}

	/* fork: both halves use the descriptor; one release when both close */
	{
		struct counters before;
		counters(fd, &before);
		int fd3 = open(path, O_RDWR);
		pid_t pid = fork();
		if (pid == 0) {
			int ok = ginfo_roundtrip(fd3) && ctrl_roundtrip(fd3) && ioctl(fd3, NIOCTXSYNC) == 0;
			close(fd3);
			_exit(ok ? 0 : 1);
		}
		int parent_ok = ginfo_roundtrip(fd3) && ctrl_roundtrip(fd3);
		int status = -1;
		waitpid(pid, &status, 0);
		check(parent_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fork: parent and child both use the descriptor");
		counters(fd, &c);
		check(c.releases == before.releases, "fork: no release while the parent holds it");
		close(fd3);
		int got = wait_releases(fd, before.releases + 1, &c) == 0;
		usleep(200000);
		counters(fd, &c);
		check(got && c.releases == before.releases + 1 && c.double_releases == 0,
		      "fork: one release after both closed");
	}

	/* close with the region mapped (netmap: the mapping holds the file):
	 * the release comes at munmap, or at exit. In a child, whose only file
	 * of its own is the mapped one (the fake counts every file registered). */
	{
		struct counters before;
		counters(fd, &before);
		pid_t pid = fork();
		if (pid == 0) {
			struct counters b, a;
			counters(fd, &b);
			int f = open(path, O_RDWR);
			unsigned char *m = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
			close(f);
			if (m == MAP_FAILED)
				_exit(3);
			usleep(400000);
			counters(fd, &a);
			int kept = a.releases == b.releases;
			munmap(m, region_size);
			int got = wait_releases(fd, b.releases + 1, &a) == 0;
			_exit(!kept ? 1 : !got ? 2 : 0);
		}
		int status = -1;
		waitpid(pid, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "close with the region mapped: no release for 0.4 s, one at munmap");
		counters(fd, &before);
		pid = fork();
		if (pid == 0) {
			int f = open(path, O_RDWR);
			unsigned char *m = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
			close(f);
			usleep(300000);
			_exit(m == MAP_FAILED ? 3 : 0);
		}
		waitpid(pid, &status, 0);
		int got = wait_releases(fd, before.releases + 1, &c) == 0;
		usleep(200000);
		counters(fd, &c);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got && c.releases == before.releases + 1 &&
		      c.double_releases == 0,
		      "close with the region mapped, then exit: one release at exit");
	}

	close(fd);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

static int run_bench(const char *path, long count)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	for (int i = 0; i < 1000; i++)
		ioctl(fd, NIOCTXSYNC);
	double t0 = now_ms();
	for (long i = 0; i < count; i++) {
		if (ioctl(fd, NIOCTXSYNC) != 0) {
			perror("NIOCTXSYNC");
			return 1;
		}
	}
	double dt = now_ms() - t0;
	printf("NIOCTXSYNC round trip: %.2f us/call (%ld calls, %.0f ms)\n", dt * 1e3 / count, count, dt);
	close(fd);
	return 0;
}

struct held_poll {
	int fd;
	int n;
	short revents;
	double ended;
};

static void *held_poll_thread(void *arg)
{
	struct held_poll *h = arg;
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	h->n = poll(&p, 1, 10000);
	h->revents = p.revents;
	h->ended = now_ms();
	return NULL;
}

/* Holds the file across the daemon's stop: one thread sleeps in poll (the
 * fake never readies this file), the main thread waits for stdin. */
static int run_hold(const char *path)
{
	int fd = open(path, O_RDWR);
	if (fd < 0 || ioctl(fd, PROBE_NEVER_READY) != 0) {
		perror("open/PROBE_NEVER_READY");
		return 1;
	}
	struct held_poll h = { .fd = fd, .n = -2 };
	pthread_t t;
	double started = now_ms();
	pthread_create(&t, NULL, held_poll_thread, &h);
	usleep(100000);
	printf("held\n");
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	errno = 0;
	int rc = ioctl(fd, NIOCTXSYNC);
	int e = errno;
	pthread_join(t, NULL);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double t0 = now_ms();
	int n = poll(&p, 1, 3000);
	double dt = now_ms() - t0;
	printf("after stop: ioctl rc %d errno %d (%s); sleeping poll ended after %.0f ms with %d revents 0x%x;"
	       " new poll %d revents 0x%x in %.0f ms\n",
	       rc, e, strerror(e), h.ended - started, h.n, h.revents, n, p.revents, dt);
	close(fd);
	int ok = rc == -1 && (e == ENOTCONN || e == ENODEV) && h.n >= 0 && h.ended - started < 9000 && dt < 1000;
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "test") == 0)
		return run_tests(argv[2], strtoull(argv[3], NULL, 0));
	if (argc >= 4 && strcmp(argv[1], "bench") == 0)
		return run_bench(argv[2], strtol(argv[3], NULL, 0));
	if (argc >= 3 && strcmp(argv[1], "hold") == 0)
		return run_hold(argv[2]);
	fprintf(stderr, "usage: %s test PATH SIZE | bench PATH COUNT | hold PATH\n", argv[0]);
	return 2;
}
