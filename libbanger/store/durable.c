/* Durable copies of the records.  SQLite is the index; each VM, image and
 * kernel directory also carries its own record as JSON, stamped with the
 * id of the store that wrote it, rewritten atomically whenever the row
 * changes.  Recovery (`banger store recover`) reads these back, and the
 * stamp tells reconcile whether a directory with no row is this store's
 * leftover or someone else's data.
 *
 * The copy is written after the row, in the same call: a crash between
 * the two leaves a copy one change behind, which recovery settles the
 * same way reconcile settles a row (a VM that claims to run but does not
 * is marked stopped). */
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_FORMAT 1

static const char *const kind_names[] = { "vm", "image", "kernel" };

/* ---- writing ---- */

static int put_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static int put_int(json_t *o, const char *key, int64_t v)
{
	return json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* The directory part of an absolute path, NULL when there is none (or
 * on allocation failure, which the callers tell apart). */
static char *dir_of(const char *path)
{
	const char *slash = path && path[0] == '/' ? strrchr(path, '/') : NULL;
	if (!slash || slash == path)
		return NULL;
	return bg_strndup(path, (size_t)(slash - path));
}

/* Wrap the record, serialise it and write <dir>/<file> atomically.  The
 * copy lives in the object's directory: where that is gone (removed by
 * hand, or a record that names none), there is nothing to write into,
 * and the row alone is updated, so reconcile can still settle it. */
static int write_copy(const char *dir, const char *file, bg_copy_kind kind, const char *store_id,
		      json_t *rec)
{
	if (!rec)
		return bg_error_oom();
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT) {
		json_decref(rec);
		return 0;
	}
	json_t *o = json_object();
	int bad = !o;
	if (o) {
		bad |= put_int(o, "banger_record", COPY_FORMAT);
		bad |= put_str(o, "kind", kind_names[kind]);
		bad |= put_str(o, "store_id", store_id);
		bad |= json_object_set(o, "record", rec);
	}
	json_decref(rec);
	char *text = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return bg_error_oom();
	char *path = bg_path_join(dir, file);
	int rc = path ? bg_write_file_atomic(path, text, strlen(text), 0600) : bg_error_oom();
	if (rc)
		bg_error_prefix("write the durable record");
	bg_free(path);
	free(text);
	return rc;
}

int bg_copy_write_vm(const char *store_id, const bg_vm_record *vm, const char *into)
{
	if (!into && (!vm->vm_dir || !*vm->vm_dir))
		return 0; /* a record that names no directory has nowhere for a copy */
	json_t *r = json_object();
	if (!r)
		return bg_error_oom();
	int bad = put_str(r, "id", vm->id);
	bad |= put_str(r, "name", vm->name);
	bad |= put_str(r, "image", vm->image);
	bad |= put_str(r, "kernel", vm->kernel);
	bad |= put_str(r, "state", vm->state);
	bad |= put_str(r, "vmm", vm->vmm);
	bad |= put_str(r, "guest_ip", vm->guest_ip);
	bad |= put_str(r, "mac", vm->mac);
	bad |= put_str(r, "dns_name", vm->dns_name);
	bad |= put_str(r, "api_socket", vm->api_sock);
	bad |= put_str(r, "vsock_path", vm->vsock_path);
	bad |= put_str(r, "log_path", vm->log_path);
	bad |= put_str(r, "metrics_path", vm->metrics_path);
	bad |= put_str(r, "vm_dir", vm->vm_dir);
	bad |= put_str(r, "system_overlay", vm->overlay);
	bad |= put_str(r, "work_disk", vm->work_disk);
	bad |= put_str(r, "last_error", vm->last_error);
	bad |= put_int(r, "vcpus", vm->vcpus);
	bad |= put_int(r, "memory_mib", vm->memory_mib);
	bad |= put_int(r, "vsock_cid", vm->vsock_cid);
	bad |= put_int(r, "disk_bytes", (int64_t)vm->disk_bytes);
	bad |= put_int(r, "nat", vm->nat ? 1 : 0);
	bad |= put_int(r, "created_at", vm->created_at);
	bad |= put_int(r, "updated_at", vm->updated_at);
	bad |= put_int(r, "started_at", vm->started_at);
	if (bad) {
		json_decref(r);
		return bg_error_oom();
	}
	return write_copy(into ? into : vm->vm_dir, BG_VM_COPY_FILE, BG_COPY_VM, store_id, r);
}

int bg_copy_write_image(const char *store_id, const bg_image_record *img)
{
	char *dir = dir_of(img->rootfs_path);
	if (!dir)
		return img->rootfs_path && *img->rootfs_path == '/' ? bg_error_oom() : 0;
	json_t *r = json_object();
	int bad = !r;
	if (r) {
		bad |= put_str(r, "name", img->name);
		bad |= put_str(r, "ref", img->ref);
		bad |= put_str(r, "manifest_digest", img->manifest_digest);
		bad |= put_str(r, "platform", img->platform);
		bad |= put_str(r, "config_json", img->config_json);
		bad |= put_str(r, "kernel_name", img->kernel_name);
		bad |= put_str(r, "rootfs_path", img->rootfs_path);
		bad |= put_int(r, "rootfs_bytes", (int64_t)img->rootfs_bytes);
		bad |= put_int(r, "has_initrd", img->has_initrd ? 1 : 0);
		bad |= put_int(r, "prepared", img->prepared ? 1 : 0);
		bad |= put_int(r, "created_at", img->created_at);
	}
	int rc = bad ? (json_decref(r), bg_error_oom())
		     : write_copy(dir, BG_IMAGE_COPY_FILE, BG_COPY_IMAGE, store_id, r);
	bg_free(dir);
	return rc;
}

int bg_copy_write_kernel(const char *store_id, const bg_kernel_record *k)
{
	char *dir = dir_of(k->kernel_path);
	if (!dir)
		return k->kernel_path && *k->kernel_path == '/' && strrchr(k->kernel_path, '/') != k->kernel_path
			       ? bg_error_oom()
			       : 0;
	json_t *r = json_object();
	int bad = !r;
	if (r) {
		bad |= put_str(r, "name", k->name);
		bad |= put_str(r, "version", k->version);
		bad |= put_str(r, "arch", k->arch);
		bad |= put_str(r, "format", k->format);
		bad |= put_str(r, "kernel_path", k->kernel_path);
		bad |= put_str(r, "initrd_path", k->initrd_path);
		bad |= put_str(r, "config_path", k->config_path);
		bad |= put_str(r, "source", k->source);
		bad |= put_str(r, "sha256", k->sha256);
		bad |= put_int(r, "created_at", k->created_at);
	}
	int rc = bad ? (json_decref(r), bg_error_oom())
		     : write_copy(dir, BG_KERNEL_COPY_FILE, BG_COPY_KERNEL, store_id, r);
	bg_free(dir);
	return rc;
}

/* ---- reading: strict, since the file is read back into SQL rows ---- */

typedef struct {
	json_t *rec;
	const char *origin;
	int rc;
} reader;

/* A string field: absent or null reads as NULL unless required.  Control
 * characters are refused: these values become paths, names and
 * addresses. */
static void get_str(reader *r, const char *key, char **out, bool required)
{
	if (r->rc)
		return;
	json_t *v = json_object_get(r->rec, key);
	if (!v || json_is_null(v)) {
		if (required)
			r->rc = bg_error(BANGER_EINVALID, "%s: \"%s\" is missing", r->origin, key);
		return;
	}
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;
	if (!s || n > 4096 || strlen(s) != n) {
		r->rc = bg_error(BANGER_EINVALID, "%s: \"%s\" is not a valid string", r->origin, key);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			r->rc = bg_error(BANGER_EINVALID, "%s: \"%s\" has a control character", r->origin, key);
			return;
		}
	if (!(*out = bg_strdup(s)))
		r->rc = bg_error_oom();
}

static void get_int(reader *r, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
	*out = 0;
	if (r->rc)
		return;
	json_t *v = json_object_get(r->rec, key);
	if (!v || json_is_null(v)) {
		*out = 0;
		return;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		r->rc = bg_error(BANGER_EINVALID, "%s: \"%s\" is not an integer in [%lld, %lld]", r->origin,
				 key, (long long)lo, (long long)hi);
		return;
	}
	*out = (int64_t)json_integer_value(v);
}

static bool is_abs(const char *p)
{
	return !p || p[0] == '/';
}

static int parse_vm(reader *r, bg_vm_record *vm)
{
	char *id = NULL;
	int64_t vcpus, mem, cid, disk, nat;
	get_str(r, "id", &id, true);
	if (!r->rc && (strlen(id) != 8 || strspn(id, "0123456789abcdef") != 8))
		r->rc = bg_error(BANGER_EINVALID, "%s: \"id\" is not a VM id", r->origin);
	if (!r->rc)
		memcpy(vm->id, id, 9);
	bg_free(id);
	get_str(r, "name", &vm->name, true);
	get_str(r, "image", &vm->image, false);
	get_str(r, "kernel", &vm->kernel, false);
	get_str(r, "state", &vm->state, true);
	get_str(r, "vmm", &vm->vmm, true);
	get_str(r, "guest_ip", &vm->guest_ip, false);
	get_str(r, "mac", &vm->mac, false);
	get_str(r, "dns_name", &vm->dns_name, false);
	get_str(r, "api_socket", &vm->api_sock, false);
	get_str(r, "vsock_path", &vm->vsock_path, false);
	get_str(r, "log_path", &vm->log_path, false);
	get_str(r, "metrics_path", &vm->metrics_path, false);
	get_str(r, "vm_dir", &vm->vm_dir, true);
	get_str(r, "system_overlay", &vm->overlay, false);
	get_str(r, "work_disk", &vm->work_disk, false);
	get_str(r, "last_error", &vm->last_error, false);
	get_int(r, "vcpus", 0, UINT32_MAX, &vcpus);
	get_int(r, "memory_mib", 0, UINT32_MAX, &mem);
	get_int(r, "vsock_cid", 0, UINT32_MAX, &cid);
	get_int(r, "disk_bytes", 0, INT64_MAX, &disk);
	get_int(r, "nat", 0, 1, &nat);
	get_int(r, "created_at", 0, INT64_MAX, &vm->created_at);
	get_int(r, "updated_at", 0, INT64_MAX, &vm->updated_at);
	get_int(r, "started_at", 0, INT64_MAX, &vm->started_at);
	if (r->rc)
		return r->rc;
	vm->vcpus = (uint32_t)vcpus;
	vm->memory_mib = (uint32_t)mem;
	vm->vsock_cid = (uint32_t)cid;
	vm->disk_bytes = (uint64_t)disk;
	vm->nat = (int)nat;
	const char *paths[] = { vm->api_sock, vm->vsock_path, vm->log_path, vm->metrics_path, vm->vm_dir,
				vm->work_disk };
	for (size_t i = 0; i < BG_ARRAY_SIZE(paths); i++)
		if (!is_abs(paths[i]))
			return r->rc = bg_error(BANGER_EINVALID, "%s: a path is not absolute", r->origin);
	return 0;
}

static int parse_image(reader *r, bg_image_record *img)
{
	int64_t bytes, initrd, prepared;
	get_str(r, "name", &img->name, true);
	get_str(r, "ref", &img->ref, false);
	get_str(r, "manifest_digest", &img->manifest_digest, false);
	get_str(r, "platform", &img->platform, false);
	get_str(r, "kernel_name", &img->kernel_name, false);
	get_str(r, "rootfs_path", &img->rootfs_path, true);
	get_int(r, "rootfs_bytes", 0, INT64_MAX, &bytes);
	get_int(r, "has_initrd", 0, 1, &initrd);
	get_int(r, "prepared", 0, 1, &prepared);
	get_int(r, "created_at", 0, INT64_MAX, &img->created_at);
	/* config_json is JSON text: newlines and tabs are allowed in it */
	json_t *cj = r->rc ? NULL : json_object_get(r->rec, "config_json");
	if (cj && !json_is_null(cj)) {
		const char *s = json_string_value(cj);
		if (!s || strlen(s) != json_string_length(cj) || !(img->config_json = bg_strdup(s)))
			r->rc = s ? bg_error_oom() : bg_error(BANGER_EINVALID, "%s: bad \"config_json\"", r->origin);
	}
	if (r->rc)
		return r->rc;
	img->rootfs_bytes = (uint64_t)bytes;
	img->has_initrd = (int)initrd;
	img->prepared = (int)prepared;
	if (!is_abs(img->rootfs_path))
		return r->rc = bg_error(BANGER_EINVALID, "%s: a path is not absolute", r->origin);
	return 0;
}

static int parse_kernel(reader *r, bg_kernel_record *k)
{
	get_str(r, "name", &k->name, true);
	get_str(r, "version", &k->version, false);
	get_str(r, "arch", &k->arch, true);
	get_str(r, "format", &k->format, true);
	get_str(r, "kernel_path", &k->kernel_path, true);
	get_str(r, "initrd_path", &k->initrd_path, false);
	get_str(r, "config_path", &k->config_path, false);
	get_str(r, "source", &k->source, true);
	get_str(r, "sha256", &k->sha256, false);
	get_int(r, "created_at", 0, INT64_MAX, &k->created_at);
	if (r->rc)
		return r->rc;
	if (!is_abs(k->kernel_path) || !is_abs(k->initrd_path) || !is_abs(k->config_path))
		return r->rc = bg_error(BANGER_EINVALID, "%s: a path is not absolute", r->origin);
	return 0;
}

void bg_store_copy_clear(bg_store_copy *c)
{
	if (!c)
		return;
	bg_vm_record_clear(&c->vm);
	bg_image_record_clear(&c->image);
	bg_kernel_record_clear(&c->kernel);
	memset(c, 0, sizeof(*c));
}

int bg_copy_parse(bg_store_copy *out, const char *text, size_t len, const char *origin)
{
	memset(out, 0, sizeof(*out));
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return bg_error(BANGER_EINVALID, "%s: not valid JSON (line %d: %s)", origin, jerr.line, jerr.text);
	int rc = 0;
	json_t *fmt = json_object_get(o, "banger_record");
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *sid = json_string_value(json_object_get(o, "store_id"));
	json_t *rec = json_object_get(o, "record");
	if (!json_is_integer(fmt) || json_integer_value(fmt) != COPY_FORMAT)
		rc = bg_error(BANGER_EINVALID, "%s: not a banger record of format %d", origin, COPY_FORMAT);
	else if (!sid || strlen(sid) != BG_STORE_ID_LEN || strspn(sid, "0123456789abcdef") != BG_STORE_ID_LEN)
		rc = bg_error(BANGER_EINVALID, "%s: \"store_id\" is not a store id", origin);
	else if (!json_is_object(rec))
		rc = bg_error(BANGER_EINVALID, "%s: \"record\" is not an object", origin);
	else if (!kind)
		rc = bg_error(BANGER_EINVALID, "%s: \"kind\" is missing", origin);
	if (rc == 0 && sid && kind) {
		memcpy(out->store_id, sid, BG_STORE_ID_LEN + 1);
		reader r = { rec, origin, 0 };
		if (strcmp(kind, "vm") == 0) {
			out->kind = BG_COPY_VM;
			rc = parse_vm(&r, &out->vm);
		} else if (strcmp(kind, "image") == 0) {
			out->kind = BG_COPY_IMAGE;
			rc = parse_image(&r, &out->image);
		} else if (strcmp(kind, "kernel") == 0) {
			out->kind = BG_COPY_KERNEL;
			rc = parse_kernel(&r, &out->kernel);
		} else {
			rc = bg_error(BANGER_EINVALID, "%s: unknown kind", origin);
		}
	}
	json_decref(o);
	if (rc)
		bg_store_copy_clear(out);
	return rc;
}

int bg_copy_read(bg_store_copy *out, const char *dir, const char *file)
{
	memset(out, 0, sizeof(*out));
	char *path = bg_path_join(dir, file);
	if (!path)
		return bg_error_oom();
	char *text = NULL;
	size_t len = 0;
	int rc = bg_read_file(&text, &len, path, BG_COPY_MAX_BYTES);
	if (rc == 0)
		rc = bg_copy_parse(out, text, len, path);
	bg_free(text);
	bg_free(path);
	return rc;
}

/* ---- a store migrated from before copies existed ---- */

int bg_store_write_all_copies(bg_store *s)
{
	int first = 0;
	bg_vm_record *vms = NULL;
	size_t nv = 0;
	if ((first = bg_store_vm_list(s, &vms, &nv)))
		return first;
	for (size_t i = 0; i < nv; i++) {
		int rc = bg_copy_write_vm(s->id, &vms[i], NULL);
		if (rc && !first)
			first = rc;
	}
	bg_vm_records_free(vms, nv);
	bg_image_record *imgs = NULL;
	size_t ni = 0;
	if (bg_store_image_list(s, &imgs, &ni) == 0) {
		for (size_t i = 0; i < ni; i++) {
			int rc = bg_copy_write_image(s->id, &imgs[i]);
			if (rc && !first)
				first = rc;
		}
		bg_image_records_free(imgs, ni);
	}
	bg_kernel_record *ks = NULL;
	size_t nk = 0;
	if (bg_store_kernel_list(s, &ks, &nk) == 0) {
		for (size_t i = 0; i < nk; i++) {
			int rc = bg_copy_write_kernel(s->id, &ks[i]);
			if (rc && !first)
				first = rc;
		}
		bg_kernel_records_free(ks, nk);
	}
	return first;
}
