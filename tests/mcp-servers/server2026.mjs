// An MCP server built with the official TypeScript SDK v2 (`@modelcontextprotocol/server`), speaking MCP
// 2026-07-28 (stateless Streamable HTTP: no initialize, no session, `_meta` on every request) and, through the
// SDK's own stateless fallback, the 2025 wire. For the `context-harness mcp proxy` tests.
//
// TEST-ONLY. `createMcpHandler` does the validation a 2026-07-28 server does: a request without
// `MCP-Protocol-Version`, or whose `Mcp-Method` / `Mcp-Name` / `Mcp-Param-*` headers are missing or do not match
// the body, is refused with 400 and a JSON-RPC `HeaderMismatch` (-32020) error; an unknown version gets
// `UnsupportedProtocolVersion` (-32022) naming the supported ones. The handler is mounted on `node:http` by a
// small adapter here (Node 20 has the web `Request`/`Response`). Never expose it beyond 127.0.0.1.
//
// Usage: node server2026.mjs [--exit-on-stdin-close]
// Once listening it prints one JSON line to stdout: {"url":".../mcp","port":P}.
//
// Tools: `echo {text}` → text; `route {region, tenant:{id}, query}` → "routed <region> <id>", with
//   `x-mcp-header` on `region` (Region) and `tenant.id` (Tenant); `bad {data}` → has an invalid `x-mcp-header`
//   (on an object), so a client must leave it out of tools/list; `héllo` → "bonjour" (a name that is not
//   ASCII, so Mcp-Name takes the Base64 sentinel form); `progress {steps}` → sends `steps` progress
//   notifications (so the answer is an SSE stream), then "done"; `slow` → one progress notification, then
//   waits until the request is cancelled (the client closes the stream) or 20 s pass.
// Hooks: GET /test/stats → every POST seen (its MCP headers and the body's id, method and name), tool calls by
//          name, the other HTTP methods seen (GET, DELETE), cancelled `slow` calls, streams broken on purpose;
//        POST /test/notify → notifications/tools/list_changed on every open `subscriptions/listen` stream that
//          asked for it;
//        POST /test/break?n=N → the next N tools/call answers are cut off after the response head and an SSE
//          comment, before the response (the call itself ran: a broken stream loses its answer).

import http from 'node:http';
import { once } from 'node:events';
import * as z from 'zod/v4';
import { McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';

const stats = { posts: [], other_methods: [], calls: {}, cancelled: 0, broken: 0 };
let breakCalls = 0;

const ROUTE_SCHEMA = {
  type: 'object',
  properties: {
    region: { type: 'string', 'x-mcp-header': 'Region' },
    tenant: { type: 'object', properties: { id: { type: 'integer', 'x-mcp-header': 'Tenant' } } },
    query: { type: 'string' },
  },
  required: ['region'],
};

const BAD_SCHEMA = {
  type: 'object',
  properties: { data: { type: 'object', 'x-mcp-header': 'Data' } },
};

function count(name) {
  stats.calls[name] = (stats.calls[name] ?? 0) + 1;
}

function factory() {
  const server = new McpServer({ name: 'context-harness-test-server-2026', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echoes its text', inputSchema: z.object({ text: z.string() }) },
    async ({ text }) => {
      count('echo');
      return { content: [{ type: 'text', text }] };
    });
  server.registerTool('route', { description: 'Routes by region', inputSchema: fromJsonSchema(ROUTE_SCHEMA) },
    async (args) => {
      count('route');
      return { content: [{ type: 'text', text: `routed ${args.region} ${args.tenant?.id ?? '-'}` }] };
    });
  // The SDK warns about this one at registration; it still lists it, as a careless server would.
  server.registerTool('bad', { description: 'Invalid x-mcp-header', inputSchema: fromJsonSchema(BAD_SCHEMA) },
    async () => {
      count('bad');
      return { content: [{ type: 'text', text: 'should never be called' }] };
    });
  server.registerTool('héllo', { description: 'A name that is not ASCII' }, async () => {
    count('héllo');
    return { content: [{ type: 'text', text: 'bonjour' }] };
  });
  server.registerTool('progress', { description: 'Progress, then done', inputSchema: z.object({ steps: z.number() }) },
    async ({ steps }, ctx) => {
      count('progress');
      const token = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= steps; i += 1) {
        if (token !== undefined) {
          await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
        }
      }
      return { content: [{ type: 'text', text: 'done' }] };
    });
  server.registerTool('slow', { description: 'Waits until cancelled', inputSchema: z.object({}) }, async (_args, ctx) => {
    count('slow');
    const token = ctx.mcpReq._meta?.progressToken ?? 'slow';
    await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: 0 } });
    const signal = ctx.mcpReq.signal;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 20000);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        stats.cancelled += 1;
        resolve();
      }, { once: true });
    });
    return { content: [{ type: 'text', text: 'not cancelled' }] };
  });
  return server;
}

const handler = createMcpHandler(factory);

/** The MCP headers of a request, names lowercased. */
function mcpHeaders(req) {
  const out = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('mcp-') || name === 'accept') out[name] = value;
  }
  return out;
}

const httpServer = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    if (url.pathname === '/test/notify' && req.method === 'POST') {
      handler.notify.toolsChanged();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    if (url.pathname === '/test/break' && req.method === 'POST') {
      breakCalls += Number.parseInt(url.searchParams.get('n') ?? '1', 10) || 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ break: breakCalls }));
      return;
    }
    if (url.pathname !== '/mcp') {
      res.writeHead(404);
      res.end();
      return;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    let message = {};
    try {
      message = JSON.parse(body.toString('utf8'));
    } catch {
      // not JSON: the handler answers it
    }
    if (req.method !== 'POST') {
      stats.other_methods.push(req.method);
    } else {
      stats.posts.push({
        headers: mcpHeaders(req),
        id: message?.id,
        method: message?.method,
        name: message?.params?.name ?? message?.params?.uri,
        version: message?.params?._meta?.['io.modelcontextprotocol/protocolVersion'],
      });
    }
    // The client closing its side cancels the exchange (the 2026-07-28 cancellation signal).
    const aborter = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
    }
    const request = new Request(url, {
      method: req.method,
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      signal: aborter.signal,
    });
    const response = await handler.fetch(request);
    if (breakCalls > 0 && message?.method === 'tools/call' && response.ok) {
      // A proxy that cuts the answer off: the head and a comment, then the connection closes.
      breakCalls -= 1;
      stats.broken += 1;
      await response.body?.cancel().catch(() => {});
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': cut off\n\n', () => res.destroy());
      return;
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) {
      const reader = response.body.getReader();
      res.on('close', () => reader.cancel().catch(() => {}));
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!res.write(value)) await once(res, 'drain');
      }
    }
    res.end();
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
    }
    res.end(String(err?.message ?? err));
  }
});

const port = await new Promise((resolve) => {
  httpServer.listen(0, '127.0.0.1', () => resolve(httpServer.address().port));
});
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/mcp`, port })}\n`);

if (process.argv.includes('--exit-on-stdin-close')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
