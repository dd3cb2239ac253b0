/* banger known-hosts ...: banger's own known_hosts (never ~/.ssh's). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --file, else banger's (the verbs are CLI_CTX_UNLESS_FILE: without
 * --file the context is open). */
static const char *kh_path(const cli_call *call, const char *file)
{
	return file ? file : banger_ssh_known_hosts_path(call->ctx);
}

/* ---- known-hosts list ---- */
static bool list_json;
static const char *list_file;
static const cli_opt list_opts[] = {
	{ "json", 0, OPT_FLAG, &list_json, "print JSON", NULL },
	{ "file", 'f', OPT_STRING, &list_file, "a known_hosts file instead of banger's", "FILE" },
	{ 0 },
};

static int kh_list(cli_env *env, const cli_call *call)
{
	int rc;
	const char *path = kh_path(call, list_file);
	banger_known_hosts_list *l;
	if ((rc = banger_known_hosts_list_load(&l, path)))
		return cli_fail("known-hosts list", rc);
	size_t n = banger_known_hosts_list_count(l);
	if (list_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			const banger_known_host *e = banger_known_hosts_list_get(l, i);
			printf("%s\n  {\"hosts\": ", i ? "," : "");
			json_str(stdout, banger_known_host_hosts(e));
			printf(", \"key_type\": ");
			json_str(stdout, banger_known_host_key_type(e));
			printf(", \"fingerprint\": ");
			json_str(stdout, banger_known_host_fingerprint(e));
			printf(", \"marker\": ");
			json_str(stdout, *banger_known_host_marker(e) ? banger_known_host_marker(e) : NULL);
			printf(", \"hashed\": %s, \"line\": %u}", banger_known_host_hashed(e) ? "true" : "false",
			       (unsigned)banger_known_host_line(e));
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(4);
		const char *hdr[] = { "HOSTS", "TYPE", "FINGERPRINT", "MARKER" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_known_host *e = banger_known_hosts_list_get(l, i);
			const char *row[] = { banger_known_host_hashed(e) ? "(hashed)" : banger_known_host_hosts(e),
					      banger_known_host_key_type(e), banger_known_host_fingerprint(e),
					      *banger_known_host_marker(e) ? banger_known_host_marker(e) : "-" };
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_known_hosts_list_free(l);
	return EXIT_OK;
}

/* ---- known-hosts forget ---- */
static const char *forget_file;
static const cli_opt forget_opts[] = {
	{ "file", 'f', OPT_STRING, &forget_file, "a known_hosts file instead of banger's", "FILE" },
	{ 0 },
};

static int kh_forget(cli_env *env, const cli_call *call)
{
	const char *const *pos = call->pos;
	int npos = call->npos, rc;
	const char *path = kh_path(call, forget_file);
	int exit_code = EXIT_OK;
	for (int i = 0; i < npos; i++) {
		uint32_t removed = 0;
		if ((rc = banger_known_hosts_remove(&removed, path, &pos[i], 1))) {
			exit_code = cli_fail(pos[i], rc);
			break;
		}
		if (removed)
			printf("%s: forgot %u entr%s\n", pos[i], (unsigned)removed, removed == 1 ? "y" : "ies");
		else
			printf("%s: nothing pinned\n", pos[i]);
	}
	return exit_code;
}

/* ---- known-hosts check ---- */
static const char *check_file, *check_port;
static const cli_opt check_opts[] = {
	{ "file", 'f', OPT_STRING, &check_file, "a known_hosts file instead of banger's", "FILE" },
	{ "port", 'p', OPT_STRING, &check_port, "port the host is reached on (default 22)", "N" },
	{ 0 },
};

static char *read_pubkey(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!f)
		return NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	/* The first line that is neither blank nor a comment. */
	while ((n = getline(&line, &cap, f)) >= 0) {
		const char *p = line + strspn(line, " \t\r\n");
		if (*p && *p != '#')
			break;
	}
	if (f != stdin)
		fclose(f);
	if (n < 0) {
		free(line);
		errno = EINVAL;
		return NULL;
	}
	return line;
}

/* The port and the key line, before the context is opened: kh_check
 * uses and frees the line. */
static uint16_t check_port_num;
static char *check_line;

static int kh_check_input(const cli_call *call)
{
	const char *keyfile = call->pos[1];
	unsigned long port = 22;
	if (check_port) {
		char *end;
		errno = 0;
		port = strtoul(check_port, &end, 10);
		if (errno || *end || port == 0 || port > 65535) {
			fprintf(stderr, "banger known-hosts check: invalid port '%s'\n", check_port);
			return EXIT_USAGE;
		}
	}
	check_port_num = (uint16_t)port;
	if (!(check_line = read_pubkey(keyfile))) {
		fprintf(stderr, "banger known-hosts check: cannot read a public key from %s: %s\n", keyfile,
			strerror(errno));
		return EXIT_FAILURE_;
	}
	return 0;
}

static int kh_check(cli_env *env, const cli_call *call)
{
	const char *host = call->pos[0];
	int verdict;
	int rc = banger_known_hosts_check_line(&verdict, kh_path(call, check_file), host, check_port_num, check_line);
	free(check_line);
	check_line = NULL;
	if (rc == BANGER_EUNSUPPORTED) { /* a certificate: not verified here */
		printf("skip\n");
		return EXIT_UNSUPPORTED;
	}
	if (rc)
		return cli_fail("known-hosts check", rc);
	switch (verdict) {
	case BANGER_HOSTKEY_MATCH: printf("match\n"); return EXIT_OK;
	case BANGER_HOSTKEY_MISMATCH: printf("mismatch\n"); return EXIT_TRUST;
	case BANGER_HOSTKEY_REVOKED: printf("revoked\n"); return EXIT_TRUST;
	default: printf("not-found\n"); return EXIT_NOTFOUND;
	}
}

static const cli_arg forget_args[] = { { "HOST", ARG_SOME, "names as pinned: NAME.vm, an IP, [host]:port" },
				       { 0 } };
static const cli_arg check_args[] = { { "HOST", ARG_ONE, "the name the key is checked for" },
				      { "PUBKEY_FILE", ARG_ONE, "a public key line (a .pub file; - for stdin)" },
				      { 0 } };

/* With --file no state is needed. */
static const cli_cmd kh_subs[] = {
	{ "list", "list the pinned host keys", list_opts, NULL, CLI_CTX_UNLESS_FILE, kh_list, NULL, NULL },
	{ "forget", "remove every pin of the hosts (name, [name]:port, hashed)", forget_opts, forget_args,
	  CLI_CTX_UNLESS_FILE, kh_forget, NULL, NULL },
	{ "check",
	  "check a host key: match, mismatch, not-found, revoked or skip\n"
	  "Prints match, mismatch, not-found or revoked (skip for certificates) for HOST's key;\n"
	  "exit 0 match, 3 not-found, 4 mismatch/revoked, 5 skip",
	  check_opts, check_args, CLI_CTX_UNLESS_FILE, kh_check, NULL, kh_check_input },
	{ 0 },
};

const cli_cmd cli_known_hosts_cmd = { "known-hosts", "banger's pinned guest host keys (OpenSSH format)", NULL, NULL,
				      0, NULL, kh_subs, NULL };
