/* A lost, emptied or damaged database: detection on open, and recovery
 * from the records every VM, image and kernel directory carries
 * (store/durable.c).
 *
 * Detection is cheap and runs on every open: only a store with no rows at
 * all looks at the directories, and it refuses to start fresh while any
 * VM directory (or an image or kernel directory with a record) was not
 * made by it.  Nothing is touched: the user is told what was found and
 * which command recovers it. */
#include "vm.h"

#include <banger/store.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Show at most this many paths in the open error. */
#define SHOW_PATHS 5

typedef struct {
	char **v;
	size_t n;
} pathlist;

static int pathlist_add(pathlist *l, char *path)
{
	if (!path)
		return bg_error_oom();
	char **nv = bg_realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		bg_free(path);
		return bg_error_oom();
	}
	l->v = nv;
	l->v[l->n++] = path;
	return 0;
}

static void pathlist_free(pathlist *l)
{
	bg_strv_free(l->v, l->n);
	l->v = NULL;
	l->n = 0;
}

/* Calls fn for every directory directly under parent (for VMs only those
 * named like a VM id), with the directory's path.  The one walk both the
 * lost-store check and the recovery use, so they agree on what a state
 * directory is.  A missing parent has no directories. */
typedef int (*dir_fn)(const char *dir, const char *name, void *payload);

static int each_state_dir(const char *parent, bool vm_ids_only, dir_fn fn, void *payload)
{
	DIR *d = opendir(parent);
	if (!d)
		return errno == ENOENT ? 0 : bg_error_os(BANGER_EIO, errno, "open %s", parent);
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.' || (vm_ids_only && !bg_vm_id_valid(e->d_name)))
			continue;
		char *dir = bg_path_join(parent, e->d_name);
		if (!dir) {
			rc = bg_error_oom();
			break;
		}
		struct stat st;
		if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			rc = fn(dir, e->d_name, payload);
		bg_free(dir);
	}
	closedir(d);
	return rc;
}

typedef struct {
	const bg_store *store;
	const char *file;
	bool need_record;
	pathlist *out;
} foreign_walk;

static int add_if_foreign(const char *dir, const char *name, void *payload)
{
	foreign_walk *w = payload;
	(void)name;
	bg_store_copy c;
	int r = bg_copy_read(&c, dir, w->file);
	bool foreign = r == 0 ? strcmp(c.store_id, w->store->id) != 0 : (!w->need_record || r != BANGER_ENOTFOUND);
	if (r == 0)
		bg_store_copy_clear(&c);
	banger_error_clear();
	return foreign ? pathlist_add(w->out, bg_strdup(dir)) : 0;
}

/* Directories under parent that are not this store's: for VMs every
 * directory named like a VM id whose record is missing or foreign; for
 * images and kernels only those whose record names another store (a
 * directory without one is a leftover of an older banger, re-pullable). */
static int collect_foreign(bg_store *s, const char *parent, const char *file, bool need_record, pathlist *out)
{
	foreign_walk w = { s, file, need_record, out };
	return each_state_dir(parent, !need_record, add_if_foreign, &w);
}

static int collect_all(banger_ctx *ctx, pathlist *out)
{
	int rc = collect_foreign(&ctx->env.store, ctx->env.layout.vms_dir, BG_VM_COPY_FILE, false, out);
	if (!rc)
		rc = collect_foreign(&ctx->env.store, ctx->env.layout.images_dir, BG_IMAGE_COPY_FILE, true, out);
	if (!rc)
		rc = collect_foreign(&ctx->env.store, ctx->env.layout.kernels_dir, BG_KERNEL_COPY_FILE, true, out);
	return rc;
}

int bg_store_check_not_lost(banger_ctx *ctx)
{
	int64_t rows = 0;
	int rc = bg_store_count_records(&ctx->env.store, &rows);
	if (rc || rows > 0)
		return rc;
	pathlist l = { 0 };
	if ((rc = collect_all(ctx, &l))) {
		pathlist_free(&l);
		return rc;
	}
	if (l.n == 0)
		return 0;
	bg_buf b = BG_BUF_INIT;
	for (size_t i = 0; i < l.n && i < SHOW_PATHS; i++)
		bg_buf_printf(&b, "%s%s", i ? ", " : "", l.v[i]);
	if (l.n > SHOW_PATHS)
		bg_buf_printf(&b, " and %zu more", l.n - SHOW_PATHS);
	rc = bg_error(BANGER_ESTORE,
		      "the database %s has no records, but %zu director%s under %s %s not made by it: %s. "
		      "The database was lost, emptied or replaced; nothing was changed. Run `banger store "
		      "recover` to rebuild it from these directories",
		      ctx->env.layout.db_path, l.n, l.n == 1 ? "y" : "ies", ctx->env.layout.state_dir,
		      l.n == 1 ? "was" : "were", b.data ? b.data : "?");
	bg_buf_free(&b);
	pathlist_free(&l);
	return rc;
}

/* ---- recovery ---- */

typedef struct {
	banger_ctx *ctx;
	bg_progress progress; /* the caller's reports */
	bool dry_run;
	bool cancelled;       /* the callback said stop: no next record */
	int recovered;
} rec_state;

/* Log a finding or a record recovered and report it as a STEP; a "stop"
 * is kept for the loops, which end before the next record. */
static void tell(rec_state *r, const char *subject, const char *fmt, ...) BG_PRINTF(3, 4);
static void tell(rec_state *r, const char *subject, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bg_info(r->ctx, "recover: %s: %s", subject, msg);
	banger_progress rep = { .event = BANGER_PROGRESS_STEP, .stage = "recover", .subject = subject, .detail = msg };
	if (!r->cancelled && bg_progress_report(&r->progress, &rep) != 0)
		r->cancelled = true; /* the error is made again on return */
}

/* Every record of one kind under parent. */
typedef struct {
	bg_store_copy *v;
	size_t n;
	char **dirs; /* the directory each was read from */
} copylist;

static void copylist_free(copylist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		bg_store_copy_clear(&l->v[i]);
		bg_free(l->dirs[i]);
	}
	bg_free(l->v);
	bg_free(l->dirs);
	memset(l, 0, sizeof(*l));
}

static const char *kind_word(bg_copy_kind k)
{
	return k == BG_COPY_VM ? "VM" : k == BG_COPY_IMAGE ? "image" : "kernel";
}

typedef struct {
	rec_state *r;
	const char *file;
	bg_copy_kind kind;
	copylist *out;
} read_walk;

static int copylist_add(copylist *l, bg_store_copy *c, const char *dir)
{
	char *d = bg_strdup(dir);
	bg_store_copy *nv = d ? bg_realloc(l->v, (l->n + 1) * sizeof(*nv)) : NULL;
	if (nv)
		l->v = nv;
	char **nd = nv ? bg_realloc(l->dirs, (l->n + 1) * sizeof(*nd)) : NULL;
	if (nd)
		l->dirs = nd;
	if (!nd) {
		bg_free(d);
		bg_store_copy_clear(c);
		return bg_error_oom();
	}
	l->v[l->n] = *c;
	l->dirs[l->n++] = d;
	return 0;
}

static int read_one(const char *dir, const char *name, void *payload)
{
	read_walk *w = payload;
	bg_store_copy c;
	int cr = bg_copy_read(&c, dir, w->file);
	if (cr == 0 && c.kind != w->kind) {
		bg_store_copy_clear(&c);
		cr = bg_error(BANGER_EINVALID, "%s/%s is not a %s record", dir, w->file, kind_word(w->kind));
	}
	if (cr == 0 && w->kind == BG_COPY_VM && strcmp(c.vm.id, name) != 0) {
		bg_store_copy_clear(&c);
		cr = bg_error(BANGER_EINVALID, "%s/%s describes another VM", dir, w->file);
	}
	if (cr == 0)
		return copylist_add(w->out, &c, dir);
	if (cr == BANGER_ENOMEM)
		return cr;
	/* A VM directory always has a record; an image or kernel directory
	 * of an older banger may have none. */
	if (w->kind == BG_COPY_VM || cr != BANGER_ENOTFOUND)
		tell(w->r, dir, "cannot be recovered, left in place: %s",
		     cr == BANGER_ENOTFOUND ? "it carries no record" : banger_error_last()->message);
	banger_error_clear();
	/* a stop ends the walk; the caller makes the error */
	return w->r->cancelled ? BANGER_ECANCELLED : 0;
}

static int read_all(rec_state *r, const char *parent, const char *file, bg_copy_kind kind, copylist *out)
{
	if (r->cancelled)
		return 0;
	read_walk w = { r, file, kind, out };
	return each_state_dir(parent, kind == BG_COPY_VM, read_one, &w);
}

/* The store id most records carry: an emptied store takes the identity of
 * the one it replaces, so the directories stay its own. */
static const char *majority_id(copylist *lists, size_t nlists)
{
	const char *best = NULL;
	size_t best_n = 0;
	for (size_t a = 0; a < nlists; a++)
		for (size_t i = 0; i < lists[a].n; i++) {
			const char *id = lists[a].v[i].store_id;
			size_t n = 0;
			for (size_t b = 0; b < nlists; b++)
				for (size_t j = 0; j < lists[b].n; j++)
					n += strcmp(lists[b].v[j].store_id, id) == 0;
			if (n > best_n) {
				best = id;
				best_n = n;
			}
		}
	return best;
}

static void recover_kernel(rec_state *r, const char *dir, bg_kernel_record *k)
{
	bg_kernel_record cur;
	if (bg_store_kernel_get(&r->ctx->env.store, &cur, k->name) == 0) {
		bg_kernel_record_clear(&cur);
		return; /* recorded: nothing to recover */
	}
	banger_error_clear();
	if (!bg_path_exists(k->kernel_path)) {
		tell(r, dir, "kernel %s not recovered: %s is missing", k->name, k->kernel_path);
		return;
	}
	if (!r->dry_run && bg_store_kernel_insert(&r->ctx->env.store, k) != 0) {
		tell(r, dir, "kernel %s not recovered: %s", k->name, banger_error_last()->message);
		banger_error_clear();
		return;
	}
	r->recovered++;
	tell(r, k->name, "kernel %s", r->dry_run ? "would be recovered" : "recovered");
}

static void recover_image(rec_state *r, const char *dir, bg_image_record *img)
{
	bg_image_record cur;
	if (bg_store_image_get(&r->ctx->env.store, &cur, img->name) == 0) {
		bg_image_record_clear(&cur);
		return;
	}
	banger_error_clear();
	if (!bg_path_exists(img->rootfs_path)) {
		tell(r, dir, "image %s not recovered: %s is missing", img->name, img->rootfs_path);
		return;
	}
	bg_kernel_record k;
	if (img->kernel_name && bg_store_kernel_get(&r->ctx->env.store, &k, img->kernel_name) != 0 && !r->dry_run) {
		tell(r, img->name, "its kernel %s is not installed: recovered without one", img->kernel_name);
		bg_free(img->kernel_name);
		img->kernel_name = NULL;
	} else if (img->kernel_name) {
		bg_kernel_record_clear(&k);
	}
	banger_error_clear();
	if (!r->dry_run && bg_store_image_insert(&r->ctx->env.store, img) != 0) {
		tell(r, dir, "image %s not recovered: %s", img->name, banger_error_last()->message);
		banger_error_clear();
		return;
	}
	r->recovered++;
	tell(r, img->name, "image %s", r->dry_run ? "would be recovered" : "recovered");
}

static int set_path(char **field, const char *path)
{
	if (!*field || !**field)
		return 0; /* a path the VM does not have (no dm COW, say) */
	char *p = bg_strdup(path);
	if (!p)
		return bg_error_oom();
	bg_free(*field);
	*field = p;
	return 0;
}

/* The paths of a VM are functions of its id and the state root: take
 * them from the layout, not from the copy (the state root may have been
 * moved since it was written). */
static int rebase_paths(banger_ctx *ctx, bg_vm_record *vm)
{
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	const char *base = vm->overlay ? strrchr(vm->overlay, '/') : NULL;
	char *overlay = base ? bg_path_join(p.dir, base + 1) : NULL;
	if ((base && !overlay) || (rc = set_path(&vm->api_sock, p.api_sock)) ||
	    (rc = set_path(&vm->vsock_path, p.vsock_sock)) || (rc = set_path(&vm->log_path, p.console_log)) ||
	    (rc = set_path(&vm->metrics_path, p.metrics)) || (rc = set_path(&vm->vm_dir, p.dir)) ||
	    (rc = set_path(&vm->work_disk, p.work_disk)) || (overlay && (rc = set_path(&vm->overlay, overlay))))
		rc = rc ? rc : bg_error_oom();
	bg_free(overlay);
	bg_vm_paths_free(&p);
	return rc;
}

static void recover_vm(rec_state *r, const char *dir, bg_vm_record *vm)
{
	banger_ctx *ctx = r->ctx;
	bg_vm_record cur;
	if (bg_store_vm_get(&ctx->env.store, &cur, vm->id) == 0) {
		bool same = strcmp(cur.id, vm->id) == 0;
		bg_vm_record_clear(&cur);
		if (same)
			return;
	}
	banger_error_clear();
	if (rebase_paths(ctx, vm) != 0) {
		tell(r, dir, "VM %s not recovered: %s", vm->name, banger_error_last()->message);
		banger_error_clear();
		return;
	}
	if (!r->dry_run) {
		/* A row may not name what is not recorded: the VM keeps its
		 * disks and is told to the user, who picks another. */
		bg_image_record img;
		if (vm->image && bg_store_image_get(&ctx->env.store, &img, vm->image) != 0) {
			tell(r, vm->name, "its image %s is not recorded: recovered without one", vm->image);
			bg_free(vm->image);
			vm->image = NULL;
		} else if (vm->image) {
			bg_image_record_clear(&img);
		}
		bg_kernel_record k;
		if (vm->kernel && bg_store_kernel_get(&ctx->env.store, &k, vm->kernel) != 0) {
			tell(r, vm->name, "its kernel %s is not installed: install it before starting the VM",
			     vm->kernel);
			bg_free(vm->kernel);
			vm->kernel = NULL;
		} else if (vm->kernel) {
			bg_kernel_record_clear(&k);
		}
		banger_error_clear();
		if (bg_store_vm_insert(&ctx->env.store, vm) != 0) {
			tell(r, dir, "VM %s not recovered: %s", vm->name, banger_error_last()->message);
			banger_error_clear();
			return;
		}
	}
	r->recovered++;
	tell(r, vm->name, "VM %s (%s, %s) %s", vm->id, vm->guest_ip ? vm->guest_ip : "no address", vm->state,
	     r->dry_run ? "would be recovered" : "recovered");
}

BANGER_EXTERN(int) banger_store_recover_options_init(banger_store_recover_options *opts, unsigned int version)
{
	static const banger_store_recover_options def = BANGER_STORE_RECOVER_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_store_recover_options", version, BANGER_STORE_RECOVER_OPTIONS_VERSION,
			       BANGER_STORE_RECOVER_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_store_recover(banger_ctx *ctx, const banger_store_recover_options *opts)
{
	banger_store_recover_options def = BANGER_STORE_RECOVER_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int vrc = BG_OPTIONS_CHECK(opts, &def, banger_store_recover_options, BANGER_STORE_RECOVER_OPTIONS_VERSION,
				   BANGER_STORE_RECOVER_OPTIONS_VERSION);
	if (vrc)
		return vrc;
	rec_state r = { ctx, { opts->progress, opts->progress_payload, BANGER_PROGRESS_OP_STORE_RECOVER, NULL },
			(opts->flags & BANGER_STORE_RECOVER_DRY_RUN) != 0, false, 0 };
	if (ctx->env.store_aside)
		tell(&r, ctx->env.layout.db_path, "the damaged database was kept as %s", ctx->env.store_aside);

	copylist lists[3];
	memset(lists, 0, sizeof(lists));
	int rc = read_all(&r, ctx->env.layout.kernels_dir, BG_KERNEL_COPY_FILE, BG_COPY_KERNEL, &lists[0]);
	if (!rc)
		rc = read_all(&r, ctx->env.layout.images_dir, BG_IMAGE_COPY_FILE, BG_COPY_IMAGE, &lists[1]);
	if (!rc)
		rc = read_all(&r, ctx->env.layout.vms_dir, BG_VM_COPY_FILE, BG_COPY_VM, &lists[2]);
	if (rc || r.cancelled)
		goto out;

	int64_t rows = 0;
	if ((rc = bg_store_count_records(&ctx->env.store, &rows)))
		goto out;
	const char *id = majority_id(lists, 3);
	if (rows == 0 && id && strcmp(id, ctx->env.store.id) != 0) {
		tell(&r, ctx->env.layout.db_path, "the store takes the identity %.12s of the one it replaces", id);
		if (!r.dry_run && (rc = bg_store_set_id(&ctx->env.store, id)))
			goto out;
	}
	for (size_t i = 0; i < lists[0].n && !r.cancelled; i++)
		recover_kernel(&r, lists[0].dirs[i], &lists[0].v[i].kernel);
	for (size_t i = 0; i < lists[1].n && !r.cancelled; i++)
		recover_image(&r, lists[1].dirs[i], &lists[1].v[i].image);
	for (size_t i = 0; i < lists[2].n && !r.cancelled; i++)
		recover_vm(&r, lists[2].dirs[i], &lists[2].v[i].vm);

	/* What the records say a VM was doing is settled like after a crash:
	 * a VMM that is gone means stopped, an unfinished create or delete is
	 * finished.  Its reports go to the caller too, and so does a stop. */
	if (!r.dry_run && r.recovered > 0 && !r.cancelled) {
		unsigned fixed = 0;
		int frc = bg_vm_reconcile(ctx, BG_RECONCILE_REPAIR, &r.progress, &fixed);
		if (frc == BANGER_ECANCELLED) {
			rc = frc;
			goto out;
		}
		if (frc != 0) {
			bg_warn(ctx, "recover: reconcile: %s", banger_error_last()->message);
			banger_error_clear();
		}
	}
	rc = r.recovered;
out:
	for (size_t i = 0; i < 3; i++)
		copylist_free(&lists[i]);
	if (r.cancelled)
		return bg_progress_cancelled("recover");
	if (rc >= 0)
		bg_progress_done(&r.progress, NULL, 0);
	return rc;
}
