#define _GNU_SOURCE
#include <sys/mman.h>
#include <errno.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include "nmd_sys.h"

const unsigned int NMD_MFD_CLOEXEC = MFD_CLOEXEC;

int nmd_memfd_create(const char *name, unsigned int flags)
{
	return memfd_create(name, flags);
}

int nmd_path_on_shmem(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) < 0)
		return -errno;
	return st.f_type == TMPFS_MAGIC || st.f_type == HUGETLBFS_MAGIC;
}
