/* Kernel names: they become directory names under <kernels>. */
#include "kernel.h"

#include <ctype.h>
#include <string.h>

bool bg_kernel_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > BG_KERNEL_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}
