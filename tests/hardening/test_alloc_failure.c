/* Allocation failure in public API calls that need no root: opening a
 * context (new and existing state roots), banger's client key, and the
 * known_hosts calls (check, pin, remove, list).  Every N is tried (see
 * alloc_fail.h); each must fail cleanly, leak nothing and leave the
 * state root or the file consistent. */
#include "alloc_fail.h"
#include "../../libbanger/env/env.h"
#include "../../libbanger/guest/guest.h"

#include <sqlite3.h>
#include <sys/stat.h>

#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"
#define KEY_B "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdwtqM0oiKXvUejaChzmgpgWddZH/V7KV01r/8oSkyD"
#define KEY_D "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCy+I3Sfc1U/SBB5QQ5KJUdZ4pEi6j6BLnf7wenXSg3Cl2zf/WEPAQEfYNjP95NcPCa27Qi2t7k7GZ74/Ad1m6iBxjPzqc+p/HF2fhh8bWrFif/1XuMeHhhhtNgq3hi8XUyANrbidkGAZdZV3wgAxCQBJ19RFPA7s2sjZPCrB2/yw=="

/* A known_hosts file with one of everything. */
static const char KH[] =
	"# banger test file\n"
	"box.vm " KEY_A "\n"
	"172.29.0.2 " KEY_A " pinned by banger\n"
	"[box.vm]:2222 " KEY_B "\n"
	"a.example,b.example,*.wild.example,!no.wild.example " KEY_D "\n"
	"|1|btQe0gGpkyO2ylQ/wcxP4H/yb+I=|3kp0DSxmEVI46Ffn16QvVr97S/c= " KEY_A "\n"
	"@revoked revoked.example " KEY_B "\n"
	"@cert-authority *.example " KEY_D "\r\n"
	"unknown.example ssh-foo AAAAB3NzaC1yc2E=\n"
	"broken line without a key\n"
	"\n"
	"other.vm " KEY_B "\n";

static char *base_dir;

typedef struct {
	char *dir, *state, *kh;
	banger_ctx *ctx;
	char *before;
	size_t before_len;
	int verdict;
	banger_known_hosts_list *list;
	uint32_t removed;
} env;

static env E;

static int sh(const char *fmt, const char *a)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), fmt, a);
	return system(cmd);
}

/* A fresh directory under base_dir for this child. */
static int fresh_dir(void)
{
	memset(&E, 0, sizeof(E));
	E.dir = bg_sprintf("%s/c%d", base_dir, (int)getpid());
	E.state = bg_sprintf("%s/state", E.dir);
	E.kh = bg_sprintf("%s/known_hosts", E.dir);
	if (!E.dir || !E.state || !E.kh || bg_mkdir_p(E.dir, 0700) != 0)
		return -1;
	return 0;
}

static void free_env(void)
{
	banger_ctx_close(E.ctx);
	banger_known_hosts_list_free(E.list);
	if (E.dir)
		sh("rm -rf '%s'", E.dir);
	bg_free(E.dir);
	bg_free(E.state);
	bg_free(E.kh);
	bg_free(E.before);
	memset(&E, 0, sizeof(E));
}

static banger_ctx *open_ctx(const char *state)
{
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = state;
	banger_ctx *ctx = NULL;
	return banger_ctx_open(&ctx, &o) == 0 ? ctx : NULL;
}

/* The store answers "ok" to PRAGMA integrity_check and has its schema. */
static int store_ok(const char *state)
{
	char *db = bg_sprintf("%s/banger.db", state);
	sqlite3 *h = NULL;
	int ok = 0;
	if (db && sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
		sqlite3_finalize(st);
		if (!ok)
			fprintf(stderr, "integrity_check of %s failed\n", db);
	}
	sqlite3_close(h);
	bg_free(db);
	return ok ? 0 : -1;
}

/* ---- banger_ctx_open on a new state root ---- */

static int open_new_setup(void *arg)
{
	(void)arg;
	return fresh_dir();
}

static int open_op(void *arg)
{
	(void)arg;
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = E.state;
	return banger_ctx_open(&E.ctx, &o);
}

static int open_verify(void *arg, int rc)
{
	(void)arg;
	if (rc != 0 && E.ctx) {
		fprintf(stderr, "failed open left *out set\n");
		return -1;
	}
	banger_ctx_close(E.ctx);
	E.ctx = NULL;
	/* whatever the failure left, the next open works and the store is sound */
	banger_ctx *again = open_ctx(E.state);
	if (!again) {
		fprintf(stderr, "reopen after the failure: %s\n", banger_error_last()->message);
		return -1;
	}
	banger_ctx_close(again);
	return store_ok(E.state);
}

/* ---- banger_ctx_open on an existing state root (reconcile, migrations done) ---- */

static int open_existing_setup(void *arg)
{
	(void)arg;
	if (fresh_dir())
		return -1;
	banger_ctx *c = open_ctx(E.state);
	banger_ctx_close(c);
	return c ? 0 : -1;
}

/* ---- banger's client key (generated on first use) ---- */

static int key_setup(void *arg)
{
	(void)arg;
	if (fresh_dir() || !(E.ctx = open_ctx(E.state)))
		return -1;
	return 0;
}

static int key_op(void *arg)
{
	(void)arg;
	char *line = NULL;
	int rc = banger_ssh_client_key(&line, E.ctx);
	if (rc == 0 && (!line || strncmp(line, "ssh-ed25519 ", 12) != 0))
		rc = bg_error(BANGER_ERROR, "client key line is wrong");
	banger_free(line);
	return rc;
}

static int key_verify(void *arg, int rc)
{
	(void)arg;
	const char *key = banger_ssh_client_key_path(E.ctx);
	char *pub = bg_sprintf("%s.pub", key);
	bool k = bg_path_exists(key), p = bg_path_exists(pub);
	bg_free(pub);
	/* the public half is written first (a failure in between leaves no
	 * private key, and the next call starts over): never a private key
	 * without its public half */
	if (k && !p) {
		fprintf(stderr, "private key without the public key after rc=%d\n", rc);
		return -1;
	}
	/* and the next call works */
	char *line = NULL;
	int again = banger_ssh_client_key(&line, E.ctx);
	banger_free(line);
	if (again != 0) {
		fprintf(stderr, "client key after the failure: %s\n", banger_error_last()->message);
		return -1;
	}
	struct stat st;
	if (stat(key, &st) != 0 || (st.st_mode & 077)) {
		fprintf(stderr, "private key mode %o\n", (unsigned)(st.st_mode & 07777));
		return -1;
	}
	/* the two halves belong together */
	char *priv = NULL, *publine = NULL;
	char *pubpath = bg_sprintf("%s.pub", key);
	bg_sshkey a = { 0 }, b = { 0 };
	int same = pubpath && bg_read_file(&priv, NULL, key, 1 << 16) == 0 &&
		   bg_read_file(&publine, NULL, pubpath, 1 << 16) == 0 &&
		   bg_sshkey_from_private_openssh(&a, priv) == 0 && bg_sshkey_from_line(&b, publine) == 0 &&
		   bg_sshkey_equal(&a, &b);
	bg_sshkey_free(&a);
	bg_sshkey_free(&b);
	bg_free_secret(priv);
	bg_free(publine);
	bg_free(pubpath);
	if (!same)
		fprintf(stderr, "the client key's public half does not match its private key\n");
	return same ? 0 : -1;
}

/* ---- known_hosts ---- */

static int kh_setup(void *arg)
{
	(void)arg;
	if (fresh_dir())
		return -1;
	if (bg_write_file_atomic(E.kh, KH, sizeof(KH) - 1, 0600) != 0)
		return -1;
	E.before = bg_strdup(KH);
	E.before_len = sizeof(KH) - 1;
	return 0;
}

/* The file is byte for byte what it was. */
static int kh_unchanged(void)
{
	char *now = NULL;
	size_t len = 0;
	if (bg_read_file(&now, &len, E.kh, 1 << 20) != 0)
		return -1;
	int same = len == E.before_len && memcmp(now, E.before, len) == 0;
	bg_free(now);
	if (!same)
		fprintf(stderr, "known_hosts changed\n");
	return same ? 0 : -1;
}

static int check_op(void *arg)
{
	(void)arg;
	int rc;
	static const struct {
		const char *host;
		uint16_t port;
		const char *key;
		int want;
	} q[] = {
		{ "box.vm", 22, KEY_A, BANGER_HOSTKEY_MATCH },
		{ "box.vm", 2222, KEY_A, BANGER_HOSTKEY_MISMATCH },
		{ "host.example", 22, KEY_A, BANGER_HOSTKEY_MATCH }, /* the hashed entry */
		{ "b.example", 22, KEY_D, BANGER_HOSTKEY_MATCH },
		{ "revoked.example", 22, KEY_B, BANGER_HOSTKEY_REVOKED },
		{ "nowhere.example", 22, KEY_A, BANGER_HOSTKEY_NOT_FOUND },
	};
	for (size_t i = 0; i < BG_ARRAY_SIZE(q); i++) {
		int v = -1;
		if ((rc = banger_known_hosts_check_line(&v, E.kh, q[i].host, q[i].port, q[i].key)))
			return rc;
		if (v != q[i].want)
			return bg_error(BANGER_ERROR, "check %s:%u: verdict %d, want %d", q[i].host, q[i].port, v,
					q[i].want);
	}
	return 0;
}

static int check_verify(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	return kh_unchanged();
}

static int pin_op(void *arg)
{
	(void)arg;
	const char *names[] = { "new.vm", "172.29.0.6", "box.vm" };
	return banger_known_hosts_pin(E.kh, names, 3, 22, KEY_B " new");
}

static int pin_verify(void *arg, int rc)
{
	(void)arg;
	if (rc != 0)
		return kh_unchanged();
	/* pinned: every name matches the new key, other lines are intact */
	const char *names[] = { "new.vm", "172.29.0.6", "box.vm" };
	for (size_t i = 0; i < 3; i++) {
		int v = -1;
		if (banger_known_hosts_check_line(&v, E.kh, names[i], 22, KEY_B) != 0 || v != BANGER_HOSTKEY_MATCH) {
			fprintf(stderr, "%s not pinned after success\n", names[i]);
			return -1;
		}
	}
	int v = -1;
	if (banger_known_hosts_check_line(&v, E.kh, "b.example", 22, KEY_D) != 0 || v != BANGER_HOSTKEY_MATCH)
		return -1;
	return 0;
}

static int remove_op(void *arg)
{
	(void)arg;
	const char *names[] = { "box.vm", "172.29.0.2", "host.example" };
	return banger_known_hosts_remove(&E.removed, E.kh, names, 3);
}

static int remove_verify(void *arg, int rc)
{
	(void)arg;
	if (rc != 0)
		return kh_unchanged();
	int v = -1;
	if (banger_known_hosts_check_line(&v, E.kh, "box.vm", 22, KEY_A) != 0 || v != BANGER_HOSTKEY_NOT_FOUND) {
		fprintf(stderr, "box.vm still known after remove\n");
		return -1;
	}
	return 0;
}

static int list_op(void *arg)
{
	(void)arg;
	int rc = banger_known_hosts_list_load(&E.list, E.kh);
	if (rc == 0 && banger_known_hosts_list_count(E.list) < 8)
		rc = bg_error(BANGER_ERROR, "list has %zu entries", banger_known_hosts_list_count(E.list));
	return rc;
}

static int list_verify(void *arg, int rc)
{
	(void)arg;
	if (rc != 0 && E.list) {
		fprintf(stderr, "failed list load left *out set\n");
		return -1;
	}
	return kh_unchanged();
}

static void teardown(void *arg)
{
	(void)arg;
	free_env();
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	base_dir = bg_sprintf("%s/banger-allocfail-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!base_dir || !mkdtemp(base_dir))
		return 1;
	/* the context's runtime dir (sockets) goes under our directory too */
	char *run = bg_sprintf("%s/run", base_dir);
	setenv("BANGER_RUNTIME_DIR", run, 1);
	bg_free(run);

	const af_opts calls[] = {
		{ "banger_ctx_open (new state root)", open_new_setup, open_op, open_verify, teardown, NULL, 0, 0 },
		{ "banger_ctx_open (existing state root)", open_existing_setup, open_op, open_verify, teardown, NULL, 0, 0 },
		{ "banger_ssh_client_key (generate)", key_setup, key_op, key_verify, teardown, NULL, 0, 0 },
		{ "banger_known_hosts_check_line x6", kh_setup, check_op, check_verify, teardown, NULL, 0, 0 },
		{ "banger_known_hosts_pin", kh_setup, pin_op, pin_verify, teardown, NULL, 0, 0 },
		{ "banger_known_hosts_remove", kh_setup, remove_op, remove_verify, teardown, NULL, 0, 0 },
		{ "banger_known_hosts_list_load", kh_setup, list_op, list_verify, teardown, NULL, 0, 0 },
	};
	unsigned bad = 0;
	int other = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(calls); i++) {
		af_result r = af_run(&calls[i]);
		bad += r.bad;
		other += r.other_codes;
	}
	sh("rm -rf '%s'", base_dir);
	free(base_dir);
	if (other)
		printf("%d allocation failures surfaced as another error code than BANGER_ENOMEM\n", other);
	return bad || other ? 1 : 0;
}
