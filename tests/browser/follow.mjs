#!/usr/bin/env node
// TEST-ONLY "browser" without a browser: follows an authorization URL through the local
// authorization server with plain HTTP (keeping cookies), for a server in auto-approve or deny mode.
//
// Usage: node follow.mjs [--print] [--log=FILE] AUTHORIZATION_URL
//   default  requests the final loopback redirect too, like a browser would (the CLI's listener
//            receives it); exit 0 when that request got an answer.
//   --print  does NOT request the loopback redirect; prints its URL on stdout instead (the test
//            pastes it into `mcp auth --no-browser`).
// Diagnostics go to stderr and, when --log=FILE is given (or CONTEXT_HARNESS_TEST_BROWSER_LOG names
// a file, for running it by hand: the CLI starts $BROWSER with an allowlisted environment that does
// not pass that variable on), are appended there too (the CLI discards $BROWSER's stdout/stderr).
// Node >= 18 (global fetch); no npm packages.

import { appendFileSync } from 'node:fs';

const args = process.argv.slice(2);
const printOnly = args.includes('--print');
const start = args.filter((a) => !a.startsWith('--')).pop();
const logFile = args.find((a) => a.startsWith('--log='))?.slice('--log='.length)
  || process.env.CONTEXT_HARNESS_TEST_BROWSER_LOG;

function log(message) {
  const line = `[follow ${new Date().toISOString()}] ${message}\n`;
  process.stderr.write(line);
  if (logFile) {
    appendFileSync(logFile, line);
  }
}

async function main() {
  if (!start) throw new Error('usage: follow.mjs [--print] URL');
  const redirectUri = new URL(start).searchParams.get('redirect_uri');
  if (!redirectUri) throw new Error('the URL has no redirect_uri');
  const cookies = new Map();
  let url = start;
  for (let hop = 0; hop < 20; hop += 1) {
    if (url.startsWith(redirectUri)) {
      if (printOnly) {
        process.stdout.write(`${url}\n`);
        log('printed the loopback redirect (not requested)');
        return;
      }
      const res = await fetch(url, { redirect: 'manual' });
      const body = await res.text();
      const title = /<title>([^<]*)<\/title>/.exec(body)?.[1] ?? '';
      log(`loopback answered ${res.status}: ${title}`);
      return;
    }
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const location = res.headers.get('location');
    if (!location || res.status < 300 || res.status >= 400) {
      const body = await res.text();
      throw new Error(`stuck at ${new URL(url).pathname}: HTTP ${res.status} ${body.slice(0, 200)}`);
    }
    url = new URL(location, url).href;
    log(`HTTP ${res.status} -> ${new URL(url).origin}${new URL(url).pathname}`);
  }
  throw new Error('too many redirects');
}

main().catch((err) => {
  log(`error: ${err.message}`);
  process.exit(1);
});
