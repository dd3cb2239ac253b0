/* Where banger's own files are: the guest programs and units it copies
 * into images or uploads into guests, and its host helper banger-console.
 * One rule for all of them (layout.h), so the image patch step, the agent,
 * sessions and the console relay cannot disagree about which copy they
 * use.  No build-tree path is compiled in: the build tree is found from
 * where the code itself was loaded.  The variables are read with
 * secure_getenv: a process that gained privileges at exec (setuid, file
 * capabilities) does not let its caller choose what it runs or copies. */
#include "layout.h"

#include "../../guest/include/banger-guest/session.h"

#include <errno.h>
#include <link.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BANGER_LIBEXEC_DIR
#define BANGER_LIBEXEC_DIR "/usr/local/libexec/banger"
#endif

/* Files with a variable of their own (rule 1). */
static const struct {
	const char *name, *env;
} overrides[] = {
	{ BG_SESSION_HELPER_NAME, "BANGER_SESSION_HELPER" },
	{ "banger-console", "BANGER_CONSOLE_RELAY" },
};

static bool usable(const char *path)
{
	struct stat st;
	return path && path[0] == '/' && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static const char *override_of(const char *name)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(overrides); i++)
		if (strcmp(overrides[i].name, name) == 0) {
			const char *v = secure_getenv(overrides[i].env);
			return v && *v ? v : NULL;
		}
	return NULL;
}

typedef struct {
	uintptr_t addr;
	char path[PATH_MAX];
	bool main_program;
	bool found;
} self_search;

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
	self_search *s = data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD || s->addr < lo || s->addr - lo >= ph->p_memsz)
			continue;
		s->found = true;
		s->main_program = !info->dlpi_name || !*info->dlpi_name;
		if (!s->main_program)
			snprintf(s->path, sizeof(s->path), "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

/* <dir of the file holding this code>/../libexec/banger: libbanger.so,
 * or the program when the static library is linked into it.  NULL when
 * that file cannot be told (bg_free otherwise). */
static char *beside_self(void)
{
	self_search s = { .addr = (uintptr_t)(void *)beside_self };
	dl_iterate_phdr(find_self, &s);
	if (!s.found)
		return NULL;
	if (s.main_program) {
		/* the loader knows the main program only by its argv[0] */
		ssize_t n = readlink("/proc/self/exe", s.path, sizeof(s.path) - 1);
		if (n <= 0)
			return NULL;
		s.path[n] = '\0';
	}
	if (s.path[0] != '/')
		return NULL;
	char *slash = strrchr(s.path, '/');
	*slash = '\0';
	slash = strrchr(s.path, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return bg_sprintf("%s/libexec/banger", s.path);
}

int bg_guest_files(char **paths, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		paths[i] = NULL;
	if (n == 0 || n > BG_GUEST_FILES_MAX)
		return bg_error(BANGER_EINVALID, "guest files: %zu names asked for (1 to %d)", n, BG_GUEST_FILES_MAX);
	const char *env = secure_getenv("BANGER_GUEST_DIR");
	char *self = beside_self();
	const char *dirs[] = { env && env[0] == '/' ? env : NULL, self, BANGER_LIBEXEC_DIR };
	int rc = 0;
	size_t left = 0;
	/* rule 1: the files with a variable of their own */
	for (size_t i = 0; i < n && !rc; i++) {
		const char *o = override_of(names[i]);
		if (usable(o) && !(paths[i] = bg_strdup(o)))
			rc = bg_error_oom();
		left += !paths[i];
	}
	/* rules 2-4: the first directory holding every other one */
	for (size_t d = 0; !rc && left && d < BG_ARRAY_SIZE(dirs); d++) {
		if (!dirs[d])
			continue;
		size_t have = 0;
		char *found[BG_GUEST_FILES_MAX] = { NULL };
		for (size_t i = 0; i < n && !rc; i++) {
			if (paths[i])
				continue;
			if (!(found[i] = bg_path_join(dirs[d], names[i])))
				rc = bg_error_oom();
			else if (usable(found[i]))
				have++;
		}
		for (size_t i = 0; i < n; i++) {
			if (!rc && have == left && found[i])
				paths[i] = found[i];
			else
				bg_free(found[i]);
		}
		if (!rc && have == left)
			left = 0;
	}
	if (!rc && left) {
		bg_buf what = BG_BUF_INIT, where = BG_BUF_INIT;
		for (size_t i = 0; i < n; i++)
			if (!paths[i])
				bg_buf_printf(&what, "%s%s", what.len ? ", " : "", names[i]);
		if (env && *env)
			bg_buf_printf(&where, "$BANGER_GUEST_DIR (%s%s), ", env, env[0] == '/' ? "" : ": not absolute");
		if (self)
			bg_buf_printf(&where, "%s, ", self);
		bg_buf_printf(&where, "%s", BANGER_LIBEXEC_DIR);
		rc = what.oom || where.oom ? bg_error_oom()
					   : bg_error(BANGER_ENOTFOUND, "%s: in none of %s", what.data, where.data);
		bg_buf_free(&what);
		bg_buf_free(&where);
	}
	if (rc)
		for (size_t i = 0; i < n; i++) {
			bg_free(paths[i]);
			paths[i] = NULL;
		}
	bg_free(self);
	return rc;
}

int bg_guest_file(char **path, const char *name)
{
	const char *names[] = { name };
	return bg_guest_files(path, names, 1);
}
