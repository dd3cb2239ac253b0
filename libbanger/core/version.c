#include "core.h"

BANGER_EXTERN(const char *) banger_version(void)
{
	return BANGER_VERSION;
}

BANGER_EXTERN(int) banger_version_numbers(int *major, int *minor, int *patch)
{
	if (major)
		*major = BANGER_VERSION_MAJOR;
	if (minor)
		*minor = BANGER_VERSION_MINOR;
	if (patch)
		*patch = BANGER_VERSION_PATCH;
	return 0;
}
