/*
 * Private declarations of the layout module: where banger's files live.
 * Computed here: the state root and what sits directly in it (database,
 * vms/, images/, kernels/, ssh/ with banger's known_hosts and client key,
 * the config), the cache and runtime directories, each VM's paths and
 * kernel-object names, and an image's lock.  A name that only one module
 * uses inside those directories is made by that module: kernels/.lock
 * and its staging and trash directories (kernel/install.c), the blob
 * cache's lock (image/blobcache_prune.c), an image's rootfs files
 * (image/build.c), VM staging and trash directories (vm/), ssh/ssh_config
 * (guest/ssh_config.c).
 */
#ifndef BG_LAYOUT_H
#define BG_LAYOUT_H

#include "../core/core.h"

/* sun_path holds 108 bytes including the terminating NUL. */
#define BG_SOCKET_PATH_MAX 107
/* Linux interface names: IFNAMSIZ (16) including the NUL. */
#define BG_TAP_NAME_MAX 15
/* Prefix of every kernel object name banger creates (taps, dm targets). */
#define BG_OBJECT_PREFIX "bg"

typedef struct {
	char *state_dir;   /* 0700: database, VMs, images, kernels, ssh/ */
	char *db_path;
	char *vms_dir;
	char *images_dir;
	char *kernels_dir;
	char *ssh_dir;     /* 0700, refused if group/world accessible */
	char *known_hosts; /* banger's own, never ~/.ssh/known_hosts */
	char *client_key;  /* banger's ed25519 client identity */
	char *cache_dir;
	char *blobs_dir;   /* content-addressed OCI blob cache */
	char *config_path;
	char *runtime_dir; /* sockets; short so socket paths fit */
	/* Short tag derived from state_dir: names of kernel objects carry it,
	 * so two state roots on one host never tear down each other's. */
	char instance[9];
} bg_layout;

/* Resolve every path.  state_override/config_override may be NULL. */
int bg_layout_resolve(bg_layout *l, const char *state_override, const char *config_override);
/* Create what is missing with the right modes; refuse unsafe ssh/. */
int bg_layout_ensure(const bg_layout *l);
void bg_layout_free(bg_layout *l);

/* Paths and names of one VM, all deterministic functions of its id. */
typedef struct {
	char *dir;           /* <vms>/<id> */
	char *lock;          /* <dir>/lock */
	char *handles;       /* <dir>/handles.json */
	char *console_log;   /* <dir>/console.log */
	char *metrics;       /* <dir>/metrics.json */
	char *overlay;       /* <dir>/system.img (or COW file for dm) */
	char *work_disk;     /* <dir>/work.img */
	char *identity_disk; /* <dir>/identity.tar */
	char *api_sock;      /* <runtime>/<id>.api */
	char *vsock_sock;    /* <runtime>/<id>.vsock */
	char *qmp_sock;      /* <runtime>/<id>.qmp */
	char tap[BG_TAP_NAME_MAX + 1]; /* bg<inst4><id8> */
	char dm_name[32];    /* bg-<inst>-<id> */
} bg_vm_paths;

/* VM ids are 8 lowercase hex characters. */
#define BG_VM_ID_LEN 8
/* The lock file in a VM directory (and in a staging or trash copy of one). */
#define BG_VM_LOCK_FILE "lock"
bool bg_vm_id_valid(const char *id);
int bg_vm_id_generate(char out[BG_VM_ID_LEN + 1]);

int bg_layout_vm_paths(bg_vm_paths *out, const bg_layout *l, const char *vm_id);
void bg_vm_paths_free(bg_vm_paths *p);

/* <images>/.lock-<name>: the lock pull, import and remove of the image
 * called name take (bg_malloc'd; NULL when out of memory). */
char *bg_layout_image_lock(const bg_layout *l, const char *name);

/* The tap-name prefix of this state root ("bg" + 4 hex). */
void bg_layout_tap_prefix(const bg_layout *l, char out[8]);

/* ---- banger's own files (guest_files.c) ----
 * The guest programs and units banger copies into images or uploads into
 * guests (guest/), and its host helper banger-console (helpers/), by file
 * name.  One rule finds every one of them:
 *   1. the file's own variable, for the two that have one, when it names
 *      an absolute path: $BANGER_SESSION_HELPER (banger-session) and
 *      $BANGER_CONSOLE_RELAY (banger-console);
 *   2. $BANGER_GUEST_DIR, when absolute (the test harness sets it);
 *   3. <the directory of the file holding this code>/../libexec/banger:
 *      the build tree (libbanger.so in <build>/libbanger/, a program
 *      linking the static library in <build>/<dir>/) or an installation
 *      moved as a whole;
 *   4. the installed directory, <libexecdir>/banger, fixed at build time.
 * The variables of rules 1 and 2 are ignored in a process that gained
 * privileges at exec (glibc's secure execution: setuid, file
 * capabilities).  Rule 3 comes before rule 4 so that an installation
 * moved as a whole uses its own files, as git's RUNTIME_PREFIX does.
 * A file counts when it is a regular file this process can read.  Files
 * asked for together come from one place (the first directory holding
 * all of those without a variable of their own).  BANGER_ENOTFOUND
 * naming the files and the places looked at. */
#define BG_GUEST_FILES_MAX 8
int bg_guest_files(char **paths, const char *const *names, size_t n);
int bg_guest_file(char **path, const char *name);

#endif
