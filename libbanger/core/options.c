/* Options structs: the one check every entry point makes of the struct it
 * was given, and the one way every *_options_init() fills one in.  Keeping
 * both here means NULL and a version this library does not know are
 * treated alike by every call (docs/conventions.md, "Options"). */
#include "core.h"

#include <string.h>

int bg_options_check(const char *type, bool present, unsigned int version, unsigned int oldest,
		     unsigned int newest)
{
	if (!present)
		return bg_error(BANGER_EINVALID, "%s must not be NULL", type);
	/* A newer caller's struct may be longer than ours: reading it as ours
	 * would take its new fields for something else.  An older one may be
	 * shorter, which only the versions named by oldest are known to be. */
	if (version < oldest || version > newest)
		return bg_error(BANGER_EINVALID, "unsupported %s version %u", type, version);
	return 0;
}

int bg_options_init(void *opts, const void *defaults, size_t size, const char *type, unsigned int version,
		    unsigned int oldest, unsigned int newest)
{
	int rc = bg_options_check(type, opts != NULL, version, oldest, newest);
	if (rc)
		return rc;
	memcpy(opts, defaults, size);
	/* every options struct starts with its version */
	memcpy(opts, &version, sizeof(version));
	return 0;
}
