#define _GNU_SOURCE
#include <sys/mman.h>
#include "nmd_sys.h"

const unsigned int NMD_MFD_CLOEXEC = MFD_CLOEXEC;

int nmd_memfd_create(const char *name, unsigned int flags)
{
	return memfd_create(name, flags);
}
