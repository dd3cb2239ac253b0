/*
 * A user's tap pool: what `banger system setup --user USER` (root, once)
 * prepared so that USER runs VMs without root.  The pool is N persistent
 * tap devices owned by the user, each the host end of one /30 of the
 * user's subnet, and optionally one NAT rule set for the whole subnet.
 *
 * The description is one root-owned, world-readable JSON file per user,
 * <system dir>/pools/<uid>.json, written only by the setup verb.  The
 * user's banger reads it and trusts it only when the file and every
 * directory above it up to the system dir are owned by root and not
 * writable by group or others: nothing the user can write decides which
 * taps or addresses are theirs (and the kernel enforces tap ownership:
 * TUNSETIFF on another user's tap is EPERM).
 *
 * Tap i of uid U is named "bgp<U>n<i>".  Root mode's taps are
 * "bg" + a 4-hex-digit instance + the VM id, so the 'p' keeps the two
 * name spaces apart (a root-mode sweep never matches a pool tap).
 */
#ifndef BG_HOST_POOL_H
#define BG_HOST_POOL_H

#include <net/if.h>
#include <sys/types.h>

#include "host.h"

#define BG_POOL_FORMAT 1
#define BG_POOL_TAP_PREFIX "bgp"
/* The most taps one pool may have (a /22 of /30s). */
#define BG_POOL_MAX_VMS 256
/* Where user subnets are carved when setup is given none: one block per
 * user, sized for its pool, never overlapping another pool's. */
#define BG_POOL_DEFAULT_RANGE "172.31.0.0/16"
#define BG_SYSTEM_DIR_DEFAULT "/etc/banger"

typedef struct {
	char user[64];
	uid_t uid;
	gid_t gid;
	char subnet_cidr[32]; /* "a.b.c.d/p" as written */
	bg_subnet subnet;
	uint32_t vms;         /* taps 0..vms-1 */
	bool nat;             /* a NAT rule set covers the subnet */
	char nft_table[32];   /* "banger_pool_<uid>" when nat */
} bg_pool;

/* The system directory: $BANGER_SYSTEM_DIR when set and absolute (read
 * with secure_getenv; the test suite points it at a root-owned
 * directory of its own), else /etc/banger. */
const char *bg_system_dir(void);

/* <system dir>/pools/<uid>.json (bg_free). */
char *bg_pool_path(uid_t uid);

/* Tap i of the pool: name, host address, guest address (buffers of
 * IFNAMSIZ and INET_ADDRSTRLEN; any may be NULL).  BANGER_EINVALID when
 * i is outside the pool. */
int bg_pool_slot(const bg_pool *p, uint32_t i, char *tap, char *host_ip, char *guest_ip);
/* "bgp<uid>n<i>"; BANGER_EINVALID when it would not fit IFNAMSIZ. */
int bg_pool_tap_name(char out[IFNAMSIZ], uid_t uid, uint32_t i);
/* The nftables table of a pool: "banger_pool_<uid>". */
void bg_pool_nft_table(char out[32], uid_t uid);

/* The pool of uid.  BANGER_ENOTFOUND when there is none; BANGER_EPERM
 * when the file or a directory above it could be changed by someone
 * other than root (the message names which); BANGER_EINVALID when it
 * does not parse or is inconsistent (names the file). */
int bg_pool_load(bg_pool *out, uid_t uid);

/* Every pool described under the system dir (bg_free *out). */
int bg_pool_list(bg_pool **out, size_t *count);

/* Serialize / parse (exposed for the setup verb and for tests). */
char *bg_pool_to_json(const bg_pool *p);
int bg_pool_from_json(bg_pool *out, const char *json, const char *what);

/* Write the description atomically, root-owned, mode 0644, creating
 * <system dir>/pools (0755) when missing.  Root only. */
int bg_pool_save(const bg_pool *p);
/* Remove it; a missing file is success. */
int bg_pool_remove(uid_t uid);

#endif
