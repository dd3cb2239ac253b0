/* Untrusted text made visible: escape sequences spelled out, printable
 * UTF-8 kept, invalid UTF-8 byte by byte; and every error message and log
 * line passes through it. */
#include "helpers.h"
#include "../../libbanger/core/core.h"
#include "../../libbanger/core/logger.h"

static char *vis(const char *s, unsigned flags)
{
	bg_buf b = BG_BUF_INIT;
	assert_int_equal(bg_buf_put_visible(&b, s, strlen(s), flags, NULL), 0);
	return bg_buf_detach(&b);
}

static void expect(const char *in, unsigned flags, const char *want)
{
	char *got = vis(in, flags);
	assert_string_equal(got, want);
	/* idempotent: the visible form is visible */
	char *again = vis(got, flags & ~(unsigned)BG_VIS_JSON);
	if (!(flags & BG_VIS_JSON))
		assert_string_equal(again, got);
	bg_free(again);
	bg_free(got);
}

static bool has_raw_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == 0x9b)
			return true;
	return false;
}

static void test_printable_kept(void **state)
{
	(void)state;
	expect("plain ascii ~!@#$%^&*()", 0, "plain ascii ~!@#$%^&*()");
	expect("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 0, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	expect("\xe2\x82\xac \xf0\x9f\x90\xb3 \xe4\xb8\xad", 0, "\xe2\x82\xac \xf0\x9f\x90\xb3 \xe4\xb8\xad");
	expect("back\\slash", 0, "back\\slash");
	expect("", 0, "");
}

static void test_sequences(void **state)
{
	(void)state;
	/* CSI: clear the screen, colours */
	expect("\x1b[2J\x1b[H", 0, "\\x1b[2J\\x1b[H");
	expect("\x1b[31mred\x1b[0m", 0, "\\x1b[31mred\\x1b[0m");
	/* OSC: set the window title, BEL and ST terminated */
	expect("\x1b]0;pwned\x07", 0, "\\x1b]0;pwned\\x07");
	expect("\x1b]2;t\x1b\\", 0, "\\x1b]2;t\\x1b\\");
	/* C1 CSI as a UTF-8 character and as a raw byte */
	expect("a\xc2\x9b" "31m", 0, "a\\u009b31m");
	expect("a\x9b" "31m", 0, "a\\x9b31m");
	/* DEL, NUL-free C0, tab/newline/CR */
	expect("x\x7fy\x01z", 0, "x\\x7fy\\x01z");
	expect("a\tb\nc\rd", 0, "a\\tb\\nc\\rd");
	/* bidi override and line separator */
	expect("abc\xe2\x80\xaegnp.exe", 0, "abc\\u202egnp.exe");
	expect("l1\xe2\x80\xa8l2", 0, "l1\\u2028l2");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect("\xc0\xaf", 0, "\\xc0\\xaf");                 /* overlong '/' */
	expect("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf");        /* overlong, 3 bytes */
	expect("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");        /* surrogate */
	expect("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
	expect("\xff\xfe", 0, "\\xff\\xfe");
	expect("\x80" "abc", 0, "\\x80abc");                 /* stray continuation */
	expect("ab\xe2\x82", 0, "ab\\xe2\\x82");             /* cut off at the end */
	expect("\xe2\x82x", 0, "\\xe2\\x82x");               /* cut off by ASCII */
}

static void test_lines(void **state)
{
	(void)state;
	expect("a\tb\nc\r\nd", BG_VIS_LINES, "a\tb\nc\r\nd");
	expect("over\rwrite", BG_VIS_LINES, "over\\rwrite");  /* a lone CR is spelled out */
	expect("end\r", BG_VIS_LINES, "end\\r");
	expect("\x1b[2K\n", BG_VIS_LINES, "\\x1b[2K\n");
}

static void test_json(void **state)
{
	(void)state;
	expect("q\"b\\e\x1b\n", BG_VIS_JSON, "q\\\"b\\\\e\\u001b\\n");
	expect("x\x7f\xc2\x9b\xff\xe2\x80\xae\xd0\xb4", BG_VIS_JSON, "x\\u007f\\u009b\\ufffd\\u202e\xd0\xb4");
}

static void test_partial(void **state)
{
	(void)state;
	bg_buf b = BG_BUF_INIT;
	size_t used;
	/* a euro sign cut after two bytes waits for its third */
	assert_int_equal(bg_buf_put_visible(&b, "ab\xe2\x82", 4, BG_VIS_PARTIAL, &used), 0);
	assert_int_equal(used, 2);
	assert_int_equal(bg_buf_put_visible(&b, "\xe2\x82\xac!", 4, BG_VIS_PARTIAL, &used), 0);
	assert_int_equal(used, 4);
	assert_string_equal(b.data, "ab\xe2\x82\xac!");
	/* CR at the end of a chunk waits for a possible LF */
	assert_int_equal(bg_buf_put_visible(&b, "x\r", 2, BG_VIS_PARTIAL | BG_VIS_LINES, &used), 0);
	assert_int_equal(used, 1);
	/* an invalid start is not held back */
	assert_int_equal(bg_buf_put_visible(&b, "\xff", 1, BG_VIS_PARTIAL, &used), 0);
	assert_int_equal(used, 1);
	assert_string_equal(b.data, "ab\xe2\x82\xac!x\\xff");
	bg_buf_free(&b);
}

static void test_fixed_buffer(void **state)
{
	(void)state;
	char out[6];
	/* "\x1b" does not fit after "ab": it is left out whole, never cut */
	assert_int_equal(bg_visible_into(out, sizeof(out), "ab\x1b" "cd", 0), 2);
	assert_string_equal(out, "ab");
	char out2[5];
	assert_int_equal(bg_visible_into(out2, sizeof(out2), "abc\xe2\x82\xac", 0), 3);
	assert_string_equal(out2, "abc"); /* the euro sign is not split */
	char *s = bg_str_visible("multi\nline\x1b");
	assert_string_equal(s, "multi\\nline\\x1b");
	bg_free(s);
}

static void test_public(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0, used = 0;
	assert_int_equal(banger_text_visible(&out, &len, &used, "a\0b\x1b", 4, 0), 0);
	assert_string_equal(out, "a\\x00b\\x1b");
	assert_int_equal(len, strlen(out));
	assert_int_equal(used, 4);
	banger_free(out);
	assert_int_equal(banger_text_visible(&out, NULL, &used, "ok\xc3", 3, BANGER_TEXT_PARTIAL), 0);
	assert_string_equal(out, "ok");
	assert_int_equal(used, 2);
	banger_free(out);
	assert_int_equal(banger_text_visible(&out, NULL, NULL, "x", 1, 0x80), BANGER_EINVALID);
	assert_null(out);
	assert_int_equal(banger_text_visible(NULL, NULL, NULL, "x", 1, 0), BANGER_EINVALID);
	assert_int_equal(banger_text_visible(&out, NULL, NULL, NULL, 1, 0), BANGER_EINVALID);
	assert_int_equal(banger_text_visible(&out, NULL, NULL, NULL, 0, 0), 0);
	assert_string_equal(out, "");
	banger_free(out);
}

/* Every error message is made visible, whatever the call site did. */
static void test_error_messages(void **state)
{
	(void)state;
	const char *name = "\x1b[2J\x1b]0;owned\x07\x9b" "1m";
	assert_int_equal(bg_error(BANGER_EINVALID, "member '%s' is bad", name), BANGER_EINVALID);
	const char *m = banger_error_last()->message;
	assert_false(has_raw_control(m));
	assert_string_equal(m, "member '\\x1b[2J\\x1b]0;owned\\x07\\x9b1m' is bad");
	bg_error_prefix("layer %s", "\x1b[31m");
	m = banger_error_last()->message;
	assert_false(has_raw_control(m));
	assert_non_null(strstr(m, "layer \\x1b[31m: member"));
	assert_int_equal(bg_error_os(BANGER_EIO, 2, "open %s", "a\rb"), BANGER_EIO);
	assert_false(has_raw_control(banger_error_last()->message));
	/* a message that fills the buffer with escapes stays bounded */
	char big[3000];
	memset(big, 0x1b, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	bg_error(BANGER_EINVALID, "%s", big);
	assert_true(strlen(banger_error_last()->message) < 1024);
	assert_false(has_raw_control(banger_error_last()->message));
}

static char logged[4096];
static void capture(int level, const char *msg, void *payload)
{
	(void)level;
	(void)payload;
	snprintf(logged, sizeof(logged), "%s", msg);
}

static void test_log_lines(void **state)
{
	(void)state;
	bg_logger lg = { capture, NULL, BANGER_LOG_DEBUG };
	bg_warn((struct banger_ctx *)&lg, "guest said %s", "\x1b[1A\x1b[2Kfake\nline");
	assert_string_equal(logged, "guest said \\x1b[1A\\x1b[2Kfake\\nline");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_kept),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_fixed_buffer),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_log_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
