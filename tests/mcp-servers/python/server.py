"""An MCP server built with the official Python SDK (`mcp`), for the `context-harness mcp proxy` tests.

TEST-ONLY. Real SDK parts: `MCPServer` (formerly FastMCP) with the Streamable HTTP transport and stateful
sessions (the GET stream included), and the SDK's own auth support for a resource server: `AuthSettings`
(RFC 9728 protected-resource metadata naming the authorization server, 401/403 with `WWW-Authenticate`) and
a `TokenVerifier`. The verifier asks the repository's oidc-provider (tests/authorization-server) through its
RFC 7662 introspection endpoint, as the SDK's `examples/servers/simple-auth` does: the token must be
`active` and its `aud` must name this server. Start the oidc-provider with `AS_OPAQUE_ACCESS_TOKENS=1`: it
does not store its JWT access tokens, so it can introspect only opaque ones. Never expose it beyond
127.0.0.1.

Usage: .venv/bin/python server.py [--exit-on-stdin-close]
Environment:
  MCP_ISSUER=URL   require bearer tokens of this oidc-provider, checked by introspection (else no auth)
  MCP_JSON=1       answer POSTs with application/json instead of an SSE stream
  MCP_SCOPES=...   the scopes every request needs (default "mcp:tools"; the SDK answers 403 insufficient_scope,
                   without a `scope=` parameter, and lists them as `scopes_supported` in its metadata)
Once listening it prints one JSON line to stdout and nothing else: {"url": ".../mcp", "port": P}.

Tools: `echo {text}` -> text; `add {a, b}` -> a + b.
Hooks (TEST-ONLY): GET /test/stats -> counters of what reached /mcp: "posts", "gets", "deletes",
"initialize", "unauthorized" (401), "forbidden" (403), "not_found" (404), "introspections",
"client_infos" (the `clientInfo` of every initialize), "protocol_versions" (the `MCP-Protocol-Version`
of every later request), "last_authorization_scheme" and "well_known" ({path: hits}, the RFC 9728
metadata requests).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any

import httpx2
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

INTROSPECTOR = ("ch-introspector", "ch-introspector-secret")

stats: dict[str, Any] = {
    "posts": 0,
    "gets": 0,
    "deletes": 0,
    "initialize": 0,
    "unauthorized": 0,
    "forbidden": 0,
    "not_found": 0,
    "introspections": 0,
    "client_infos": [],
    "protocol_versions": [],
    "last_authorization_scheme": None,
    "well_known": {},
}


class IntrospectionTokenVerifier:
    """A `TokenVerifier`: RFC 7662 introspection at the oidc-provider (client_secret_basic)."""

    def __init__(self, endpoint: str, resource: str) -> None:
        self.endpoint = endpoint
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        stats["introspections"] += 1
        try:
            async with httpx2.AsyncClient(timeout=10.0) as client:
                response = await client.post(self.endpoint, data={"token": token}, auth=INTROSPECTOR)
            data = response.json() if response.status_code == 200 else {}
        except (httpx2.HTTPError, ValueError) as e:
            print(f"introspection failed: {type(e).__name__}", file=sys.stderr)
            return None
        if not isinstance(data, dict) or data.get("active") is not True:
            return None
        aud = data.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.resource not in audiences:
            print(f"token refused: aud {aud!r} does not name {self.resource}", file=sys.stderr)
            return None
        scope = data.get("scope")
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id", "unknown")),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=data.get("exp") if isinstance(data.get("exp"), int) else None,
            resource=self.resource,
            subject=data.get("sub") if isinstance(data.get("sub"), str) else None,
        )


def build_app(url: str) -> Any:
    issuer = os.environ.get("MCP_ISSUER", "").rstrip("/")
    auth: dict[str, Any] = {}
    if issuer:
        auth = {
            "token_verifier": IntrospectionTokenVerifier(f"{issuer}/token/introspection", url),
            "auth": AuthSettings(
                issuer_url=issuer,
                resource_server_url=url,
                required_scopes=os.environ.get("MCP_SCOPES", "mcp:tools").split(),
                # The verifier checks `aud` itself.
                validate_token_resource=False,
            ),
        }
    server = MCPServer(name="context-harness-python-test-server", version="1.0.0", log_level="WARNING", **auth)

    @server.tool(description="Echoes its text")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Adds two numbers")
    def add(a: float, b: float) -> str:
        total = a + b
        return str(int(total)) if total == int(total) else str(total)

    json_answers = os.environ.get("MCP_JSON", "") in ("1", "true")
    return server.streamable_http_app(json_response=json_answers)


def replay(body: bytes, receive: Any) -> Any:
    """An ASGI `receive` that yields `body` once (already read), then the real channel (disconnects)."""
    sent = False

    async def inner() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return inner


def counting(app: Any) -> Any:
    """ASGI middleware: `/test/stats`, and counters of the requests to `/mcp` and their answers."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path == "/test/stats" and method == "GET":
            body = json.dumps(stats).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": body})
        if path.startswith("/.well-known/"):
            stats["well_known"][path] = stats["well_known"].get(path, 0) + 1
        if path != "/mcp":
            return await app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        stats["last_authorization_scheme"] = headers.get("authorization", "").split(" ")[0] or None
        downstream = receive
        if method == "GET":
            stats["gets"] += 1
        elif method == "DELETE":
            stats["deletes"] += 1
        elif method == "POST":
            stats["posts"] += 1
            # Read the body to count initialize requests, then hand it on unchanged.
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            raw = b"".join(chunks)
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and parsed.get("method") == "initialize":
                stats["initialize"] += 1
                stats["client_infos"].append((parsed.get("params") or {}).get("clientInfo"))
            elif "mcp-protocol-version" in headers:
                stats["protocol_versions"].append(headers["mcp-protocol-version"])
            downstream = replay(raw, receive)

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                key = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(message["status"])
                if key:
                    stats[key] += 1
            await send(message)

        return await app(scope, downstream, counting_send)

    return wrapper


def main() -> None:
    # Bind first (port 0: a free port), so the URL (the resource identifier) is known before the app is built.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    app = counting(build_app(url))

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            # The app's lifespan (the session manager) has started and the socket is served.
            print(json.dumps({"url": url, "port": port}), flush=True)

    if "--exit-on-stdin-close" in sys.argv[1:]:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(65536):
                pass
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    ReadyServer(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
