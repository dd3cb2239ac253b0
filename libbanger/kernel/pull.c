/* Pull: catalog → entry → download (size and sha256 checked while
 * streaming) → unpack → install → record.  The artifact is verified
 * before libarchive parses a byte of it. */
#include "kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int not_in_catalog(const bg_catalog *c, const char *name)
{
	bg_buf b = BG_BUF_INIT;
	for (size_t i = 0; i < c->count && i < 20; i++)
		bg_buf_printf(&b, "%s%s", i ? ", " : "", c->entries[i].name);
	if (c->count > 20)
		bg_buf_puts(&b, ", ...");
	int rc = bg_error(BANGER_ENOTFOUND, "kernel '%s' is not in the catalog %s (%s%s)", name, c->url,
			  c->count ? "it lists: " : "it is empty", b.data && !b.oom ? b.data : "");
	bg_buf_free(&b);
	return rc;
}

/* A kernel of that name must not be installed yet. */
static int check_not_installed(bg_env *env, const char *name)
{
	bg_kernel_record existing;
	int rc = bg_store_kernel_get(&env->store, &existing, name);
	if (rc == 0) {
		bg_kernel_record_clear(&existing);
		return bg_error(BANGER_EEXISTS, "a kernel named '%s' is already installed (banger kernel rm %s "
				"removes it)", name, name);
	}
	return rc == BANGER_ENOTFOUND ? 0 : rc;
}

/* The download's byte counts as the caller's reports; a "stop" is kept
 * too, for a transfer that ends before curl heeds it. */
typedef struct {
	const bg_progress *progress;
	const char *url;
	int rc;
} download_report;

static int on_download(uint64_t done, uint64_t total, void *payload)
{
	download_report *d = payload;
	banger_progress r = { .event = BANGER_PROGRESS_DOWNLOAD, .stage = "download", .detail = d->url,
			      .items = 1, .done = done, .total = total };
	if (!d->rc)
		d->rc = bg_progress_report(d->progress, &r);
	return d->rc;
}

/* Download the catalog entry's artifact to the path given (size and
 * sha256 checked while streaming) and sync it. */
static int download_artifact(bg_env *env, const bg_catalog_entry *e, const bg_pull_opts *o, const char *name,
			     const char *artifact)
{
	int rc;
	int fd = open(artifact, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "create %s", artifact);
	download_report dr = { &o->progress, e->url, 0 };
	bg_download_req d = {
		.fd = fd,
		.expected_size = e->size,
		.expected_sha256 = e->sha256,
		.timeout_ms = o->timeout_ms,
		.progress = o->progress.cb ? on_download : NULL,
		.payload = &dr,
	};
	bg_info(env, "pulling kernel %s from %s (%llu bytes)", name, e->url, (unsigned long long)e->size);
	if ((rc = bg_download(env, e->url, &d)) == 0)
		rc = dr.rc;
	if (rc == 0 && fsync(fd) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s", artifact);
	close(fd);
	if (rc)
		return rc;
	banger_progress downloaded = { .event = BANGER_PROGRESS_DOWNLOADED, .stage = "download", .detail = e->url,
				       .items = 1, .done = d.bytes, .total = d.bytes };
	return bg_progress_report(&o->progress, &downloaded);
}

int bg_kernel_pull(bg_env *env, const char *name, const bg_pull_opts *o, bg_kernel_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!bg_kernel_name_valid(name))
		return bg_error(BANGER_EINVALID, "kernel name '%s' is not valid", name ? name : "");
	int rc = check_not_installed(env, name);
	if (rc)
		return rc;

	char *url = NULL, *artifact = NULL;
	bg_catalog cat;
	memset(&cat, 0, sizeof(cat));
	bg_kernel_staging st;
	memset(&st, 0, sizeof(st));
	st.tree_fd = -1;
	if ((rc = bg_catalog_url_for(&url, env, o->catalog_url)) ||
	    (rc = bg_progress_step(&o->progress, "catalog", url)) || (rc = bg_catalog_fetch(&cat, env, url)))
		goto fail;
	const bg_catalog_entry *e = bg_catalog_find(&cat, name);
	if (!e) {
		rc = not_in_catalog(&cat, name);
		goto fail;
	}
	const char *host = bg_host_arch();
	if (strcmp(e->arch, host) != 0) {
		rc = bg_error(BANGER_EUNSUPPORTED, "catalog kernel '%s' is for %s; this host is %s", name,
			      e->arch, host);
		goto fail;
	}

	if ((rc = bg_kernel_staging_new(&st, &env->layout)))
		goto fail;
	if (!(artifact = bg_path_join(st.dir, "artifact"))) {
		rc = bg_error_oom();
		goto fail;
	}
	if ((rc = download_artifact(env, e, o, name, artifact)))
		goto fail;

	bg_kernel_files files;
	bg_kernel_info info;
	if ((rc = bg_progress_step(&o->progress, "unpack", artifact)) ||
	    (rc = bg_kernel_unpack(&st, artifact, &files)) ||
	    (rc = bg_kernel_finish_tree(env, &st, &files, name, e->format, out, &info)))
		goto fail;
	if (strcmp(info.arch, e->arch) != 0) {
		rc = bg_error(BANGER_EINVALID, "the catalog says arch %s but the artifact's kernel is for %s",
			      e->arch, info.arch);
		goto fail;
	}
	unlink(artifact); /* verified and unpacked: not needed any more */
	out->name = bg_strdup(name);
	out->version = bg_strdup(e->version);
	out->source = bg_strdup(e->url);
	out->sha256 = bg_strdup(e->sha256);
	out->created_at = bg_wall_seconds();
	if (!out->name || !out->version || !out->source || !out->sha256) {
		rc = bg_error_oom();
		goto fail;
	}
	if ((rc = bg_progress_step(&o->progress, "install", name)) ||
	    (rc = bg_kernel_commit(env, &st, out, &o->progress)))
		goto fail;
	bg_progress_done(&o->progress, name, 0);
	bg_kernel_staging_drop(&st);
	bg_free(artifact);
	bg_free(url);
	bg_catalog_clear(&cat);
	return 0;
fail:
	bg_error_prefix("pull kernel %s", name);
	bg_kernel_staging_drop(&st);
	bg_free(artifact);
	bg_free(url);
	bg_catalog_clear(&cat);
	bg_kernel_record_clear(out);
	return rc;
}
