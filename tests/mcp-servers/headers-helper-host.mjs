// An MCP host's "headers helper" code path, for the `context-harness mcp headers` test. TEST-ONLY.
//
// MCP hosts (Claude Code's `headersHelper`, and others) run a configured command before connecting, read its stdout
// as a JSON object of HTTP header names to string values, and send those headers on every request. This script does
// exactly that, then connects with the official TypeScript SDK's client (`StreamableHTTPClientTransport`,
// `requestInit.headers`), initializes and calls the `echo` tool.
//
// Usage: node headers-helper-host.mjs <server-url> <helper command…>
// Prints one JSON line: {"ok":true,"echo":"…"} or {"ok":false,"error":"…"}; exit 0 either way (1 on bad usage).

import { execFileSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, helper, ...helperArgs] = process.argv.slice(2);
if (!url || !helper) {
  console.error('usage: node headers-helper-host.mjs <server-url> <helper command…>');
  process.exit(1);
}

function helperHeaders() {
  const out = execFileSync(helper, helperArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const parsed = JSON.parse(out);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('the headers helper did not print a JSON object');
  }
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') throw new Error(`header ${name} is not a string`);
  }
  return parsed;
}

try {
  const headers = helper === '-' ? {} : helperHeaders();
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: 'headers-helper-host', version: '1.0.0' });
  await client.connect(transport);
  const result = await client.callTool({ name: 'echo', arguments: { text: 'through the headers helper' } });
  await client.close();
  console.log(JSON.stringify({ ok: true, echo: result.content?.[0]?.text ?? null }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e) }));
}
