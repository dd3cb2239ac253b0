#!/usr/bin/env python3
"""A forward HTTP proxy stand-in for banger's proxy tests, standard library only.

    proxy_standin.py --port-file F --log L --route PREFIX=HOST:PORT [--route ...]

Listens on 127.0.0.1 (a port the kernel picks, written to F once
listening).  A client that uses it as its proxy sends absolute request
lines ("GET http://192.0.2.1/v2/ HTTP/1.1"); each one is appended to L as
it arrived, and the request is answered by forwarding its path to the
upstream of the longest matching PREFIX on loopback.  So a test can name
a host that is not this machine (192.0.2.1, TEST-NET-1) and still get real
answers, and nothing ever leaves loopback, whatever the client does.
A request line that is not absolute (the client came here directly,
not as to a proxy) is logged too and answered 400.
"""
import argparse
import http.client
import http.server
import os
import socketserver
import sys
import threading
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
       "te", "trailer", "transfer-encoding", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = []
    log_path = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def _record(self):
        with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(self.requestline + "\n")

    def _forward(self):
        self._record()
        u = urlsplit(self.path)
        if u.scheme != "http" or not u.netloc:
            self.send_error(400, "not a proxy request")
            return
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        upstream = next((up for prefix, up in self.routes if path.startswith(prefix)), None)
        if not upstream:
            self.send_error(502, "no route")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = u.netloc  # the upstream sees the name the client asked for
        c = http.client.HTTPConnection(upstream, timeout=60)
        try:
            c.request(self.command, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
        except OSError as e:
            self.send_error(502, str(e))
            return
        finally:
            c.close()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def do_CONNECT(self):
        self._record()
        self.send_error(405, "no tunnels here")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--route", action="append", default=[])
    a = ap.parse_args()
    routes = []
    for r in a.route:
        prefix, _, up = r.partition("=")
        routes.append((prefix, up))
    Handler.routes = sorted(routes, key=lambda r: -len(r[0]))
    Handler.log_path = a.log
    open(a.log, "a", encoding="utf-8").close()
    srv = Server(("127.0.0.1", 0), Handler)
    with open(a.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
