/* The description of a user's tap pool (pool.h): naming, the JSON file
 * and the ownership rule under which a user's banger trusts it. */
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POOL_FILE_MAX (64u << 10)

const char *bg_system_dir(void)
{
	const char *v = secure_getenv("BANGER_SYSTEM_DIR");
	return v && v[0] == '/' ? v : BG_SYSTEM_DIR_DEFAULT;
}

char *bg_pool_path(uid_t uid)
{
	return bg_sprintf("%s/pools/%u.json", bg_system_dir(), (unsigned)uid);
}

int bg_pool_tap_name(char out[IFNAMSIZ], uid_t uid, uint32_t i)
{
	int n = snprintf(out, IFNAMSIZ, BG_POOL_TAP_PREFIX "%un%u", (unsigned)uid, (unsigned)i);
	if (n < 0 || n >= IFNAMSIZ)
		return bg_error(BANGER_EINVALID, "uid %u: tap names of its pool would not fit in %d characters",
				(unsigned)uid, IFNAMSIZ - 1);
	return 0;
}

void bg_pool_nft_table(char out[32], uid_t uid)
{
	snprintf(out, 32, "banger_pool_%u", (unsigned)uid);
}

int bg_pool_slot(const bg_pool *p, uint32_t i, char *tap, char *host_ip, char *guest_ip)
{
	if (i >= p->vms)
		return bg_error(BANGER_EINVALID, "tap %u is outside the pool of %s (%u taps)", (unsigned)i, p->user,
				(unsigned)p->vms);
	char name[IFNAMSIZ];
	int rc = bg_pool_tap_name(name, p->uid, i);
	if (rc)
		return rc;
	if (tap)
		memcpy(tap, name, sizeof(name));
	return bg_subnet_slot(&p->subnet, i, host_ip, guest_ip);
}

/* Owned by root and writable by nobody else; a directory above the
 * system dir may be world-writable only with the sticky bit (/tmp), where
 * no one can replace root's entries. */
static int check_owner(const char *path, bool strict)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? bg_error(BANGER_ENOTFOUND, "%s does not exist", path)
				       : bg_error_os(BANGER_EIO, errno, "stat %s", path);
	bool writable = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
	if (st.st_uid != 0 || (writable && (strict || !(st.st_mode & S_ISVTX))))
		return bg_error(BANGER_EPERM,
				"%s is owned by uid %u with mode %03o: a pool description is trusted only when root "
				"alone can change it and every directory above it",
				path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
}

/* The file, and every directory from it up to '/'. */
static int check_trusted(const char *file)
{
	char real[PATH_MAX];
	if (!realpath(file, real))
		return errno == ENOENT ? bg_error(BANGER_ENOTFOUND, "%s does not exist", file)
				       : bg_error_os(BANGER_EIO, errno, "resolve %s", file);
	struct stat st;
	if (lstat(real, &st) != 0 || !S_ISREG(st.st_mode))
		return bg_error(BANGER_EINVALID, "%s is not a regular file", real);
	char sysdir[PATH_MAX];
	if (!realpath(bg_system_dir(), sysdir))
		snprintf(sysdir, sizeof(sysdir), "%s", bg_system_dir());
	size_t syslen = strlen(sysdir);
	int rc = check_owner(real, true);
	for (char *slash = strrchr(real, '/'); !rc && slash; slash = strrchr(real, '/')) {
		*slash = '\0';
		const char *dir = real[0] ? real : "/";
		/* at or below the system dir nothing may be writable by others */
		bool strict = strncmp(real, sysdir, syslen) == 0 && strlen(real) >= syslen;
		rc = check_owner(dir, strict);
		if (!real[0])
			break;
	}
	return rc;
}

char *bg_pool_to_json(const bg_pool *p)
{
	json_t *o = json_pack("{s:i, s:s, s:I, s:I, s:s, s:I, s:b, s:s}", "format", BG_POOL_FORMAT, "user",
			      p->user, "uid", (json_int_t)p->uid, "gid", (json_int_t)p->gid, "subnet",
			      p->subnet_cidr, "vms", (json_int_t)p->vms, "nat", p->nat ? 1 : 0, "nft_table",
			      p->nat ? p->nft_table : "");
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return NULL;
	char *out = bg_sprintf("%s\n", s);
	free(s);
	return out;
}

static int invalid(const char *what, const char *why)
{
	return bg_error(BANGER_EINVALID, "%s: not a pool description this banger reads: %s", what, why);
}

static int check_pool(bg_pool *p, const char *what)
{
	if (bg_subnet_parse(&p->subnet, p->subnet_cidr) != 0) {
		banger_error_clear();
		return invalid(what, "bad subnet");
	}
	if (p->vms == 0 || p->vms > BG_POOL_MAX_VMS)
		return invalid(what, "vms out of range");
	if (p->subnet.prefix > 30 || bg_subnet_slots(&p->subnet) < p->vms)
		return invalid(what, "the subnet has fewer /30s than the pool has taps");
	char tap[IFNAMSIZ], table[32];
	if (bg_pool_tap_name(tap, p->uid, p->vms - 1) != 0) {
		banger_error_clear();
		return invalid(what, "uid too large for tap names");
	}
	bg_pool_nft_table(table, p->uid);
	if (p->nat && strcmp(table, p->nft_table) != 0)
		return invalid(what, "unexpected nftables table");
	if (!p->user[0])
		return invalid(what, "no user");
	return 0;
}

int bg_pool_from_json(bg_pool *out, const char *json, const char *what)
{
	memset(out, 0, sizeof(*out));
	json_error_t err;
	json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		return invalid(what, err.text);
	int format = 0, nat = 0;
	json_int_t uid = -1, gid = -1, vms = 0;
	const char *user = NULL, *subnet = NULL, *table = NULL;
	int rc = 0;
	if (json_unpack_ex(o, &err, JSON_STRICT, "{s:i, s:s, s:I, s:I, s:s, s:I, s:b, s:s}", "format", &format,
			   "user", &user, "uid", &uid, "gid", &gid, "subnet", &subnet, "vms", &vms, "nat", &nat,
			   "nft_table", &table) != 0)
		rc = invalid(what, err.text);
	else if (format != BG_POOL_FORMAT)
		rc = invalid(what, "unknown format");
	else if (uid < 0 || uid >= (json_int_t)UINT32_MAX || gid < 0 || gid >= (json_int_t)UINT32_MAX ||
		 vms < 0 || vms > BG_POOL_MAX_VMS)
		rc = invalid(what, "uid, gid or vms out of range");
	else if (strlen(user) >= sizeof(out->user) || strlen(subnet) >= sizeof(out->subnet_cidr) ||
		 strlen(table) >= sizeof(out->nft_table))
		rc = invalid(what, "a string is too long");
	if (!rc) {
		snprintf(out->user, sizeof(out->user), "%s", user);
		snprintf(out->subnet_cidr, sizeof(out->subnet_cidr), "%s", subnet);
		snprintf(out->nft_table, sizeof(out->nft_table), "%s", table);
		out->uid = (uid_t)uid;
		out->gid = (gid_t)gid;
		out->vms = (uint32_t)vms;
		out->nat = nat != 0;
		rc = check_pool(out, what);
	}
	json_decref(o);
	return rc;
}

int bg_pool_load(bg_pool *out, uid_t uid)
{
	memset(out, 0, sizeof(*out));
	char *path = bg_pool_path(uid);
	if (!path)
		return bg_error_oom();
	char *text = NULL;
	size_t len = 0;
	int rc = check_trusted(path);
	if (!rc)
		rc = bg_read_file(&text, &len, path, POOL_FILE_MAX);
	if (!rc)
		rc = bg_pool_from_json(out, text, path);
	if (!rc && out->uid != uid)
		rc = invalid(path, "it describes another uid");
	bg_free(text);
	bg_free(path);
	return rc;
}

static int append(bg_pool **v, size_t *n, const bg_pool *p)
{
	bg_pool *nv = bg_realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return bg_error_oom();
	*v = nv;
	nv[(*n)++] = *p;
	return 0;
}

int bg_pool_list(bg_pool **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	char *dir = bg_sprintf("%s/pools", bg_system_dir());
	if (!dir)
		return bg_error_oom();
	DIR *d = opendir(dir);
	int rc = 0;
	if (!d && errno != ENOENT)
		rc = bg_error_os(BANGER_EIO, errno, "open %s", dir);
	struct dirent *e;
	while (!rc && d && (e = readdir(d))) {
		char *end = NULL;
		errno = 0;
		unsigned long uid = strtoul(e->d_name, &end, 10);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || errno || strcmp(end, ".json") != 0 ||
		    uid >= UINT32_MAX)
			continue;
		bg_pool p;
		if (!(rc = bg_pool_load(&p, (uid_t)uid)))
			rc = append(out, count, &p);
	}
	if (d)
		closedir(d);
	bg_free(dir);
	if (rc) {
		bg_free(*out);
		*out = NULL;
		*count = 0;
	}
	return rc;
}

int bg_pool_save(const bg_pool *p)
{
	char *dir = bg_sprintf("%s/pools", bg_system_dir());
	char *path = bg_pool_path(p->uid);
	char *text = bg_pool_to_json(p);
	int rc = !dir || !path || !text ? bg_error_oom() : 0;
	if (!rc && geteuid() != 0)
		rc = bg_error(BANGER_EPERM, "only root writes pool descriptions (%s)", path);
	if (!rc)
		rc = bg_mkdir_p(dir, 0755);
	if (!rc)
		rc = bg_write_file_atomic_owned(path, text, strlen(text), 0644, 0, 0);
	bg_free(text);
	bg_free(path);
	bg_free(dir);
	return rc;
}

int bg_pool_remove(uid_t uid)
{
	char *path = bg_pool_path(uid);
	if (!path)
		return bg_error_oom();
	int rc = 0;
	if (unlink(path) != 0 && errno != ENOENT)
		rc = bg_error_os(BANGER_EIO, errno, "remove %s", path);
	bg_free(path);
	return rc;
}
