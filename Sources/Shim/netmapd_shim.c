/*
 * netmapd_shim.c: LD_PRELOAD library (libnetmapd-shim.so) that gives netmap
 * clients of netmapd's CUSE front end their mmap.
 *
 * CUSE has no mmap: mmap on a /dev/netmap descriptor fails with ENODEV. This
 * library wraps mmap/mmap64/munmap. For a descriptor of the netmap device
 * (a character device with the same device number as $NETMAPD_DEVICE,
 * default /dev/netmap) it asks the daemon where the shared memory is
 * (NETMAPD_IOC_REGION: the region file and its size; EINVAL before
 * registration, as netmap's own mmap), maps that file with the caller's
 * offset, length, protection and flags, and closes the region file again.
 *
 * In netmap a mapping holds a reference to the open file, so close(fd)
 * while the region is mapped keeps the registration alive until munmap.
 * The shim keeps the same promise with a duplicate of the descriptor per
 * mapping, closed when the last page of that mapping is unmapped (munmap,
 * or a MAP_FIXED mapping on top of it). The duplicates are close-on-exec,
 * as exec drops the mappings too; fork shares them with the child, which
 * also inherits the mappings and this table.
 *
 * Everything else passes through to the next mmap/munmap (dlsym RTLD_NEXT).
 * Not handled: mremap of a region mapping (the duplicate stays with the old
 * range), and programs that issue the mmap system call directly.
 *
 * Build: gcc -O2 -fPIC -shared -fvisibility=hidden -I Sources/ABI/CNetmapABI/include \
 *            -o libnetmapd-shim.so Sources/Shim/netmapd_shim.c -ldl -pthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NETMAPD_NO_HELPERS
#include "netmapd_abi.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_MAPPINGS 256

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

static mmap_fn next_mmap;
static munmap_fn next_munmap;

/* One region mapping still (partly) in place: [start, end) and the
 * duplicate descriptor that keeps the registration alive. A partial munmap
 * can split a mapping; the pieces share the duplicate. */
struct mapping {
	uintptr_t start, end;
	int keep_fd;
};

static struct mapping mappings[MAX_MAPPINGS];
static int nmappings;   /* read without the lock only as a hint */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork(void) { pthread_mutex_unlock(&lock); }

__attribute__((constructor)) static void shim_init(void)
{
	next_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	next_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	pthread_atfork(before_fork, after_fork, after_fork);
}

/* Until the constructor ran (dlsym itself may map memory), go to the kernel. */
static void *pass_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (next_mmap)
		return next_mmap(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int pass_munmap(void *addr, size_t len)
{
	if (next_munmap)
		return next_munmap(addr, len);
	return (int)syscall(SYS_munmap, addr, len);
}

static uintptr_t page_round_up(uintptr_t n)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	return (n + page - 1) & ~(page - 1);
}

/* Is fd a descriptor of the netmap device? Same character device number as
 * the device node: robust to dup, fork and SCM_RIGHTS, never guesses. */
static int is_netmap_fd(int fd)
{
	struct stat st, dev;
	const char *path = getenv("NETMAPD_DEVICE");

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
		return 0;
	if (path == NULL || path[0] == '\0')
		path = "/dev/netmap";
	if (stat(path, &dev) != 0 || !S_ISCHR(dev.st_mode))
		return 0;
	return st.st_rdev == dev.st_rdev;
}

/* Forget [start, end) of every tracked mapping (it was unmapped or mapped
 * over). Collects the duplicates no piece uses any more into `to_close`.
 * Called with the lock held; never allocates. */
static int forget_range(uintptr_t start, uintptr_t end, int *to_close, int max_close)
{
	int nclose = 0;

	for (int i = 0; i < nmappings; ) {
		struct mapping *m = &mappings[i];
		if (m->end <= start || m->start >= end) {
			i++;
			continue;
		}
		int keep = m->keep_fd;
		if (m->start < start && m->end > end) {
			/* a hole in the middle: split */
			if (nmappings == MAX_MAPPINGS) {
				/* no room for the right piece: keep the whole
				 * range tracked (the duplicate lives a bit longer) */
				i++;
				continue;
			}
			mappings[nmappings] = (struct mapping){ end, m->end, keep };
			nmappings++;
			m->end = start;
			i++;
			continue;
		}
		if (m->start < start) {
			m->end = start;
			i++;
			continue;
		}
		if (m->end > end) {
			m->start = end;
			i++;
			continue;
		}
		/* fully covered: drop it, and its duplicate if no piece is left */
		mappings[i] = mappings[--nmappings];
		int used = 0;
		for (int j = 0; j < nmappings; j++)
			if (mappings[j].keep_fd == keep)
				used = 1;
		if (!used && nclose < max_close)
			to_close[nclose++] = keep;
	}
	return nclose;
}

static void forget_and_close(uintptr_t start, uintptr_t end)
{
	int to_close[MAX_MAPPINGS];
	int n;

	if (__atomic_load_n(&nmappings, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&lock);
	n = forget_range(start, end, to_close, MAX_MAPPINGS);
	pthread_mutex_unlock(&lock);
	/* outside the lock: the last close makes the daemon release the file */
	for (int i = 0; i < n; i++)
		close(to_close[i]);
}

static void *map_region(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct netmapd_region_info info;
	int region_fd, keep_fd, open_flags, err;
	void *p;

	memset(&info, 0, sizeof(info));
	if (ioctl(fd, NETMAPD_IOC_REGION, &info) != 0) {
		/* EINVAL before registration, as netmap's mmap; a daemon that
		 * does not know the request cannot be mapped at all */
		if (errno == EOPNOTSUPP || errno == ENOTTY)
			errno = ENODEV;
		return MAP_FAILED;
	}
	info.path[sizeof(info.path) - 1] = '\0';
	if (off < 0 || len == 0 || (uint64_t)off > info.size || len > info.size - (uint64_t)off) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	open_flags = ((prot & PROT_WRITE) && (flags & MAP_TYPE) != MAP_PRIVATE) ? O_RDWR : O_RDONLY;
	region_fd = open(info.path, open_flags | O_CLOEXEC);
	if (region_fd < 0)
		return MAP_FAILED;
	keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (keep_fd < 0) {
		err = errno;
		close(region_fd);
		errno = err;
		return MAP_FAILED;
	}
	p = pass_mmap(addr, len, prot, flags, region_fd, off);
	err = errno;
	close(region_fd);
	if (p == MAP_FAILED) {
		close(keep_fd);
		errno = err;
		return MAP_FAILED;
	}

	uintptr_t start = (uintptr_t)p, end = start + page_round_up(len);
	int to_close[MAX_MAPPINGS];
	int n, tracked = 0;

	pthread_mutex_lock(&lock);
	/* MAP_FIXED may have replaced pages of an older region mapping */
	n = forget_range(start, end, to_close, MAX_MAPPINGS);
	if (nmappings < MAX_MAPPINGS) {
		mappings[nmappings] = (struct mapping){ start, end, keep_fd };
		__atomic_store_n(&nmappings, nmappings + 1, __ATOMIC_RELAXED);
		tracked = 1;
	}
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < n; i++)
		close(to_close[i]);
	if (!tracked) {
		pass_munmap(p, len);
		close(keep_fd);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (!(flags & MAP_ANONYMOUS) && is_netmap_fd(fd))
		return map_region(addr, len, prot, flags, fd, off);
	p = pass_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && (flags & MAP_FIXED))
		forget_and_close((uintptr_t)p, (uintptr_t)p + page_round_up(len));
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	int r = pass_munmap(addr, len);

	if (r == 0)
		forget_and_close((uintptr_t)addr, (uintptr_t)addr + page_round_up(len));
	return r;
}
