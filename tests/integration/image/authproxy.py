#!/usr/bin/env python3
"""A registry behind Bearer token auth, for banger's image tests.

    authproxy.py REGISTRY STATEDIR

Serves, on 127.0.0.1 (port written to STATEDIR/port):
  /token     the token service: wants Basic tester:secret, hands out a token
             for the scope asked (logged to STATEDIR/tokens.log)
  /v2/...    the registry API of REGISTRY (a docker-registry without auth),
             each request needing a valid Bearer token for its repository;
             blob GETs answer with a redirect to the "CDN"
and on 127.0.0.2 (another host, port in STATEDIR/cdn_port) the CDN, which
serves blobs and logs whether an Authorization header reached it
(STATEDIR/cdn.log).  Plain HTTP on loopback, Python stdlib only."""
import base64, http.client, http.server, json, os, secrets, socketserver, sys, threading
from urllib.parse import parse_qs, urlparse

REGISTRY, STATE = sys.argv[1], sys.argv[2]
USER, PASSWORD = 'tester', 'secret'
tokens = {}          # token -> scope
lock = threading.Lock()


def log(name, line):
    with lock, open(os.path.join(STATE, name), 'a') as fh:
        fh.write(line + '\n')


def upstream(method, path, headers=None):
    c = http.client.HTTPConnection(REGISTRY, timeout=60)
    c.request(method, path, headers=headers or {})
    return c, c.getresponse()


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def reply(self, code, body=b'', headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def relay(self, resp, conn):
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ('connection', 'transfer-encoding'):
                self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                self.wfile.write(chunk)
        conn.close()


class Front(Quiet):
    def challenge(self, scope=None):
        port = self.server.server_address[1]
        v = 'Bearer realm="http://127.0.0.1:%d/token",service="banger-test"' % port
        if scope:
            v += ',scope="%s"' % scope
        body = json.dumps({'errors': [{'code': 'UNAUTHORIZED', 'message': 'authentication required'}]})
        self.reply(401, body.encode(), [('WWW-Authenticate', v), ('Content-Type', 'application/json')])

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == '/token':
            auth = self.headers.get('Authorization', '')
            want = 'Basic ' + base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
            if auth != want:
                log('tokens.log', 'refused')
                return self.reply(401, b'{"details":"bad credentials"}', [('WWW-Authenticate', 'Basic realm="t"')])
            scope = parse_qs(u.query).get('scope', [''])[0]
            tok = secrets.token_hex(16)
            with lock:
                tokens[tok] = scope
            log('tokens.log', 'issued ' + scope)
            return self.reply(200, json.dumps({'token': tok, 'expires_in': 300}).encode(),
                              [('Content-Type', 'application/json')])
        if not u.path.startswith('/v2/'):
            return self.reply(404)
        parts = u.path.split('/')
        repo = None
        for kw in ('manifests', 'blobs'):
            if kw in parts:
                repo = '/'.join(parts[2:parts.index(kw)])
        scope = 'repository:%s:pull' % repo if repo else None
        auth = self.headers.get('Authorization', '')
        tok = auth[7:] if auth.startswith('Bearer ') else None
        with lock:
            granted = tokens.get(tok)
        if granted is None or (scope and granted != scope):
            return self.challenge(scope)
        if 'blobs' in parts:
            digest = parts[-1]
            loc = 'http://127.0.0.2:%d/cdn/%s/%s' % (self.server.cdn_port, repo, digest)
            return self.reply(307, b'', [('Location', loc)])
        headers = {k: v for k, v in self.headers.items() if k.lower() == 'accept'}
        conn, resp = upstream(self.command, u.path, headers)
        self.relay(resp, conn)

    do_HEAD = do_GET


class Cdn(Quiet):
    def do_GET(self):
        u = urlparse(self.path)
        parts = u.path.split('/')
        if len(parts) < 4 or parts[1] != 'cdn':
            return self.reply(404)
        repo, digest = '/'.join(parts[2:-1]), parts[-1]
        log('cdn.log', '%s auth=%s' % (digest, 'yes' if self.headers.get('Authorization') else 'no'))
        conn, resp = upstream('GET', '/v2/%s/blobs/%s' % (repo, digest))
        self.relay(resp, conn)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    cdn = Server(('127.0.0.2', 0), Cdn)
    front = Server(('127.0.0.1', 0), Front)
    front.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    for name, value in (('cdn_port', cdn.server_address[1]), ('port', front.server_address[1])):
        with open(os.path.join(STATE, name + '.tmp'), 'w') as fh:
            fh.write('%d\n' % value)
        os.rename(os.path.join(STATE, name + '.tmp'), os.path.join(STATE, name))
    front.serve_forever()


main()
