/* The vms table: durable facts of each VM, never kernel handles. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define VM_COLUMNS \
	"id, name, image_name, kernel_name, state, vmm, vcpus, memory_mib, disk_bytes, nat, " \
	"guest_ip, mac, vsock_cid, dns_name, api_socket, vsock_path, log_path, metrics_path, " \
	"vm_dir, system_overlay, work_disk, last_error, created_at, updated_at, started_at"

void bg_vm_record_clear(bg_vm_record *vm)
{
	if (!vm)
		return;
	char **s[] = { &vm->name, &vm->image, &vm->kernel, &vm->state, &vm->vmm, &vm->guest_ip,
		       &vm->mac, &vm->dns_name, &vm->api_sock, &vm->vsock_path, &vm->log_path,
		       &vm->metrics_path, &vm->vm_dir, &vm->overlay, &vm->work_disk, &vm->last_error };
	for (size_t i = 0; i < BG_ARRAY_SIZE(s); i++)
		bg_free(*s[i]);
	memset(vm, 0, sizeof(*vm));
}

void bg_vm_records_free(bg_vm_record *v, size_t count)
{
	if (!v)
		return;
	for (size_t i = 0; i < count; i++)
		bg_vm_record_clear(&v[i]);
	bg_free(v);
}

/* Binds columns 2..25 (everything after id), in VM_COLUMNS order. */
static void bind_fields(sqlite3_stmt *st, const bg_vm_record *vm)
{
	bg_store_bind_text(st, 2, vm->name);
	bg_store_bind_text(st, 3, vm->image);
	bg_store_bind_text(st, 4, vm->kernel);
	bg_store_bind_text(st, 5, vm->state);
	bg_store_bind_text(st, 6, vm->vmm);
	sqlite3_bind_int64(st, 7, vm->vcpus);
	sqlite3_bind_int64(st, 8, vm->memory_mib);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)vm->disk_bytes);
	sqlite3_bind_int(st, 10, vm->nat ? 1 : 0);
	bg_store_bind_text(st, 11, vm->guest_ip);
	bg_store_bind_text(st, 12, vm->mac);
	if (vm->vsock_cid)
		sqlite3_bind_int64(st, 13, vm->vsock_cid);
	else
		sqlite3_bind_null(st, 13);
	bg_store_bind_text(st, 14, vm->dns_name);
	bg_store_bind_text(st, 15, vm->api_sock);
	bg_store_bind_text(st, 16, vm->vsock_path);
	bg_store_bind_text(st, 17, vm->log_path);
	bg_store_bind_text(st, 18, vm->metrics_path);
	bg_store_bind_text(st, 19, vm->vm_dir);
	bg_store_bind_text(st, 20, vm->overlay);
	bg_store_bind_text(st, 21, vm->work_disk);
	bg_store_bind_text(st, 22, vm->last_error);
	sqlite3_bind_int64(st, 23, vm->created_at);
	sqlite3_bind_int64(st, 24, vm->updated_at);
	sqlite3_bind_int64(st, 25, vm->started_at);
}

static int insert_row(bg_store *s, const bg_vm_record *vm)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "INSERT INTO vms (" VM_COLUMNS ") VALUES "
				  "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25)");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, vm->id);
	bind_fields(st, vm);
	if ((rc = bg_store_step_done(s, st, "record VM")))
		return rc;
	return bg_copy_write_vm(s->id, vm, NULL);
}

/* After a partial update: the copy is written from the whole row. */
static int copy_row(bg_store *s, const char *id)
{
	bg_vm_record vm;
	int rc = bg_store_vm_get(s, &vm, id);
	if (rc == 0)
		rc = bg_copy_write_vm(s->id, &vm, NULL);
	bg_vm_record_clear(&vm);
	return rc;
}

static int update_row(bg_store *s, const bg_vm_record *vm)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
		"UPDATE vms SET name=?2, image_name=?3, kernel_name=?4, state=?5, vmm=?6, vcpus=?7, "
		"memory_mib=?8, disk_bytes=?9, nat=?10, guest_ip=?11, mac=?12, vsock_cid=?13, "
		"dns_name=?14, api_socket=?15, vsock_path=?16, log_path=?17, metrics_path=?18, "
		"vm_dir=?19, system_overlay=?20, work_disk=?21, last_error=?22, created_at=?23, "
		"updated_at=?24, started_at=?25 WHERE id=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, vm->id);
	bind_fields(st, vm);
	if ((rc = bg_store_step_done(s, st, "update VM")))
		return rc;
	if (!sqlite3_changes(s->db))
		return bg_error(BANGER_ENOTFOUND, "VM %s is not recorded", vm->id);
	return copy_row(s, vm->id);
}

static int set_state_row(bg_store *s, const char *id, const char *state, const char *last_error)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
		"UPDATE vms SET state=?2, last_error=?3, updated_at=?4 WHERE id=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, id);
	bg_store_bind_text(st, 2, state);
	bg_store_bind_text(st, 3, last_error);
	sqlite3_bind_int64(st, 4, bg_wall_seconds());
	if ((rc = bg_store_step_done(s, st, "update VM state")))
		return rc;
	if (!sqlite3_changes(s->db))
		return bg_error(BANGER_ENOTFOUND, "VM %s is not recorded", id);
	return copy_row(s, id);
}

/* Each write of a row and of its durable copy is one unit: a copy that
 * cannot be written undoes the row change. */
int bg_store_vm_insert(bg_store *s, const bg_vm_record *vm)
{
	bool own;
	int rc = bg_store_unit_begin(s, &own);
	return rc ? rc : bg_store_unit_end(s, own, insert_row(s, vm));
}

int bg_store_vm_update(bg_store *s, const bg_vm_record *vm)
{
	bool own;
	int rc = bg_store_unit_begin(s, &own);
	return rc ? rc : bg_store_unit_end(s, own, update_row(s, vm));
}

int bg_store_vm_set_state(bg_store *s, const char *id, const char *state, const char *last_error)
{
	bool own;
	int rc = bg_store_unit_begin(s, &own);
	return rc ? rc : bg_store_unit_end(s, own, set_state_row(s, id, state, last_error));
}

int bg_store_vm_delete(bg_store *s, const char *id)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "DELETE FROM vms WHERE id=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, id);
	return bg_store_step_done(s, st, "delete VM record");
}

static int read_row(sqlite3_stmt *st, bg_vm_record *vm)
{
	memset(vm, 0, sizeof(*vm));
	const unsigned char *id = sqlite3_column_text(st, 0);
	snprintf(vm->id, sizeof(vm->id), "%s", id ? (const char *)id : "");
	int rc = 0;
	char **texts[] = { &vm->name, &vm->image, &vm->kernel, &vm->state, &vm->vmm };
	for (int i = 0; i < 5 && !rc; i++)
		rc = bg_store_col_text(texts[i], st, 1 + i);
	vm->vcpus = (uint32_t)sqlite3_column_int64(st, 6);
	vm->memory_mib = (uint32_t)sqlite3_column_int64(st, 7);
	vm->disk_bytes = (uint64_t)sqlite3_column_int64(st, 8);
	vm->nat = sqlite3_column_int(st, 9);
	if (!rc) rc = bg_store_col_text(&vm->guest_ip, st, 10);
	if (!rc) rc = bg_store_col_text(&vm->mac, st, 11);
	vm->vsock_cid = (uint32_t)sqlite3_column_int64(st, 12);
	char **more[] = { &vm->dns_name, &vm->api_sock, &vm->vsock_path, &vm->log_path,
			  &vm->metrics_path, &vm->vm_dir, &vm->overlay, &vm->work_disk,
			  &vm->last_error };
	for (int i = 0; i < 9 && !rc; i++)
		rc = bg_store_col_text(more[i], st, 13 + i);
	vm->created_at = sqlite3_column_int64(st, 22);
	vm->updated_at = sqlite3_column_int64(st, 23);
	vm->started_at = sqlite3_column_int64(st, 24);
	if (rc)
		bg_vm_record_clear(vm);
	return rc;
}

/* read_row and the clear function, for bg_store_collect */
static int read_any(sqlite3_stmt *st, void *elem)
{
	return read_row(st, elem);
}

static void clear_any(void *elem)
{
	bg_vm_record_clear(elem);
}

int bg_store_vm_get(bg_store *s, bg_vm_record *out, const char *key)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " VM_COLUMNS " FROM vms WHERE name=?1 "
				  "UNION ALL SELECT " VM_COLUMNS " FROM vms WHERE id=?1 AND name<>?1 LIMIT 1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, key);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = read_row(st, out);
	else if (src == SQLITE_DONE)
		rc = bg_error(BANGER_ENOTFOUND, "no VM named '%s'", key);
	else
		rc = bg_store_error(s, src, "look up VM");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_vm_list(bg_store *s, bg_vm_record **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " VM_COLUMNS " FROM vms ORDER BY name");
	if (rc)
		return rc;
	void *v;
	if ((rc = bg_store_collect(s, st, sizeof(bg_vm_record), read_any, clear_any, "list VMs", &v, count)))
		return rc;
	*out = v;
	return 0;
}
