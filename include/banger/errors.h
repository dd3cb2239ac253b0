/*
 * libbanger — error codes and the last-error record.
 *
 * Every function that can fail returns 0 or one of the negative codes
 * below.  The detail of the most recent failure on the calling thread is
 * available from banger_error_last() until the next failing call on that
 * thread.  Callers act on the code; the message is for humans.
 */
#ifndef BANGER_ERRORS_H
#define BANGER_ERRORS_H

#include "common.h"

BANGER_BEGIN_DECL

typedef enum {
	BANGER_OK = 0,
	BANGER_ERROR = -1,        /* generic failure; see the message */
	BANGER_ENOTFOUND = -2,    /* the named object does not exist */
	BANGER_EEXISTS = -3,      /* an object with that name/address exists */
	BANGER_EBUSY = -4,        /* in use (a VM uses the image, lock held) */
	BANGER_EINVALID = -5,     /* invalid argument, option or input data */
	BANGER_ETRUST = -6,       /* host key mismatch: possible MITM */
	BANGER_EREVOKED = -7,     /* host key is marked @revoked */
	BANGER_EUNSUPPORTED = -8, /* not available on this host or driver */
	BANGER_EIO = -9,          /* I/O or system call failure; see os_errno */
	BANGER_ENOMEM = -10,      /* allocation failure */
	BANGER_ETIMEOUT = -11,    /* a deadline passed */
	BANGER_EPERM = -12,       /* permissions (file modes, ownership, root) */
	BANGER_ENETWORK = -13,    /* network, HTTP or registry failure */
	BANGER_EVERIFY = -14,     /* checksum or digest mismatch */
	BANGER_ESTATE = -15,      /* object is in the wrong state for this */
	BANGER_EVMM = -16,        /* the VMM refused or failed a request */
	BANGER_ESTORE = -17,      /* the database is lost, emptied or corrupt while
	                           * VM directories exist: nothing was touched;
	                           * run `banger store recover` */
	BANGER_ECANCELLED = -18   /* a progress callback asked to stop; what the
	                           * operation had done was undone (progress.h) */
} banger_error_code;

typedef struct {
	int code;            /* a banger_error_code */
	int os_errno;        /* errno of the failing system call, or 0 */
	int lib_code;        /* code from the underlying library, or 0 */
	const char *lib;     /* that library's name ("sqlite", "curl"...) or NULL */
	const char *message; /* never NULL */
} banger_error;

/* The last error on this thread, or NULL if none was recorded.  The
 * record stays valid until the next failing call on the same thread. */
BANGER_EXTERN(const banger_error *) banger_error_last(void);

/* Forget the last error on this thread. */
BANGER_EXTERN(void) banger_error_clear(void);

/* A static English name for a code, e.g. "not found".  Never NULL. */
BANGER_EXTERN(const char *) banger_error_name(int code);

BANGER_END_DECL

#endif
