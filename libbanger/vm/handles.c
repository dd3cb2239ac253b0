/* VMHandles: the scratch file and the in-memory cache.  The scratch file
 * is a hint for cleanup, never the truth about liveness: /proc is. */
#include "vm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define HANDLES_MAX_BYTES (64 * 1024)

static int put_str(json_t *o, const char *key, const char *v)
{
	if (!v || !*v)
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

int bg_handles_write(const char *path, const bg_vm_handles *h)
{
	json_t *o = json_object();
	if (!o)
		return bg_error_oom();
	int bad = json_object_set_new(o, "version", json_integer(1));
	bad |= json_object_set_new(o, "pid", json_integer(h->pid));
	bad |= put_str(o, "tap", h->tap);
	bad |= put_str(o, "base_loop", h->base_loop);
	bad |= put_str(o, "cow_loop", h->cow_loop);
	bad |= put_str(o, "dm_name", h->dm_name);
	bad |= put_str(o, "dm_device", h->dm_dev);
	bad |= put_str(o, "overlay", h->overlay);
	bad |= json_object_set_new(o, "nat", json_boolean(h->nat));
	char *text = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return bg_error_oom();
	size_t len = strlen(text);
	int rc = bg_write_file_atomic(path, text, len, 0600);
	free(text);
	return rc;
}

static int copy_field(char *dst, size_t cap, json_t *o, const char *key, const char *origin)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s)
		return bg_error(BANGER_EINVALID, "%s: \"%s\" is not a string", origin, key);
	if (strlen(s) >= cap)
		return bg_error(BANGER_EINVALID, "%s: \"%s\" is too long", origin, key);
	if (strchr(s, '\n') || (s[0] && s[0] != '/' && strcmp(key, "tap") != 0 &&
				 strcmp(key, "dm_name") != 0 && strcmp(key, "overlay") != 0))
		return bg_error(BANGER_EINVALID, "%s: \"%s\" has an invalid value", origin, key);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int bg_handles_parse(const char *text, size_t len, bg_vm_handles *h)
{
	memset(h, 0, sizeof(*h));
	json_error_t err;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		return bg_error(BANGER_EINVALID, "handles.json is corrupt: %s (line %d)", err.text, err.line);
	int rc = 0;
	if (!json_is_object(o)) {
		rc = bg_error(BANGER_EINVALID, "handles.json is corrupt: not a JSON object");
		goto out;
	}
	json_t *ver = json_object_get(o, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		rc = bg_error(BANGER_EINVALID, "handles.json has an unknown version");
		goto out;
	}
	json_t *pid = json_object_get(o, "pid");
	if (pid && (!json_is_integer(pid) || json_integer_value(pid) < 0 ||
		    json_integer_value(pid) > 0x7fffffff)) {
		rc = bg_error(BANGER_EINVALID, "handles.json: \"pid\" is not a valid pid");
		goto out;
	}
	h->pid = pid ? (pid_t)json_integer_value(pid) : 0;
	const char *origin = "handles.json";
	if ((rc = copy_field(h->tap, sizeof(h->tap), o, "tap", origin)) ||
	    (rc = copy_field(h->base_loop, sizeof(h->base_loop), o, "base_loop", origin)) ||
	    (rc = copy_field(h->cow_loop, sizeof(h->cow_loop), o, "cow_loop", origin)) ||
	    (rc = copy_field(h->dm_name, sizeof(h->dm_name), o, "dm_name", origin)) ||
	    (rc = copy_field(h->dm_dev, sizeof(h->dm_dev), o, "dm_device", origin)) ||
	    (rc = copy_field(h->overlay, sizeof(h->overlay), o, "overlay", origin)))
		goto out;
	json_t *nat = json_object_get(o, "nat");
	if (nat && !json_is_boolean(nat)) {
		rc = bg_error(BANGER_EINVALID, "handles.json: \"nat\" is not a boolean");
		goto out;
	}
	h->nat = json_is_true(nat); /* NULL-safe: absent is false */
out:
	json_decref(o);
	if (rc)
		memset(h, 0, sizeof(*h));
	return rc;
}

int bg_handles_read(const char *path, bg_vm_handles *h)
{
	memset(h, 0, sizeof(*h));
	char *text = NULL;
	size_t len = 0;
	int rc = bg_read_file(&text, &len, path, HANDLES_MAX_BYTES);
	if (rc)
		return rc;
	rc = bg_handles_parse(text, len, h);
	bg_free(text);
	return rc;
}

typedef struct {
	char id[9];
	bg_vm_handles h;
} cache_entry;

/* The only state of a context that other threads may touch (reconcile
 * workers, stats): guarded by mu. */
struct bg_vm_cache {
	pthread_mutex_t mu;
	cache_entry *v;
	size_t n;
};

struct bg_vm_cache *bg_vm_cache_new(void)
{
	struct bg_vm_cache *c = bg_calloc(1, sizeof(*c));
	if (c)
		pthread_mutex_init(&c->mu, NULL);
	return c;
}

void bg_vm_cache_free(struct bg_vm_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	bg_free(c->v);
	bg_free(c);
}

size_t bg_vm_cache_count(banger_ctx *ctx)
{
	struct bg_vm_cache *c = ctx->vms;
	pthread_mutex_lock(&c->mu);
	size_t n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}

bool bg_handles_cache_get(banger_ctx *ctx, const char *id, bg_vm_handles *out)
{
	bool found = false;
	struct bg_vm_cache *c = ctx->vms;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].id, id) == 0) {
			*out = c->v[i].h;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

int bg_handles_cache_put(banger_ctx *ctx, const char *id, const bg_vm_handles *h)
{
	int rc = 0;
	struct bg_vm_cache *c = ctx->vms;
	pthread_mutex_lock(&c->mu);
	size_t i = 0;
	for (; i < c->n; i++)
		if (strcmp(c->v[i].id, id) == 0)
			break;
	if (i == c->n) {
		cache_entry *n = bg_realloc(c->v, (i + 1) * sizeof(*n));
		if (!n) {
			rc = bg_error_oom();
			goto out;
		}
		c->v = n;
		c->n++;
		snprintf(n[i].id, sizeof(n[i].id), "%s", id);
	}
	c->v[i].h = *h;
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void bg_handles_cache_drop(banger_ctx *ctx, const char *id)
{
	struct bg_vm_cache *c = ctx->vms;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].id, id) == 0) {
			c->v[i] = c->v[--c->n];
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

int bg_handles_save(banger_ctx *ctx, const bg_vm_record *vm, const bg_vm_handles *h)
{
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	rc = bg_handles_write(p.handles, h);
	bg_vm_paths_free(&p);
	if (rc == 0)
		rc = bg_handles_cache_put(ctx, vm->id, h);
	return rc;
}
