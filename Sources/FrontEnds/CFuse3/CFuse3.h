/*
 * CFuse3: libfuse3's CUSE low-level API for Swift (Debian: libfuse3-dev).
 * Only the API level is fixed here, before the headers that require it; the
 * CUSE front end calls plain libfuse functions (no versioned macros such as
 * fuse_session_loop_mt: it runs its own worker threads).
 */
#ifndef CFUSE3_H
#define CFUSE3_H

#define FUSE_USE_VERSION 35
#include <fuse3/cuse_lowlevel.h>

#endif
