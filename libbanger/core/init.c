/* Global initialisation of libcurl and libssh2, once per process and
 * thread-safe (pthread_once), never per call. */
#include "core.h"

#include <curl/curl.h>
#include <libssh2.h>
#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc;

static void do_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		init_rc = BANGER_ERROR;
		return;
	}
	if (libssh2_init(0) != 0)
		init_rc = BANGER_ERROR;
}

int bg_global_init(void)
{
	pthread_once(&once, do_init);
	if (init_rc)
		return bg_error(init_rc, "global initialisation of libcurl/libssh2 failed");
	return 0;
}
