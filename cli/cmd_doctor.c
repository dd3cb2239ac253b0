/* banger doctor: what this host can and cannot do, with fixes. */
#include "cli.h"

#include <stdlib.h>

static bool json;
static const cli_opt opts[] = {
	{ "json", 0, OPT_FLAG, &json, "print JSON", NULL },
	{ 0 },
};

typedef struct {
	bool first;
	int missing;
} doctor_state;

static int print_check(const banger_host_finding *c, void *payload)
{
	doctor_state *s = payload;
	static const char *tags[] = { "ok", "warn", "missing" };
	const char *tag = c->status >= 0 && c->status < 3 ? tags[c->status] : "?";
	if (c->status == BANGER_HOST_CHECK_MISSING)
		s->missing++;
	if (json) {
		printf("%s\n  {\"name\": ", s->first ? "" : ",");
		json_str(stdout, c->name);
		printf(", \"status\": \"%s\", \"detail\": ", tag);
		json_str(stdout, c->detail);
		printf(", \"fix\": ");
		json_str(stdout, c->fix);
		printf("}");
	} else {
		printf("%-8s %-14s %s\n", tag, c->name, c->detail);
		if (c->fix)
			printf("%-8s %-14s fix: %s\n", "", "", c->fix);
	}
	s->first = false;
	return 0;
}

static int run(cli_env *env, const cli_call *call)
{
	int rc;
	doctor_state s = { true, 0 };
	if (json)
		printf("[");
	rc = banger_host_check(call->ctx, print_check, &s);
	if (json)
		printf("\n]\n");
	if (rc)
		return cli_fail("doctor", rc);
	return s.missing ? EXIT_UNSUPPORTED : EXIT_OK;
}

/* The state directory is checked when it can be opened; doctor still
 * reports the host when it cannot. */
const cli_cmd cli_doctor_cmd = {
	"doctor", "check this host: KVM, VMMs, device-mapper, tun, loop, nft, permissions",
	opts, NULL, CLI_CTX_OPTIONAL, run, NULL, NULL,
};
