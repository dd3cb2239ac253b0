/* The host's architecture, detected in one place: kernels are checked
 * against it (banger's name, bg_host_arch) and images pick their
 * platform from it (image/reference.c, bg_platform_host), so the two can
 * never disagree about what this machine is. */
#include "host.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

/* What the library was compiled for: the answer when uname(2) has none
 * (it fails only on a bad pointer, but a guess of our own would be worse
 * than the one thing this process certainly runs as). */
#if defined(__x86_64__)
#define BUILD_MACHINE "x86_64"
#elif defined(__aarch64__)
#define BUILD_MACHINE "aarch64"
#else
#define BUILD_MACHINE "unknown"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char machine[sizeof(((struct utsname *)0)->machine)];

static void detect(void)
{
	struct utsname u;
	if (uname(&u) == 0 && u.machine[0])
		snprintf(machine, sizeof(machine), "%s", u.machine);
	else
		snprintf(machine, sizeof(machine), "%s", BUILD_MACHINE);
}

const char *bg_host_machine(void)
{
	pthread_once(&once, detect);
	return machine;
}

const char *bg_host_arch_of(const char *m)
{
	if (!m)
		return "unknown";
	if (strcmp(m, "x86_64") == 0)
		return "x86_64";
	if (strcmp(m, "aarch64") == 0 || strcmp(m, "arm64") == 0)
		return "aarch64";
	return "unknown";
}

const char *bg_host_arch(void)
{
	return bg_host_arch_of(bg_host_machine());
}
