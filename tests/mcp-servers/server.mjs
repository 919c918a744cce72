// MCP servers built with the official TypeScript SDK, for the `context-harness mcp proxy` tests and bench.
//
// TEST-ONLY. Real SDK transports and middleware: `StreamableHTTPServerTransport` (sessions, the GET stream,
// resumability through the SDK's `EventStore` interface), the legacy `SSEServerTransport` (protocol 2024-11-05),
// `mcpAuthMetadataRouter` (RFC 9728 metadata) and `requireBearerAuth` (401/403 with `WWW-Authenticate`).
// The authorization server is the repository's oidc-provider (tests/authorization-server); its JWT access
// tokens are checked against its JWKS, so refresh, expiry and scopes are real. A few hooks under `/test/*` exist
// only for tests. Never expose it beyond 127.0.0.1.
//
// Usage: node server.mjs [--exit-on-stdin-close]
// Environment:
//   MCP_ISSUER=URL       require bearer tokens issued by this oidc-provider (else no auth at all)
//   MCP_JSON=1           answer POSTs with application/json instead of an SSE stream
//   MCP_STEP_UP_TOOL=n   calling tool `n` needs scope `mcp:resources` (403 insufficient_scope otherwise)
// Once listening it prints one JSON line to stdout: {"url":".../mcp","legacy_url":".../sse","port":P}.
//
// Tools: `echo {text}` → text; `add {a,b}` → a+b; `notify` → sends notifications/tools/list_changed
// on the session's GET stream (not on the POST answer).
// Hooks: GET /test/stats → counters and the last request headers seen;
//        POST /test/drop-sessions → forget every session (the next request with its id gets 404);
//        POST /test/notify → notifications/tools/list_changed on every session's GET stream;
//        POST /test/cut-streams → end every open GET stream (the client should resume with Last-Event-ID);
//        POST /test/revoke-tokens → refuse every access token seen so far (a revocation, as this server sees it);
//        POST /test/refuse-all → refuse every access token from now on, even fresh ones (a misconfigured server).

import { randomUUID, createPublicKey, verify, constants } from 'node:crypto';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InsufficientScopeError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const issuer = process.env.MCP_ISSUER ?? '';
const jsonAnswers = ['1', 'true'].includes(process.env.MCP_JSON ?? '');
const stepUpTool = process.env.MCP_STEP_UP_TOOL ?? '';
const revoked = new Set();
let refuseAll = false;

const stats = {
  initialize: 0, posts: 0, gets: 0, deletes: 0, unauthorized: 0, forbidden: 0, not_found: 0,
  legacy_gets: 0, legacy_posts: 0, last_event_ids: [], protocol_versions: [], client_infos: [],
  last_authorization_scheme: null,
};

function getServer() {
  const server = new McpServer({ name: 'context-harness-test-server', version: '1.0.0' },
    { capabilities: { logging: {} } });
  server.registerTool('echo', { description: 'Echoes its text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  server.registerTool('notify', { description: 'Sends a notification on the GET stream' }, async () => {
    server.sendToolListChanged();
    return { content: [{ type: 'text', text: 'sent' }] };
  });
  return server;
}

const app = createMcpExpressApp();
const port = await new Promise((resolve) => {
  const listener = app.listen(0, '127.0.0.1', () => resolve(listener.address().port));
});
const base = `http://127.0.0.1:${port}`;
const mcpUrl = new URL(`${base}/mcp`);

// Auth: tokens from the oidc-provider (RFC 9728 metadata names it; `requireBearerAuth` answers 401/403).
let auth = (_req, _res, next) => next();
if (issuer) {
  const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
  app.use(mcpAuthMetadataRouter({ oauthMetadata: metadata, resourceServerUrl: mcpUrl, scopesSupported: ['mcp:tools'] }));
  // Access tokens for a resource are JWTs (oidc-provider cannot introspect those): checked against the
  // authorization server's JWKS with node's own crypto: signature, `exp`, `aud` = this server.
  const jwks = await (await fetch(metadata.jwks_uri)).json();
  const verifier = {
    async verifyAccessToken(token) {
      const [head, body, signature] = token.split('.');
      if (!signature) throw new InvalidTokenError('Token is not a JWT');
      const header = JSON.parse(Buffer.from(head, 'base64url').toString());
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
      const jwk = jwks.keys.find((k) => k.kid === header.kid) ?? jwks.keys[0];
      const key = createPublicKey({ key: jwk, format: 'jwk' });
      const algorithm = header.alg?.startsWith('RS') || header.alg?.startsWith('PS') ? 'sha256' : null;
      const ok = header.alg === 'EdDSA'
        ? verify(null, Buffer.from(`${head}.${body}`), key, Buffer.from(signature, 'base64url'))
        : verify(algorithm ?? 'sha256', Buffer.from(`${head}.${body}`),
          header.alg?.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : header.alg?.startsWith('PS')
            ? { key, padding: constants.RSA_PKCS1_PSS_PADDING } : key,
          Buffer.from(signature, 'base64url'));
      if (!ok) throw new InvalidTokenError('Bad signature');
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!aud.includes(mcpUrl.href)) throw new InvalidTokenError('Token was not issued for this server');
      if (revoked.has(claims.jti)) throw new InvalidTokenError('Token was revoked');
      if (refuseAll) throw new InvalidTokenError('This server refuses every token');
      return {
        token, clientId: claims.client_id, scopes: (claims.scope ?? '').split(' ').filter(Boolean),
        expiresAt: claims.exp, resource: mcpUrl,
      };
    },
  };
  // TEST-ONLY: revocation as the resource server sees it (a JWT stays valid at the AS): every token
  // seen so far is refused from now on.
  app.post('/test/refuse-all', (_req, res) => {
    refuseAll = true;
    res.json({ refuse_all: true });
  });
  app.post('/test/revoke-tokens', (_req, res) => {
    for (const jti of seen) revoked.add(jti);
    res.json({ revoked: revoked.size });
  });
  const seen = new Set();
  const inner = verifier.verifyAccessToken;
  verifier.verifyAccessToken = async (token) => {
    const info = await inner(token);
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).jti;
    seen.add(jti);
    return info;
  };
  const bearer = requireBearerAuth({ verifier, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl) });
  auth = (req, res, next) => {
    stats.last_authorization_scheme = (req.headers.authorization ?? '').split(' ')[0] || null;
    bearer(req, res, (err) => {
      if (err) return next(err);
      // Step-up (RFC 6750 §3.1): one tool needs a scope the default sign-in does not ask for.
      const body = req.body;
      if (stepUpTool && body?.method === 'tools/call' && body?.params?.name === stepUpTool
        && !req.auth.scopes.includes('mcp:resources')) {
        const e = new InsufficientScopeError('this tool needs mcp:resources');
        stats.forbidden += 1;
        res.set('WWW-Authenticate',
          `Bearer error="insufficient_scope", scope="mcp:tools mcp:resources", resource_metadata="${getOAuthProtectedResourceMetadataUrl(mcpUrl)}"`);
        return res.status(403).json(e.toResponseObject());
      }
      next();
    });
  };
  app.use((req, res, next) => {
    res.on('finish', () => { if (res.statusCode === 401) stats.unauthorized += 1; });
    next();
  });
}

// The SDK's EventStore interface, in memory. (The SDK's example store cuts the stream id at the first
// `_`, which is the first character of the GET stream's id `_GET_stream`, so it never replays that one.)
class EventStore {
  constructor() { this.events = []; this.next = 0; }
  async storeEvent(streamId, message) {
    this.next += 1;
    const eventId = `${this.next}#${streamId}`;
    this.events.push({ eventId, streamId, message });
    return eventId;
  }
  async getStreamIdForEventId(eventId) {
    return this.events.find((e) => e.eventId === eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const at = this.events.findIndex((e) => e.eventId === lastEventId);
    if (at < 0) return '';
    const { streamId } = this.events[at];
    for (const e of this.events.slice(at + 1)) {
      if (e.streamId === streamId) await send(e.eventId, e.message);
    }
    return streamId;
  }
}

// Streamable HTTP, with sessions.
const sessions = new Map(); // id -> { transport, server, getResponses: Set }

function sessionNotFound(res) {
  stats.not_found += 1;
  res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
}

function record(req) {
  const v = req.headers['mcp-protocol-version'];
  if (v) stats.protocol_versions.push(v);
}

app.post('/mcp', auth, async (req, res) => {
  stats.posts += 1;
  record(req);
  const sessionId = req.headers['mcp-session-id'];
  if (sessionId) {
    const session = sessions.get(sessionId);
    if (!session) return sessionNotFound(res);
    return session.transport.handleRequest(req, res, req.body);
  }
  if (!isInitializeRequest(req.body)) {
    return res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
  }
  stats.initialize += 1;
  stats.client_infos.push(req.body.params.clientInfo);
  const server = getServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new EventStore(),
    enableJsonResponse: jsonAnswers,
    onsessioninitialized: (id) => sessions.set(id, { transport, server, getResponses: new Set() }),
  });
  transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

app.get('/mcp', auth, async (req, res) => {
  stats.gets += 1;
  record(req);
  const session = sessions.get(req.headers['mcp-session-id']);
  if (!session) return sessionNotFound(res);
  const lastEventId = req.headers['last-event-id'];
  if (lastEventId) stats.last_event_ids.push(lastEventId);
  session.getResponses.add(res);
  res.on('close', () => session.getResponses.delete(res));
  await session.transport.handleRequest(req, res);
});

app.delete('/mcp', auth, async (req, res) => {
  stats.deletes += 1;
  const session = sessions.get(req.headers['mcp-session-id']);
  if (!session) return sessionNotFound(res);
  await session.transport.handleRequest(req, res);
});

// The legacy HTTP+SSE transport (protocol 2024-11-05): GET /sse opens the stream, whose first event
// (`endpoint`) names where to POST; POST /sse is not a route (404), which makes a client fall back.
const legacy = new Map();
app.get('/sse', auth, async (req, res) => {
  stats.legacy_gets += 1;
  const transport = new SSEServerTransport('/messages', res);
  legacy.set(transport.sessionId, transport);
  res.on('close', () => legacy.delete(transport.sessionId));
  await getServer().connect(transport);
});
app.post('/messages', auth, async (req, res) => {
  stats.legacy_posts += 1;
  const transport = legacy.get(String(req.query.sessionId ?? ''));
  if (!transport) return res.status(404).send('unknown session');
  await transport.handlePostMessage(req, res, req.body);
});

// Test hooks.
app.get('/test/stats', (_req, res) => res.json(stats));
app.post('/test/drop-sessions', (_req, res) => {
  const n = sessions.size;
  sessions.clear();
  res.json({ dropped: n });
});
app.post('/test/notify', async (_req, res) => {
  let n = 0;
  for (const { server } of sessions.values()) {
    await server.sendToolListChanged();
    n += 1;
  }
  res.json({ notified: n });
});
app.post('/test/cut-streams', (_req, res) => {
  let n = 0;
  for (const { transport, getResponses } of sessions.values()) {
    n += getResponses.size;
    // The SDK's own way to end the GET stream (the client resumes it with Last-Event-ID).
    transport.closeStandaloneSSEStream();
  }
  res.json({ cut: n });
});

process.stdout.write(`${JSON.stringify({ url: mcpUrl.href, legacy_url: `${base}/sse`, port })}\n`);
if (process.argv.includes('--exit-on-stdin-close')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
