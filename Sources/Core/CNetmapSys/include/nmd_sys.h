/* System calls Swift's Glibc module does not expose (they need _GNU_SOURCE). */
#ifndef NMD_SYS_H
#define NMD_SYS_H
#include <stddef.h>

int nmd_memfd_create(const char *name, unsigned int flags);
extern const unsigned int NMD_MFD_CLOEXEC;

/* 1 if path is on tmpfs (or hugetlbfs), 0 if not, -errno on error. */
int nmd_path_on_shmem(const char *path);

#endif
