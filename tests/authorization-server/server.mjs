// Local OAuth 2.1 / OpenID Connect authorization server for context-harness tests.
//
// TEST-ONLY. This is the real `oidc-provider` (a certified OpenID Provider implementation) configured
// for loopback use, plus a few test hooks under `/test/*` that no production server would have.
// Never expose it beyond 127.0.0.1.
//
// Usage: node server.mjs [PORT] [--exit-on-stdin-close]
//        (PORT from argv, else $AS_PORT, else 0 = ephemeral)
//
// Once listening it prints exactly one JSON line to stdout and nothing else:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT,"pid":PID}
// All oidc-provider notices go to stderr. The process exits on SIGTERM/SIGINT, and with
// --exit-on-stdin-close also when stdin closes (tests use it so a killed test run leaves nothing behind).
//
// Registered clients (all `application_type: native`, so loopback redirect ports may vary per
// RFC 8252 §7.3; registered redirect URIs are http://{localhost,127.0.0.1,[::1]}:8080/callback):
//   ch-public             token_endpoint_auth_method none (public client, PKCE required)
//   ch-confidential       client_secret_basic, secret "ch-confidential-secret"
//   ch-confidential-post  client_secret_post,  secret "ch-confidential-post-secret"
//   ch-introspector       client_secret_basic, secret "ch-introspector-secret" (for /token/introspection)
// With AS_CLIENT_CREDENTIALS=1 (oidc-provider's clientCredentials feature, RFC 6749 §4.4), also:
//   ch-machine            client_credentials only, client_secret_basic, secret "ch-machine-secret"
//   ch-machine-post       client_credentials only, client_secret_post, secret "ch-machine-post-secret"
//   ch-machine-jwt        client_credentials only, private_key_jwt with the public keys of AS_MACHINE_JWKS
//                         (a JSON Web Key Set; the client is left out without it)
// Such tokens live `access_token_ttl` like the others. (Off by default: with the feature on,
// oidc-provider also checks a registered client's `scope` against its own scopes.)
// Scopes: openid offline_access profile email. `offline_access` yields a refresh token only with
// `prompt=consent` (oidc-provider follows OIDC Core here).
//
// Environment (initial values of the control state below):
//   AS_PORT                  listen port (0 = ephemeral)
//   AS_CLIENT_CREDENTIALS=1  the clientCredentials feature and the machine clients above
//   AS_DPOP=1                oidc-provider's dPoP feature (RFC 9449; on by default in oidc-provider 9, off
//                            here): discovery lists dpop_signing_alg_values_supported and a token request
//                            with a DPoP proof gets a DPoP-bound token (cnf.jkt)
//   AS_DPOP_NONCE=1          (with AS_DPOP) every DPoP proof must carry a server nonce (use_dpop_nonce)
//   AS_MACHINE_JWKS          JSON Web Key Set (public keys) of the `ch-machine-jwt` client
//   AS_AUTO_APPROVE=1        complete login + consent automatically for the fixed user "test-user"
//   AS_DENY=1                answer every interaction with error=access_denied
//   AS_ACCESS_TOKEN_TTL=N    access-token lifetime in seconds (default 3600)
//   AS_TOKEN_FAULT=MODE      fault at the token endpoint: 500 | html | garbage | reset | slow | invalid_grant
//   AS_TOKEN_FAULT_DELAY_MS  delay for the `slow` fault (default 10000)
//   AS_OPAQUE_ACCESS_TOKENS=1  access tokens for a resource are opaque (stored, so /token/introspection
//                            answers for them, with `aud` = the resource) instead of JWTs (which
//                            oidc-provider does not store and so cannot introspect)
//   AS_CIMD=1                accept Client ID Metadata Documents (oidc-provider's experimental
//                            clientIdMetadataDocument feature, draft-02): an https client_id is fetched
//                            and its document is the client; discovery then announces
//                            client_id_metadata_document_supported
//   AS_CIMD_FETCH_ORIGIN=http://127.0.0.1:PORT  (TEST-ONLY, with AS_CIMD) fetch those documents from this
//                            loopback origin instead of their https origin (same path and query): a
//                            stand-in for DNS and TLS, so a test serves https://client.example/… on
//                            loopback. Every other outgoing request is unchanged.
//
// Test hooks (TEST-ONLY):
//   GET  /test/stats    -> {"token_requests":n,"refresh_requests":n,"authorization_code_requests":n,
//                           "device_code_requests":n,"revocation_requests":n,"faults_served":n}
//   GET  /test/last-token-request -> form fields (code, code_verifier, refresh_token, client_secret,
//                          client_assertion, assertion, scope, resource, ...)
//                          of the last token request, so tests can check that no secret reached their
//                          logs, plus "authorization_scheme" ("Basic") when it had an Authorization header
//   POST /test/reset    -> zero the counters
//   GET  /test/control  -> current control state
//   POST /test/control  JSON merged into the control state:
//        {"auto_approve":bool, "deny":bool, "access_token_ttl":seconds,
//         "login":"name",              // the user auto-approve signs in (default "test-user"), so a
//                                      // test can sign in a second identity
//         "omit_refresh_token":bool,   // refresh responses carry no refresh_token (and no rotation)
//         "token_type_override":"DPoP"|null, // token responses say this token_type, whatever the
//                                      // request (a hostile-server stand-in: `DPoP` without a proof)
//         "device_slow_down":n,        // next n device_code polls answer slow_down
//         "device_interval":n|null,    // add `interval` to device authorization responses
//         "device_code_ttl":seconds,   // device code lifetime (default 600)
//         "discovery_patch":{..}|null, // merged into discovery documents (null values delete keys)
//         "rfc8414_path":bool,         // path mode: also serve /.well-known/oauth-authorization-server/<path>
//         "rfc8414_path_html":bool,    // path mode: answer that URL 200 with an HTML page instead (the
//                                      // catch-all route of a single-page app, a documented quirk)
//         "fault": null | {"mode":"500|html|garbage|reset|slow|invalid_grant|429|503",
//                          "grant_type":"refresh_token"?,  // only faults this grant (default: any)
//                          "times":n?,                     // only the next n requests (default: all)
//                          "delay_ms":n?,                  // for `slow`
//                          "retry_after":"1"?,             // for 429/503: the Retry-After header value
//                          "body":"json"|"text"?},         // for 429/503: a JSON
//                                                          // `temporarily_unavailable` (default) or plain text
//         "revocation_fault": null | {"token_type_hint":"refresh_token"?, "times":n?}}
//                                      // the revocation endpoint answers 503 for that hint (default: any)
// The 429/503 faults are a documented quirk-stub behaviour: oidc-provider itself never rate-limits, so
// tests inject them here to check that "try again later" is waited out (RFC 6585 §4, RFC 9110 §10.2.3).
//
// MCP-related hooks (TEST-ONLY):
//   POST /test/device   {"user_code":"...","action":"approve"|"deny"} completes a device-flow sign-in
//                       for the fixed user without a browser (as if they had approved or denied it)
//   POST /test/delete-client {"client_id":"..."} deletes a dynamically registered client
//   POST /test/revoke-access-token {"token":"..."} destroys that access token only (opaque ones, which this
//                       server stores), as an authorization server that revokes an access token and not its
//                       grant (RFC 7009 §2.1 leaves that to the server; oidc-provider's /token/revocation
//                       revokes every token of the grant, the refresh tokens too)
//   GET  /test/stats also counts "registration_requests", "device_authorization_requests",
//                       "well_known" ({path: hits}), "response_modes" ({mode: authorization
//                       requests}; "query" when the request names none) and "cimd_fetches"
//                       ({client metadata document URL: fetches}, with AS_CIMD_FETCH_ORIGIN).
// Access tokens issued for a resource indicator (RFC 8707, any loopback URL) are JWTs whose `aud` is
// that resource (development signing keys).
// With AS_DPOP=1, a protected resource (TEST-ONLY, RFC 9449 §7.1, a stand-in for a DPoP-aware resource server):
//   GET|POST /test/resource  with `Authorization: DPoP <access token>` and one `DPoP: <proof>` header
//                       -> 200 {"ok":true,"sub":..,"jkt":..} when the access token is one of this server's
//                          (a JWT access token signed with its keys and issued by it, or an opaque one it
//                          stored) and bound (`cnf.jkt`) to the proof's key, and the proof (RFC 9449 §4.3)
//                          is a `dpop+jwt` signed with its embedded public `jwk` (an asymmetric alg), its
//                          `htm` is the request method, its `htu` the request URL (without query and
//                          fragment), its `iat` within 60 s of now, its `ath` base64url(SHA-256(token))
//                          and its `jti` not seen before (every well-signed, fresh proof is used up)
//                       -> otherwise 401 {"error":"invalid_token"|"invalid_dpop_proof","error_description":..}
//                          with `WWW-Authenticate: DPoP error=..` (a Bearer presentation of a bound token
//                          is invalid_token)
//   GET  /test/stats also counts "resource_requests" and "resource_accepted".
// AS_ISSUER_PATH=/tenant1 mounts the provider under that path (issuer http://127.0.0.1:PORT/tenant1);
// oidc-provider then serves OIDC discovery at <issuer>/.well-known/openid-configuration, and the RFC 8414
// path-inserted URL /.well-known/oauth-authorization-server/tenant1 is served too unless
// control.rfc8414_path is false.
//
// Without auto-approve the interaction pages are minimal HTML forms (login: #login + submit;
// consent: button#approve / button#deny) so a headless browser can drive them.

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
// `jose` is oidc-provider's own dependency (hoisted to node_modules/jose): it checks the proofs of the
// /test/resource route, as oidc-provider checks those of its token endpoint.
import {
  EmbeddedJWK, base64url, calculateJwkThumbprint, createRemoteJWKSet, jwtVerify,
} from 'jose';
import { Provider, errors } from 'oidc-provider';

// oidc-provider prints NOTICEs with console.info (stdout); stdout is reserved for the ready line.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const envFlag = (name) => ['1', 'true', 'yes'].includes(String(process.env[name] ?? '').toLowerCase());
const envInt = (name, fallback) => {
  const value = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(value) ? value : fallback;
};

const TEST_USER = 'test-user';
const opaqueAccessTokens = envFlag('AS_OPAQUE_ACCESS_TOKENS');
const cimd = envFlag('AS_CIMD');
const clientCredentials = envFlag('AS_CLIENT_CREDENTIALS');
// oidc-provider 9 enables DPoP by default (and then advertises dpop_signing_alg_values_supported, which
// makes context-harness bind its tokens): here only with AS_DPOP=1, so other tests get Bearer tokens.
const dpop = envFlag('AS_DPOP');
const dpopNonce = envFlag('AS_DPOP_NONCE');
const cimdFetchOrigin = process.env.AS_CIMD_FETCH_ORIGIN ?? '';
if (cimdFetchOrigin && !/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(cimdFetchOrigin)) {
  console.error(`AS_CIMD_FETCH_ORIGIN must be a loopback http origin: ${cimdFetchOrigin}`);
  process.exit(2);
}

// TEST-ONLY: client metadata documents come from the loopback origin (see AS_CIMD_FETCH_ORIGIN). The
// SSRF guard oidc-provider adds (its dispatcher refuses loopback addresses) is dropped for those requests.
function outgoingFetch(url, options) {
  const target = URL.parse(String(url));
  if (cimdFetchOrigin && target?.protocol === 'https:') {
    const local = new URL(`${target.pathname}${target.search}`, cimdFetchOrigin);
    const { dispatcher: _ssrfGuard, ...rest } = options ?? {};
    stats.cimd_fetches[target.href] = (stats.cimd_fetches[target.href] ?? 0) + 1;
    return globalThis.fetch(local, rest);
  }
  return globalThis.fetch(url, options);
}

const control = {
  auto_approve: envFlag('AS_AUTO_APPROVE'),
  login: TEST_USER,
  deny: envFlag('AS_DENY'),
  access_token_ttl: envInt('AS_ACCESS_TOKEN_TTL', 3600),
  omit_refresh_token: false,
  device_slow_down: 0,
  device_interval: null,
  device_code_ttl: 600,
  discovery_patch: null,
  rfc8414_path: true,
  rfc8414_path_html: false,
  revocation_fault: null,
  fault: process.env.AS_TOKEN_FAULT
    ? { mode: process.env.AS_TOKEN_FAULT, delay_ms: envInt('AS_TOKEN_FAULT_DELAY_MS', 10000) }
    : null,
};

const zeroStats = () => ({
  token_requests: 0,
  refresh_requests: 0,
  authorization_code_requests: 0,
  device_code_requests: 0,
  revocation_requests: 0,
  faults_served: 0,
  revocation_faults_served: 0,
  registration_requests: 0,
  device_authorization_requests: 0,
  well_known: {},
  response_modes: {},
  cimd_fetches: {},
  resource_requests: 0,
  resource_accepted: 0,
});
let stats = zeroStats();
// TEST-ONLY: secrets of the last token request, so a test can assert they never reach the logs.
let lastTokenRequest = {};

const args = process.argv.slice(2);
const exitOnStdinClose = args.includes('--exit-on-stdin-close');
const portArg = args.find((a) => !a.startsWith('--')) ?? process.env.AS_PORT ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port: ${portArg}`);
  process.exit(2);
}

const loopbackRedirects = [
  'http://localhost:8080/callback',
  'http://127.0.0.1:8080/callback',
  'http://[::1]:8080/callback',
];

const nativeClient = (extra) => ({
  application_type: 'native',
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  redirect_uris: loopbackRedirects,
  ...extra,
});

// A machine client (client credentials only: no user, no redirect).
const machineClient = (extra) => ({
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  ...extra,
});

// The public keys of `ch-machine-jwt` (AS_MACHINE_JWKS), if given.
const machineJwks = process.env.AS_MACHINE_JWKS ? JSON.parse(process.env.AS_MACHINE_JWKS) : null;

// The machine clients (AS_CLIENT_CREDENTIALS).
const machineClients = () => [
  machineClient({
    client_id: 'ch-machine',
    client_secret: 'ch-machine-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  }),
  machineClient({
    client_id: 'ch-machine-post',
    client_secret: 'ch-machine-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  }),
  ...(machineJwks
    ? [machineClient({
      client_id: 'ch-machine-jwt',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: machineJwks,
    })]
    : []),
];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(body);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, inner) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`
    + `<body><h1>${escapeHtml(title)}</h1>${inner}</body></html>`;
}

async function startServer() {
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actualPort = server.address().port;
  // Optional mount path (issuer with a path, for RFC 8414 path-insertion tests).
  const mountPath = (process.env.AS_ISSUER_PATH ?? '').replace(/\/+$/, '');
  if (mountPath && !/^\/[A-Za-z0-9._~/-]+$/.test(mountPath)) {
    throw new Error(`invalid AS_ISSUER_PATH: ${mountPath}`);
  }
  const origin = `http://127.0.0.1:${actualPort}`;
  const issuer = `${origin}${mountPath}`;

  const provider = new Provider(issuer, {
    clients: [
      nativeClient({ client_id: 'ch-public', token_endpoint_auth_method: 'none' }),
      nativeClient({
        client_id: 'ch-confidential',
        client_secret: 'ch-confidential-secret',
        token_endpoint_auth_method: 'client_secret_basic',
      }),
      nativeClient({
        client_id: 'ch-confidential-post',
        client_secret: 'ch-confidential-post-secret',
        token_endpoint_auth_method: 'client_secret_post',
      }),
      ...(clientCredentials ? machineClients() : []),
      {
        client_id: 'ch-introspector',
        client_secret: 'ch-introspector-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    cookies: { keys: ['context-harness-test-only-cookie-key'] },
    pkce: { required: () => true },
    fetch: outgoingFetch,
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      async claims() {
        return { sub, name: 'Test User', email: 'test-user@example.invalid', email_verified: true };
      },
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true, allowedPolicy: async () => true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      registration: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: clientCredentials },
      dPoP: dpopNonce
        ? { enabled: dpop, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: dpop },
      clientIdMetadataDocument: { enabled: cimd, ack: 'draft-02' },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        // Any loopback resource (a local MCP server in tests) is accepted.
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          const url = URL.parse(resourceIndicator);
          if (!url || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'mcp:tools mcp:resources',
            audience: resourceIndicator,
            accessTokenTTL: control.access_token_ttl,
            // A JWT so tests can read `aud` (= the resource) without introspection; opaque for resource
            // servers that introspect (AS_OPAQUE_ACCESS_TOKENS).
            accessTokenFormat: opaqueAccessTokens ? 'opaque' : 'jwt',
          };
        },
      },
    },
    ttl: {
      AccessToken: () => control.access_token_ttl,
      AuthorizationCode: 120,
      DeviceCode: () => control.device_code_ttl,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      ClientCredentials: () => control.access_token_ttl,
      Interaction: 600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    // Rotate on every use (OAuth 2.1 §4.3.1) unless a test asks for responses without a new RT.
    rotateRefreshToken: () => !control.omit_refresh_token,
  });
  provider.proxy = false;

  // Post-process token responses (TEST-ONLY hooks that need the provider's result).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.method === 'POST' && ctx.status === 200 && ctx.body
      && typeof ctx.body === 'object') {
      const grantType = ctx.oidc?.params?.grant_type;
      if (grantType === 'refresh_token' && control.omit_refresh_token) {
        delete ctx.body.refresh_token;
      }
      if (control.token_type_override) {
        ctx.body.token_type = control.token_type_override;
      }
    }
    if (['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'].includes(ctx.path)
      && ctx.status === 200 && ctx.body
      && typeof ctx.body === 'object' && control.discovery_patch) {
      for (const [key, value] of Object.entries(control.discovery_patch)) {
        if (value === null) delete ctx.body[key];
        else ctx.body[key] = value;
      }
    }
    if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && control.device_interval) {
      ctx.body.interval = control.device_interval;
    }
  });

  const providerCallback = provider.callback();

  async function interaction(req, res, url) {
    const parts = url.pathname.split('/').filter(Boolean); // interaction, uid, [action]
    const action = parts[2];
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/html' });
      res.end(page('Interaction expired', `<p>${escapeHtml(err.message)}</p>`));
      return;
    }
    const { uid, prompt, params, session } = details;

    const deny = () => provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });

    const login = (accountId) => provider.interactionFinished(req, res, {
      login: { accountId },
    }, { mergeWithLastSubmission: false });

    const consent = async () => {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details ?? {};
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      const result = { consent: details.grantId ? {} : { grantId } };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    };

    if (req.method === 'GET' && action === undefined) {
      if (control.deny) return deny();
      if (control.auto_approve) {
        if (prompt.name === 'login') return login(String(control.login || TEST_USER));
        return consent();
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      if (prompt.name === 'login') {
        res.end(page('Sign in', `<form method="post" action="/interaction/${uid}/login">`
          + `<input id="login" name="login" value="${TEST_USER}">`
          + '<button id="submit" type="submit">Sign in</button></form>'
          + `<form method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Cancel</button></form>`));
      } else {
        res.end(page('Authorize', `<p>Client <code>${escapeHtml(params.client_id)}</code> asks for `
          + `<code>${escapeHtml(params.scope ?? '')}</code>.</p>`
          + `<form method="post" action="/interaction/${uid}/confirm"><button id="approve" type="submit">Allow</button></form>`
          + `<form method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Deny</button></form>`));
      }
      return undefined;
    }
    if (req.method === 'POST' && action === 'login') {
      const form = new URLSearchParams(await readBody(req));
      return login(form.get('login') || TEST_USER);
    }
    if (req.method === 'POST' && action === 'confirm') return consent();
    if (req.method === 'POST' && action === 'abort') return deny();
    res.writeHead(404);
    res.end();
    return undefined;
  }

  async function tokenEndpoint(req, res) {
    const raw = await readBody(req);
    const form = new URLSearchParams(raw);
    const grantType = form.get('grant_type');
    lastTokenRequest = Object.fromEntries(
      ['grant_type', 'code', 'code_verifier', 'refresh_token', 'client_id', 'client_secret', 'redirect_uri',
        'scope', 'resource', 'assertion', 'client_assertion', 'client_assertion_type']
        .filter((k) => form.has(k)).map((k) => [k, form.get(k)]),
    );
    // The client-authentication scheme only (e.g. "Basic"), never the credentials.
    const scheme = (req.headers.authorization ?? '').split(' ')[0];
    if (scheme) lastTokenRequest.authorization_scheme = scheme;
    stats.token_requests += 1;
    if (grantType === 'refresh_token') stats.refresh_requests += 1;
    if (grantType === 'authorization_code') stats.authorization_code_requests += 1;
    if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      stats.device_code_requests += 1;
      if (control.device_slow_down > 0) {
        control.device_slow_down -= 1;
        return sendJson(res, 400, { error: 'slow_down', error_description: 'poll less often' });
      }
    }

    const fault = control.fault;
    if (fault && (!fault.grant_type || fault.grant_type === grantType)) {
      if (typeof fault.times === 'number') {
        fault.times -= 1;
        if (fault.times <= 0) control.fault = null;
      }
      stats.faults_served += 1;
      switch (fault.mode) {
        case '500':
          res.writeHead(500, { 'content-type': 'text/plain' });
          return res.end('internal server error');
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end('<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>');
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"access_token": tru\u0000\u00ff garbage');
        case 'reset':
          req.socket.resetAndDestroy?.() ?? req.socket.destroy();
          return undefined;
        case 'slow':
          await sleep(fault.delay_ms ?? 10000);
          return sendJson(res, 503, { error: 'temporarily_unavailable' });
        case 'invalid_grant':
          return sendJson(res, 400, { error: 'invalid_grant', error_description: 'grant request is invalid' });
        case '429':
        case '503': {
          const headers = { 'cache-control': 'no-store' };
          if (fault.retry_after !== undefined && fault.retry_after !== null) {
            headers['retry-after'] = String(fault.retry_after);
          }
          if (fault.body === 'text') {
            res.writeHead(Number(fault.mode), { ...headers, 'content-type': 'text/plain' });
            return res.end('Too Many Requests');
          }
          res.writeHead(Number(fault.mode), { ...headers, 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'try again later' }));
        }
        default:
          break;
      }
    }
    // Hand the already-read body to oidc-provider (it accepts a pre-parsed req.body).
    req.body = raw;
    return providerCallback(req, res);
  }

  // TEST-ONLY: finish a device-flow sign-in as the fixed user (approve) or refuse it (deny).
  async function deviceHook(req, res) {
    const { user_code: userCode, action } = JSON.parse((await readBody(req)) || '{}');
    const normalized = String(userCode ?? '').replace(/[^A-Za-z0-9]/g, '').toUpperCase();
    const code = await provider.DeviceCode.findByUserCode(normalized, { ignoreExpiration: true });
    if (!code) return sendJson(res, 404, { error: 'unknown user_code' });
    if (action === 'deny') {
      Object.assign(code, { error: 'access_denied', errorDescription: 'End-User denied the device sign-in' });
    } else {
      const grant = new provider.Grant({ accountId: TEST_USER, clientId: code.clientId });
      const scope = code.params?.scope ?? '';
      if (scope) grant.addOIDCScope(scope);
      const resource = code.params?.resource;
      if (resource) grant.addResourceScope(resource, 'mcp:tools mcp:resources');
      const grantId = await grant.save();
      Object.assign(code, {
        accountId: TEST_USER,
        authTime: Math.floor(Date.now() / 1000),
        grantId,
        scope,
        ...(resource ? { resource } : {}),
      });
    }
    await code.save();
    return sendJson(res, 200, { ok: true });
  }

  async function wellKnownProxy(res, target) {
    // Serve the path-inserted RFC 8414 URL with the provider's own (patched) OIDC document.
    const answer = await fetch(`${issuer}${target}`, { headers: { 'x-test-internal': '1' } });
    const body = await answer.text();
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(body);
  }

  // The DPoP resource (AS_DPOP; see the header comment). Proof `jti`s seen, with the time (epoch seconds)
  // after which a proof carrying one is too old anyway, so the replay cache forgets it.
  const seenJtis = new Map();
  const proofMaxAge = 60;
  const dpopAlgs = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA',
    'Ed25519'];
  let accessTokenKeys;
  class Refused extends Error {
    constructor(error, description) {
      super(description);
      this.error = error;
    }
  }
  // The claims of an access token this server issued (a JWT it signed, or an opaque one it stored).
  async function accessTokenClaims(token) {
    if (token.split('.').length === 3) {
      accessTokenKeys ??= createRemoteJWKSet(new URL(`${issuer}/jwks`));
      try {
        const { payload } = await jwtVerify(token, accessTokenKeys, { issuer, typ: 'at+jwt' });
        return { sub: payload.sub, jkt: payload.cnf?.jkt };
      } catch (err) {
        throw new Refused('invalid_token', `access token: ${err.message}`);
      }
    }
    const stored = await provider.AccessToken.find(token);
    if (!stored) throw new Refused('invalid_token', 'unknown or expired access token');
    return { sub: stored.accountId, jkt: stored.jkt };
  }
  async function checkResourceRequest(req, requestUrl) {
    const [scheme, token, ...extra] = String(req.headers.authorization ?? '').split(' ');
    if (!token || extra.length) throw new Refused('invalid_token', 'no access token');
    const claims = await accessTokenClaims(token);
    if (scheme.toLowerCase() !== 'dpop') {
      throw new Refused('invalid_token', claims.jkt ? 'a DPoP-bound token presented as Bearer' : 'not DPoP');
    }
    // A single DPoP header (RFC 9449 §4.3 check 1); node joins repeated ones with ", ".
    const proof = req.headers.dpop;
    if (typeof proof !== 'string' || proof.includes(',')) throw new Refused('invalid_dpop_proof', 'one DPoP header');
    let verified;
    try {
      verified = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt', algorithms: dpopAlgs, maxTokenAge: proofMaxAge, clockTolerance: 5, requiredClaims: ['jti'],
      });
    } catch (err) {
      throw new Refused('invalid_dpop_proof', `proof: ${err.message}`);
    }
    const { payload, protectedHeader } = verified;
    const now = Math.floor(Date.now() / 1000);
    for (const [jti, until] of seenJtis) if (until < now) seenJtis.delete(jti);
    if (typeof payload.jti !== 'string' || seenJtis.has(payload.jti)) {
      throw new Refused('invalid_dpop_proof', 'proof replayed (jti seen before)');
    }
    seenJtis.set(payload.jti, now + proofMaxAge + 10);
    if (payload.htm !== req.method) throw new Refused('invalid_dpop_proof', `htm is not ${req.method}`);
    const htu = URL.parse(String(payload.htu ?? ''));
    if (!htu || `${htu.origin}${htu.pathname}` !== `${requestUrl.origin}${requestUrl.pathname}`) {
      throw new Refused('invalid_dpop_proof', 'htu is not this URL');
    }
    if (payload.ath !== base64url.encode(createHash('sha256').update(token).digest())) {
      throw new Refused('invalid_dpop_proof', 'ath is not the hash of this access token');
    }
    const jkt = await calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
    if (!claims.jkt || claims.jkt !== jkt) throw new Refused('invalid_token', 'token not bound to the proof key');
    return { sub: claims.sub, jkt };
  }
  async function resourceRoute(req, res, requestUrl) {
    stats.resource_requests += 1;
    try {
      const { sub, jkt } = await checkResourceRequest(req, requestUrl);
      stats.resource_accepted += 1;
      return sendJson(res, 200, { ok: true, sub, jkt });
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      res.writeHead(401, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'www-authenticate': `DPoP error="${err.error}", algs="${dpopAlgs.join(' ')}"`,
      });
      return res.end(JSON.stringify({ error: err.error, error_description: err.message }));
    }
  }

  server.on('request', (req, res) => {
    // The URL the client sent (before any mount-path stripping): a proof's htu names it.
    const requestUrl = new URL(req.url, origin);
    let url = new URL(req.url, origin);
    if (url.pathname.includes('/.well-known/') && !req.headers['x-test-internal']) {
      stats.well_known[url.pathname] = (stats.well_known[url.pathname] ?? 0) + 1;
    }
    if (mountPath && url.pathname === `/.well-known/oauth-authorization-server${mountPath}`
      && req.method === 'GET' && control.rfc8414_path_html) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html><body><div id="app"></div></body></html>');
      return;
    }
    if (mountPath && url.pathname === `/.well-known/oauth-authorization-server${mountPath}`
      && req.method === 'GET' && control.rfc8414_path) {
      wellKnownProxy(res, '/.well-known/openid-configuration').catch(() => res.destroy());
      return;
    }
    if (mountPath && (url.pathname === mountPath || url.pathname.startsWith(`${mountPath}/`))) {
      // Mounted like express/koa `mount`: oidc-provider derives its mount path from originalUrl.
      req.originalUrl = req.url;
      req.url = req.url.slice(mountPath.length) || '/';
      url = new URL(req.url, origin);
    } else if (mountPath && !url.pathname.startsWith('/test/') && !url.pathname.startsWith('/interaction/')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not_found"}');
      return;
    }
    const run = async () => {
      if (url.pathname === '/test/stats' && req.method === 'GET') return sendJson(res, 200, stats);
      if (url.pathname === '/test/last-token-request' && req.method === 'GET') {
        return sendJson(res, 200, lastTokenRequest);
      }
      if (url.pathname === '/test/reset' && req.method === 'POST') {
        stats = zeroStats();
        return sendJson(res, 200, stats);
      }
      if (url.pathname === '/test/control') {
        if (req.method === 'POST') {
          const patch = JSON.parse((await readBody(req)) || '{}');
          Object.assign(control, patch);
        }
        return sendJson(res, 200, control);
      }
      if (url.pathname === '/test/device' && req.method === 'POST') return deviceHook(req, res);
      if (dpop && url.pathname === '/test/resource' && ['GET', 'POST'].includes(req.method)) {
        return resourceRoute(req, res, requestUrl);
      }
      if (url.pathname === '/test/revoke-access-token' && req.method === 'POST') {
        const { token } = JSON.parse((await readBody(req)) || '{}');
        const stored = await provider.AccessToken.find(String(token ?? ''));
        if (!stored) return sendJson(res, 404, { error: 'unknown access token' });
        await stored.destroy();
        return sendJson(res, 200, { ok: true });
      }
      if (url.pathname === '/test/delete-client' && req.method === 'POST') {
        const { client_id: clientId } = JSON.parse((await readBody(req)) || '{}');
        await provider.Client.adapter.destroy(clientId);
        return sendJson(res, 200, { ok: true });
      }
      if (url.pathname === '/reg' && req.method === 'POST') stats.registration_requests += 1;
      if (url.pathname === '/device/auth' && req.method === 'POST') stats.device_authorization_requests += 1;
      if (url.pathname === '/auth') {
        const mode = url.searchParams.get('response_mode') ?? 'query';
        stats.response_modes[mode] = (stats.response_modes[mode] ?? 0) + 1;
      }
      if (url.pathname.startsWith('/interaction/')) return interaction(req, res, url);
      if (url.pathname === '/token' && req.method === 'POST') return tokenEndpoint(req, res);
      if (url.pathname === '/token/revocation' && req.method === 'POST') {
        stats.revocation_requests += 1;
        const rf = control.revocation_fault;
        if (rf) {
          const raw = await readBody(req);
          const hint = new URLSearchParams(raw).get('token_type_hint');
          if (!rf.token_type_hint || rf.token_type_hint === hint) {
            if (typeof rf.times === 'number') {
              rf.times -= 1;
              if (rf.times <= 0) control.revocation_fault = null;
            }
            stats.revocation_faults_served += 1;
            return sendJson(res, 503, { error: 'temporarily_unavailable' });
          }
          req.body = raw;
        }
      }
      return providerCallback(req, res);
    };
    run().catch((err) => {
      console.error(err);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });

  process.stdout.write(`${JSON.stringify({ issuer, port: actualPort, pid: process.pid })}\n`);
}

const shutdown = () => process.exit(0);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (exitOnStdinClose) {
  // Exit with the parent: tests keep stdin open as a pipe, so a killed test run never leaves us behind.
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

startServer().catch((err) => {
  console.error(err);
  process.exit(1);
});
