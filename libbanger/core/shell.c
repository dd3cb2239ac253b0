/* Words for a POSIX shell, the library's only quoter: commands sent to a
 * guest over SSH (the session helper, uploads), the command line a
 * session records, and the CLI's through banger_text_shell_quote.
 *
 * A word is put in single quotes, inside which a shell gives no
 * character a meaning; a single quote itself is closed, escaped and
 * reopened ('\''). */
#include "core.h"

#include <string.h>

/* Characters no POSIX shell treats specially anywhere in a word. */
static bool plain_word(const char *s)
{
	if (!*s)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == strlen(s);
}

static void put_quoted(bg_buf *b, const char *s)
{
	bg_buf_puts(b, "'");
	for (const char *q; (q = strchr(s, '\'')); s = q + 1) {
		bg_buf_put(b, s, (size_t)(q - s));
		bg_buf_puts(b, "'\\''");
	}
	bg_buf_puts(b, s);
	bg_buf_puts(b, "'");
}

char *bg_shell_join(const char *const *words, size_t n, unsigned flags)
{
	bg_buf b = BG_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i)
			bg_buf_puts(&b, " ");
		if ((flags & BG_SHELL_BARE) && plain_word(words[i]))
			bg_buf_puts(&b, words[i]);
		else
			put_quoted(&b, words[i]);
	}
	return bg_buf_detach(&b); /* NULL if an append failed */
}

char *bg_shell_quote(const char *word)
{
	return bg_shell_join(&word, 1, 0);
}

BANGER_EXTERN(int) banger_text_shell_quote(char **out, const char *const *words, size_t count)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "banger_text_shell_quote: out is required");
	*out = NULL;
	if (!words && count)
		return bg_error(BANGER_EINVALID, "banger_text_shell_quote: no words");
	for (size_t i = 0; i < count; i++)
		if (!words[i])
			return bg_error(BANGER_EINVALID, "banger_text_shell_quote: word %zu is NULL", i);
	*out = bg_shell_join(words, count, 0);
	return *out ? 0 : bg_error_oom();
}
