/*
 * Private declarations of the config module: "key = value" lines, '#'
 * comments, applied over built-in defaults.
 */
#ifndef BG_CONFIG_H
#define BG_CONFIG_H

#include "../core/core.h"

typedef struct {
	char *key, *value;
} bg_config_entry;

typedef struct {
	bg_config_entry *entries;
	size_t count;
} bg_config;

/* Load defaults, then the file at path.  A missing file is fine unless
 * required (a path the user named with --config): then BANGER_ENOTFOUND.
 * A malformed file, a NUL byte, an unknown key or a value of the wrong
 * type or out of range is BANGER_EINVALID naming "file:line". */
int bg_config_load(bg_config *c, const char *path, bool required);
/* Parse text (for tests and the loader); every value is checked. */
int bg_config_parse(bg_config *c, const char *text, const char *origin);
/* Borrowed value, NULL when unset. */
const char *bg_config_get(const bg_config *c, const char *key);
int bg_config_get_u32(const bg_config *c, const char *key, uint32_t *out);
bool bg_config_get_bool(const bg_config *c, const char *key);
/* Is key a known configuration key? */
bool bg_config_known_key(const char *key);
void bg_config_free(bg_config *c);

#endif
