#!/usr/bin/env python3
"""A small HTTP server for the kernel integration tests, standard library only.

Serves files under --root on 127.0.0.1 (port chosen by the kernel, written to
--port-file once listening), plus a few misbehaving routes:

  /redirect/<path>      302 to /<path>
  /redirect2/<path>     302 to /redirect/<path> (a chain)
  /truncate/<path>      the real Content-Length, then half the body, then close
  /slow/<path>          sends the body in small pieces with pauses (progress)
  anything else         the file, or 404

Every request line is appended to --log (one per line) so tests can check
what was fetched.
"""
import argparse
import http.server
import os
import socketserver
import sys
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    log_path = None

    def log_message(self, fmt, *args):
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write("%s %s\n" % (self.command, self.path))

    def _file(self, rel):
        root = os.path.realpath(self.directory)
        p = os.path.realpath(os.path.join(root, rel.lstrip("/")))
        if not p.startswith(root + os.sep) or not os.path.isfile(p):
            return None
        return p

    def _redirect(self, to):
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/redirect2/"):
            return self._redirect("/redirect/" + path[len("/redirect2/"):])
        if path.startswith("/redirect/"):
            return self._redirect("/" + path[len("/redirect/"):])
        for prefix in ("/truncate/", "/slow/"):
            if path.startswith(prefix):
                f = self._file(path[len(prefix):])
                if not f:
                    return self.send_error(404)
                with open(f, "rb") as fh:
                    body = fh.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if prefix == "/truncate/":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                step = max(1, len(body) // 8)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.05)
                return
        return super().do_GET()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    Handler.log_path = a.log

    def handler(*args, **kwargs):
        return Handler(*args, directory=a.root, **kwargs)

    srv = Server(("127.0.0.1", 0), handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
