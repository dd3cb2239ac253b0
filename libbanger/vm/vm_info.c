/* Public read access to VM records: the banger_vm object, lists, lookup
 * and accessors. */
#include "vm.h"

#include <string.h>

/* The public object is a snapshot the caller owns, not the store's row:
 * the store knows nothing of it, and what it holds can change without
 * the rows changing, or the other way round. */
struct banger_vm {
	bg_vm_record rec;
};

struct banger_vm_list {
	banger_vm *vms;
	size_t count;
};

int bg_vm_public_new(banger_vm **out, bg_vm_record *rec)
{
	*out = bg_calloc(1, sizeof(**out));
	if (!*out) {
		bg_vm_record_clear(rec);
		return bg_error_oom();
	}
	(*out)->rec = *rec;
	memset(rec, 0, sizeof(*rec));
	return 0;
}

const bg_vm_record *bg_vm_public_record(const banger_vm *vm)
{
	return vm ? &vm->rec : NULL;
}

BANGER_EXTERN(int) banger_vm_list_all(banger_vm_list **out, banger_ctx *ctx)
{
	if (!out || !ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	bg_vm_record *recs = NULL;
	size_t n = 0;
	int rc = bg_store_vm_list(&ctx->env.store, &recs, &n);
	if (rc)
		return rc;
	banger_vm_list *l = bg_calloc(1, sizeof(*l));
	banger_vm *vms = bg_calloc(n ? n : 1, sizeof(*vms));
	if (!l || !vms) {
		bg_free(l);
		bg_free(vms);
		bg_vm_records_free(recs, n);
		return bg_error_oom();
	}
	for (size_t i = 0; i < n; i++)
		vms[i].rec = recs[i];
	bg_free(recs); /* the strings moved */
	l->vms = vms;
	l->count = n;
	*out = l;
	return 0;
}

BANGER_EXTERN(size_t) banger_vm_list_count(const banger_vm_list *list)
{
	return list ? list->count : 0;
}

BANGER_EXTERN(const banger_vm *) banger_vm_list_get(const banger_vm_list *list, size_t i)
{
	return list && i < list->count ? &list->vms[i] : NULL;
}

BANGER_EXTERN(void) banger_vm_list_free(banger_vm_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		bg_vm_record_clear(&list->vms[i].rec);
	bg_free(list->vms);
	bg_free(list);
}

BANGER_EXTERN(int) banger_vm_lookup(banger_vm **out, banger_ctx *ctx, const char *name_or_id)
{
	if (!out || !ctx || !name_or_id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	bg_vm_record rec;
	int rc = bg_store_vm_get(&ctx->env.store, &rec, name_or_id);
	return rc ? rc : bg_vm_public_new(out, &rec);
}

BANGER_EXTERN(void) banger_vm_free(banger_vm *vm)
{
	if (!vm)
		return;
	bg_vm_record_clear(&vm->rec);
	bg_free(vm);
}

#define STR_ACCESSOR(fn, field) \
	BANGER_EXTERN(const char *) fn(const banger_vm *vm) { return vm ? vm->rec.field : NULL; }
#define U32_ACCESSOR(fn, field) \
	BANGER_EXTERN(uint32_t) fn(const banger_vm *vm) { return vm ? vm->rec.field : 0; }

STR_ACCESSOR(banger_vm_name, name)
STR_ACCESSOR(banger_vm_image, image)
STR_ACCESSOR(banger_vm_kernel, kernel)
STR_ACCESSOR(banger_vm_guest_ip, guest_ip)
STR_ACCESSOR(banger_vm_mac, mac)
STR_ACCESSOR(banger_vm_dns_name, dns_name)
STR_ACCESSOR(banger_vm_vmm, vmm)
STR_ACCESSOR(banger_vm_last_error, last_error)
STR_ACCESSOR(banger_vm_console_log, log_path)
U32_ACCESSOR(banger_vm_vcpus, vcpus)
U32_ACCESSOR(banger_vm_memory_mib, memory_mib)
U32_ACCESSOR(banger_vm_vsock_cid, vsock_cid)

/* The record keeps the state as text (the store's column); the API gives
 * numbers, in banger_vm_state_t's order. */
static const char *const state_names[] = {
	[BANGER_VM_STATE_CREATING] = BG_VM_CREATING, [BANGER_VM_STATE_STOPPED] = BG_VM_STOPPED,
	[BANGER_VM_STATE_STARTING] = BG_VM_STARTING, [BANGER_VM_STATE_RUNNING] = BG_VM_RUNNING,
	[BANGER_VM_STATE_STOPPING] = BG_VM_STOPPING, [BANGER_VM_STATE_DELETING] = BG_VM_DELETING,
};

BANGER_EXTERN(int) banger_vm_state(const banger_vm *vm)
{
	for (size_t i = 1; vm && i < BG_ARRAY_SIZE(state_names); i++)
		if (bg_streq(vm->rec.state, state_names[i]))
			return (int)i;
	return BANGER_VM_STATE_UNKNOWN;
}

BANGER_EXTERN(const char *) banger_vm_state_name(int state)
{
	return state > 0 && (size_t)state < BG_ARRAY_SIZE(state_names) ? state_names[state] : "unknown";
}

BANGER_EXTERN(const char *) banger_vm_id(const banger_vm *vm)
{
	return vm ? vm->rec.id : NULL;
}

BANGER_EXTERN(int) banger_vm_nat(const banger_vm *vm)
{
	return vm ? vm->rec.nat : 0;
}

BANGER_EXTERN(int64_t) banger_vm_created_at(const banger_vm *vm)
{
	return vm ? vm->rec.created_at : 0;
}

BANGER_EXTERN(int64_t) banger_vm_started_at(const banger_vm *vm)
{
	return vm ? vm->rec.started_at : 0;
}
