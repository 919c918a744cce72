#!/usr/bin/env node
// TEST-ONLY stdio MCP host for the official MCP conformance suite (client mode), driving the bridge under
// test: `context-harness mcp proxy <url>`.
//
// The suite runs `--command "<node> host.mjs"` with the URL of its own scenario server appended, and sets
//   MCP_CONFORMANCE_SCENARIO          the scenario name (e.g. `tools_call`, `auth/basic-cimd`)
//   MCP_CONFORMANCE_PROTOCOL_VERSION  the wire to speak (`2025-11-25`: initialize handshake; `2026-07-28`:
//                                     stateless, `_meta` on every request)
//   MCP_CONFORMANCE_CONTEXT           JSON with scenario data (client ids, secrets, keys, tool calls)
// This host starts the bridge (path in CONTEXT_HARNESS_CONFORMANCE_BIN) with the options the scenario's
// context calls for, in a temporary home with file storage, with `BROWSER` set to tests/browser/follow.mjs
// (the suite's authorization endpoints approve at once and redirect to the loopback callback, which the
// follower requests). Then it acts as an MCP host over the bridge's stdin/stdout, as the official SDKs'
// conformance clients do: `initialize` + `notifications/initialized` (2025 wire) or `server/discover` and
// `_meta` on every request (2026 wire), `tools/list`, tool calls with arguments built from the schemas
// (or given by the context), `resources/*` and `prompts/*` when the server offers them, answers to
// server-to-client requests (elicitation with the schema defaults, sampling, roots, ping), and the
// input-required retry of SEP-2322. It never talks HTTP to the scenario server itself: whatever the suite
// observes comes from the bridge.
//
// Bridge options (flag names are the contract of issues 21 and 22; a flag the binary does not know yet makes
// that scenario fail, which the baseline records):
//   every scenario       --port <free loopback port> (three) --timeout <s>, CONTEXT_HARNESS_CLIENT_METADATA_URL
//   pre-registration     --client-id, CONTEXT_HARNESS_CLIENT_SECRET
//   client-credentials   --grant-type client_credentials --client-id (+ secret, or --private-key-file and
//                        --signing-alg)
//   wif-jwt-bearer       --grant-type jwt_bearer --client-id --assertion-file
//   enterprise-managed   --grant-type id_jag --idp-issuer --idp-client-id --id-token-file --client-id (+ secret)
//
// Outcome: the last stdout line is `{"conformanceHost":{"ok":BOOL,"failures":[...]}}` and the exit status is 0
// when every step got exactly one answer that was not an error, 1 otherwise. The suite's summary of a parallel
// run judges a scenario by its checks alone; its single-scenario verdict also fails a client that exits with
// an error (unless the scenario expects one, e.g. a refused sign-in), and the test reads this line from the
// scenario's results directory (stdout.txt) to do the same. This host's log goes to stderr (stderr.txt).
// Other variables: CONTEXT_HARNESS_CONFORMANCE_DEADLINE_MS (whole run, default 40000),
// CONTEXT_HARNESS_CONFORMANCE_REQUEST_MS (one request, default 15000), CONTEXT_HARNESS_CONFORMANCE_VERBOSE
// (number of -v given to the bridge, default 2). Node >= 20, no npm packages.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const FOLLOW = join(HERE, '..', 'browser', 'follow.mjs');

/** Revisions with the stateless lifecycle (no initialize; `_meta` on every request). */
const STATELESS_VERSIONS = new Set(['2026-07-28']);
/** The client id the suite's `auth/basic-cimd` expects (its own example client's metadata URL). */
const CIMD_URL = 'https://conformance-test.local/client-metadata.json';
const CLIENT_INFO = { name: 'context-harness-conformance-host', version: '1.0.0' };
const CAPABILITIES = { roots: { listChanged: true }, sampling: {}, elicitation: {} };
/** Bounds on what a hostile or broken server can make this host do. */
const MAX_PAGES = 5;
const MAX_CALLS = 20;
const MAX_INPUT_ROUNDS = 3;

const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
const wire = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION ?? '2025-11-25';
const stateless = STATELESS_VERSIONS.has(wire);
const context = parseContext(process.env.MCP_CONFORMANCE_CONTEXT);
const serverUrl = process.argv.at(-1);
const binary = process.env.CONTEXT_HARNESS_CONFORMANCE_BIN;
const deadlineMs = positive(process.env.CONTEXT_HARNESS_CONFORMANCE_DEADLINE_MS, 40000);
const requestMs = positive(process.env.CONTEXT_HARNESS_CONFORMANCE_REQUEST_MS, 15000);
const verbosity = positive(process.env.CONTEXT_HARNESS_CONFORMANCE_VERBOSE, 2);

function positive(text, fallback) {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

function parseContext(text) {
  if (!text) return {};
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

function log(message) {
  process.stderr.write(`[host ${new Date().toISOString()}] ${message}\n`);
}

/** Whether `port` can be bound on the loopback interface right now. */
function bindable(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Loopback ports free right now for the bridge's sign-in listener (scenarios run in parallel, so the
 * bridge's defaults would collide). Taken below the kernel's ephemeral range, where the suite's servers
 * (port 0) and outgoing connections take theirs, so a port checked here stays free until the bridge binds it;
 * three of them, because `--port` is tried in order.
 */
async function freePorts() {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10) || 32768;
  } catch {
    // not Linux: keep the IANA default's lower bound
  }
  const low = 10000;
  const high = Math.max(low + 1000, ephemeralLow);
  const ports = [];
  for (let tries = 0; tries < 200 && ports.length < 3; tries += 1) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (!ports.includes(port) && (await bindable(port))) ports.push(port);
  }
  return ports;
}

/** Command-line options and variables for the bridge in this scenario, with files written under `home`. */
function bridgeOptions(home) {
  const args = [];
  const env = { CONTEXT_HARNESS_CLIENT_METADATA_URL: CIMD_URL };
  const secretFile = (name, text) => {
    const path = join(home, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const clientSecret = () => {
    if (typeof context.client_secret === 'string') {
      env.CONTEXT_HARNESS_CLIENT_SECRET = context.client_secret;
    }
  };
  switch (scenario) {
    case 'auth/pre-registration':
      args.push('--client-id', context.client_id);
      clientSecret();
      break;
    case 'auth/client-credentials-basic':
      args.push('--grant-type', 'client_credentials', '--client-id', context.client_id);
      clientSecret();
      break;
    case 'auth/client-credentials-jwt':
      args.push('--grant-type', 'client_credentials', '--client-id', context.client_id);
      args.push('--private-key-file', secretFile('client-key.pem', context.private_key_pem ?? ''));
      args.push('--signing-alg', context.signing_algorithm ?? 'ES256');
      break;
    case 'auth/wif-jwt-bearer':
      args.push('--grant-type', 'jwt_bearer', '--client-id', context.client_id);
      args.push('--assertion-file', secretFile('workload.jwt', context.valid_jwt ?? ''));
      break;
    case 'auth/enterprise-managed-authorization':
      args.push('--grant-type', 'id_jag', '--client-id', context.client_id);
      args.push('--idp-issuer', context.idp_issuer, '--idp-client-id', context.idp_client_id);
      args.push('--id-token-file', secretFile('id-token.jwt', context.idp_id_token ?? ''));
      clientSecret();
      break;
    default:
      break;
  }
  return { args: args.filter((a) => typeof a === 'string'), env };
}

/** The bridge process and JSON-RPC over its stdin/stdout. */
class Bridge {
  constructor(child) {
    this.child = child;
    this.nextId = 1;
    this.pending = new Map();
    this.answered = new Set();
    this.exited = false;
    this.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exited = true;
        log(`bridge exited (code ${code}, signal ${signal})`);
        for (const { reject } of this.pending.values()) {
          reject(new Error(`the bridge exited (code ${code}, signal ${signal}) before answering`));
        }
        this.pending.clear();
        resolve();
      });
    });
    child.on('error', (err) => log(`bridge: ${err.message}`));
    child.stdin.on('error', (err) => log(`bridge stdin: ${err.message}`));
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) this.receive(line);
        newline = buffered.indexOf('\n');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      for (const line of chunk.split('\n')) {
        if (line) process.stderr.write(`[bridge] ${line}\n`);
      }
    });
  }

  send(message) {
    if (this.exited) throw new Error('the bridge has exited');
    const text = JSON.stringify(message);
    log(`-> ${text.slice(0, 400)}`);
    this.child.stdin.write(`${text}\n`);
  }

  receive(line) {
    log(`<- ${line.slice(0, 400)}`);
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      log('the bridge wrote a line that is not JSON');
      failures.push('a stdout line that is not JSON');
      return;
    }
    if (message.method !== undefined && message.id !== undefined) {
      this.answer(message);
      return;
    }
    if (message.method !== undefined) return; // a notification: logged above
    const waiter = this.pending.get(message.id);
    if (!waiter) {
      // A second answer to one request, or an answer to an id this host never sent (or gave up on).
      const why = this.answered.has(message.id) ? 'a second answer' : 'an answer to an unknown or abandoned id';
      log(`${why}: ${JSON.stringify(message.id)}`);
      failures.push(`${why} (id ${JSON.stringify(message.id)})`);
      return;
    }
    this.pending.delete(message.id);
    this.answered.add(message.id);
    waiter.resolve(message);
  }

  /** Answers a server-to-client request the bridge relayed. */
  answer(request) {
    const result = answerInput(request.method, request.params ?? {});
    const reply =
      result === undefined
        ? { jsonrpc: '2.0', id: request.id, error: { code: -32601, message: `Method not found: ${request.method}` } }
        : { jsonrpc: '2.0', id: request.id, result };
    try {
      this.send(reply);
    } catch (err) {
      log(`cannot answer ${request.method}: ${err.message}`);
    }
  }

  /** Sends a request with a fresh id and waits for its answer (the whole JSON-RPC response object). */
  request(method, params) {
    const id = this.nextId;
    this.nextId += 1;
    const message = { jsonrpc: '2.0', id, method };
    const withMeta = stateless ? { ...(params ?? {}), _meta: { ...META, ...(params?._meta ?? {}) } } : params;
    if (withMeta !== undefined) message.params = withMeta;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${method} (id ${id}) within ${requestMs} ms`));
      }, requestMs);
      this.pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      try {
        this.send(message);
      } catch (err) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  notify(method, params) {
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) message.params = params;
    this.send(message);
  }

  /** Closes stdin (the stdio transport's shutdown), then SIGTERM after 5 s and SIGKILL after 2 s more. */
  async close() {
    if (!this.exited) this.child.stdin.end();
    const waited = (ms) => Promise.race([this.exit, new Promise((r) => setTimeout(r, ms).unref())]);
    await waited(5000);
    if (!this.exited) {
      log('the bridge did not exit within 5 s of stdin EOF: SIGTERM');
      failures.push('no exit within 5 s of stdin EOF');
      this.child.kill('SIGTERM');
      await waited(2000);
    }
    if (!this.exited) {
      this.child.kill('SIGKILL');
      await waited(2000);
    }
  }
}

const META = {
  'io.modelcontextprotocol/protocolVersion': wire,
  'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
  'io.modelcontextprotocol/clientCapabilities': CAPABILITIES,
};

/** What went wrong, for the exit status and the log. */
const failures = [];

/** An example value for a JSON schema: its default, const, first enum member, or one of its type. */
function example(schema, depth = 0) {
  if (!schema || typeof schema !== 'object' || depth > 8) return 'x';
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const type = types.find((t) => t && t !== 'null') ?? types[0];
  switch (type) {
    case 'integer':
      return 3;
    case 'number':
      return 2;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'null':
      return null;
    case 'object':
      return required(schema, depth + 1);
    default:
      return 'x';
  }
}

/** An object with the required properties of `schema` filled with examples. */
function required(schema, depth = 0) {
  const out = {};
  const props = schema?.properties && typeof schema.properties === 'object' ? schema.properties : {};
  for (const name of Array.isArray(schema?.required) ? schema.required : []) {
    out[name] = example(props[name], depth);
  }
  return out;
}

/** The answer a user would give to a server's request for input (elicitation, sampling, roots, ping). */
function answerInput(method, params) {
  switch (method) {
    case 'ping':
      return {};
    case 'roots/list':
      return { roots: [] };
    case 'sampling/createMessage':
      return {
        role: 'assistant',
        content: { type: 'text', text: 'A sampled answer from the conformance host.' },
        model: 'conformance-host',
        stopReason: 'endTurn',
      };
    case 'elicitation/create': {
      if (params.mode === 'url') return { action: 'accept' };
      // Accept, with every default the schema gives (SEP-1034) and examples for required fields without one.
      const schema = params.requestedSchema ?? {};
      const content = required(schema);
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        if (prop && typeof prop === 'object' && prop.default !== undefined) content[name] = prop.default;
      }
      return { action: 'accept', content };
    }
    default:
      return undefined;
  }
}

/**
 * Sends a request; retries once with a supported version after -32022 (2026 version negotiation), and
 * fulfils input-required results (SEP-2322) by re-sending with `inputResponses` and the opaque
 * `requestState` (only when the server gave one), each time with a new id. Returns the final result, or
 * undefined after logging an error.
 */
async function call(bridge, method, params = {}) {
  let current = params;
  let versionRetried = false;
  for (let round = 0; round <= MAX_INPUT_ROUNDS; ) {
    let response;
    try {
      response = await bridge.request(method, current);
    } catch (err) {
      failures.push(`${method}: ${err.message}`);
      log(`${method} failed: ${err.message}`);
      return undefined;
    }
    if (response.error) {
      const supported = response.error.data?.supported;
      if (
        stateless &&
        response.error.code === -32022 &&
        !versionRetried &&
        Array.isArray(supported) &&
        supported.includes(wire)
      ) {
        versionRetried = true;
        log(`${method}: unsupported protocol version; retrying with ${wire}`);
        continue;
      }
      failures.push(`${method}: error ${response.error.code} ${response.error.message}`);
      log(`${method} answered with error ${JSON.stringify(response.error)}`);
      return undefined;
    }
    const result = response.result ?? {};
    if (result.resultType !== 'input_required') return result;
    round += 1;
    const inputResponses = {};
    for (const [key, input] of Object.entries(result.inputRequests ?? {})) {
      const answer = answerInput(input?.method, input?.params ?? {});
      if (answer !== undefined) inputResponses[key] = answer;
    }
    const { inputResponses: _old, requestState: _state, ...base } = params;
    current = { ...base, inputResponses };
    if (result.requestState !== undefined) current.requestState = result.requestState;
    log(`${method}: input required (round ${round}); re-sending with ${Object.keys(inputResponses).length} answer(s)`);
  }
  failures.push(`${method}: still input-required after ${MAX_INPUT_ROUNDS} rounds`);
  return undefined;
}

/** Every item of a paginated list method (at most MAX_PAGES pages). */
async function list(bridge, method, field) {
  const items = [];
  let cursor;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const result = await call(bridge, method, cursor === undefined ? {} : { cursor });
    if (!result) return page === 0 ? undefined : items;
    if (Array.isArray(result[field])) items.push(...result[field]);
    cursor = result.nextCursor;
    if (typeof cursor !== 'string') break;
  }
  return items;
}

/** The tool calls this scenario makes, given the listed tools. */
function plannedCalls(tools) {
  const byName = new Map(tools.map((t) => [t.name, t]));
  switch (scenario) {
    case 'json-schema-ref-no-deref':
      // The scenario's server only serves tools/list; listing (without fetching the network $ref) is the test.
      return [];
    case 'json-schema-2020-12-preservation': {
      // Echo the focal tool's inputSchema verbatim; the suite diffs it against its fixture.
      const focal = byName.get('json_schema_2020_12_tool');
      return focal && byName.has('json_schema_echo')
        ? [{ name: 'json_schema_echo', arguments: { schema: focal.inputSchema } }]
        : [];
    }
    default:
      break;
  }
  if (Array.isArray(context.toolCalls)) {
    // The scenario names the calls and their exact arguments (http-custom-headers); skip unlisted tools.
    return context.toolCalls
      .filter((c) => c && byName.has(c.name))
      .map((c) => ({ name: c.name, arguments: c.arguments ?? {} }));
  }
  return tools.slice(0, MAX_CALLS).map((t) => ({ name: t.name, arguments: required(t.inputSchema) }));
}

async function session(bridge) {
  let capabilities = { tools: {} };
  if (stateless) {
    const discovered = await call(bridge, 'server/discover', {});
    if (discovered?.capabilities) capabilities = discovered.capabilities;
  } else {
    const init = await call(bridge, 'initialize', {
      protocolVersion: wire,
      capabilities: CAPABILITIES,
      clientInfo: CLIENT_INFO,
    });
    if (!init) return;
    capabilities = init.capabilities ?? {};
    bridge.notify('notifications/initialized');
  }

  const tools = await list(bridge, 'tools/list', 'tools');
  for (const planned of plannedCalls(tools ?? [])) {
    await call(bridge, 'tools/call', planned);
  }
  if (scenario === 'json-schema-ref-no-deref') return;

  if (capabilities.resources) {
    const resources = await list(bridge, 'resources/list', 'resources');
    for (const resource of (resources ?? []).slice(0, MAX_CALLS)) {
      if (typeof resource?.uri === 'string') await call(bridge, 'resources/read', { uri: resource.uri });
    }
  }
  if (capabilities.prompts) {
    const prompts = await list(bridge, 'prompts/list', 'prompts');
    for (const prompt of (prompts ?? []).slice(0, MAX_CALLS)) {
      if (typeof prompt?.name !== 'string') continue;
      const args = {};
      for (const arg of Array.isArray(prompt.arguments) ? prompt.arguments : []) {
        if (arg?.required && typeof arg.name === 'string') args[arg.name] = 'x';
      }
      await call(bridge, 'prompts/get', { name: prompt.name, arguments: args });
    }
  }
}

async function main() {
  if (!serverUrl || !/^https?:\/\//.test(serverUrl)) throw new Error('usage: host.mjs <server-url>');
  if (!binary) throw new Error('CONTEXT_HARNESS_CONFORMANCE_BIN (the context-harness binary) is not set');
  log(`scenario ${scenario}, wire ${wire}, server ${serverUrl}`);
  const home = mkdtempSync(join(tmpdir(), 'ch-conformance-'));
  let bridge;
  const stop = async (why) => {
    log(why);
    failures.push(why);
    if (bridge) await bridge.close();
    rmSync(home, { recursive: true, force: true });
    finish();
  };
  const deadline = setTimeout(() => void stop(`deadline of ${deadlineMs} ms reached`), deadlineMs);
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    const { args, env } = bridgeOptions(home);
    const ports = (await freePorts()).flatMap((port) => ['--port', String(port)]);
    const signInSecs = Math.max(5, Math.floor(deadlineMs / 2000));
    const argv = ['mcp', 'proxy', serverUrl, ...ports, '--timeout', String(signInSecs), ...args];
    if (verbosity > 0) argv.push(`-${'v'.repeat(verbosity)}`);
    log(`starting ${binary} ${argv.join(' ')}`);
    // The bridge gets this host's environment minus the suite's data, this project's own settings and
    // anything that would start a real browser, plus the scenario's options.
    const childEnv = { ...process.env };
    for (const name of Object.keys(childEnv)) {
      if (/^(MCP_CONFORMANCE_|CONTEXT_HARNESS_)/.test(name)) delete childEnv[name];
    }
    for (const name of ['DISPLAY', 'WAYLAND_DISPLAY', 'SSH_CONNECTION', 'SSH_CLIENT', 'SSH_TTY', 'RUST_LOG']) {
      delete childEnv[name];
    }
    Object.assign(childEnv, env, {
      CONTEXT_HARNESS_HOME: home,
      CONTEXT_HARNESS_STORAGE: 'file',
      HOME: home,
      NO_COLOR: '1',
      BROWSER: `${process.execPath} ${FOLLOW}`,
    });
    bridge = new Bridge(spawn(binary, argv, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] }));
    await session(bridge);
    await bridge.close();
  } finally {
    clearTimeout(deadline);
    rmSync(home, { recursive: true, force: true });
  }
  finish();
}

let finished = false;

/** Prints the outcome line and exits (once). */
function finish() {
  if (finished) return;
  finished = true;
  const ok = failures.length === 0;
  log(ok ? 'done' : `done with ${failures.length} failure(s): ${failures.join('; ')}`);
  process.stdout.write(`${JSON.stringify({ conformanceHost: { ok, failures } })}\n`, () => process.exit(ok ? 0 : 1));
}

main().catch((err) => {
  log(`error: ${err.stack ?? err.message}`);
  failures.push(`host error: ${err.message}`);
  finish();
});
