/*
 * Private declarations of the host side of the vsock agent
 * (agent_client.c).  The agent itself is guest/agent/banger-vsock-agent.c;
 * the protocol is docs/vsock-agent.md, its constants
 * guest/include/banger-guest/agent.h.
 *
 * What the VM lifecycle calls:
 *   - bg_agent_image_has()  does the image carry the agent?
 *   - bg_agent_ready()      the agent's readiness report (systemd, sshd);
 *   - bg_agent_poweroff()   a graceful stop where the VMM has none.
 * What the image patch step calls:
 *   - bg_agent_host_files() where the agent and its unit are on the host.
 */
#ifndef BG_GUEST_AGENT_H
#define BG_GUEST_AGENT_H

#include "../core/core.h"
/* The agent's contract: port, protocol, commands, replies, where it is in
 * images (BG_AGENT_GUEST_BIN, BG_AGENT_GUEST_UNIT) and its file names
 * (BG_AGENT_NAME, BG_AGENT_UNIT_NAME: on the host too). */
#include "../../guest/include/banger-guest/agent.h"

#define BG_AGENT_LINE_MAX 256        /* longest reply line we accept */

/* How to reach a VM's agent: Firecracker's hybrid vsock (uds_path set)
 * or AF_VSOCK to a CID (QEMU with vhost-vsock; uds_path NULL). */
typedef struct {
	const char *uds_path;
	uint32_t cid;
	uint32_t port;               /* 0: BG_AGENT_PORT */
} bg_agent_addr;

/* What READY said. */
typedef struct {
	char systemd[32];            /* "running", "starting", "degraded", "absent", ... */
	bool sshd_listening;
} bg_agent_report;

/* Send one command line (no newline; printable ASCII, at most 64 bytes)
 * on a connected stream and read one reply line, both within timeout_ms.
 * Writes use MSG_NOSIGNAL.  0: *reply (bg_free) is the line without its
 * newline, whatever it says ("OK ...", "PONG", "ERR ...").  Errors:
 * BANGER_ETIMEOUT (no complete reply in time), BANGER_EIO (the peer
 * closed or reset), BANGER_EVMM (an over-long or NUL-carrying reply),
 * BANGER_EINVALID (a bad command).  Reads byte by byte: nothing after
 * the reply's newline is consumed. */
int bg_agent_request(char **reply, int fd, const char *cmd, int timeout_ms);

/* Connect to the agent (retrying while the guest does not listen yet,
 * see bg_vsock_connect_hybrid / bg_vsock_connect_cid) within timeout_ms.
 * *fd: a blocking, close-on-exec stream. */
int bg_agent_connect(int *fd, const bg_agent_addr *addr, int timeout_ms);

/* Parse "OK systemd=<state> sshd=<listening|not-listening>" (unknown
 * key=value words are ignored).  BANGER_EVMM naming the problem. */
int bg_agent_parse_ready(bg_agent_report *out, const char *line);

/* Connect, check VERSION (protocol >= 1), ask READY; all within
 * timeout_ms. */
int bg_agent_ready(bg_agent_report *out, const bg_agent_addr *addr, int timeout_ms);

/* Ask the guest to power off ("POWEROFF" -> "OK").  The VM goes down
 * afterwards; the caller waits for the VMM to exit. */
int bg_agent_poweroff(const bg_agent_addr *addr, int timeout_ms);

/* Does the ext4 image at rootfs_path contain the agent at
 * BG_AGENT_GUEST_BIN?  false for anything unreadable (not an error). */
bool bg_agent_image_has(const char *rootfs_path);

/* The agent binary and its unit on the host (bg_free each), both from
 * one place, by the rule of bg_guest_files (layout.h).  BANGER_ENOTFOUND
 * naming the places looked at when none has both. */
int bg_agent_host_files(char **agent, char **unit);

#endif
