/* The user's ~/.ssh/config, which banger edits to add (or remove) one
 * Include block for its VMs.
 *
 * Checked: installing makes banger's Include the first thing in the
 * file; installing again changes nothing; uninstalling after installing
 * leaves no banger Include line; uninstalling twice changes nothing the
 * second time. */
#include "fuzz.h"
#include "../../libbanger/guest/guest.h"

#define INC "/var/lib/banger-fuzz/ssh/config"
#define LINE "Include \"" INC "\"\n"

static int edit(char **out, size_t *out_len, const char *text, size_t len, bool install, bool *changed)
{
	int rc = bg_ssh_config_include_text(out, out_len, text, len, INC, install, changed);
	FUZZ_CHECK(rc == 0 || rc == BANGER_ENOMEM || rc == BANGER_EINVALID);
	if (rc == 0 && *changed)
		FUZZ_CHECK(*out != NULL);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char *in1 = NULL, *in2 = NULL, *un1 = NULL, *un2 = NULL;
	size_t l1 = 0, l2 = 0, lu1 = 0, lu2 = 0;
	bool c1, c2, cu1, cu2;
	if (edit(&in1, &l1, text, size, true, &c1) == 0) {
		const char *t1 = c1 ? in1 : text;
		size_t n1 = c1 ? l1 : size;
		FUZZ_CHECK(n1 > 0 && memmem(t1, n1 < 512 ? n1 : 512, LINE, strlen(LINE)));
		if (edit(&in2, &l2, t1, n1, true, &c2) == 0)
			FUZZ_CHECK(!c2);
		if (edit(&un1, &lu1, t1, n1, false, &cu1) == 0) {
			FUZZ_CHECK(cu1);
			/* no line is banger's Include any more */
			FUZZ_CHECK(!(lu1 >= strlen(LINE) && memcmp(un1, LINE, strlen(LINE)) == 0));
			FUZZ_CHECK(!memmem(un1, lu1, "\n" LINE, strlen("\n" LINE)));
			if (edit(&un2, &lu2, un1, lu1, false, &cu2) == 0)
				FUZZ_CHECK(!cu2);
		}
	}
	bg_free(in1);
	bg_free(in2);
	bg_free(un1);
	bg_free(un2);
	return 0;
}
