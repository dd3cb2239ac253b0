/*
 * libbanger — common definitions shared by every public header.
 *
 * Conventions (see docs/conventions.md for the full text):
 *  - every public symbol starts with banger_ / BANGER_;
 *  - functions return int: 0 on success, a negative BANGER_E* code on failure;
 *  - strings handed to the caller are released with banger_free();
 *  - no static inline, no varargs, fixed-width integers: every symbol is
 *    callable through FFI.
 */
#ifndef BANGER_COMMON_H
#define BANGER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define BANGER_BEGIN_DECL extern "C" {
#define BANGER_END_DECL }
#else
#define BANGER_BEGIN_DECL
#define BANGER_END_DECL
#endif

/* The one export macro.  The library is built with -fvisibility=hidden;
 * only declarations marked BANGER_EXTERN are visible. */
#if defined(BANGER_BUILDING_LIBRARY) && defined(__GNUC__)
#define BANGER_EXTERN(type) __attribute__((visibility("default"))) type
#else
#define BANGER_EXTERN(type) extern type
#endif

#define BANGER_VERSION_MAJOR 0
#define BANGER_VERSION_MINOR 1
#define BANGER_VERSION_PATCH 0
#define BANGER_VERSION "0.1.0"
/* Bumped whenever the ABI changes incompatibly; it is the SONAME suffix. */
#define BANGER_SOVERSION 0

BANGER_BEGIN_DECL

/* How a command ended.  One convention wherever a command runs in a guest:
 * banger_vm_exec() and banger_session_wait() fill one in, and
 * banger_ssh_result_exit_code()/_exit_signal() and
 * banger_session_exit_code()/_exit_signal() read the same two numbers.
 *   exited:              code 0..255, signal 0
 *   killed by a signal:  code -1, signal its number (Linux numbering; -1
 *                        when the guest did not say which signal)
 *   not ended (yet):     code -1, signal 0
 * A shell reports the first two as code, or 128 + signal. */
typedef struct {
	int32_t code;
	int32_t signal;
} banger_exit_status;

/* The runtime library version as "MAJOR.MINOR.PATCH"; never NULL, static. */
BANGER_EXTERN(const char *) banger_version(void);

/* Runtime version as numbers; any pointer may be NULL. Returns 0. */
BANGER_EXTERN(int) banger_version_numbers(int *major, int *minor, int *patch);

/* Release memory the library handed to the caller (strings, arrays).
 * Accepts NULL.  Never use free() on library memory: the library may be
 * built against another allocator than the caller. */
BANGER_EXTERN(void) banger_free(void *ptr);

BANGER_END_DECL

#endif
