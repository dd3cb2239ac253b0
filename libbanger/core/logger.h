/* A bg_env (env/env.h), and so a banger_ctx, starts with a bg_logger, so
 * the core can log through either without knowing the rest of them. */
#ifndef BG_LOGGER_H
#define BG_LOGGER_H

#include <banger/context.h>

typedef struct {
	banger_log_cb cb;
	void *payload;
	int level;
} bg_logger;

#endif
