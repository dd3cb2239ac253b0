/* known_hosts text: the parser, the matcher, and the writer behind pin
 * and remove.
 *
 * Input:  line 1  host names to use, separated by blanks (at most 4)
 *         line 2  port (decimal; anything else is 22)
 *         line 3  the presented key, "type base64" (a fixed ed25519 key
 *                 when it does not parse)
 *         rest    the known_hosts file
 *
 * Checked: every verdict is one of the four; pinning then checking gives
 * MATCH for every name; pinning twice changes nothing the second time;
 * trust-on-first-use pinning refuses exactly when a name is pinned with
 * another key or revoked; removing a name that is not in the file
 * changes nothing. */
#include "fuzz.h"
#include "../../libbanger/guest/guest.h"

#include <ctype.h>
#include <strings.h>

#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"
#define MAX_NAMES 4

static int verdict(const char *text, size_t len, const char *host, uint16_t port, const bg_sshkey *key)
{
	bg_kh_result r;
	int rc = bg_known_hosts_check_text(&r, text, len, host, port, key);
	if (rc) {
		FUZZ_CHECK(rc == BANGER_ENOMEM || rc == BANGER_EINVALID);
		return rc;
	}
	FUZZ_CHECK(r.verdict == BANGER_HOSTKEY_MATCH || r.verdict == BANGER_HOSTKEY_MISMATCH ||
		   r.verdict == BANGER_HOSTKEY_NOT_FOUND || r.verdict == BANGER_HOSTKEY_REVOKED);
	FUZZ_CHECK(r.lookup_name != NULL);
	if (r.verdict == BANGER_HOSTKEY_MISMATCH)
		FUZZ_CHECK(r.pinned_fp && r.pinned_type && r.line > 0);
	if (r.verdict == BANGER_HOSTKEY_MATCH || r.verdict == BANGER_HOSTKEY_REVOKED)
		FUZZ_CHECK(r.line > 0);
	int v = r.verdict;
	bg_kh_result_free(&r);
	return v;
}

/* The name pin writes for a given input name, and the host to check it
 * with ("[h]:p" names are taken as written; checking them needs the host
 * part, which we skip). */
static bool checkable(const char *name)
{
	return name[0] != '[';
}

/* Does text hold needle in any letter case? */
static bool contains_nocase(const char *text, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(text + i, needle, n) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *names_line = fuzz_take_line(&data, &size);
	char *port_line = fuzz_take_line(&data, &size);
	char *key_line = fuzz_take_line(&data, &size);
	const char *text = (const char *)data;
	size_t len = size;
	/* the writer keeps lines it cannot parse byte for byte, NULs too */
	bool has_nul = len && memchr(text, '\0', len);

	const char *names[MAX_NAMES];
	size_t count = 0;
	for (char *save = NULL, *t = strtok_r(names_line, " \t", &save); t && count < MAX_NAMES;
	     t = strtok_r(NULL, " \t", &save))
		names[count++] = t;
	char *end;
	unsigned long p = strtoul(port_line, &end, 10);
	uint16_t port = (*port_line && !*end && p <= 65535) ? (uint16_t)p : 22;

	bg_sshkey key;
	if (bg_sshkey_from_line(&key, key_line) != 0 || key.cert) {
		bg_sshkey_free(&key);
		FUZZ_CHECK(bg_sshkey_from_line(&key, KEY_A) == 0);
	}

	/* verdicts before any change */
	int before[MAX_NAMES];
	for (size_t i = 0; i < count; i++)
		before[i] = verdict(text, len, names[i], port, &key);
	for (size_t i = 0; i < count; i++) {
		int m = bg_kh_match_list(names[i], text, len < 512 ? len : 512);
		FUZZ_CHECK(m >= -1 && m <= 1);
	}

	/* explicit pin: afterwards every name matches, and a second pin is a
	 * no-op */
	char *out = NULL;
	size_t out_len = 0;
	bool changed = false;
	int rc = bg_known_hosts_pin_text(&out, &out_len, text, len, names, count, port, &key, 0, &changed);
	if (rc == 0) {
		const char *now = changed ? out : text;
		size_t now_len = changed ? out_len : len;
		if (changed)
			FUZZ_CHECK(out && (has_nul || strlen(out) == out_len) && out_len && out[out_len - 1] == '\n');
		for (size_t i = 0; i < count; i++) {
			FUZZ_CHECK(before[i] != BANGER_HOSTKEY_REVOKED);
			if (checkable(names[i]))
				FUZZ_CHECK(verdict(now, now_len, names[i], port, &key) == BANGER_HOSTKEY_MATCH);
		}
		char *again = NULL;
		size_t again_len = 0;
		bool changed2 = true;
		int rc2 = bg_known_hosts_pin_text(&again, &again_len, now, now_len, names, count, port, &key, 0,
						  &changed2);
		FUZZ_CHECK(rc2 == 0 || rc2 == BANGER_ENOMEM);
		if (rc2 == 0)
			FUZZ_CHECK(!changed2 && !again);
		bg_free(again);

		/* removing an absent name changes nothing */
		const char *absent[1] = { "absent.name.invalid" };
		char *rem = NULL;
		size_t rem_len = 0, removed = 99;
		int rc3 = bg_known_hosts_remove_text(&rem, &rem_len, now, now_len, absent, 1, &removed);
		FUZZ_CHECK(rc3 == 0 || rc3 == BANGER_ENOMEM);
		if (rc3 == 0 && !contains_nocase(now, now_len, absent[0]))
			FUZZ_CHECK(removed == 0 && !rem);
		bg_free(rem);
	} else {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EREVOKED || rc == BANGER_ENOMEM);
		if (rc == BANGER_EREVOKED) {
			bool any_revoked = false;
			for (size_t i = 0; i < count; i++)
				any_revoked |= before[i] == BANGER_HOSTKEY_REVOKED || !checkable(names[i]);
			FUZZ_CHECK(any_revoked);
		}
	}
	bg_free(out);

	/* trust on first use: refused exactly on a mismatch or a revocation */
	out = NULL;
	rc = bg_known_hosts_pin_text(&out, &out_len, text, len, names, count, port, &key, BG_KH_PIN_IF_NEW,
				     &changed);
	if (rc == 0) {
		for (size_t i = 0; i < count; i++)
			if (checkable(names[i]))
				FUZZ_CHECK(before[i] == BANGER_HOSTKEY_MATCH || before[i] == BANGER_HOSTKEY_NOT_FOUND ||
					   /* a bare-host fallback miss is NOT_FOUND for check but
					    * the spelled name is what pin looks at */
					   port != 22);
	} else if (rc == BANGER_ETRUST) {
		bool any = false;
		for (size_t i = 0; i < count; i++)
			any |= before[i] == BANGER_HOSTKEY_MISMATCH || !checkable(names[i]) ||
			       (port != 22 && port != 0);
		FUZZ_CHECK(any);
	}
	bg_free(out);

	/* remove every name we were given */
	size_t removed = 0;
	out = NULL;
	rc = bg_known_hosts_remove_text(&out, &out_len, text, len, names, count, &removed);
	if (rc == 0 && out)
		FUZZ_CHECK(removed > 0 && (has_nul || strlen(out) == out_len));
	bg_free(out);

	bg_sshkey_free(&key);
	free(names_line);
	free(port_line);
	free(key_line);
	return 0;
}
