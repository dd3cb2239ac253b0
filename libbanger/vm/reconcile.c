/* Reconcile: make the recorded VMs agree with the host after a crash, a
 * kill -9 or a VMM that died behind banger's back.
 *
 * Three strengths.  On context open (BG_RECONCILE_OPEN) it only settles
 * VMs whose VMM is gone: their kernel handles (tap, loops, NAT: nothing
 * that holds data) are released and the row says stopped; it deletes no
 * file and kills no process, so an open of a store that lost rows cannot
 * destroy anything.  An explicit reconcile also finishes interrupted
 * creates and deletes of this store's VMs (pins included) and stops a
 * VMM whose starter or stopper was killed.  The sweep (gc) also removes
 * kernel objects and directories with this state root's names, but only
 * those proven to be this store's orphans: no row and either no VM
 * directory, or one stamped by this store whose own record says it was
 * never finished (creating) or was being deleted.  A directory stamped by
 * another store, or with no record, is foreign: reported, never touched,
 * and neither are the objects named after it.
 *
 * Every object acted on or left alone is a STEP to the caller's progress
 * callback; a "stop" is heeded before the next object, so a VM is never
 * left half torn down by a cancel. */
#include "vm_internal.h"
#include "../guest/guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	banger_ctx *ctx;
	const bg_progress *progress; /* the caller's reports, or NULL */
	const char *stage;           /* of the reports: "reconcile", then "sweep" */
	const char *cancelled;       /* the stage the callback said stop at, or NULL */
	unsigned fixed;
	bg_reconcile_mode mode;
} rc_state;

/* Tell the log and the caller's report about one object: a correction
 * (say: counted, logged as info) or something left alone that the user
 * should know of (note: not counted, logged as a warning).  A "stop" is
 * kept for the loops, which end before the next object; the callback is
 * not asked again. */
static void vreport(rc_state *s, bool fixed, const char *subject, const char *fmt, va_list ap) BG_PRINTF(4, 0);
static void vreport(rc_state *s, bool fixed, const char *subject, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	bg_log(s->ctx, fixed ? BANGER_LOG_INFO : BANGER_LOG_WARN, "reconcile: %s: %s", subject, msg);
	banger_progress r = { .event = BANGER_PROGRESS_STEP, .stage = s->stage, .subject = subject, .detail = msg };
	if (!s->cancelled && bg_progress_report(s->progress, &r) != 0)
		s->cancelled = s->stage; /* the error is made again on return */
	if (fixed)
		s->fixed++;
}

static void note(rc_state *s, const char *subject, const char *fmt, ...) BG_PRINTF(3, 4);
static void note(rc_state *s, const char *subject, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(s, false, subject, fmt, ap);
	va_end(ap);
}

static void say(rc_state *s, const char *subject, const char *fmt, ...) BG_PRINTF(3, 4);
static void say(rc_state *s, const char *subject, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(s, true, subject, fmt, ap);
	va_end(ap);
}

bg_vm_dir_kind bg_vm_dir_classify(banger_ctx *ctx, const char *id, char *why, size_t why_len)
{
	if (why_len)
		why[0] = '\0';
	bg_vm_paths p;
	if (bg_layout_vm_paths(&p, &ctx->env.layout, id)) {
		banger_error_clear();
		return BG_VM_DIR_FOREIGN; /* cannot tell: keep it */
	}
	bg_vm_dir_kind k;
	struct stat st;
	if (lstat(p.dir, &st) != 0 && errno == ENOENT) {
		k = BG_VM_DIR_ABSENT;
	} else {
		bg_store_copy c;
		int rc = bg_copy_read(&c, p.dir, BG_VM_COPY_FILE);
		if (rc) {
			k = BG_VM_DIR_FOREIGN;
			if (why_len)
				snprintf(why, why_len, "%s", rc == BANGER_ENOTFOUND ? "it carries no record"
										: banger_error_last()->message);
			banger_error_clear();
		} else if (c.kind != BG_COPY_VM || strcmp(c.vm.id, id) != 0) {
			k = BG_VM_DIR_FOREIGN;
			if (why_len)
				snprintf(why, why_len, "its record is not of VM %s", id);
		} else if (strcmp(c.store_id, ctx->env.store.id) != 0) {
			k = BG_VM_DIR_FOREIGN;
			if (why_len)
				snprintf(why, why_len, "made by store %.12s, not this one (%.12s)", c.store_id,
					 ctx->env.store.id);
		} else if (strcmp(c.vm.state, BG_VM_CREATING) == 0 || strcmp(c.vm.state, BG_VM_DELETING) == 0) {
			k = BG_VM_DIR_LEFTOVER;
		} else {
			k = BG_VM_DIR_UNRECORDED;
			if (why_len)
				snprintf(why, why_len, "VM %s (%s) has no row in the database", c.vm.name, c.vm.state);
		}
		bg_store_copy_clear(&c);
	}
	bg_vm_paths_free(&p);
	return k;
}

/* Remove a VM that never finished being created, or was being deleted. */
static int finish_removal(rc_state *s, const bg_vm_record *vm, const bg_vm_handles *h)
{
	banger_ctx *ctx = s->ctx;
	int rc = bg_vm_teardown(ctx, vm, h);
	if (rc)
		return rc;
	bg_vm_paths p;
	if ((rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id)))
		return rc;
	/* The pins go with the VM: made before first boot, they would
	 * otherwise outlive an interrupted create or delete and refuse the
	 * next VM that gets this name or address. */
	if (vm->dns_name && vm->guest_ip) {
		const char *names[2];
		bg_vm_pin_names(vm, names);
		rc = bg_known_hosts_remove(ctx->env.layout.known_hosts, names, 2, NULL);
	}
	if (rc == 0)
		rc = bg_vm_dir_remove(p.dir);
	bg_vm_paths_free(&p);
	if (rc == 0)
		rc = bg_store_vm_delete(&ctx->env.store, vm->id);
	if (rc == 0)
		rc = bg_vm_sessions_lost(ctx, vm->id);
	return rc;
}

/* The row is what reconcile acts on; the VM's own record (vm.json) says
 * what the VM last was.  They agree, since both are written in one unit,
 * unless the database is older than the VM (a restored backup, a lost
 * WAL): then nothing destructive is done on the row's word.  True when
 * the VM directory is gone, or its record is this store's and in one of
 * the states given (NULL-terminated); otherwise the reason is reported. */
static bool record_agrees(rc_state *s, const char *id, const char *const *states)
{
	banger_ctx *ctx = s->ctx;
	bg_vm_paths p;
	if (bg_layout_vm_paths(&p, &ctx->env.layout, id)) {
		banger_error_clear();
		return false;
	}
	bool ok = false;
	bg_store_copy c;
	int rc = bg_copy_read(&c, p.dir, BG_VM_COPY_FILE);
	if (rc == BANGER_ENOTFOUND && !bg_path_exists(p.dir)) {
		ok = true;
	} else if (rc == 0) {
		ok = strcmp(c.store_id, ctx->env.store.id) == 0;
		bool in = false;
		for (size_t i = 0; states[i]; i++)
			in = in || strcmp(c.vm.state, states[i]) == 0;
		if (ok && !in)
			note(s, p.dir, "left alone: its own record says %s, which its row does not (the database is "
				       "older than the VM)", c.vm.state);
		ok = ok && in;
		bg_store_copy_clear(&c);
	}
	banger_error_clear();
	bg_vm_paths_free(&p);
	return ok;
}

/* Does any process name the VM's API socket (a VMM, alive or not yet
 * answering)?  When /proc cannot be read, assume one does. */
static bool vmm_running(const bg_vm_record *vm)
{
	if (!vm->api_sock)
		return false;
	pid_t *pids = NULL;
	size_t np = 0;
	bool found = bg_proc_find(&pids, &np, vm->api_sock) != 0 || np > 0;
	bg_free(pids);
	banger_error_clear();
	return found;
}

static int reconcile_one(rc_state *s, bg_vm_record *vm, bool *needs_sweep)
{
	banger_ctx *ctx = s->ctx;
	const char *st = vm->state ? vm->state : "";
	bool running = strcmp(st, BG_VM_RUNNING) == 0;
	bool transitional = strcmp(st, BG_VM_CREATING) == 0 || strcmp(st, BG_VM_STARTING) == 0 ||
			    strcmp(st, BG_VM_STOPPING) == 0 || strcmp(st, BG_VM_DELETING) == 0;
	if (!running && !transitional)
		return 0;

	if (running) {
		pid_t pid;
		if (bg_vm_alive(ctx, vm, &pid))
			return 0; /* alive: the cache is seeded by rediscovery */
	}
	if (s->mode == BG_RECONCILE_OPEN) {
		/* Opening kills and deletes nothing: interrupted creates and
		 * deletes wait for an explicit reconcile, and so does a VM some
		 * process still runs a VMM for. */
		if (strcmp(st, BG_VM_CREATING) == 0 || strcmp(st, BG_VM_DELETING) == 0)
			return 0;
		if (vmm_running(vm))
			return 0;
	}

	/* Someone else may be working on this VM right now: its lock says so. */
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	bg_lock lock = BG_LOCK_INIT;
	if (bg_path_exists(p.dir) &&
	    (bg_lock_acquire(&lock, p.lock, 0) != 0 || !bg_lock_is_current(&lock, p.lock))) {
		bg_lock_release(&lock);
		bg_vm_paths_free(&p);
		banger_error_clear();
		return 0;
	}
	bg_vm_paths_free(&p);
	/* Re-read under the lock: the holder may just have finished. */
	bg_vm_record cur;
	if (bg_store_vm_get(&ctx->env.store, &cur, vm->id) != 0) {
		bg_lock_release(&lock);
		banger_error_clear();
		return 0;
	}
	bg_vm_handles h;
	char hnote[256];
	bg_vm_rediscover(ctx, &cur, &h, hnote, sizeof(hnote));
	*needs_sweep = true;
	const char *cs = cur.state;
	if (strcmp(cs, BG_VM_RUNNING) == 0 && bg_vm_alive(ctx, &cur, NULL)) {
		rc = 0;
	} else if (s->mode == BG_RECONCILE_OPEN &&
		   (strcmp(cs, BG_VM_CREATING) == 0 || strcmp(cs, BG_VM_DELETING) == 0 || vmm_running(&cur))) {
		rc = 0; /* changed under us into something open leaves alone */
	} else if ((strcmp(cs, BG_VM_CREATING) == 0 || strcmp(cs, BG_VM_DELETING) == 0) &&
		   !record_agrees(s, cur.id, (const char *const[]){ BG_VM_CREATING, BG_VM_DELETING, NULL })) {
		rc = 0; /* a stale row: the VM was finished after it was written */
	} else if (strcmp(cs, BG_VM_CREATING) == 0 || strcmp(cs, BG_VM_DELETING) == 0) {
		bool deleting = strcmp(cs, BG_VM_DELETING) == 0;
		rc = finish_removal(s, &cur, &h);
		if (rc == 0)
			say(s, cur.name, "%s", deleting ? "deletion completed after an interrupted 'vm delete'"
							: "removed: its creation was interrupted");
	} else {
		rc = bg_vm_teardown(ctx, &cur, &h);
		if (rc == 0) {
			char why[400];
			if (strcmp(cs, BG_VM_RUNNING) == 0)
				snprintf(why, sizeof(why), "the VMM process exited unexpectedly");
			else
				snprintf(why, sizeof(why), "interrupted while %s", cs);
			rc = bg_store_vm_set_state(&ctx->env.store, cur.id, BG_VM_STOPPED,
						   strcmp(cs, BG_VM_STOPPING) == 0 ? NULL : why);
			if (rc == 0)
				rc = bg_vm_sessions_lost(ctx, cur.id);
			if (rc == 0)
				say(s, cur.name, "marked stopped: %s", why);
		}
	}
	if (hnote[0])
		bg_warn(ctx, "VM %s: %s; cleaned up from deterministic names", cur.name, hnote);
	bg_vm_record_clear(&cur);
	bg_lock_release(&lock);
	return rc;
}

/* Does a VM own kernel objects named after id?  With need_active, only
 * a running VM or one another process is working on right now (the
 * transitional VMs left after reconcile_one are exactly those). */
static bool owned(bg_vm_record *vms, size_t n, const char *id, bool need_active)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(vms[i].id, id) == 0)
			return !need_active || (vms[i].state && strcmp(vms[i].state, BG_VM_STOPPED) != 0);
	return false;
}

/* The list of VMs a sweep starts from is a snapshot: a VM created by
 * another process after it was taken has a tap, a NAT rule, a VMM the
 * snapshot does not know of.  So before removing an object the snapshot
 * calls stray, take that VM's lock (without waiting): if another process
 * holds it, that process is working on the VM (creating, starting,
 * deleting it) and the object is left alone; if we get it, the record is
 * read again under the lock and decides (and the VM's own record must
 * agree that it is not running).  Without a row, the VM's directory
 * decides: the object is stray when the directory is this store's and
 * was never finished or being deleted, or (absent_ok: objects whose names
 * carry this state root's tag, unlike a VMM found by its socket path in a
 * runtime directory other roots may share) when there is none.
 * *lock is held on return when the object may go (release it after
 * removing the object). */
static bool really_stray(rc_state *s, const char *id, bool need_active, bool absent_ok, bg_lock *lock)
{
	banger_ctx *ctx = s->ctx;
	if (!bg_vm_id_valid(id))
		return true;
	bg_vm_paths p;
	if (bg_layout_vm_paths(&p, &ctx->env.layout, id))
		return false; /* cannot tell: keep it */
	bool stray = true, recorded = false;
	/* No lock file means no one can be at work with kernel objects (a
	 * creator locks before it makes any; a deleter has torn them down
	 * before it removes files). */
	if (bg_lock_try_existing(lock, p.lock) == BG_LOCK_BUSY)
		stray = false; /* someone is working on this VM */
	bg_vm_record r;
	if (stray && bg_store_vm_get(&ctx->env.store, &r, id) == 0) {
		recorded = true;
		stray = need_active && (!r.state || strcmp(r.state, BG_VM_STOPPED) == 0);
		bg_vm_record_clear(&r);
		/* a stopped row over a record that says the VM runs is stale */
		if (stray)
			stray = record_agrees(s, id,
					      (const char *const[]){ BG_VM_STOPPED, BG_VM_CREATING, BG_VM_DELETING, NULL });
	}
	if (stray && !recorded) {
		char why[300];
		bg_vm_dir_kind k = bg_vm_dir_classify(ctx, id, why, sizeof(why));
		/* reported once, by the directory pass of the sweep */
		stray = (absent_ok && k == BG_VM_DIR_ABSENT) || k == BG_VM_DIR_LEFTOVER;
	}
	if (!stray)
		bg_lock_release(lock);
	bg_vm_paths_free(&p);
	banger_error_clear();
	return stray;
}

/* A creator holds the lock of its staging directory from just after
 * mkdir until the rename; one that is unlocked and older than a creator
 * could take to lock it was left by a killed process.  Only this store's
 * (or an empty one) is removed. */
#define STAGING_GRACE_S 60

static bool staging_abandoned(banger_ctx *ctx, const char *dir)
{
	struct stat st;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || bg_wall_seconds() - st.st_mtime < STAGING_GRACE_S)
		return false;
	char *lp = bg_path_join(dir, BG_VM_LOCK_FILE);
	bg_lock l = BG_LOCK_INIT;
	bool free_ = lp && bg_lock_try_existing(&l, lp) != BG_LOCK_BUSY;
	bg_lock_release(&l);
	bg_free(lp);
	if (!free_)
		return false;
	bg_store_copy c;
	int r = bg_copy_read(&c, dir, BG_VM_COPY_FILE);
	bool ours = r == 0 && strcmp(c.store_id, ctx->env.store.id) == 0;
	if (r == 0)
		bg_store_copy_clear(&c);
	banger_error_clear();
	return ours || r == BANGER_ENOTFOUND;
}

/* The VM id in a VMM's command line: "<runtime>/<id>." of its sockets. */
static bool vmm_id(pid_t pid, const char *runtime_dir, char id[BG_VM_ID_LEN + 1])
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	size_t rl = strlen(runtime_dir);
	for (size_t i = 0; i + rl + 1 + BG_VM_ID_LEN < n; i++) {
		if (memcmp(buf + i, runtime_dir, rl) != 0 || buf[i + rl] != '/')
			continue;
		memcpy(id, buf + i + rl + 1, BG_VM_ID_LEN);
		id[BG_VM_ID_LEN] = '\0';
		if (bg_vm_id_valid(id) && buf[i + rl + 1 + BG_VM_ID_LEN] == '.')
			return true;
	}
	return false;
}

/* What a sweep works from: the snapshot of the VMs it started with, a
 * fresh list for the loop devices, and the names this state root gives
 * its kernel objects. */
typedef struct {
	rc_state *s;
	bg_vm_record *vms;
	size_t n;
	bg_vm_record *now;
	size_t n_now;
	char tap_prefix[8];
	char nat_table[32];
	char dm_prefix[32];
} sweeper;

/* One kind of kernel object a VM leaves behind: how this state root's
 * objects of that kind are listed, whether one has no owner (when it
 * takes the VM's lock in *lock, the lock is held until the object is
 * removed), and how it is removed; with the report's subject prefix and
 * what the report says once it is gone. */
typedef struct {
	const char *subject_prefix;
	const char *done;
	int (*list)(sweeper *w, char ***names, size_t *count);
	bool (*unowned)(sweeper *w, const char *name, bg_lock *lock);
	int (*remove)(sweeper *w, const char *name);
} sweep_kind;

/* Objects named after a VM id: stray when no active VM of the snapshot
 * has that id and really_stray() agrees. */
static bool named_unowned(sweeper *w, const char *id, bg_lock *lock)
{
	return !owned(w->vms, w->n, id, true) && really_stray(w->s, id, true, true, lock);
}

/* VMM processes naming a socket in our runtime directory; a process's
 * name is its pid in decimal. */
static int vmm_list(sweeper *w, char ***names, size_t *count)
{
	pid_t *pids = NULL;
	size_t np = 0;
	char *needle = bg_sprintf("%s/", w->s->ctx->env.layout.runtime_dir);
	int rc = needle ? bg_proc_find(&pids, &np, needle) : bg_error_oom();
	char **v = rc == 0 && np > 0 ? bg_calloc(np, sizeof(*v)) : NULL;
	if (rc == 0 && np > 0 && !v)
		rc = bg_error_oom();
	for (size_t i = 0; rc == 0 && i < np; i++)
		if (!(v[i] = bg_sprintf("%d", (int)pids[i])))
			rc = bg_error_oom();
	bg_free(needle);
	bg_free(pids);
	if (rc) {
		bg_strv_free(v, np);
		return rc;
	}
	*names = v;
	*count = np;
	return 0;
}

/* Not an active VM's (none has its socket on the command line), and
 * the VM its command line names is stray.  The id is read again now: a
 * process that no longer names one of our sockets (a wrapper's child
 * that has exec'd since the scan, e.g. a pyenv shim's) is not a VMM of
 * ours. */
static bool vmm_unowned(sweeper *w, const char *name, bg_lock *lock)
{
	pid_t pid = (pid_t)strtol(name, NULL, 10);
	for (size_t k = 0; k < w->n; k++)
		if (w->vms[k].api_sock && bg_proc_cmdline_has(pid, w->vms[k].api_sock) &&
		    owned(w->vms, w->n, w->vms[k].id, true))
			return false;
	char id[BG_VM_ID_LEN + 1];
	return vmm_id(pid, w->s->ctx->env.layout.runtime_dir, id) && really_stray(w->s, id, true, false, lock);
}

static int vmm_remove(sweeper *w, const char *name)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->process_terminate(ops->self, (pid_t)strtol(name, NULL, 10), 3000);
}

/* NAT rules, one set per VM id, in this state root's table. */
static int nat_list(sweeper *w, char ***names, size_t *count)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->nat_list(ops->self, w->nat_table, names, count);
}

static bool nat_unowned(sweeper *w, const char *name, bg_lock *lock)
{
	return named_unowned(w, name, lock);
}

static int nat_remove(sweeper *w, const char *name)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->nat_remove(ops->self, w->nat_table, name);
}

/* dm targets: our object prefix, the instance tag, the VM id. */
static int dm_list(sweeper *w, char ***names, size_t *count)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->dm_list(ops->self, w->dm_prefix, names, count);
}

static bool dm_unowned(sweeper *w, const char *name, bg_lock *lock)
{
	return named_unowned(w, name + strlen(w->dm_prefix), lock);
}

static int dm_remove(sweeper *w, const char *name)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->dm_remove(ops->self, name);
}

/* Loop devices backed by files under our state directory.  An active
 * VM's loops are in its handles, read from a fresh list: a VM started
 * meanwhile attaches its loops while in "starting", which the snapshot
 * may not show.  When that list cannot be read, none is listed: what is
 * in use cannot be told, so nothing is detached. */
static int loop_list(sweeper *w, char ***names, size_t *count)
{
	banger_ctx *ctx = w->s->ctx;
	const bg_host_ops *ops = ctx->env.host;
	int rc = ops->loop_list(ops->self, ctx->env.layout.state_dir, names, count);
	if (rc || *count == 0)
		return rc;
	if (bg_store_vm_list(&ctx->env.store, &w->now, &w->n_now) != 0) {
		w->now = NULL;
		w->n_now = 0;
		bg_strv_free(*names, *count);
		*names = NULL;
		*count = 0;
	}
	return 0;
}

/* A loop is told by the active VMs' handles, not by a VM's lock. */
static bool loop_unowned(sweeper *w, const char *name, bg_lock *lock)
{
	(void)lock;
	banger_ctx *ctx = w->s->ctx;
	for (size_t k = 0; k < w->n_now; k++) {
		bg_vm_handles h;
		if (!w->now[k].state || strcmp(w->now[k].state, BG_VM_STOPPED) == 0)
			continue;
		if ((bg_handles_cache_get(ctx, w->now[k].id, &h) ||
		     bg_vm_rediscover(ctx, &w->now[k], &h, NULL, 0) == 0) &&
		    (strcmp(h.base_loop, name) == 0 || strcmp(h.cow_loop, name) == 0))
			return false;
	}
	return true;
}

static int loop_remove(sweeper *w, const char *name)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->loop_detach(ops->self, name);
}

/* Taps: this state root's tap prefix, then the VM id. */
static int tap_list(sweeper *w, char ***names, size_t *count)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->tap_list(ops->self, w->tap_prefix, names, count);
}

static bool tap_unowned(sweeper *w, const char *name, bg_lock *lock)
{
	return named_unowned(w, name + strlen(w->tap_prefix), lock);
}

static int tap_remove(sweeper *w, const char *name)
{
	const bg_host_ops *ops = w->s->ctx->env.host;
	return ops->tap_delete(ops->self, name);
}

/* In this order: a VMM goes before the devices it holds, a dm target
 * before the loop devices under it. */
static const sweep_kind sweep_kinds[] = {
	{ "pid ", "stray VMM process killed", vmm_list, vmm_unowned, vmm_remove },
	{ "", "stray NAT rules removed", nat_list, nat_unowned, nat_remove },
	{ "", "stray dm target removed", dm_list, dm_unowned, dm_remove },
	{ "", "stray loop device detached", loop_list, loop_unowned, loop_remove },
	{ "", "stray tap device deleted", tap_list, tap_unowned, tap_remove },
};

/* Remove every object of one kind that no VM owns; the first failure
 * to remove one is returned, the others are still tried.  A kind that
 * cannot be listed is skipped. */
static int sweep_kind_pass(sweeper *w, const sweep_kind *k)
{
	char **names = NULL;
	size_t nn = 0;
	int first = 0;
	if (k->list(w, &names, &nn) == 0) {
		for (size_t i = 0; i < nn && !w->s->cancelled; i++) {
			bg_lock lock = BG_LOCK_INIT;
			if (!k->unowned(w, names[i], &lock)) {
				bg_lock_release(&lock);
				continue;
			}
			int r = k->remove(w, names[i]);
			bg_lock_release(&lock);
			if (r) {
				if (!first)
					first = r;
				continue;
			}
			char subject[300];
			snprintf(subject, sizeof(subject), "%s%s", k->subject_prefix, names[i]);
			say(w->s, subject, "%s", k->done);
		}
	}
	bg_strv_free(names, nn);
	return first;
}

/* A removal a killed process did not finish; its lock (if the file is
 * still there) says whether one is at it. */
static void sweep_trash(sweeper *w, const char *name)
{
	char *t = bg_path_join(w->s->ctx->env.layout.vms_dir, name);
	char *tl = t ? bg_path_join(t, BG_VM_LOCK_FILE) : NULL;
	bg_lock l = BG_LOCK_INIT;
	/* removing the tree removes the lock file we hold: no one can take
	 * it in between */
	if (t && tl && bg_lock_try_existing(&l, tl) != BG_LOCK_BUSY && bg_remove_tree(t) == 0)
		say(w->s, name, "leftover of an interrupted removal deleted");
	bg_lock_release(&l);
	bg_free(tl);
	bg_free(t);
}

/* A create killed before its directory was renamed into place: it
 * holds a record and a lock file, nothing else. */
static void sweep_staging(sweeper *w, const char *name)
{
	char *t = bg_path_join(w->s->ctx->env.layout.vms_dir, name);
	if (t && staging_abandoned(w->s->ctx, t) && bg_remove_tree(t) == 0)
		say(w->s, name, "leftover of an interrupted create deleted");
	bg_free(t);
}

/* Remove the directory of an unfinished create, under its lock.  Checked
 * again once the lock is held: a creator inserts the row while holding
 * it; and the lock must be on the file that is there now (another sweep
 * may have removed the directory we opened it in, and a creator made it
 * again). */
static void remove_unfinished(sweeper *w, const char *id)
{
	banger_ctx *ctx = w->s->ctx;
	bg_vm_paths p;
	if (bg_layout_vm_paths(&p, &ctx->env.layout, id))
		return;
	bg_lock lock = BG_LOCK_INIT;
	if (bg_lock_acquire(&lock, p.lock, 0) == 0) {
		bg_vm_record tmp;
		if (!bg_lock_is_current(&lock, p.lock)) {
			/* not ours to judge */
		} else if (bg_store_vm_get(&ctx->env.store, &tmp, id) == 0) {
			bg_vm_record_clear(&tmp);
		} else if (bg_vm_dir_classify(ctx, id, NULL, 0) == BG_VM_DIR_LEFTOVER && bg_vm_dir_remove(p.dir) == 0) {
			say(w->s, id, "directory of an unfinished create removed");
		}
		bg_lock_release(&lock);
	}
	bg_vm_paths_free(&p);
}

/* A VM directory without a row: removed when it is this store's and was
 * never finished or was being deleted; anything else is reported and
 * left in place, with the kernel objects named after it. */
static void sweep_vm_dir(sweeper *w, const char *name)
{
	banger_ctx *ctx = w->s->ctx;
	if (!bg_vm_id_valid(name) || owned(w->vms, w->n, name, false))
		return;
	/* the list is a snapshot: a VM created since has a row now */
	bg_vm_record now;
	if (bg_store_vm_get(&ctx->env.store, &now, name) == 0) {
		bg_vm_record_clear(&now);
		return;
	}
	banger_error_clear();
	char why[300];
	bg_vm_dir_kind kind = bg_vm_dir_classify(ctx, name, why, sizeof(why));
	if (kind == BG_VM_DIR_ABSENT)
		return;
	if (kind == BG_VM_DIR_LEFTOVER) {
		remove_unfinished(w, name);
		return;
	}
	char *t = bg_path_join(ctx->env.layout.vms_dir, name);
	note(w->s, t ? t : name, "left in place with the kernel objects named after it: %s%s", why,
	     kind == BG_VM_DIR_UNRECORDED || strncmp(why, "made by store", 13) == 0
		     ? "; `banger store recover` adds it back"
		     : "");
	bg_free(t);
}

/* Entries of the VMs directory: leftovers of removals and creates, and
 * VM directories without a row whose lock nobody holds. */
static void sweep_dirs(sweeper *w)
{
	DIR *d = opendir(w->s->ctx->env.layout.vms_dir);
	if (!d)
		return;
	struct dirent *e;
	while (!w->s->cancelled && (e = readdir(d))) {
		if (bg_vm_dir_is_trash(e->d_name))
			sweep_trash(w, e->d_name);
		else if (bg_vm_dir_is_staging(e->d_name))
			sweep_staging(w, e->d_name);
		else
			sweep_vm_dir(w, e->d_name);
	}
	closedir(d);
}

/* Kernel objects with our names that no live VM owns, kind by kind,
 * then the VMs directory. */
static int sweep(rc_state *s)
{
	banger_ctx *ctx = s->ctx;
	sweeper w = { .s = s };
	int rc = bg_store_vm_list(&ctx->env.store, &w.vms, &w.n);
	if (rc)
		return rc;
	bg_layout_tap_prefix(&ctx->env.layout, w.tap_prefix);
	bg_nat_table_name(w.nat_table, ctx->env.layout.instance);
	snprintf(w.dm_prefix, sizeof(w.dm_prefix), BG_OBJECT_PREFIX "-%s-", ctx->env.layout.instance);
	int first = 0;
	s->stage = "sweep";
	for (size_t i = 0; i < BG_ARRAY_SIZE(sweep_kinds) && !s->cancelled; i++) {
		int r = sweep_kind_pass(&w, &sweep_kinds[i]);
		if (r && !first)
			first = r;
	}
	sweep_dirs(&w);
	banger_error_clear();
	bg_vm_records_free(w.now, w.n_now);
	bg_vm_records_free(w.vms, w.n);
	return first;
}

int bg_vm_reconcile(banger_ctx *ctx, bg_reconcile_mode mode, const bg_progress *progress, unsigned *fixed)
{
	rc_state s = { ctx, progress, "reconcile", NULL, 0, mode };
	bg_vm_record *vms;
	size_t n;
	int rc = bg_store_vm_list(&ctx->env.store, &vms, &n);
	if (rc)
		return rc;
	bool needs_sweep = mode == BG_RECONCILE_SWEEP;
	int first = 0;
	for (size_t i = 0; i < n && !s.cancelled; i++) {
		int r = reconcile_one(&s, &vms[i], &needs_sweep);
		if (r && !first)
			first = r;
	}
	/* A VM directory without a row is what a process killed between
	 * mkdir and insert leaves: cheap to spot, and worth a sweep (which
	 * also reports directories it leaves alone). */
	if (!needs_sweep && mode != BG_RECONCILE_OPEN) {
		DIR *d = opendir(ctx->env.layout.vms_dir);
		struct dirent *e;
		while (d && !needs_sweep && (e = readdir(d)))
			needs_sweep = bg_vm_id_valid(e->d_name) && !owned(vms, n, e->d_name, false);
		if (d)
			closedir(d);
	}
	bg_vm_records_free(vms, n);
	if (needs_sweep && mode != BG_RECONCILE_OPEN && !s.cancelled) {
		int r = sweep(&s);
		if (r && !first)
			first = r;
	}
	if (fixed)
		*fixed = s.fixed;
	return s.cancelled ? bg_progress_cancelled(s.cancelled) : first;
}

BANGER_EXTERN(int) banger_vm_reconcile_options_init(banger_vm_reconcile_options *opts, unsigned int version)
{
	static const banger_vm_reconcile_options def = BANGER_VM_RECONCILE_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_reconcile_options", version,
			       BANGER_VM_RECONCILE_OPTIONS_VERSION, BANGER_VM_RECONCILE_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_reconcile(banger_ctx *ctx, const banger_vm_reconcile_options *opts)
{
	banger_vm_reconcile_options def = BANGER_VM_RECONCILE_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_reconcile_options, BANGER_VM_RECONCILE_OPTIONS_VERSION,
				  BANGER_VM_RECONCILE_OPTIONS_VERSION);
	if (rc)
		return rc;
	unsigned fixed = 0;
	const bool sweep = (opts->flags & BANGER_RECONCILE_SWEEP) != 0;
	const bg_progress progress = { opts->progress, opts->progress_payload, BANGER_PROGRESS_OP_VM_RECONCILE, NULL };
	rc = bg_vm_reconcile(ctx, sweep ? BG_RECONCILE_SWEEP : BG_RECONCILE_REPAIR, &progress, &fixed);
	if (rc)
		return rc;
	bg_progress_done(&progress, NULL, 0);
	return (int)fixed;
}
