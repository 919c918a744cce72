#!/usr/bin/env python3
"""TEST FIXTURE (never a real server): git's smart HTTP on loopback, behind OAuth token checks.

The context-harness tests run `git clone` / `git push` against it with `context-harness
git-credential` as git's credential helper. It serves the bare repositories under --repos with
git's own CGI program, `git http-backend`, and lets a request through only when it carries an
access token that the authorization server's token introspection endpoint (RFC 7662) calls active
and whose subject (`sub`) owns the repository: `/OWNER/REPO.git/...` belongs to the user OWNER.

- `Authorization: Bearer <token>` (RFC 6750), or `Authorization: Basic` with the token as the
  password (the user name is not checked). Basic with an empty password (curl sends one by itself
  for a URL with a user name, before git asks a credential helper) counts as no credentials.
- No credentials: 401 with `WWW-Authenticate: Basic realm="git"` and `Bearer realm="git"`.
- A token the introspection does not call active: 401 with `Bearer error="invalid_token"`.
- An active token of another user: 403.
- GET /_test/stats: JSON counts of what it saw: {"requests", "bearer", "basic" (with a password),
  "accepted", "inactive", "wrong_owner", "no_credentials", "users": {sub: accepted requests}}.

Usage: python3 server.py --repos DIR --introspection URL [--client-id ID --client-secret SECRET]
                         [--backend PATH] [--tls-cert PEM --tls-key PEM] [--exit-on-stdin-close]
It listens on 127.0.0.1 (an ephemeral port), prints one JSON line {"url": ..., "port": ...} on
stdout (`http://127.0.0.1:PORT`; with --tls-cert and --tls-key it speaks HTTPS only, with that
certificate and key, and the url is `https://localhost:PORT`, a name a certificate can carry),
logs to stderr (request lines only: never a header, so never a token), and with
--exit-on-stdin-close exits when stdin closes. The backend is `$(git --exec-path)/git-http-backend`,
else /usr/lib/git-core/git-http-backend (Debian's `git` package); without one it exits 2. Python 3
standard library only.
"""

import argparse
import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS_LOCK = threading.Lock()
STATS = {
    "requests": 0,
    "bearer": 0,
    "basic": 0,
    "accepted": 0,
    "inactive": 0,
    "wrong_owner": 0,
    "no_credentials": 0,
    "users": {},
}


def count(key, user=None):
    with STATS_LOCK:
        STATS[key] += 1
        if user is not None:
            STATS["users"][user] = STATS["users"].get(user, 0) + 1


def find_backend(given):
    candidates = [given] if given else []
    try:
        exec_path = subprocess.run(
            ["git", "--exec-path"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidates.append(os.path.join(exec_path, "git-http-backend"))
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates.append("/usr/lib/git-core/git-http-backend")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "context-harness-test-git/1"

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's signature)
        sys.stderr.write("git-server: %s\n" % (format % args))

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def send_plain(self, status, text, headers=()):
        body = text.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def token(self):
        """The access token the request carries, or None."""
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            count("bearer")
            return value.strip()
        if scheme.lower() == "basic":
            try:
                _user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if not password:
                # curl's own try with the URL's user name and no password, before git asks its
                # credential helpers: no token.
                return None
            count("basic")
            return password
        return None

    def introspect(self, token):
        """The introspection answer for token (a dict; {"active": False} when the server refuses)."""
        config = self.server.config
        body = urllib.parse.urlencode({"token": token}).encode()
        secret = f"{config.client_id}:{config.client_secret}".encode()
        request = urllib.request.Request(
            config.introspection,
            data=body,
            headers={
                "Authorization": "Basic " + base64.b64encode(secret).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except (urllib.error.URLError, ValueError) as err:
            sys.stderr.write(f"git-server: introspection failed: {err}\n")
            return {"active": False}

    def handle_request(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_test/stats":
            with STATS_LOCK:
                text = json.dumps(STATS)
            return self.send_plain(200, text)
        count("requests")
        path = urllib.parse.unquote(url.path)
        owner = path.lstrip("/").split("/", 1)[0]
        challenge = [("WWW-Authenticate", 'Basic realm="git"'), ("WWW-Authenticate", 'Bearer realm="git"')]
        token = self.token()
        if token is None:
            count("no_credentials")
            return self.send_plain(401, "credentials needed\n", challenge)
        answer = self.introspect(token)
        if answer.get("active") is not True:
            count("inactive")
            refused = [("WWW-Authenticate", 'Basic realm="git"'),
                       ("WWW-Authenticate", 'Bearer realm="git", error="invalid_token"')]
            return self.send_plain(401, "the access token is not active\n", refused)
        user = answer.get("sub")
        if user != owner:
            count("wrong_owner")
            return self.send_plain(403, f"this repository belongs to {owner}\n")
        count("accepted", user)
        self.run_backend(path, url.query, user)

    def run_backend(self, path, query, user):
        config = self.server.config
        body = self.read_body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": config.repos,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": config.repos,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header, variable in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                                 ("Git-Protocol", "HTTP_GIT_PROTOCOL")):
            if self.headers.get(header):
                env[variable] = self.headers[header]
        done = subprocess.run([config.backend], input=body, env=env, capture_output=True, check=False)
        if done.stderr:
            sys.stderr.write("git-server: http-backend: " + done.stderr.decode(errors="replace"))
        head, sep, content = done.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = done.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split(" ", 1)[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError):
            # A client that does not trust the certificate: one line, no traceback.
            sys.stderr.write(f"git-server: TLS with {client_address[0]} failed: {error}\n")
        else:
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", required=True)
    parser.add_argument("--introspection", required=True)
    parser.add_argument("--client-id", default="ch-introspector")
    parser.add_argument("--client-secret", default="ch-introspector-secret")
    parser.add_argument("--backend")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--exit-on-stdin-close", action="store_true")
    config = parser.parse_args()
    if (config.tls_cert is None) != (config.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    config.repos = os.path.abspath(config.repos)
    config.backend = find_backend(config.backend)
    if config.backend is None:
        sys.stderr.write("git-server: no git-http-backend (install the `git` package)\n")
        sys.exit(2)
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.config = config
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    if config.tls_cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        # The handshake happens at the first read, in the request's own thread (not in accept(),
        # where one stalled client would hold up every other); a failed one ends that request.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        url = f"https://localhost:{port}"
    sys.stdout.write(json.dumps({"url": url, "port": port}) + "\n")
    sys.stdout.flush()
    if config.exit_on_stdin_close:
        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
