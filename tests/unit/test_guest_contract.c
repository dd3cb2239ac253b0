/* The guest programs' contracts (guest/include/banger-guest/) against
 * what cannot include them: the first-boot shell script and the systemd
 * units.  Every name or path the host takes from a header must be spelled
 * the same way there; a change on one side only fails here. */
#include "helpers.h"

#include "../../libbanger/core/core.h"
#include "../../guest/include/banger-guest/agent.h"
#include "../../guest/include/banger-guest/first_boot.h"
#include "../../guest/include/banger-guest/session.h"

static char *source_file(const char *rel)
{
	const char *src = getenv("BANGER_SOURCE_DIR");
	assert_non_null(src);
	char *path = bg_path_join(src, rel);
	char *text = NULL;
	assert_int_equal(bg_read_file(&text, NULL, path, 1u << 20), 0);
	bg_free(path);
	return text;
}

static void has(const char *text, const char *what, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("%s does not contain \"%s\"", what, needle);
}

static void test_first_boot_script(void **st)
{
	const char *what = "guest/first-boot/banger-first-boot";
	char *s = source_file(what);
	has(s, what, "\nPROG=" BG_FB_NAME "\n");
	has(s, what, "\nIDENTITY_DEV=" BG_FB_IDENTITY_DISK "\n");
	has(s, what, "init=" BG_FB_GUEST_PATH);
	has(s, what, "printf '" BG_FB_ERROR_MARK "%s\\n'");
	has(s, what, "mount -t ext4 " BG_FB_WORK_DISK " " BG_FB_WORK_MOUNT " ");
	has(s, what, "\nAUTH_KEYS=" BG_FB_AUTHORIZED_KEYS "\n");
	/* the identity members: read from <archive>/banger/, and each one
	 * in the list of members that must be regular files */
	char dir[64];
	snprintf(dir, sizeof(dir), "li_b=\"$li_dir/%.*s\"", (int)strlen(BG_FB_ID_DIR) - 1, BG_FB_ID_DIR);
	has(s, what, dir);
	const char *list = strstr(s, "\tfor li_m in ");
	assert_non_null(list);
	const char *end = strstr(list, "; do");
	assert_non_null(end);
	const char *members[] = { BG_FB_ID_HOSTNAME, BG_FB_ID_NETWORK, BG_FB_ID_HOST_KEY, BG_FB_ID_HOST_KEY_PUB,
				  BG_FB_ID_AUTHORIZED_KEYS };
	for (size_t i = 0; i < BG_ARRAY_SIZE(members); i++) {
		const char *base = members[i] + strlen(BG_FB_ID_DIR);
		bool found = false;
		for (const char *p = list; p && p < end && !found; p = strstr(p + 1, base))
			found = p + strlen(base) <= end && (p[-1] == ' ' || p[-1] == '\t') &&
				(p[strlen(base)] == ' ' || p[strlen(base)] == ';');
		if (!found)
			fail_msg("%s: the identity member list lacks %s", what, base);
	}
	/* network.env: every key is one the parser knows */
	const char *keys[] = { BG_FB_NET_IP, BG_FB_NET_PREFIX, BG_FB_NET_GATEWAY, BG_FB_NET_DNS, BG_FB_NET_IFACE,
			       BG_FB_NET_NAT };
	for (size_t i = 0; i < BG_ARRAY_SIZE(keys); i++) {
		char label[64];
		snprintf(label, sizeof(label), "\n\t\t%s)\n", keys[i]);
		has(s, what, label);
	}
	bg_free(s);
}

static void test_units(void **st)
{
	const char *fb = "guest/first-boot/" BG_FB_UNIT_NAME;
	char *s = source_file(fb);
	has(s, fb, "\nExecStart=" BG_FB_GUEST_PATH "\n");
	has(s, fb, " " BG_AGENT_UNIT_NAME "\n"); /* ordered before the agent */
	bg_free(s);
	const char *ag = "guest/agent/" BG_AGENT_UNIT_NAME;
	s = source_file(ag);
	has(s, ag, "\nExecStart=" BG_AGENT_GUEST_BIN "\n");
	has(s, ag, " " BG_FB_UNIT_NAME "\n");
	char port[64];
	snprintf(port, sizeof(port), "vsock port %d", BG_AGENT_PORT);
	has(s, ag, port);
	bg_free(s);
}

/* The names the host derives: what images carry and what it uploads. */
static void test_derived_names(void **st)
{
	assert_string_equal(BG_SESSION_PROTO_NAME, "banger-session-p1");
	char v[64];
	snprintf(v, sizeof(v), BG_SH_VERSION_FORMAT, SP_VERSION);
	assert_string_equal(v, "banger-session proto 1");
	assert_string_equal(BG_AGENT_VERSION_PREFIX, "OK banger-vsock-agent ");
	assert_string_equal(BG_FB_GUEST_PATH, "/usr/local/libexec/banger-first-boot");
	assert_string_equal(BG_AGENT_GUEST_BIN, "/usr/local/libexec/banger-vsock-agent");
	/* the helpers' exit codes never meet the host prefix's */
	const int codes[] = { BG_SH_OK, BG_SH_ERR, BG_SH_USAGE, BG_SH_LOST, BG_SH_MISSING, BG_SH_TIMEOUT,
			      BG_SH_RUNNING, BG_SH_ENDED };
	for (size_t i = 0; i < BG_ARRAY_SIZE(codes); i++) {
		assert_int_not_equal(codes[i], BG_SH_NO_HELPER);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_boot_script),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_derived_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
