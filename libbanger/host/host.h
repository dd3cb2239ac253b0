/*
 * Private declarations of the host module: loop devices, the
 * copy-on-write system disk (dm-snapshot, reflink, sparse copy), tap
 * devices, NAT, guest address allocation, and the host's architecture.
 *
 * Privileged operations go through a bg_host_ops table (the seam): the
 * real table does system calls and runs nft; unit tests install a
 * recording table to assert exact teardown sequences without root.
 * Every create is idempotent and every teardown tolerates "already gone".
 */
#ifndef BG_HOST_H
#define BG_HOST_H

#include <netinet/in.h>
#include <sys/types.h>

#include "../core/core.h"

typedef struct bg_host_ops {
	void *self;
	/* tap: create persistent IFF_TAP|IFF_NO_PI, address host_ip/prefix, up */
	int (*tap_create)(void *self, const char *name, const char *host_ip, int prefix);
	int (*tap_delete)(void *self, const char *name);
	/* names of existing links starting with prefix (bg_free each + array) */
	int (*tap_list)(void *self, const char *prefix, char ***names, size_t *count);
	/* loop: attach file (read-only or not); *dev = "/dev/loopN".  With
	 * keep_fd the device is autoclear and *keep_fd holds it open: close it
	 * once its consumer (dm, the VMM) has opened the device, and the loop
	 * goes away by itself when that consumer does. */
	int (*loop_attach)(void *self, const char *file, bool read_only, char **dev, int *keep_fd);
	int (*loop_detach)(void *self, const char *dev);
	/* loop devices whose backing file lies under dir */
	int (*loop_list)(void *self, const char *dir, char ***devs, size_t *count);
	/* device-mapper snapshot: origin (RO) + cow -> /dev/mapper/name */
	int (*dm_snapshot_create)(void *self, const char *name, const char *origin_dev,
				  const char *cow_dev, uint64_t sectors);
	int (*dm_remove)(void *self, const char *name);
	int (*dm_list)(void *self, const char *prefix, char ***names, size_t *count);
	/* NAT for one VM (rules tagged with the VM id) */
	int (*nat_add)(void *self, const char *table, const char *vm_id, const char *tap,
		       const char *guest_ip);
	int (*nat_remove)(void *self, const char *table, const char *vm_id);
	/* VM ids that have NAT rules in table */
	int (*nat_list)(void *self, const char *table, char ***ids, size_t *count);
	/* signal a process; ESRCH is success */
	int (*process_terminate)(void *self, pid_t pid, int grace_ms);
} bg_host_ops;

/* The real implementation. */
const bg_host_ops *bg_host_ops_real(void);

void bg_strv_free(char **v, size_t n);

/* ---- pieces of the real implementation, callable directly ---- */
int bg_loop_attach(const char *file, bool read_only, char **dev, int *keep_fd);
int bg_loop_detach(const char *dev);
int bg_loop_list_under(const char *dir, char ***devs, size_t *count);

int bg_tap_create(const char *name, const char *host_ip, int prefix);
int bg_tap_delete(const char *name);
int bg_link_list(const char *prefix, char ***names, size_t *count);
bool bg_link_exists(const char *name);

bool bg_dm_available(void);
int bg_dm_snapshot_create(const char *name, const char *origin, const char *cow, uint64_t sectors);
int bg_dm_remove(const char *name);
int bg_dm_list(const char *prefix, char ***names, size_t *count);

int bg_nat_add(const char *table, const char *vm_id, const char *tap, const char *guest_ip);
int bg_nat_remove(const char *table, const char *vm_id);
int bg_nat_list(const char *table, char ***ids, size_t *count);
/* The nftables table banger owns for a state root: "banger_<instance>". */
void bg_nat_table_name(char out[32], const char *instance);

/* ---- copy-on-write system disk when device-mapper is absent ---- */
typedef enum {
	BG_OVERLAY_DM_SNAPSHOT,
	BG_OVERLAY_REFLINK,
	BG_OVERLAY_COPY
} bg_overlay_kind;
const char *bg_overlay_kind_name(bg_overlay_kind k);
int bg_overlay_kind_parse(bg_overlay_kind *out, const char *s);
/* Which strategy new system disks under dir get on this host:
 * dm-snapshot when device-mapper works, else reflink when dir's file
 * system can clone (probed with two temporary files), else copy. */
bg_overlay_kind bg_overlay_probe(const char *dir);
/* Make dst a private copy of src: FICLONE when the filesystem can, else
 * a sparse copy (holes preserved).  *kind says which was used. */
int bg_overlay_clone(const char *src, const char *dst, bg_overlay_kind *kind);

/* ---- addressing: one /30 per VM carved from the configured subnet ----
 * network n: host (tap) = base+4n+1, guest = base+4n+2.  MAC is derived
 * from the guest IP (06:00:<ip bytes>), so the guest can derive its address. */
typedef struct {
	uint32_t base;   /* host order */
	int prefix;      /* subnet prefix length, <= 28 */
} bg_subnet;
int bg_subnet_parse(bg_subnet *out, const char *cidr);
uint32_t bg_subnet_slots(const bg_subnet *s);
/* Addresses of slot n as dotted quads (buffers of INET_ADDRSTRLEN). */
int bg_subnet_slot(const bg_subnet *s, uint32_t n, char *host_ip, char *guest_ip);
/* Slot of a guest IP, or -1 when not in the subnet. */
int64_t bg_subnet_slot_of(const bg_subnet *s, const char *guest_ip);
void bg_mac_from_ip(char out[18], const char *guest_ip);
#define BG_SLOT_NETMASK "255.255.255.252"
#define BG_SLOT_PREFIX 30

/* ---- the host's architecture (arch.c): detected once, here only ----
 * bg_host_machine: uname(2)'s machine ("x86_64", "aarch64", "armv7l"),
 * read once per process; should uname fail, the architecture the library
 * was compiled for ("x86_64", "aarch64", else "unknown"), so every caller
 * gets the same answer either way.  bg_host_arch: banger's name for it,
 * the one kformat gives a kernel ("x86_64", "aarch64"; "unknown" for any
 * machine banger boots no kernel on); bg_host_arch_of: the same for a
 * given machine name. */
const char *bg_host_machine(void);
const char *bg_host_arch(void);
const char *bg_host_arch_of(const char *machine);

#endif
