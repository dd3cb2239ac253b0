/* known_hosts: parser, matcher and writer; keys, fingerprints, base64.
 *
 * The verdict table follows sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" and
 * what OpenSSH 9.2's ssh and ssh-keygen do on the same files (the
 * integration tier replays a set of these files against real ssh). */
#include "helpers.h"
#include "../../libbanger/guest/guest.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

/* Keys made with ssh-keygen 9.2 (fingerprints from `ssh-keygen -l`). */
#define B64_A "AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"
#define KEY_A "ssh-ed25519 " B64_A
#define FP_A "SHA256:9aa4q5H5/44DqBODRYXuCagf+Q+F0+PB0iaTFPltTaI"
#define KEY_B "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdwtqM0oiKXvUejaChzmgpgWddZH/V7KV01r/8oSkyD"
#define KEY_C "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMyLjtK3pgsW0y0OJtzBoj0sGwGta56E2RKDSYllZSsBvucatFJcsuxtt81vxo1Wlx1HnMi4VfoujmFX0PyfaNk="
#define FP_C "SHA256:BKmQmWZHpFoHi8jYcFavox3ENLib995nheakTdQJ/PU"
#define KEY_D "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCy+I3Sfc1U/SBB5QQ5KJUdZ4pEi6j6BLnf7wenXSg3Cl2zf/WEPAQEfYNjP95NcPCa27Qi2t7k7GZ74/Ad1m6iBxjPzqc+p/HF2fhh8bWrFif/1XuMeHhhhtNgq3hi8XUyANrbidkGAZdZV3wgAxCQBJ19RFPA7s2sjZPCrB2/yw=="
#define FP_D "SHA256:Rt9T+VS4hprhOTuPlfQ9NeXKNc4zaeq6vZ2i/SNFWNY"
/* `ssh-keygen -H` of "host.example" and "[host.example]:2222" with KEY_A. */
#define HASHED_HOST "|1|btQe0gGpkyO2ylQ/wcxP4H/yb+I=|3kp0DSxmEVI46Ffn16QvVr97S/c="
#define HASHED_PORT "|1|xZ1pD4YuXTRmWWl+Z7ycSdoReQo=|DDobLrSo2klKjeYoDR/dmq70ikI="

enum { M = BANGER_HOSTKEY_MATCH, X = BANGER_HOSTKEY_MISMATCH, N = BANGER_HOSTKEY_NOT_FOUND, R = BANGER_HOSTKEY_REVOKED };

static bg_sshkey key(const char *line)
{
	bg_sshkey k;
	assert_int_equal(bg_sshkey_from_line(&k, line), 0);
	return k;
}

static int verdict(const char *text, size_t len, const char *host, uint16_t port, const char *keyline)
{
	bg_sshkey k = key(keyline);
	bg_kh_result r;
	int rc = bg_known_hosts_check_text(&r, text, len, host, port, &k);
	assert_int_equal(rc, 0);
	int v = r.verdict;
	bg_kh_result_free(&r);
	bg_sshkey_free(&k);
	return v;
}

typedef struct {
	const char *what;
	const char *file;
	const char *host;
	uint16_t port;
	const char *key;
	int want;
} vcase;

static const vcase cases[] = {
	{ "empty file", "", "host.example", 22, KEY_A, N },
	{ "plain match", "host.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "port 0 is 22", "host.example " KEY_A "\n", "host.example", 0, KEY_A, M },
	{ "other key: mismatch", "host.example " KEY_A "\n", "host.example", 22, KEY_B, X },
	{ "other host", "other.example " KEY_A "\n", "host.example", 22, KEY_A, N },
	{ "mismatch whatever the type", "host.example " KEY_C "\n", "host.example", 22, KEY_A, X },
	{ "rsa pinned, ed25519 presented", "host.example " KEY_D "\n", "host.example", 22, KEY_A, X },
	{ "any equal key matches", "host.example " KEY_B "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "ecdsa match", "host.example " KEY_C "\n", "host.example", 22, KEY_C, M },
	{ "rsa match", "host.example " KEY_D "\n", "host.example", 22, KEY_D, M },
	{ "names are case-insensitive", "HOST.Example " KEY_A "\n", "host.EXAMPLE", 22, KEY_A, M },
	{ "comma list", "a.example,host.example,b.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "star wildcard", "*.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "question mark", "h?st.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "? is one char", "h?st.example " KEY_A "\n", "hoost.example", 22, KEY_A, N },
	{ "negation wins on its line", "*.example,!host.example " KEY_A "\n", "host.example", 22, KEY_A, N },
	{ "negation before the positive", "!host.example,*.example " KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "negation is per line", "*.example,!host.example " KEY_B "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "negated other name", "*.example,!other.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "[host]:port match", "[host.example]:2222 " KEY_A "\n", "host.example", 2222, KEY_A, M },
	{ "[host]:port is not port 22", "[host.example]:2222 " KEY_A "\n", "host.example", 22, KEY_A, N },
	{ "[host]:port other key", "[host.example]:2222 " KEY_B "\n", "host.example", 2222, KEY_A, X },
	{ "bare host fallback: exact match", "host.example " KEY_A "\n", "host.example", 2222, KEY_A, M },
	{ "bare host fallback: other key is not found", "host.example " KEY_B "\n", "host.example", 2222, KEY_A, N },
	{ "bare host fallback: revoked is not found", "@revoked host.example " KEY_A "\nhost.example " KEY_A "\n",
	  "host.example", 2222, KEY_A, N },
	{ "port entry wins over bare", "[host.example]:2222 " KEY_B "\nhost.example " KEY_A "\n", "host.example", 2222, KEY_A, X },
	{ "port wildcard", "[host.example]:* " KEY_A "\n", "host.example", 2222, KEY_A, M },
	{ "other port", "[host.example]:2200 " KEY_B "\n", "host.example", 2222, KEY_A, N },
	{ "revoked wins", "host.example " KEY_A "\n@revoked host.example " KEY_A "\n", "host.example", 22, KEY_A, R },
	{ "revoked by wildcard", "host.example " KEY_A "\n@revoked * " KEY_A "\n", "host.example", 22, KEY_A, R },
	{ "revoked alone", "@revoked host.example " KEY_A "\n", "host.example", 22, KEY_A, R },
	{ "revoked other key: no effect", "@revoked host.example " KEY_B "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "revoked other key: not a pin", "@revoked host.example " KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "revoked for another host", "@revoked other.example " KEY_A "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "cert-authority never vouches for a plain key", "@cert-authority host.example " KEY_A "\n", "host.example", 22, KEY_A, N },
	{ "cert-authority is not a pin", "@cert-authority *.example " KEY_B "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "unknown marker skipped", "@pinned host.example " KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "two markers skipped", "@revoked @revoked host.example " KEY_A "\n", "host.example", 22, KEY_A, N },
	/* check_markers() ends a marker at the first space of the line,
	 * so a tab after the marker makes the line invalid. */
	{ "tab after marker (OpenSSH quirk)", "@revoked\thost.example " KEY_A "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "tabs everywhere else", "\t host.example\t\t" "ssh-ed25519\t" B64_A "\tcomment\n", "host.example", 22, KEY_A, M },
	{ "comment after the key", "host.example " KEY_A " a comment # with hash\n", "host.example", 22, KEY_A, M },
	{ "comments and blank lines", "# host.example " KEY_B "\n\n   \n\t# x\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "commented-out pin is not a pin", "#host.example " KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "CRLF", "# c\r\nhost.example " KEY_A "\r\n", "host.example", 22, KEY_A, M },
	{ "CRLF with comment", "host.example " KEY_A " c\r\n", "host.example", 22, KEY_A, M },
	{ "CRLF mismatch", "host.example " KEY_B "\r\n", "host.example", 22, KEY_A, X },
	{ "no final newline", "x " KEY_B "\nhost.example " KEY_A, "host.example", 22, KEY_A, M },
	{ "hashed host", HASHED_HOST " " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "hashed host, other key", HASHED_HOST " " KEY_B "\n", "host.example", 22, KEY_A, X },
	{ "hashed host, other name", HASHED_HOST " " KEY_A "\n", "other.example", 22, KEY_A, N },
	{ "hashed [host]:port", HASHED_PORT " " KEY_A "\n", "host.example", 2222, KEY_A, M },
	{ "hashed name is lowercased first", HASHED_HOST " " KEY_A "\n", "Host.Example", 22, KEY_A, M },
	{ "bad hash skipped", "|1|bm90MjBieXRlcw==|AAAA " KEY_B "\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "unknown hash magic skipped", "|2|btQe0gGpkyO2ylQ/wcxP4H/yb+I=|x " KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "unknown key type skipped", "host.example ssh-foo AAAAB3NzaC1yc2E=\nhost.example " KEY_A "\n", "host.example", 22, KEY_A, M },
	{ "unknown key type is not a pin", "host.example ssh-foo AAAAB3NzaC1yc2E=\n", "host.example", 22, KEY_A, N },
	{ "type without key skipped", "host.example ssh-ed25519\n", "host.example", 22, KEY_A, N },
	{ "host only skipped", "host.example\n", "host.example", 22, KEY_A, N },
	{ "bad base64 skipped", "host.example ssh-ed25519 !!!!\n", "host.example", 22, KEY_A, N },
	{ "truncated blob skipped", "host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9z\n", "host.example", 22, KEY_A, N },
	{ "type/blob disagreement skipped", "host.example ssh-rsa " B64_A "\n", "host.example", 22, KEY_A, N },
	{ "short type name accepted", "host.example ED25519 " B64_A "\n", "host.example", 22, KEY_A, M },
	{ "short type name, any case", "host.example ed25519 " B64_A "\n", "host.example", 22, KEY_A, M },
	{ "comment right after host skipped", "host.example #" KEY_B "\n", "host.example", 22, KEY_A, N },
	{ "legacy RSA1 line skipped", "host.example 1024 35 12345\n", "host.example", 22, KEY_A, N },
	{ "marker only", "@revoked\n", "host.example", 22, KEY_A, N },
};

static void test_verdict_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < BG_ARRAY_SIZE(cases); i++) {
		const vcase *c = &cases[i];
		int v = verdict(c->file, strlen(c->file), c->host, c->port, c->key);
		if (v != c->want)
			fail_msg("case '%s': verdict %d, want %d", c->what, v, c->want);
	}
}

static void test_nul_and_long_lines(void **state)
{
	(void)state;
	/* A NUL ends the line for OpenSSH (C strings). */
	const char nul[] = "host.example " KEY_B "\0 tail\nhost.example " KEY_A "\n";
	assert_int_equal(verdict(nul, sizeof(nul) - 1, "host.example", 22, KEY_B), M);
	const char nul2[] = "host.ex\0ample " KEY_B "\n";
	assert_int_equal(verdict(nul2, sizeof(nul2) - 1, "host.example", 22, KEY_B), N);
	/* Lines of any length (libssh2 stops at 4092 bytes). */
	size_t big = 200000;
	char *t = malloc(big + 200);
	assert_non_null(t);
	memset(t, 'x', big);
	t[0] = '#';
	t[big] = '\n';
	strcpy(t + big + 1, "host.example " KEY_A "\n");
	assert_int_equal(verdict(t, strlen(t), "host.example", 22, KEY_A), M);
	/* A long comma list with the host at its end. */
	size_t off = 0;
	for (int i = 0; i < 5000; i++)
		off += (size_t)sprintf(t + off, "h%d.example,", i);
	sprintf(t + off, "host.example " KEY_A "\n");
	assert_int_equal(verdict(t, strlen(t), "host.example", 22, KEY_A), M);
	/* A subpattern of 1023+ characters makes the whole list not match. */
	memset(t, 'y', 1100);
	sprintf(t + 1100, ",host.example " KEY_A "\n");
	assert_int_equal(verdict(t, strlen(t), "host.example", 22, KEY_A), N);
	free(t);
}

static void test_match_list(void **state)
{
	(void)state;
	assert_int_equal(bg_kh_match_list("a.b", "a.b", 3), 1);
	assert_int_equal(bg_kh_match_list("a.b", "*", 1), 1);
	assert_int_equal(bg_kh_match_list("a.b", "*.*", 3), 1);
	assert_int_equal(bg_kh_match_list("a.b", "**b", 3), 1);
	assert_int_equal(bg_kh_match_list("a.b", "*c", 2), 0);
	assert_int_equal(bg_kh_match_list("a.b", "!a.b", 4), -1);
	assert_int_equal(bg_kh_match_list("a.b", "x,!a.*,a.b", 10), -1);
	assert_int_equal(bg_kh_match_list("a.b", "A.B", 3), 1);
	assert_int_equal(bg_kh_match_list("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*a*a*a*a*c", 23), 0);
}

static void test_keys_and_fingerprints(void **state)
{
	(void)state;
	const char *lines[] = { KEY_A, KEY_C, KEY_D };
	const char *fps[] = { FP_A, FP_C, FP_D };
	for (int i = 0; i < 3; i++) {
		bg_sshkey k = key(lines[i]);
		char *fp;
		assert_int_equal(bg_sshkey_fingerprint(&fp, &k), 0);
		assert_string_equal(fp, fps[i]);
		char *line;
		assert_int_equal(bg_sshkey_to_line(&line, &k), 0);
		assert_string_equal(line, lines[i]);
		bg_free(line);
		bg_free(fp);
		bg_sshkey_free(&k);
	}
	bg_sshkey k;
	assert_int_equal(bg_sshkey_from_line(&k, "ssh-ed25519"), BANGER_EINVALID);
	assert_int_equal(bg_sshkey_from_line(&k, "ssh-ed25519 AAAA"), BANGER_EINVALID);
	assert_int_equal(bg_sshkey_from_line(&k, "  " KEY_A " comment\n"), 0);
	bg_sshkey_free(&k);
	/* A short RSA modulus is refused, as OpenSSH does (< 1024 bits). */
	assert_int_equal(bg_sshkey_from_line(&k, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAwEAAQ=="), BANGER_EINVALID);
}

static void test_base64(void **state)
{
	(void)state;
	unsigned char *o;
	size_t n;
	assert_int_equal(bg_base64_decode(&o, &n, "aGk=", 4), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(o, "hi", 2);
	bg_free(o);
	assert_int_equal(bg_base64_decode(&o, &n, "aG k=\r", 6), 0);
	bg_free(o);
	assert_int_equal(bg_base64_decode(&o, &n, "aGk", 3), BANGER_EINVALID);   /* no padding */
	assert_int_equal(bg_base64_decode(&o, &n, "aGl=", 4), BANGER_EINVALID);  /* stray bits */
	assert_int_equal(bg_base64_decode(&o, &n, "aGk=x", 5), BANGER_EINVALID); /* data after pad */
	assert_int_equal(bg_base64_decode(&o, &n, "a===", 4), BANGER_EINVALID);
	char *e = bg_base64_encode((const unsigned char *)"hi", 2, false);
	assert_string_equal(e, "aGk");
	bg_free(e);
}

static void test_generate_ed25519(void **state)
{
	(void)state;
	char *priv, *pub;
	assert_int_equal(bg_sshkey_generate_ed25519(&priv, &pub, "unit@test"), 0);
	assert_true(bg_startswith(priv, "-----BEGIN OPENSSH PRIVATE KEY-----\n"));
	assert_true(bg_endswith(priv, "-----END OPENSSH PRIVATE KEY-----\n"));
	assert_true(bg_startswith(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
	assert_true(bg_endswith(pub, " unit@test\n"));
	bg_sshkey a, b;
	assert_int_equal(bg_sshkey_from_line(&a, pub), 0);
	assert_int_equal(bg_sshkey_from_private_openssh(&b, priv), 0);
	assert_true(bg_sshkey_equal(&a, &b));
	bg_sshkey_free(&a);
	bg_sshkey_free(&b);
	/* ssh-keygen itself reads the private key back. */
	char *dir = test_tmpdir();
	char path[4200], cmd[8600];
	snprintf(path, sizeof(path), "%s/id", dir);
	assert_int_equal(bg_write_file_atomic(path, priv, strlen(priv), 0600), 0);
	snprintf(cmd, sizeof(cmd), "ssh-keygen -y -f '%s' > '%s.derived' 2>/dev/null", path, path);
	if (system(cmd) == 0) {
		char *derived;
		snprintf(cmd, sizeof(cmd), "%s.derived", path);
		assert_int_equal(bg_read_file(&derived, NULL, cmd, 4096), 0);
		size_t keylen = strlen(pub) - strlen(" unit@test\n");
		assert_memory_equal(derived, pub, keylen);
		bg_free(derived);
	}
	test_rmrf(dir);
	free(dir);
	bg_free_secret(priv);
	bg_free(pub);
}

/* ---- writer ---- */

static char *pin(const char *text, const char *const *names, size_t n, uint16_t port, const char *keyline,
		 unsigned flags, int want_rc, bool *changed)
{
	bg_sshkey k = key(keyline);
	char *out = NULL;
	size_t len = 0;
	bool ch = false;
	int rc = bg_known_hosts_pin_text(&out, &len, text, strlen(text), names, n, port, &k, flags, &ch);
	assert_int_equal(rc, want_rc);
	bg_sshkey_free(&k);
	if (changed)
		*changed = ch;
	if (!ch) {
		assert_null(out);
		return NULL;
	}
	assert_int_equal(strlen(out), len);
	return out;
}

static void test_pin_text(void **state)
{
	(void)state;
	bool changed;
	const char *vm[] = { "box.vm", "10.0.0.2" };
	char *o = pin("", vm, 2, 22, KEY_A, 0, 0, &changed);
	assert_string_equal(o, "box.vm " KEY_A "\n10.0.0.2 " KEY_A "\n");
	/* Idempotent. */
	assert_null(pin(o, vm, 2, 22, KEY_A, 0, 0, &changed));
	assert_false(changed);
	bg_free(o);
	/* Non-22 port. */
	const char *ip[] = { "10.0.0.2", "[10.0.0.3]:22" };
	o = pin("", ip, 2, 2222, KEY_A, 0, 0, NULL);
	assert_string_equal(o, "[10.0.0.2]:2222 " KEY_A "\n[10.0.0.3]:22 " KEY_A "\n");
	bg_free(o);
	/* Every other line kept byte for byte; final newline added. */
	const char *keep = "# comment\r\n\n@cert-authority *.vm " KEY_B "\r\nodd ssh-foo AAAA\n\tx.vm\t" KEY_C " c\nlast " KEY_B;
	o = pin(keep, vm, 1, 22, KEY_A, 0, 0, NULL);
	char want[2048];
	snprintf(want, sizeof(want), "%s\nbox.vm " KEY_A "\n", keep);
	assert_string_equal(o, want);
	bg_free(o);
	/* Re-pin with another key (a rebuilt VM): the old spelling goes,
	 * other names on the same line stay. */
	o = pin("box.vm,other.vm " KEY_B "\nBOX.VM " KEY_B "\n*.vm " KEY_B "\n", vm, 1, 22, KEY_A, 0, 0, NULL);
	assert_string_equal(o, "other.vm " KEY_B "\n*.vm " KEY_B "\nbox.vm " KEY_A "\n");
	bg_free(o);
	/* Trust on first use refuses to replace. */
	assert_null(pin("box.vm " KEY_B "\n", vm, 1, 22, KEY_A, BG_KH_PIN_IF_NEW, BANGER_ETRUST, &changed));
	assert_non_null(strstr(banger_error_last()->message, "possible MITM"));
	/* ...but adds what is new and skips what matches. */
	o = pin("box.vm " KEY_A "\n", vm, 2, 22, KEY_A, BG_KH_PIN_IF_NEW, 0, NULL);
	assert_string_equal(o, "box.vm " KEY_A "\n10.0.0.2 " KEY_A "\n");
	bg_free(o);
	/* A revoked key is never pinned. */
	assert_null(pin("@revoked * " KEY_A "\n", vm, 1, 22, KEY_A, 0, BANGER_EREVOKED, NULL));
	/* Names that would change the meaning of the file are refused. */
	const char *bad[] = { "a,b" };
	assert_null(pin("", bad, 1, 22, KEY_A, 0, BANGER_EINVALID, NULL));
	const char *bad2[] = { "*.vm" };
	assert_null(pin("", bad2, 1, 22, KEY_A, 0, BANGER_EINVALID, NULL));
}

static char *rm(const char *text, const char *const *names, size_t n, size_t want_removed)
{
	char *out = NULL;
	size_t len = 0, removed = 99;
	assert_int_equal(bg_known_hosts_remove_text(&out, &len, text, strlen(text), names, n, &removed), 0);
	assert_int_equal(removed, want_removed);
	return out;
}

static void test_remove_text(void **state)
{
	(void)state;
	const char *names[] = { "box.vm", "10.0.0.2" };
	/* Every spelling: bare, [x]:port, any case, hashed; lists keep the
	 * other names; wildcards, negations, markers, unknown types and
	 * comments stay. */
	char hashed[256];
	char *h;
	assert_int_equal(bg_kh_hash_name(&h, "box.vm"), 0);
	snprintf(hashed, sizeof(hashed), "%s " KEY_A "\n", h);
	bg_free(h);
	char text[4096];
	snprintf(text, sizeof(text),
		 "# box.vm comment\n"
		 "box.vm " KEY_A "\n"
		 "10.0.0.2 " KEY_A "\r\n"
		 "[10.0.0.2]:2222 " KEY_A "\n"
		 "[BOX.vm]:22 " KEY_A "\n"
		 "a.vm,Box.Vm,b.vm " KEY_A " keep-comment\n"
		 "%s"
		 "*.vm " KEY_A "\n"
		 "*.vm,!box.vm " KEY_B "\n"
		 "@revoked box.vm " KEY_B "\n"
		 "@cert-authority box.vm " KEY_B "\n"
		 "box.vm ssh-foo AAAA\n"
		 "10.0.0.20 " KEY_A "\n"
		 "[10.0.0.2]:x " KEY_A "\n"
		 "other.vm " KEY_A,
		 hashed);
	char *o = rm(text, names, 2, 6);
	assert_string_equal(o,
			    "# box.vm comment\n"
			    "a.vm,b.vm " KEY_A " keep-comment\n"
			    "*.vm " KEY_A "\n"
			    "*.vm,!box.vm " KEY_B "\n"
			    "@revoked box.vm " KEY_B "\n"
			    "@cert-authority box.vm " KEY_B "\n"
			    "box.vm ssh-foo AAAA\n"
			    "10.0.0.20 " KEY_A "\n"
			    "[10.0.0.2]:x " KEY_A "\n"
			    "other.vm " KEY_A "\n");
	bg_free(o);
	/* Nothing to remove: no rewrite. */
	assert_null(rm("other.vm " KEY_A "\n", names, 2, 0));
	/* "[h]:p" removes only that spelling. */
	const char *one[] = { "[10.0.0.2]:2222" };
	o = rm("[10.0.0.2]:2222 " KEY_A "\n10.0.0.2 " KEY_A "\n[10.0.0.2]:22 " KEY_A "\n", one, 1, 1);
	assert_string_equal(o, "10.0.0.2 " KEY_A "\n[10.0.0.2]:22 " KEY_A "\n");
	bg_free(o);
}

/* ---- files, locking, concurrency ---- */

typedef struct {
	const char *path;
	int i;
} pin_arg;

static void *pin_thread(void *p)
{
	pin_arg *a = p;
	char name[64];
	snprintf(name, sizeof(name), "vm%d.vm", a->i);
	const char *names[] = { name };
	bg_sshkey k = key(a->i % 2 ? KEY_A : KEY_C);
	int rc = bg_known_hosts_pin(a->path, names, 1, 22, &k, 0);
	bg_sshkey_free(&k);
	return (void *)(intptr_t)rc;
}

static void test_file_pin_remove_concurrent(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char path[4200];
	snprintf(path, sizeof(path), "%s/known_hosts", dir);
	/* A missing file: not found, and list is empty. */
	bg_sshkey a = key(KEY_A);
	bg_kh_result r;
	assert_int_equal(bg_known_hosts_check(&r, path, "x", 22, &a), 0);
	assert_int_equal(r.verdict, N);
	bg_kh_result_free(&r);
	const char *user = "# mine\r\nkeep.example " KEY_B;
	assert_int_equal(bg_write_file_atomic(path, user, strlen(user), 0644), 0);
	enum { T = 20 };
	pthread_t th[T];
	pin_arg args[T];
	for (int i = 0; i < T; i++) {
		args[i].path = path;
		args[i].i = i;
		assert_int_equal(pthread_create(&th[i], NULL, pin_thread, &args[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_int_equal((intptr_t)ret, 0);
	}
	banger_known_hosts_list *l;
	assert_int_equal(banger_known_hosts_list_load(&l, path), 0);
	assert_int_equal(banger_known_hosts_list_count(l), T + 1);
	assert_string_equal(banger_known_host_hosts(banger_known_hosts_list_get(l, 0)), "keep.example");
	assert_int_equal(banger_known_host_line(banger_known_hosts_list_get(l, 0)), 2);
	banger_known_hosts_list_free(l);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644); /* the user's file keeps its mode */
	char *text;
	assert_int_equal(bg_read_file(&text, NULL, path, 1 << 20), 0);
	assert_true(bg_startswith(text, "# mine\r\nkeep.example " KEY_B "\n"));
	bg_free(text);
	for (int i = 0; i < T; i++) {
		char name[64];
		snprintf(name, sizeof(name), "VM%d.vm", i);
		assert_int_equal(bg_known_hosts_check(&r, path, name, 22, &a), 0);
		assert_int_equal(r.verdict, i % 2 ? M : X);
		bg_kh_result_free(&r);
	}
	const char *names[] = { "vm3.vm", "vm4.vm", "nothere" };
	uint32_t removed;
	assert_int_equal(banger_known_hosts_remove(&removed, path, names, 3), 0);
	assert_int_equal(removed, 2);
	int v;
	assert_int_equal(banger_known_hosts_check_line(&v, path, "vm3.vm", 22, KEY_A), 0);
	assert_int_equal(v, N);
	/* The public pin/check round trip, with a port. */
	const char *p[] = { "127.0.0.1" };
	assert_int_equal(banger_known_hosts_pin(path, p, 1, 2222, KEY_D " comment"), 0);
	assert_int_equal(banger_known_hosts_check_line(&v, path, "127.0.0.1", 2222, KEY_D), 0);
	assert_int_equal(v, M);
	assert_int_equal(banger_known_hosts_check_line(&v, path, "127.0.0.1", 2222, KEY_A), 0);
	assert_int_equal(v, X);
	bg_sshkey_free(&a);
	test_rmrf(dir);
	free(dir);
}

static void test_client_key(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char path[4200];
	snprintf(path, sizeof(path), "%s/id_ed25519", dir);
	char *pub1, *pub2;
	assert_int_equal(bg_client_key_ensure(path, &pub1), 0);
	assert_int_equal(bg_client_key_ensure(path, &pub2), 0);
	assert_string_equal(pub1, pub2); /* generated once */
	assert_true(bg_startswith(pub1, "ssh-ed25519 "));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	chmod(path, 0644);
	assert_int_equal(bg_client_key_ensure(path, NULL), BANGER_EPERM);
	bg_free(pub1);
	bg_free(pub2);
	test_rmrf(dir);
	free(dir);
}

static void test_ssh_config_include(void **state)
{
	(void)state;
	const char *inc = "/state/ssh/ssh_config";
	const char *user = "Host x\n  User y\r\n# no newline";
	char *o;
	size_t n;
	bool changed;
	assert_int_equal(bg_ssh_config_include_text(&o, &n, user, strlen(user), inc, true, &changed), 0);
	assert_true(changed);
	const char *nl = strchr(o, '\n');
	assert_true(bg_startswith(nl + 1, "Include \"/state/ssh/ssh_config\"\n"));
	assert_true(bg_endswith(o, user)); /* every other byte kept */
	char *o2;
	size_t n2;
	assert_int_equal(bg_ssh_config_include_text(&o2, &n2, o, n, inc, true, &changed), 0);
	assert_false(changed); /* idempotent */
	assert_int_equal(bg_ssh_config_include_text(&o2, &n2, o, n, inc, false, &changed), 0);
	assert_true(changed);
	assert_string_equal(o2, user);
	bg_free(o2);
	bg_free(o);
	/* Refused: a relative path. */
	assert_int_equal(bg_ssh_config_include_text(&o, &n, "", 0, "rel/path", true, &changed), BANGER_EINVALID);
}


/* Every allocation failure is reported as BANGER_ENOMEM and leaks nothing
 * (the sanitizer build checks the leaks). */
static void test_allocation_failures(void **state)
{
	(void)state;
	const char *text = "# c\r\nbox.vm,a.vm " KEY_B "\n" HASHED_HOST " " KEY_A "\n@revoked x " KEY_C "\n*.vm " KEY_D;
	const char *names[] = { "box.vm", "host.example" };
	bg_sshkey k = key(KEY_A);
	/* Under failures a verdict is either the true one or ENOMEM, never a
	 * pin silently skipped. */
	int want = verdict(text, strlen(text), "host.example", 22, KEY_B);
	assert_int_equal(want, X);
	for (uint64_t n = 1; n < 400; n++) {
		char *out = NULL;
		size_t len, removed;
		bool changed;
		bg_kh_result r;
		bg_alloc_fail_at(n);
		bg_sshkey kb;
		int rc0 = bg_sshkey_from_line(&kb, KEY_B);
		int rc1 = rc0;
		if (rc0 == 0) {
			rc1 = bg_known_hosts_check_text(&r, text, strlen(text), "host.example", 22, &kb);
			if (rc1 == 0) {
				assert_int_equal(r.verdict, want);
				bg_kh_result_free(&r);
			}
			bg_sshkey_free(&kb);
		}
		bg_alloc_fail_at(n);
		int rc2 = bg_known_hosts_pin_text(&out, &len, text, strlen(text), names, 2, 22, &k, 0, &changed);
		bg_free(out);
		out = NULL;
		bg_alloc_fail_at(n);
		int rc3 = bg_known_hosts_remove_text(&out, &len, text, strlen(text), names, 2, &removed);
		bg_free(out);
		bg_alloc_fail_at(n);
		bg_sshkey k2;
		int rc4 = bg_sshkey_from_line(&k2, KEY_D);
		if (rc4 == 0)
			bg_sshkey_free(&k2);
		bg_alloc_fail_at(0);
		assert_true(rc1 == 0 || rc1 == BANGER_ENOMEM);
		assert_true(rc2 == 0 || rc2 == BANGER_ENOMEM);
		assert_true(rc3 == 0 || rc3 == BANGER_ENOMEM);
		assert_true(rc4 == 0 || rc4 == BANGER_ENOMEM);
	}
	bg_sshkey_free(&k);
}

/* `known-hosts forget --file F` where F is a symlink (a dotfiles repo):
 * the link stays a link, its target is rewritten with its mode and owner,
 * and no F.lock (or anything else) is left beside it. */
static void test_forget_keeps_link_owner_mode(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char real[4200], link[4200];
	snprintf(real, sizeof(real), "%s/real_known_hosts", dir);
	snprintf(link, sizeof(link), "%s/known_hosts", dir);
	const char *text = "keep.example " KEY_A "\ngone.example " KEY_B "\n";
	assert_int_equal(bg_write_file_atomic(real, text, strlen(text), 0644), 0);
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (uid == 0) { /* root (CI): a file that belongs to someone else keeps its owner */
		uid = 4321, gid = 4322;
		assert_int_equal(chown(real, uid, gid), 0);
	}
	assert_int_equal(symlink("real_known_hosts", link), 0);

	uint32_t removed = 0;
	const char *names[] = { "gone.example" };
	assert_int_equal(banger_known_hosts_remove(&removed, link, names, 1), 0);
	assert_int_equal(removed, 1);

	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(stat(real, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
	char *now = NULL;
	assert_int_equal(bg_read_file(&now, NULL, real, 1 << 20), 0);
	assert_string_equal(now, "keep.example " KEY_A "\n");
	bg_free(now);
	/* nothing else in the directory: no F.lock, no temporary file */
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strcmp(e->d_name, "known_hosts") != 0 && strcmp(e->d_name, "real_known_hosts") != 0)
			fail_msg("stray file %s left beside the known_hosts file", e->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 2);

	/* a new file (pin into an absent path) is private: 0600 */
	char fresh[4300];
	snprintf(fresh, sizeof(fresh), "%s/new_known_hosts", dir);
	bg_sshkey a = key(KEY_A);
	const char *pn[] = { "new.example" };
	assert_int_equal(bg_known_hosts_pin(fresh, pn, 1, 22, &a, 0), 0);
	bg_sshkey_free(&a);
	assert_int_equal(stat(fresh, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_table),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_match_list),
		cmocka_unit_test(test_keys_and_fingerprints),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_generate_ed25519),
		cmocka_unit_test(test_pin_text),
		cmocka_unit_test(test_remove_text),
		cmocka_unit_test(test_file_pin_remove_concurrent),
		cmocka_unit_test(test_forget_keeps_link_owner_mode),
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_ssh_config_include),
		cmocka_unit_test(test_allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
