/* Writing small ustar archives in memory (the identity disk). */
#ifndef BG_USTAR_H
#define BG_USTAR_H

#include <sys/types.h>

#include "../core/core.h"

int bg_ustar_dir(bg_buf *b, const char *name);
int bg_ustar_file(bg_buf *b, const char *name, mode_t mode, const void *data, size_t len);
/* The two zero blocks that end an archive. */
int bg_ustar_finish(bg_buf *b);

#endif
