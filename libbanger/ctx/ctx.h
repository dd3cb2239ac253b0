/*
 * Private declarations of the context: what an open banger_ctx holds.
 */
#ifndef BG_CTX_H
#define BG_CTX_H

#include "../core/core.h"
#include "../core/logger.h"
#include "../config/config.h"
#include "../layout/layout.h"
#include "../store/store.h"

struct banger_ctx {
	bg_logger logger; /* must stay first: see core/logger.h */
	uint32_t flags;
	bg_layout layout;
	bg_config config;
	bg_store store;
};

#endif
