#!/usr/bin/env python3
"""Drive `banger session attach` from pseudo-terminals, as a person at a
terminal would: keystrokes in, screen output read back, window resized,
detach keys typed.

    pty_attach.py single BANGER ID   input, output, initial size, resize, detach
    pty_attach.py two BANGER ID      two attachers see the same output
    pty_attach.py replay BANGER ID   --from 0 replays earlier output
    pty_attach.py end BANGER ID      the command ends while attached
    pty_attach.py kill BANGER ID     the attach process is killed (session lives)
    pty_attach.py pipe BANGER ID     no terminal: stdin and stdout are pipes
"""
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

TIMEOUT = 30


class Term:
    def __init__(self, argv, rows, cols):
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvp(argv[0], argv)
        self.pid, self.fd, self.buf, self.status = pid, fd, b"", None

    def pump(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        self.buf += data
        return bool(data)

    def expect(self, pattern, timeout=TIMEOUT):
        if isinstance(pattern, str):
            pattern = pattern.encode()
        deadline = time.time() + timeout
        while pattern not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; have %r" % (pattern, self.buf[-400:]))
            if not self.pump(left):
                raise AssertionError("EOF waiting for %r; have %r" % (pattern, self.buf[-400:]))
        self.buf = self.buf[self.buf.index(pattern) + len(pattern):]

    def send(self, data):
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def resize(self, rows, cols):
        # The kernel sends SIGWINCH to the terminal's foreground group: the CLI.
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def wait(self, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self.pump(0.1):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
            self.pump(0.1)
        raise AssertionError("attach did not exit; have %r" % self.buf[-400:])


# Words run before the CLI, e.g. "ip netns exec NS" (the end-to-end test).
WRAP = os.environ.get("BANGER_ATTACH_WRAP", "").split()


def attach(banger, sid, rows=30, cols=100, extra=()):
    t = Term([*WRAP, banger, "session", "attach", sid, *extra], rows, cols)
    t.expect("[attached to session")
    return t


def sync(a, others, tag):
    """Type into a until every other attacher sees the echo: then all
    are attached at the supervisor."""
    for n in range(200):
        word = "%s-%d" % (tag, n)
        a.send(word + "\r")
        a.expect("got:" + word)
        seen = True
        for o in others:
            try:
                o.expect("got:" + word, timeout=0.5)
            except AssertionError:
                seen = False
        if seen:
            return
    raise AssertionError("the other attachers never saw input")


def main():
    mode, banger, sid = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "single":
        t = attach(banger, sid)
        t.send("hello\r")
        t.expect("got:hello")
        t.send("size\r")
        t.expect("30 100")          # the size at attach
        t.resize(40, 120)
        time.sleep(0.5)
        t.send("size\r")
        t.expect("40 120")          # SIGWINCH passed on
        t.send("\x1d")              # the first detach key alone sends nothing yet...
        t.send("x")                 # ...and a different key sends both
        t.send("\r")
        t.expect("got:\x1dx")
        t.send("\x1dd")
        t.expect("[detached from session %s]" % sid)
        rc = t.wait()
        assert rc == 0, "detach exit %d" % rc
    elif mode == "two":
        a = attach(banger, sid)
        b = attach(banger, sid)
        sync(a, [b], "sync")
        a.send("from-a\r")
        a.expect("got:from-a")
        b.expect("got:from-a")
        b.send("from-b\r")
        b.expect("got:from-b")
        a.expect("got:from-b")
        a.send("\x1dd")
        a.expect("[detached")
        assert a.wait() == 0
        b.send("after-a-left\r")    # b is still attached and served
        b.expect("got:after-a-left")
        b.send("\x1dd")
        assert b.wait() == 0
    elif mode == "replay":
        t = attach(banger, sid, extra=("--from", "0"))
        t.expect("started")         # the first line the command ever printed
        t.expect("got:hello")
        t.send("\x1dd")
        assert t.wait() == 0
    elif mode == "end":
        t = attach(banger, sid)
        t.send("quit\r")
        t.expect("exited(5)]")
        rc = t.wait()
        assert rc == 5, "exit %d" % rc
    elif mode == "kill":
        t = attach(banger, sid)
        t.send("before-kill\r")
        t.expect("got:before-kill")
        os.kill(t.pid, signal.SIGKILL)
        t.wait()
    elif mode == "pipe":
        p = subprocess.Popen([banger, "session", "attach", sid], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        got = b""
        for n in range(200):
            p.stdin.write(b"ping-%d\n" % n)
            p.stdin.flush()
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                got += os.read(p.stdout.fileno(), 65536)
            if b"echo:ping" in got:
                break
        p.stdin.write(b"last\n")
        p.stdin.flush()
        deadline = time.time() + TIMEOUT
        while b"echo:last" not in got and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                got += os.read(p.stdout.fileno(), 65536)
        assert b"echo:last" in got, got[-400:]
        p.stdin.close()             # end of input: the attach ends, the session does not
        rc = p.wait(TIMEOUT)
        assert rc == 0, "exit %d" % rc
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
