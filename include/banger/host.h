/*
 * libbanger — what this host can do.
 */
#ifndef BANGER_HOST_H
#define BANGER_HOST_H

#include "common.h"
#include "context.h"

BANGER_BEGIN_DECL

/* Feature bits reported by banger_host_features(). */
#define BANGER_FEATURE_KVM           (1u << 0) /* /dev/kvm opens and can run guests */
#define BANGER_FEATURE_FIRECRACKER   (1u << 1) /* firecracker binary found */
#define BANGER_FEATURE_QEMU          (1u << 2) /* qemu-system-x86_64 found */
#define BANGER_FEATURE_DEVICE_MAPPER (1u << 3) /* dm-snapshot usable */
#define BANGER_FEATURE_TUN           (1u << 4) /* /dev/net/tun usable */
#define BANGER_FEATURE_LOOP          (1u << 5) /* loop devices usable */
#define BANGER_FEATURE_NFT           (1u << 6) /* nft binary found */
#define BANGER_FEATURE_VHOST_VSOCK   (1u << 7) /* /dev/vhost-vsock exists */
#define BANGER_FEATURE_ROOT          (1u << 8) /* running with CAP_NET_ADMIN/root */

/* Probe the host.  Cheap; does not need a context. */
BANGER_EXTERN(int) banger_host_features(uint32_t *out);

typedef enum {
	BANGER_HOST_CHECK_OK = 0,
	BANGER_HOST_CHECK_WARN = 1,
	BANGER_HOST_CHECK_MISSING = 2
} banger_host_check_status;

/* One finding of banger_host_check(); strings valid during the callback. */
typedef struct {
	const char *name;   /* short id, e.g. "kvm" */
	int status;         /* a banger_host_check_status */
	const char *detail; /* what was found */
	const char *fix;    /* one-line fix, or NULL when status is OK */
} banger_host_finding;

typedef int (*banger_host_finding_cb)(const banger_host_finding *finding, void *payload);

/* Run every host check (what `banger doctor` prints) and report each
 * finding through cb (a non-zero return from cb stops the walk and is
 * returned).  ctx may be NULL; with a context, the state directory's
 * permissions are checked too. */
BANGER_EXTERN(int) banger_host_check(banger_ctx *ctx, banger_host_finding_cb cb, void *payload);

BANGER_END_DECL

#endif
