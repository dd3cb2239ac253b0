/*
 * The contract of banger-vsock-agent, the guest's readiness and power
 * agent: shared by the agent (guest/agent/banger-vsock-agent.c) and the
 * host library (libbanger/guest/agent.h, agent_client.c).  libc only, so
 * the agent still links statically.  The protocol is docs/vsock-agent.md.
 *
 * One request line (at most BG_AGENT_REQUEST_MAX bytes with its newline)
 * on vsock port BG_AGENT_PORT, one reply line:
 *   VERSION   ->  OK banger-vsock-agent <BG_AGENT_PROTOCOL>
 *   PING      ->  PONG
 *   READY     ->  OK systemd=<state> sshd=<listening|not-listening>
 *   POWEROFF  ->  OK, then the guest powers off
 *   otherwise ->  ERR <reason>
 */
#ifndef BANGER_GUEST_AGENT_H
#define BANGER_GUEST_AGENT_H

#define BG_AGENT_NAME "banger-vsock-agent"
#define BG_AGENT_PORT 52
#define BG_AGENT_PROTOCOL 1
#define BG_AGENT_REQUEST_MAX 128 /* one request line, newline included */

#define BG_AGENT_CMD_VERSION "VERSION"
#define BG_AGENT_CMD_PING "PING"
#define BG_AGENT_CMD_READY "READY"
#define BG_AGENT_CMD_POWEROFF "POWEROFF"

#define BG_AGENT_OK "OK"
#define BG_AGENT_PONG "PONG"
#define BG_AGENT_ERR "ERR"
/* VERSION's answer up to the protocol number. */
#define BG_AGENT_VERSION_PREFIX BG_AGENT_OK " " BG_AGENT_NAME " "
/* READY's answer: "OK " then key=value words. */
#define BG_AGENT_KEY_SYSTEMD "systemd"
#define BG_AGENT_KEY_SSHD "sshd"
#define BG_AGENT_SSHD_LISTENING "listening"
#define BG_AGENT_SSHD_NOT_LISTENING "not-listening"

/* Where the agent and its unit are in images (the unit's ExecStart names
 * BG_AGENT_GUEST_BIN; unit.test_guest_contract checks it). */
#define BG_AGENT_GUEST_DIR "/usr/local/libexec"
#define BG_AGENT_GUEST_BIN BG_AGENT_GUEST_DIR "/" BG_AGENT_NAME
#define BG_AGENT_UNIT_NAME BG_AGENT_NAME ".service"
#define BG_AGENT_GUEST_UNIT "/etc/systemd/system/" BG_AGENT_UNIT_NAME

#endif
