/* NAT for --nat VMs through nftables: one banger-owned table per state
 * root, rules tagged with the VM id; adding and removing one VM's rules
 * is a single nft transaction, so it is atomic. */
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFT_TIMEOUT_MS 15000
#define TAG_PREFIX "banger-vm:"

void bg_nat_table_name(char out[32], const char *instance)
{
	snprintf(out, 32, "banger_%s", instance);
}

/* Run "nft -f <file>" with the batch text. */
static int nft_batch(const char *batch)
{
	char path[] = "/tmp/banger-nft-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "create nft batch file");
	size_t len = strlen(batch);
	bool ok = write(fd, batch, len) == (ssize_t)len;
	close(fd);
	int rc;
	if (!ok) {
		rc = bg_error_os(BANGER_EIO, errno, "write nft batch");
	} else {
		const char *argv[] = { "nft", "-f", path, NULL };
		rc = bg_run_checked(argv, NFT_TIMEOUT_MS);
		if (rc)
			bg_error_prefix("nftables");
	}
	unlink(path);
	return rc;
}

static int enable_forwarding(void)
{
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(BANGER_EPERM, errno, "open /proc/sys/net/ipv4/ip_forward");
	bool ok = write(fd, "1\n", 2) == 2;
	int e = errno;
	close(fd);
	return ok ? 0 : bg_error_os(BANGER_EIO, e, "enable IPv4 forwarding");
}

typedef struct {
	char *chain;
	long handle;
	char id[16];
} nat_rule;

/* Rules in our table that carry a banger tag (optionally one VM's). */
static int list_rules(const char *table, const char *only_id, nat_rule **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	const char *argv[] = { "nft", "-j", "list", "table", "ip", table, NULL };
	int status;
	char *json = NULL, *err = NULL;
	int rc = bg_run(&status, &json, &err, argv, NFT_TIMEOUT_MS);
	if (rc)
		return rc;
	if (status != 0) {
		/* No table yet: no rules. */
		bool missing = err && (strstr(err, "No such file") || strstr(err, "does not exist"));
		rc = missing ? 0 : bg_error(BANGER_EIO, "nft list table %s failed: %s", table, err ? err : "");
		bg_free(json);
		bg_free(err);
		return rc;
	}
	bg_free(err);
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	bg_free(json);
	if (!root)
		return bg_error(BANGER_EIO, "cannot parse nft's JSON output: %s", jerr.text);
	json_t *items = json_object_get(root, "nftables");
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item) {
		json_t *rule = json_object_get(item, "rule");
		if (!rule)
			continue;
		const char *comment = json_string_value(json_object_get(rule, "comment"));
		const char *chain = json_string_value(json_object_get(rule, "chain"));
		json_int_t handle = json_integer_value(json_object_get(rule, "handle"));
		if (!comment || !chain || !bg_startswith(comment, TAG_PREFIX))
			continue;
		const char *id = comment + strlen(TAG_PREFIX);
		if (only_id && strcmp(id, only_id) != 0)
			continue;
		nat_rule *nv = bg_realloc(*out, (*count + 1) * sizeof(*nv));
		if (!nv) {
			rc = bg_error_oom();
			break;
		}
		*out = nv;
		nat_rule *r = &nv[*count];
		r->chain = bg_strdup(chain);
		r->handle = (long)handle;
		snprintf(r->id, sizeof(r->id), "%s", id);
		if (!r->chain) {
			rc = bg_error_oom();
			break;
		}
		(*count)++;
	}
	json_decref(root);
	if (rc) {
		for (size_t k = 0; k < *count; k++)
			bg_free((*out)[k].chain);
		bg_free(*out);
		*out = NULL;
		*count = 0;
	}
	return rc;
}

static void free_rules(nat_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bg_free(r[i].chain);
	bg_free(r);
}

static int append_deletes(bg_buf *b, const char *table, const nat_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bg_buf_printf(b, "delete rule ip %s %s handle %ld\n", table, r[i].chain, r[i].handle);
	return b->oom ? bg_error_oom() : 0;
}

int bg_nat_add(const char *table, const char *vm_id, const char *tap, const char *guest_ip)
{
	int rc = enable_forwarding();
	if (rc)
		return rc;
	nat_rule *old;
	size_t n;
	/* Create the table and chains first so the listing below works. */
	bg_buf b = BG_BUF_INIT;
	bg_buf_printf(&b,
		"add table ip %s\n"
		"add chain ip %s postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
		"add chain ip %s forward { type filter hook forward priority filter; policy accept; }\n",
		table, table, table);
	if (b.oom)
		return bg_error_oom();
	if ((rc = nft_batch(b.data))) {
		bg_buf_free(&b);
		return rc;
	}
	bg_buf_free(&b);
	if ((rc = list_rules(table, vm_id, &old, &n)))
		return rc;
	/* Replace whatever this VM had, in one transaction. */
	append_deletes(&b, table, old, n);
	bg_buf_printf(&b,
		"add rule ip %s postrouting ip saddr %s oifname != \"%s\" masquerade comment \"" TAG_PREFIX "%s\"\n"
		"add rule ip %s forward iifname \"%s\" accept comment \"" TAG_PREFIX "%s\"\n"
		"add rule ip %s forward oifname \"%s\" ct state established,related accept comment \"" TAG_PREFIX "%s\"\n",
		table, guest_ip, tap, vm_id, table, tap, vm_id, table, tap, vm_id);
	free_rules(old, n);
	rc = b.oom ? bg_error_oom() : nft_batch(b.data);
	bg_buf_free(&b);
	return rc;
}

int bg_nat_remove(const char *table, const char *vm_id)
{
	nat_rule *old;
	size_t n;
	int rc = list_rules(table, vm_id, &old, &n);
	if (rc || n == 0) {
		free_rules(old, n);
		return rc;
	}
	bg_buf b = BG_BUF_INIT;
	append_deletes(&b, table, old, n);
	free_rules(old, n);
	rc = b.oom ? bg_error_oom() : nft_batch(b.data);
	bg_buf_free(&b);
	return rc;
}

int bg_nat_list(const char *table, char ***ids, size_t *count)
{
	*ids = NULL;
	*count = 0;
	nat_rule *r;
	size_t n;
	int rc = list_rules(table, NULL, &r, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		bool seen = false;
		for (size_t k = 0; k < *count; k++)
			if (strcmp((*ids)[k], r[i].id) == 0)
				seen = true;
		if (seen)
			continue;
		char **nv = bg_realloc(*ids, (*count + 1) * sizeof(char *));
		char *dup = bg_strdup(r[i].id);
		if (!nv || !dup) {
			if (nv)
				*ids = nv;
			bg_free(dup);
			rc = bg_error_oom();
			break;
		}
		*ids = nv;
		(*ids)[(*count)++] = dup;
	}
	free_rules(r, n);
	if (rc) {
		bg_strv_free(*ids, *count);
		*ids = NULL;
		*count = 0;
	}
	return rc;
}
