/*
 * libbanger — progress of long operations, and cancelling them.
 *
 * Every long operation takes a progress callback of the one shape below
 * in its options (fields progress and progress_payload): VM create, start
 * and restart; image pull and import; kernel pull and import; VM
 * reconcile and store recovery.  It is called from the thread that called
 * the operation, as the operation goes, with a report that is valid
 * during the call only.
 *
 * The callback returns 0 to go on.  Any other value cancels: the
 * operation stops there, undoes what it did exactly as it does on any
 * failure (a cancelled VM create leaves no VM, a cancelled pull records
 * nothing), and returns BANGER_ECANCELLED.  The one report whose answer
 * is not asked for is the last: BANGER_PROGRESS_DONE or _UP_TO_DATE come
 * once the outcome is settled.  Reconcile and recovery repair one object
 * after another and undo nothing: a cancel stops them between two
 * objects (never halfway through one VM's teardown), and what they did
 * before it stays done.
 *
 * Long waits report BANGER_PROGRESS_WAITING about twice a second (never
 * a second apart), so a caller can cancel them without anything new to
 * show: a guest booting (VM create, start, restart), and a lock another
 * process holds (stage "lock": a VM's lock for start and restart, the
 * blob cache lock while a prune holds it and an image's lock for image
 * pull and import, the kernels lock for kernel pull and import; detail
 * says which lock and, when the system tells, the pid holding it).
 */
#ifndef BANGER_PROGRESS_H
#define BANGER_PROGRESS_H

#include "common.h"

BANGER_BEGIN_DECL

/* Which operation reports. */
typedef enum {
	BANGER_PROGRESS_OP_VM_CREATE = 1,
	BANGER_PROGRESS_OP_VM_START = 2,
	BANGER_PROGRESS_OP_VM_RESTART = 3,
	BANGER_PROGRESS_OP_IMAGE_PULL = 4,
	BANGER_PROGRESS_OP_IMAGE_IMPORT = 5,
	BANGER_PROGRESS_OP_KERNEL_PULL = 6,
	BANGER_PROGRESS_OP_KERNEL_IMPORT = 7,
	BANGER_PROGRESS_OP_VM_RECONCILE = 8,
	BANGER_PROGRESS_OP_STORE_RECOVER = 9
} banger_progress_op;

/* What happened.  Each report also names its stage (below). */
typedef enum {
	/* A step begins; detail says what it does.  From reconcile and
	 * recovery: one object was acted on (or found and left alone), the
	 * subject, and detail says what was done. */
	BANGER_PROGRESS_STEP = 1,
	/* The step named by stage still waits; nothing new to show. */
	BANGER_PROGRESS_WAITING = 2,
	/* An image reference was resolved: digest = manifest digest, detail
	 * = platform ("linux/amd64"), items = layers, total = the sum of the
	 * compressed layer sizes. */
	BANGER_PROGRESS_RESOLVED = 3,
	/* Bytes of item are being downloaded: done of total (throttled). */
	BANGER_PROGRESS_DOWNLOAD = 4,
	/* Item was downloaded and its digest verified. */
	BANGER_PROGRESS_DOWNLOADED = 5,
	/* Item was already in the cache: nothing downloaded. */
	BANGER_PROGRESS_CACHED = 6,
	/* Item is being unpacked: done of total compressed bytes (throttled). */
	BANGER_PROGRESS_UNPACK = 7,
	/* Item was unpacked and verified. */
	BANGER_PROGRESS_UNPACKED = 8,
	/* Finished: subject is the VM, image or kernel (NULL after reconcile
	 * and recovery); for an image, total is the rootfs size.  The
	 * callback's answer is ignored. */
	BANGER_PROGRESS_DONE = 9,
	/* Finished with nothing to do (the image is recorded with this
	 * manifest already).  The callback's answer is ignored. */
	BANGER_PROGRESS_UP_TO_DATE = 10
} banger_progress_event;

/* Reports carry this version; fields are only ever added at the end, so
 * a caller built against a newer header reads newer fields only when
 * version says they are there. */
#define BANGER_PROGRESS_VERSION 1

typedef struct {
	unsigned int version;  /* BANGER_PROGRESS_VERSION of the library */
	int operation;         /* a banger_progress_op */
	int event;             /* a banger_progress_event */
	/* A short, stable name of the step, for logs and filters: VMs
	 * "create", "disks", "identity", "network", "vmm", "agent", "ssh",
	 * "ready", "done"; images "resolve", "download", "unpack", "build",
	 * "done"; kernels "catalog", "download", "unpack", "copy", "install",
	 * "done"; any of them "lock" (waiting for another process); reconcile
	 * "reconcile" (recorded VMs), "sweep" (objects no VM owns), "done";
	 * recovery "recover" (records), then reconcile's.  Never NULL. */
	const char *stage;
	/* The VM, image or kernel name; NULL while not known.  From reconcile
	 * and recovery: the VM, image or kernel name, or the object (a
	 * directory, a device, "pid N"). */
	const char *subject;
	const char *detail;    /* for people (may hold text from a registry or a catalog); may be NULL */
	uint32_t item, items;  /* 0-based item (an image layer) and how many; 0 and 0 when none */
	const char *digest;    /* the item's or manifest's digest, or NULL */
	uint64_t done, total;  /* bytes; total 0 when unknown */
} banger_progress;

/* Return 0 to go on, anything else to cancel (BANGER_ECANCELLED). */
typedef int (*banger_progress_cb)(const banger_progress *progress, void *payload);

BANGER_END_DECL

#endif
