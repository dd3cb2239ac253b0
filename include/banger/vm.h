/*
 * libbanger — virtual machines.
 */
#ifndef BANGER_VM_H
#define BANGER_VM_H

#include "common.h"
#include "context.h"

BANGER_BEGIN_DECL

/* A snapshot of one VM's durable record.  Opaque; read with accessors.
 * Strings returned by accessors live as long as the object. */
typedef struct banger_vm banger_vm;
/* A list of VM records. */
typedef struct banger_vm_list banger_vm_list;

/* List every VM recorded in the store, ordered by name. */
BANGER_EXTERN(int) banger_vm_list_all(banger_vm_list **out, banger_ctx *ctx);
BANGER_EXTERN(size_t) banger_vm_list_count(const banger_vm_list *list);
/* Borrowed pointer, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_vm *) banger_vm_list_get(const banger_vm_list *list, size_t i);
BANGER_EXTERN(void) banger_vm_list_free(banger_vm_list *list);

/* Look a VM up by name or id. */
BANGER_EXTERN(int) banger_vm_lookup(banger_vm **out, banger_ctx *ctx, const char *name_or_id);
BANGER_EXTERN(void) banger_vm_free(banger_vm *vm);

BANGER_EXTERN(const char *) banger_vm_id(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_name(const banger_vm *vm);
/* "creating", "stopped", "starting", "running", "stopping", "deleting", "error" */
BANGER_EXTERN(const char *) banger_vm_state(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_image(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_kernel(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_guest_ip(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_mac(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_dns_name(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_vmm(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_last_error(const banger_vm *vm); /* NULL if none */
BANGER_EXTERN(uint32_t) banger_vm_vcpus(const banger_vm *vm);
BANGER_EXTERN(uint32_t) banger_vm_memory_mib(const banger_vm *vm);
BANGER_EXTERN(uint32_t) banger_vm_vsock_cid(const banger_vm *vm);
BANGER_EXTERN(int) banger_vm_nat(const banger_vm *vm);
BANGER_EXTERN(int64_t) banger_vm_created_at(const banger_vm *vm);  /* unix seconds */
BANGER_EXTERN(int64_t) banger_vm_started_at(const banger_vm *vm);  /* 0 if never */

/* The one liveness rule: 1 when the VM's state is running, its VMM
 * process exists and that process's command line still names the VM's
 * API socket (a reused pid is not alive); 0 when not; <0 on error. */
BANGER_EXTERN(int) banger_vm_is_alive(banger_ctx *ctx, const banger_vm *vm);

/* Also remove kernel objects with banger's names that no VM owns (taps,
 * loops under the state dir, dm targets, NAT rules, stray VMM processes,
 * VM directories without a record). */
#define BANGER_RECONCILE_SWEEP (1u << 0)

/* Called once per correction: subject (VM name or object) and what was
 * done.  Strings are valid during the call. */
typedef void (*banger_reconcile_cb)(const char *subject, const char *action, void *payload);

/* Bring recorded VMs in line with the host (also done, without the
 * sweep, whenever a context opens).  Returns the number of corrections
 * (>= 0) or a negative error. */
BANGER_EXTERN(int) banger_vm_reconcile(banger_ctx *ctx, uint32_t flags, banger_reconcile_cb cb,
				       void *payload);

BANGER_END_DECL

#endif
