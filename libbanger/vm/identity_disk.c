/* The bytes of the identity disk: a POSIX ustar archive written with
 * libarchive (docs/guest-identity.md).
 *
 * The guest's first-boot reads it with tar, or without tar with a reader
 * of its own that knows plain ustar headers only: so ustar, never pax
 * (names are short, so none is needed), 512-byte records and no padding
 * to a larger block.  libarchive writes unblocked (bytes_per_block 0):
 * member data goes straight to our buffer without a copy in libarchive's,
 * so the caller can wipe the one copy of the private host key. */
#include "vm_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

/* One header block per member, its data padded to whole blocks, and the
 * two zero blocks that end the archive. */
static size_t archive_size(const bg_identity_file *files, size_t n)
{
	size_t size = 1024;
	for (size_t i = 0; i < n; i++)
		size += 512 + (files[i].len + 511) / 512 * 512;
	return size;
}

static la_ssize_t append(struct archive *a, void *payload, const void *data, size_t len)
{
	if (bg_buf_put(payload, data, len)) {
		archive_set_error(a, ENOMEM, "out of memory");
		return -1;
	}
	return (la_ssize_t)len;
}

static int archive_failed(struct archive *a, const char *what)
{
	if (archive_errno(a) == ENOMEM)
		return bg_error_oom();
	return bg_error_lib(BANGER_EIO, "libarchive", archive_errno(a), "identity disk: %s: %s", what,
			    archive_error_string(a) ? archive_error_string(a) : "failed");
}

static int add_member(struct archive *a, struct archive_entry *e, const bg_identity_file *f)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, f->name);
	archive_entry_set_filetype(e, f->data ? AE_IFREG : AE_IFDIR);
	archive_entry_set_perm(e, f->mode);
	archive_entry_set_size(e, f->data ? (la_int64_t)f->len : 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return archive_failed(a, f->name);
	if (f->data && f->len && archive_write_data(a, f->data, f->len) != (la_ssize_t)f->len)
		return archive_failed(a, f->name);
	return 0;
}

int bg_identity_archive(bg_buf *out, const bg_identity_file *files, size_t n)
{
	/* All the room first, so appending never allocates: no realloc
	 * leaves a copy of the key behind in freed memory, and the write
	 * callback cannot fail (libarchive 3.6 leaks its output state when
	 * one does). */
	if (bg_buf_grow(out, archive_size(files, n)))
		return bg_error_oom();
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	int rc = 0;
	if (!a || !e) {
		rc = bg_error_oom();
		goto out;
	}
	if (archive_write_set_format_ustar(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, out, NULL, append, NULL) != ARCHIVE_OK) {
		rc = archive_failed(a, "set up");
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_member(a, e, &files[i]);
	/* close writes the two zero blocks that end the archive */
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = archive_failed(a, "finish");
out:
	archive_entry_free(e);
	if (a)
		archive_write_free(a);
	return rc;
}
