/*
 * libbanger — untrusted text made safe to print, and words made safe for
 * a shell.
 *
 * Names from images, fields from registries and kernel catalogs, and
 * output from guests are written by someone else.  Printed raw, their
 * escape sequences act on the reader's terminal (clear the screen, set
 * the window title, fake coloured output).  libbanger passes every such
 * string through this function before it puts it into an error message
 * or a log line; a program that prints strings it got from the library's
 * accessors (image configs, catalog descriptions, session commands) or a
 * guest's output to a terminal can use it too.
 *
 * Printable UTF-8 (any script) is kept as it is.  Spelled out instead:
 *   - C0 controls and DEL as \xNN (\n, \r and \t as those two characters),
 *   - C1 controls (U+0080..U+009F), bidi overrides and isolates and the
 *     Unicode line/paragraph separators as \uNNNN,
 *   - every byte that is not part of valid UTF-8 as \xNN.
 * A backslash in the input is kept, so the result is for reading, not for
 * decoding back; applying the function twice changes nothing.
 *
 * Thread safety: both functions are pure; call them from any thread.
 */
#ifndef BANGER_TEXT_H
#define BANGER_TEXT_H

#include "common.h"

BANGER_BEGIN_DECL

/* Keep the line structure: \n and \t stay, and \r stays when a \n
 * follows it (CR LF line ends).  A lone \r (which would let a line
 * overwrite itself) is still spelled out. */
#define BANGER_TEXT_LINES 0x1u
/* Produce the inside of a JSON string literal instead: " and \ escaped,
 * controls and the characters above as \uNNNN, invalid UTF-8 bytes as
 * \ufffd (JSON cannot carry them).  BANGER_TEXT_LINES is ignored. */
#define BANGER_TEXT_JSON 0x2u
/* data is one chunk of a stream: an unfinished UTF-8 character (or a \r
 * whose \n may follow) at its end is left unconsumed; pass it again at
 * the start of the next chunk.  Without this flag a cut-off character is
 * spelled out byte by byte. */
#define BANGER_TEXT_PARTIAL 0x4u

/* The visible form of len bytes at data (which may contain NUL bytes,
 * spelled \x00).  *out is NUL-terminated, freed with banger_free;
 * out_len (may be NULL) gets its length; consumed (may be NULL) the input
 * bytes used, which is len unless BANGER_TEXT_PARTIAL kept a tail back.
 * Errors: BANGER_EINVALID (out NULL, data NULL with len > 0, unknown
 * flags), BANGER_ENOMEM. */
BANGER_EXTERN(int) banger_text_visible(char **out, size_t *out_len, size_t *consumed, const char *data,
				       size_t len, uint32_t flags);

/* count words as one command line for a POSIX shell (sh -c, a command
 * sent over SSH, an ssh_config ProxyCommand): each word in single
 * quotes, a single quote inside one written '\'', words separated by
 * one blank.  Every word is quoted, so the first one stays a command
 * name (never an assignment or a reserved word).  *out ("" for no words)
 * is freed with banger_free.  Errors: BANGER_EINVALID (out NULL, words
 * NULL with count > 0, a NULL word), BANGER_ENOMEM. */
BANGER_EXTERN(int) banger_text_shell_quote(char **out, const char *const *words, size_t count);

BANGER_END_DECL

#endif
