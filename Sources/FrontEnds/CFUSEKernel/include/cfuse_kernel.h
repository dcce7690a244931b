/*
 * cfuse_kernel.h: the part of the FUSE kernel protocol (Linux uapi
 * <linux/fuse.h>, protocol 7.40 and later) that the FUSE-file front end
 * speaks on /dev/fuse. Written for netmapd from the uapi's definitions; the
 * fk_ prefix keeps these apart from any <linux/fuse.h> a build might also see
 * (Debian 12's is 7.38, before passthrough).
 *
 * Only layouts and numbers live here, plus the few calls Swift cannot make
 * itself (variadic ioctl, process_vm_readv/writev from <sys/uio.h> under
 * _GNU_SOURCE). Everything else is Swift (Sources/FrontEnds/FUSEFrontEnd).
 */
#ifndef CFUSE_KERNEL_H
#define CFUSE_KERNEL_H

#include <stdint.h>
#include <stddef.h>

/* ---- version ---- */
#define FK_KERNEL_VERSION 7
/* The newest minor this code knows the layouts of; the reply carries
 * min(kernel's minor, this). Passthrough needs 40. */
#define FK_KERNEL_MINOR_VERSION 45
#define FK_PASSTHROUGH_MIN_MINOR 40
#define FK_ROOT_ID 1
#define FK_MIN_READ_BUFFER 8192

/* ---- opcodes (enum fuse_opcode) ---- */
#define FK_LOOKUP          1
#define FK_FORGET          2  /* no reply */
#define FK_GETATTR         3
#define FK_SETATTR         4
#define FK_OPEN            14
#define FK_READ            15
#define FK_WRITE           16
#define FK_STATFS          17
#define FK_RELEASE         18
#define FK_FSYNC           20
#define FK_FLUSH           25
#define FK_INIT            26
#define FK_OPENDIR         27
#define FK_ACCESS          34
#define FK_INTERRUPT       36  /* no reply */
#define FK_DESTROY         38
#define FK_IOCTL           39
#define FK_POLL            40
#define FK_NOTIFY_REPLY    41  /* no reply */
#define FK_BATCH_FORGET    42  /* no reply */
#define FK_STATX           52

/* notify codes, sent in fuse_out_header.error with unique 0 */
#define FK_NOTIFY_POLL 1

/* ---- INIT flags: bits 32..63 travel in flags2 ---- */
#define FK_INIT_EXT          (1u << 30)
#define FK_MAX_PAGES         (1u << 22)
#define FK_PASSTHROUGH_FLAGS2 (1u << 5)   /* FUSE_PASSTHROUGH = 1ULL << 37 */

/* ---- open reply flags (FOPEN_*) ---- */
#define FK_FOPEN_DIRECT_IO   (1u << 0)
#define FK_FOPEN_KEEP_CACHE  (1u << 1)
#define FK_FOPEN_NONSEEKABLE (1u << 2)
#define FK_FOPEN_NOFLUSH     (1u << 5)
#define FK_FOPEN_PASSTHROUGH (1u << 7)

/* ---- setattr valid bits ---- */
#define FK_FATTR_MODE (1u << 0)
#define FK_FATTR_UID  (1u << 1)
#define FK_FATTR_GID  (1u << 2)

/* ---- ioctl / poll flags ---- */
#define FK_IOCTL_COMPAT        (1u << 0)
#define FK_IOCTL_UNRESTRICTED  (1u << 1)
#define FK_POLL_SCHEDULE_NOTIFY (1u << 0)

/* ---- messages ---- */
struct fk_in_header {
	uint32_t len;
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;           /* the calling thread's id (tid) */
	uint16_t total_extlen;
	uint16_t padding;
};

struct fk_out_header {
	uint32_t len;
	int32_t  error;         /* 0 or -errno; the notify code when unique == 0 */
	uint64_t unique;
};

struct fk_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint32_t flags2;
	uint32_t unused[11];
};

struct fk_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused[11];
};

struct fk_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev;
	uint32_t blksize;
	uint32_t flags;
};

struct fk_attr_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t dummy;
	struct fk_attr attr;
};

struct fk_setattr_in {
	uint32_t valid;
	uint32_t padding;
	uint64_t fh;
	uint64_t size;
	uint64_t lock_owner;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t unused4;
	uint32_t uid;
	uint32_t gid;
	uint32_t unused5;
};

struct fk_kstatfs {
	uint64_t blocks;
	uint64_t bfree;
	uint64_t bavail;
	uint64_t files;
	uint64_t ffree;
	uint32_t bsize;
	uint32_t namelen;
	uint32_t frsize;
	uint32_t padding;
	uint32_t spare[6];
};

struct fk_open_in {
	uint32_t flags;
	uint32_t open_flags;
};

struct fk_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t  backing_id;
};

struct fk_release_in {
	uint64_t fh;
	uint32_t flags;
	uint32_t release_flags;
	uint64_t lock_owner;
};

struct fk_ioctl_in {
	uint64_t fh;
	uint32_t flags;
	uint32_t cmd;
	uint64_t arg;
	uint32_t in_size;
	uint32_t out_size;
};

struct fk_ioctl_out {
	int32_t  result;        /* the ioctl's return value: 0 or -errno */
	uint32_t flags;
	uint32_t in_iovs;
	uint32_t out_iovs;
};

struct fk_poll_in {
	uint64_t fh;
	uint64_t kh;
	uint32_t flags;
	uint32_t events;
};

struct fk_poll_out {
	uint32_t revents;
	uint32_t padding;
};

struct fk_notify_poll_wakeup_out {
	uint64_t kh;
};

struct fk_backing_map {
	int32_t  fd;
	uint32_t flags;
	uint64_t padding;
};

/* /dev/fuse ioctls: FUSE_DEV_IOC_BACKING_OPEN = _IOW(229, 1, struct
 * fuse_backing_map), FUSE_DEV_IOC_BACKING_CLOSE = _IOW(229, 2, uint32_t). */
#define FK_DEV_IOC_BACKING_OPEN  0x4010e501u
#define FK_DEV_IOC_BACKING_CLOSE 0x4004e502u

/* Register `fd` as a passthrough backing file of the connection on `devfd`.
 * Returns the backing id (> 0) or -1 with errno set. */
int fk_backing_open(int devfd, int fd);
/* Drop a backing id. Returns 0 or -1 with errno set. */
int fk_backing_close(int devfd, int32_t backing_id);

/* One-range process_vm_readv / process_vm_writev on thread or process
 * `pid`. Return the bytes moved or -1 with errno set. */
long fk_read_caller(int pid, void *local, uint64_t remote, size_t length);
long fk_write_caller(int pid, const void *local, uint64_t remote, size_t length);

/* statx(path, AT_STATX_FORCE_SYNC): file type/permission bits and size as
 * the file system reports them now (a dead FUSE connection answers ENOTCONN
 * even while plain stat() still returns cached attributes). 0 or -1/errno. */
int fk_stat_sync(const char *path, uint32_t *mode, uint64_t *size);
/* statfs(path).f_type, or -1 with errno set. */
long fk_fs_type(const char *path);
/* pidfd_open(pid, 0): a close-on-exec descriptor that becomes readable
 * (POLLIN) once process `pid` (a thread-group leader) has exited; -1 with
 * errno set (EINVAL: `pid` is not a thread-group leader, ESRCH: gone). */
int fk_pidfd_open(int pid);
/* The calling thread's id. */
int fk_gettid(void);
#define FK_FUSE_SUPER_MAGIC 0x65735546L

#endif /* CFUSE_KERNEL_H */
