/* What Firecracker sends back: error bodies (fault_message) and the
 * metrics file banger tails for `vm stats`.
 *
 * The input is an HTTP error body and, as a file, a metrics log.
 * Checked: a fault message is a string of the body; the metrics line
 * found is one complete line of the file, is a JSON object, and holds no
 * newline. */
#include "fuzz.h"
#include "../../libbanger/vmm/vmm.h"

#include <jansson.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_cstr(data, size);
	char *fm = bg_fc_fault_message(body);
	bg_free(fm);
	free(body);

	int fd = memfd_create("fuzz-metrics", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *line = NULL;
	int rc = bg_fc_metrics_last_line(&line, path);
	if (rc == 0) {
		size_t n = strlen(line);
		FUZZ_CHECK(n > 0 && strchr(line, '\n') == NULL);
		/* a whole line of the file: preceded by a newline or the start,
		 * followed by a newline */
		const uint8_t *at = NULL;
		for (const uint8_t *p = data; p + n < data + size; p++) {
			p = memchr(p, line[0], (size_t)(data + size - p));
			if (!p || p + n >= data + size)
				break;
			if (memcmp(p, line, n) == 0 && p[n] == '\n' && (p == data || p[-1] == '\n'))
				at = p;
		}
		FUZZ_CHECK(at != NULL);
		json_t *j = json_loads(line, 0, NULL);
		FUZZ_CHECK(json_is_object(j));
		json_decref(j);
		bg_free(line);
	} else {
		FUZZ_CHECK(line == NULL);
	}
	close(fd);
	return 0;
}
