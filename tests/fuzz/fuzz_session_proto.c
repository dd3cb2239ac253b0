/* The session attach protocol (guest/include/banger-guest/session.h): frames of
 * type + 32-bit length + payload, read by the guest helper from the host
 * and by libbanger from the guest, and the helper's status file.
 *
 * The input is a byte stream split into frames the way both ends do.
 * Checked: a frame that parses lies inside the buffer, has a known type
 * and at most SP_MAX_PAYLOAD bytes; re-encoding it gives the same bytes;
 * a byte stream is consumed frame by frame until an error or a partial
 * frame, never past its end; a status that parses is "exit N" or
 * "signal N" with N <= 255 and prints back the same. */
#include "fuzz.h"
#include "../../guest/include/banger-guest/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	unsigned frames = 0;
	while (off < size) {
		sp_frame f;
		size_t used = 0;
		int r = sp_parse(data + off, size - off, &f, &used);
		if (r <= 0)
			break;
		frames++;
		FUZZ_CHECK(used >= SP_HEADER && used <= size - off);
		FUZZ_CHECK(f.len == used - SP_HEADER && f.len <= SP_MAX_PAYLOAD);
		FUZZ_CHECK(sp_known_type(f.type));
		FUZZ_CHECK(f.payload == data + off + SP_HEADER);
		if (sp_valid(&f)) {
			unsigned char *out = malloc(SP_HEADER + (size_t)f.len + 16);
			FUZZ_CHECK(out);
			size_t n = 0;
			switch (f.type) {
			case SP_HELLO:
				n = sp_encode_hello(out, (int64_t)sp_get_u64(f.payload + 4));
				/* the version field is not carried by the encoder's input */
				FUZZ_CHECK(n == used && memcmp(out + SP_HEADER + 4, f.payload + 4, 8) == 0);
				n = 0;
				break;
			case SP_WINSIZE:
				n = sp_encode_winsize(out, sp_get_u16(f.payload), sp_get_u16(f.payload + 2));
				break;
			case SP_SIGNAL:
				n = sp_encode_signal(out, sp_get_u32(f.payload));
				break;
			case SP_OUTPUT:
				n = sp_encode_output(out, sp_get_u64(f.payload), f.payload + 8, f.len - 8);
				break;
			default:
				n = sp_encode_bytes(out, f.type, f.payload, f.len);
				break;
			}
			if (n)
				FUZZ_CHECK(n == used && memcmp(out, data + off, used) == 0);
			free(out);
		}
		off += used;
	}
	FUZZ_CHECK(off <= size);

	char kind = 0;
	int code = -1;
	if (sp_parse_status((const char *)data, size, &kind, &code)) {
		FUZZ_CHECK((kind == 'e' || kind == 's') && code >= 0 && code <= 255);
		char back[32];
		int n = snprintf(back, sizeof(back), "%s %d", kind == 'e' ? "exit" : "signal", code);
		char k2 = 0;
		int c2 = -1;
		FUZZ_CHECK(sp_parse_status(back, (size_t)n, &k2, &c2) && k2 == kind && c2 == code);
	}
	return 0;
}
