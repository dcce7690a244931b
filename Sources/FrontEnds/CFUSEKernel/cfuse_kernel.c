/*
 * cfuse_kernel.c: layout checks for cfuse_kernel.h against the sizes the
 * uapi gives, and the calls Swift cannot make directly.
 */
#define _GNU_SOURCE
#include "cfuse_kernel.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(sizeof(struct fk_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct fk_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct fk_init_in) == 64, "fuse_init_in");
_Static_assert(sizeof(struct fk_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct fk_attr) == 88, "fuse_attr");
_Static_assert(sizeof(struct fk_attr_out) == 104, "fuse_attr_out");
_Static_assert(sizeof(struct fk_setattr_in) == 88, "fuse_setattr_in");
_Static_assert(sizeof(struct fk_kstatfs) == 80, "fuse_kstatfs");
_Static_assert(sizeof(struct fk_open_out) == 16, "fuse_open_out");
_Static_assert(sizeof(struct fk_release_in) == 24, "fuse_release_in");
_Static_assert(sizeof(struct fk_ioctl_in) == 32, "fuse_ioctl_in");
_Static_assert(sizeof(struct fk_ioctl_out) == 16, "fuse_ioctl_out");
_Static_assert(sizeof(struct fk_poll_in) == 24, "fuse_poll_in");
_Static_assert(sizeof(struct fk_poll_out) == 8, "fuse_poll_out");
_Static_assert(sizeof(struct fk_backing_map) == 16, "fuse_backing_map");
_Static_assert(FK_DEV_IOC_BACKING_OPEN == _IOW(229, 1, struct fk_backing_map), "BACKING_OPEN");
_Static_assert(FK_DEV_IOC_BACKING_CLOSE == _IOW(229, 2, uint32_t), "BACKING_CLOSE");

int fk_backing_open(int devfd, int fd)
{
	struct fk_backing_map map = { .fd = fd, .flags = 0, .padding = 0 };
	return ioctl(devfd, FK_DEV_IOC_BACKING_OPEN, &map);
}

int fk_backing_close(int devfd, int32_t backing_id)
{
	uint32_t id = (uint32_t)backing_id;
	return ioctl(devfd, FK_DEV_IOC_BACKING_CLOSE, &id);
}

long fk_read_caller(int pid, void *local, uint64_t remote, size_t length)
{
	struct iovec l = { .iov_base = local, .iov_len = length };
	struct iovec r = { .iov_base = (void *)(uintptr_t)remote, .iov_len = length };
	return (long)process_vm_readv(pid, &l, 1, &r, 1, 0);
}

long fk_write_caller(int pid, const void *local, uint64_t remote, size_t length)
{
	struct iovec l = { .iov_base = (void *)local, .iov_len = length };
	struct iovec r = { .iov_base = (void *)(uintptr_t)remote, .iov_len = length };
	return (long)process_vm_writev(pid, &l, 1, &r, 1, 0);
}

int fk_stat_sync(const char *path, uint32_t *mode, uint64_t *size)
{
	struct statx stx;
	if (statx(AT_FDCWD, path, AT_STATX_FORCE_SYNC, STATX_TYPE | STATX_MODE | STATX_SIZE, &stx) != 0)
		return -1;
	*mode = stx.stx_mode;
	*size = stx.stx_size;
	return 0;
}

long fk_fs_type(const char *path)
{
	struct statfs sfs;
	if (statfs(path, &sfs) != 0)
		return -1;
	return (long)sfs.f_type;
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434   /* the same number on every architecture */
#endif

int fk_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int fk_gettid(void)
{
	return (int)syscall(SYS_gettid);
}
