/* Where every file lives.  XDG locations by default, $BANGER_HOME (or the
 * context's state_dir option) to put everything under one root. */
#include "layout.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

/* secure_getenv: a process that gained privileges at exec keeps its
 * own directories whatever its caller's environment says. */
static const char *env(const char *name)
{
	const char *v = secure_getenv(name);
	return v && *v ? v : NULL;
}

static char *home_dir(void)
{
	const char *h = env("HOME");
	if (h)
		return bg_strdup(h);
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
		return bg_strdup(res->pw_dir);
	return NULL;
}

/* $XDG_<kind>_HOME/banger, else ~/<fallback>/banger. */
static char *xdg_dir(const char *var, const char *fallback)
{
	const char *x = env(var);
	if (x && x[0] == '/')
		return bg_path_join(x, "banger");
	char *home = home_dir();
	if (!home)
		return NULL;
	char *r = bg_sprintf("%s/%s/banger", home, fallback);
	bg_free(home);
	return r;
}

static char *absolute(const char *p)
{
	if (p[0] == '/')
		return bg_strdup(p);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return bg_path_join(cwd, p);
}

static int compute_instance(bg_layout *l)
{
	unsigned char md[BG_SHA256_LEN];
	int rc = bg_sha256_of(md, l->state_dir, strlen(l->state_dir));
	if (rc)
		return rc;
	bg_hex(l->instance, md, 4);
	return 0;
}

/* Longest socket name we derive under the runtime dir: Firecracker's
 * guest-initiated vsock listeners are "<uds_path>_<port>". */
static const size_t longest_socket_suffix = 1 + BG_VM_ID_LEN + sizeof(".vsock_4294967295") - 1;

int bg_layout_resolve(bg_layout *l, const char *state_override, const char *config_override)
{
	memset(l, 0, sizeof(*l));
	const char *home_env = env("BANGER_HOME");
	const char *root = state_override ? state_override : home_env;
	int rc = 0;

	l->state_dir = root ? absolute(root) : xdg_dir("XDG_STATE_HOME", ".local/state");
	if (!l->state_dir) {
		/* an absolute root, or a HOME we could read, failed only for
		 * want of memory */
		if ((root && root[0] == '/') || (!root && (env("HOME") || (env("XDG_STATE_HOME") &&
									   env("XDG_STATE_HOME")[0] == '/'))))
			return bg_error_oom();
		return bg_error(BANGER_EINVALID, "cannot determine the state directory: set BANGER_HOME or HOME");
	}
	if ((rc = compute_instance(l)))
		goto fail;

	if (config_override)
		l->config_path = absolute(config_override);
	else if (root)
		l->config_path = bg_path_join(l->state_dir, "config");
	else {
		char *d = xdg_dir("XDG_CONFIG_HOME", ".config");
		l->config_path = d ? bg_path_join(d, "config") : NULL;
		bg_free(d);
	}
	if (env("BANGER_CACHE_DIR"))
		l->cache_dir = absolute(env("BANGER_CACHE_DIR"));
	else if (root)
		l->cache_dir = bg_path_join(l->state_dir, "cache");
	else
		l->cache_dir = xdg_dir("XDG_CACHE_HOME", ".cache");

	if (env("BANGER_RUNTIME_DIR"))
		l->runtime_dir = absolute(env("BANGER_RUNTIME_DIR"));
	else if (env("XDG_RUNTIME_DIR") && getuid() != 0)
		l->runtime_dir = bg_sprintf("%s/banger-%s", env("XDG_RUNTIME_DIR"), l->instance);
	else if (getuid() == 0)
		l->runtime_dir = bg_sprintf("/run/banger/%s", l->instance);
	else
		l->runtime_dir = bg_sprintf("/tmp/banger-%u/%s", (unsigned)getuid(), l->instance);

	l->db_path = bg_path_join(l->state_dir, "banger.db");
	l->vms_dir = bg_path_join(l->state_dir, "vms");
	l->images_dir = bg_path_join(l->state_dir, "images");
	l->kernels_dir = bg_path_join(l->state_dir, "kernels");
	l->ssh_dir = bg_path_join(l->state_dir, "ssh");
	l->known_hosts = bg_path_join(l->state_dir, "ssh/known_hosts");
	l->client_key = bg_path_join(l->state_dir, "ssh/id_ed25519");
	l->blobs_dir = l->cache_dir ? bg_path_join(l->cache_dir, "blobs/sha256") : NULL;

	if (!l->config_path || !l->cache_dir || !l->runtime_dir || !l->db_path || !l->vms_dir ||
	    !l->images_dir || !l->kernels_dir || !l->ssh_dir || !l->known_hosts ||
	    !l->client_key || !l->blobs_dir) {
		rc = bg_error_oom();
		goto fail;
	}
	if (strlen(l->runtime_dir) + longest_socket_suffix > BG_SOCKET_PATH_MAX) {
		rc = bg_error(BANGER_EINVALID,
			      "runtime directory '%s' is too long: socket paths under it would exceed "
			      "%d bytes; set BANGER_RUNTIME_DIR to a shorter directory",
			      l->runtime_dir, BG_SOCKET_PATH_MAX);
		goto fail;
	}
	return 0;
fail:
	bg_layout_free(l);
	return rc;
}

void bg_layout_free(bg_layout *l)
{
	if (!l)
		return;
	char **fields[] = { &l->state_dir, &l->db_path, &l->vms_dir, &l->images_dir,
			    &l->kernels_dir, &l->ssh_dir, &l->known_hosts, &l->client_key,
			    &l->cache_dir, &l->blobs_dir, &l->config_path, &l->runtime_dir };
	for (size_t i = 0; i < BG_ARRAY_SIZE(fields); i++) {
		bg_free(*fields[i]);
		*fields[i] = NULL;
	}
}

/* A directory banger keeps secrets in: must be ours and private. */
static int check_private_dir(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return bg_error_os(BANGER_EIO, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return bg_error(BANGER_EPERM, "%s is not a directory", path);
	if (st.st_uid != geteuid())
		return bg_error(BANGER_EPERM, "%s belongs to uid %u, not to this user (uid %u); refusing to use it",
				path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 077)
		return bg_error(BANGER_EPERM, "%s is accessible by group or others (mode %03o); "
				"fix with: chmod 700 %s", path, (unsigned)(st.st_mode & 0777), path);
	return 0;
}

int bg_layout_ensure(const bg_layout *l)
{
	int rc;
	bool ssh_existed = bg_path_exists(l->ssh_dir);
	const char *private_dirs[] = { l->state_dir, l->vms_dir, l->images_dir, l->kernels_dir,
				       l->ssh_dir, l->runtime_dir };
	for (size_t i = 0; i < BG_ARRAY_SIZE(private_dirs); i++)
		if ((rc = bg_mkdir_p(private_dirs[i], 0700)))
			return rc;
	if ((rc = bg_mkdir_p(l->blobs_dir, 0700)))
		return rc;
	/* Newly created: make sure the umask did not widen the mode. */
	if (!ssh_existed && chmod(l->ssh_dir, 0700) != 0)
		return bg_error_os(BANGER_EIO, errno, "chmod %s", l->ssh_dir);
	if ((rc = check_private_dir(l->ssh_dir)))
		return rc;
	return check_private_dir(l->state_dir);
}

bool bg_vm_id_valid(const char *id)
{
	if (!id || strlen(id) != BG_VM_ID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int bg_vm_id_generate(char out[BG_VM_ID_LEN + 1])
{
	unsigned char r[BG_VM_ID_LEN / 2];
	int rc = bg_random_bytes(r, sizeof(r));
	if (rc == 0)
		bg_hex(out, r, sizeof(r));
	return rc;
}

char *bg_layout_image_lock(const bg_layout *l, const char *name)
{
	return bg_sprintf("%s/.lock-%s", l->images_dir, name);
}

void bg_layout_tap_prefix(const bg_layout *l, char out[8])
{
	memcpy(out, BG_OBJECT_PREFIX, 2);
	memcpy(out + 2, l->instance, 4);
	out[6] = '\0';
}

int bg_layout_vm_paths(bg_vm_paths *p, const bg_layout *l, const char *id)
{
	memset(p, 0, sizeof(*p));
	if (!bg_vm_id_valid(id))
		return bg_error(BANGER_EINVALID, "invalid VM id '%s'", id ? id : "");
	p->dir = bg_sprintf("%s/%s", l->vms_dir, id);
	p->lock = bg_sprintf("%s/%s/" BG_VM_LOCK_FILE, l->vms_dir, id);
	p->handles = bg_sprintf("%s/%s/handles.json", l->vms_dir, id);
	p->console_log = bg_sprintf("%s/%s/console.log", l->vms_dir, id);
	p->metrics = bg_sprintf("%s/%s/metrics.json", l->vms_dir, id);
	p->overlay = bg_sprintf("%s/%s/system.img", l->vms_dir, id);
	p->work_disk = bg_sprintf("%s/%s/work.img", l->vms_dir, id);
	p->identity_disk = bg_sprintf("%s/%s/identity.tar", l->vms_dir, id);
	p->api_sock = bg_sprintf("%s/%s.api", l->runtime_dir, id);
	p->vsock_sock = bg_sprintf("%s/%s.vsock", l->runtime_dir, id);
	p->qmp_sock = bg_sprintf("%s/%s.qmp", l->runtime_dir, id);
	char prefix[8];
	bg_layout_tap_prefix(l, prefix);
	snprintf(p->tap, sizeof(p->tap), "%s%s", prefix, id);
	snprintf(p->dm_name, sizeof(p->dm_name), BG_OBJECT_PREFIX "-%s-%s", l->instance, id);
	if (!p->dir || !p->lock || !p->handles || !p->console_log || !p->metrics || !p->overlay ||
	    !p->work_disk || !p->identity_disk || !p->api_sock || !p->vsock_sock || !p->qmp_sock) {
		bg_vm_paths_free(p);
		return bg_error_oom();
	}
	return 0;
}

void bg_vm_paths_free(bg_vm_paths *p)
{
	if (!p)
		return;
	char **fields[] = { &p->dir, &p->lock, &p->handles, &p->console_log, &p->metrics,
			    &p->overlay, &p->work_disk, &p->identity_disk, &p->api_sock,
			    &p->vsock_sock, &p->qmp_sock };
	for (size_t i = 0; i < BG_ARRAY_SIZE(fields); i++) {
		bg_free(*fields[i]);
		*fields[i] = NULL;
	}
}
