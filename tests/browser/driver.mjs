#!/usr/bin/env node
// TEST-ONLY browser driver: the CLI's $BROWSER in the end-to-end test. Opens the authorization URL in
// headless Chromium (playwright-core), signs in and approves on the local authorization server's
// interaction pages with real form submits, and waits for the loopback callback's success page.
//
// Usage: BROWSER="node tests/browser/driver.mjs [--chromium=PATH] [--node-modules=DIR] [--log=FILE]
//          [--action=approve|deny]" context-harness mcp auth local
//   (the CLI appends the URL as the last argument)
// Options (each also read from the environment variable named after it, for running the driver by
// hand; the CLI starts its browser with an allowlisted environment that does not pass those on, so
// tests give them as arguments in BROWSER):
//   --chromium       CONTEXT_HARNESS_TEST_CHROMIUM       Chromium binary (default /usr/bin/chromium)
//   --node-modules   CONTEXT_HARNESS_TEST_NODE_MODULES   node_modules holding playwright-core
//                                                        (default ../authorization-server/node_modules)
//   --log            CONTEXT_HARNESS_TEST_BROWSER_LOG    file to append diagnostics to (the CLI
//                                                        discards our output)
//   --action         CONTEXT_HARNESS_TEST_BROWSER_ACTION approve (default) | deny
// Exit 0 once the success page ("Signed in") is shown (or, for deny, the "Sign-in cancelled" page).

import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// `--name=value` from the arguments, else the environment variable `env`.
function option(name, env) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg ? arg.slice(prefix.length) : process.env[env];
}
const nodeModules = option('node-modules', 'CONTEXT_HARNESS_TEST_NODE_MODULES')
  || join(here, '..', 'authorization-server', 'node_modules');
const executablePath = option('chromium', 'CONTEXT_HARNESS_TEST_CHROMIUM') || '/usr/bin/chromium';
const action = option('action', 'CONTEXT_HARNESS_TEST_BROWSER_ACTION') || 'approve';
const logFile = option('log', 'CONTEXT_HARNESS_TEST_BROWSER_LOG');
const start = process.argv.slice(2).filter((a) => !a.startsWith('--')).pop();

function log(message) {
  const line = `[driver ${new Date().toISOString()}] ${message}\n`;
  process.stderr.write(line);
  if (logFile) {
    appendFileSync(logFile, line);
  }
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Whether the page is (or was, when it is already navigating away) a response_mode=form_post page:
// a form POSTing to the loopback redirect URI.
async function autoSubmitsToRedirect(page, redirectUri) {
  if (page.url().startsWith(redirectUri)) return true;
  try {
    const actions = await page.locator('form[method="post"]').evaluateAll((forms) => forms.map((f) => f.action));
    return actions.some((a) => a.startsWith(redirectUri));
  } catch {
    // The page navigated while being read: the auto-submit is under way.
    return page.url().startsWith(redirectUri) || (await page.title().catch(() => '')) === 'Submitting Callback';
  }
}

async function main() {
  if (!start) throw new Error('usage: driver.mjs URL');
  const redirectUri = new URL(start).searchParams.get('redirect_uri');
  if (!redirectUri) throw new Error('the URL has no redirect_uri');
  const require = createRequire(join(nodeModules, 'noop.js'));
  const { chromium } = require('playwright-core');

  const userDataDir = mkdtempSync(join(tmpdir(), 'ch-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    log(`opening ${new URL(start).origin}${new URL(start).pathname}`);
    await page.goto(start, { waitUntil: 'load' });
    for (let step = 0; step < 10; step += 1) {
      if (page.url().startsWith(redirectUri)) break;
      const submit = page.locator('#submit');
      const approve = page.locator('#approve');
      const deny = page.locator('#deny');
      if (await submit.count()) {
        log('login page: submitting the sign-in form');
        await page.fill('#login', 'test-user');
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), submit.click()]);
      } else if (await approve.count()) {
        const button = action === 'deny' ? deny : approve;
        log(`consent page: clicking ${action}`);
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
      } else if (await autoSubmitsToRedirect(page, redirectUri)) {
        // response_mode=form_post: the server's page POSTs code and state to the redirect URI itself.
        log('form_post page: waiting for its auto-submit to reach the loopback redirect');
        await page.waitForURL((u) => u.href.startsWith(redirectUri), { waitUntil: 'load' });
      } else {
        const title = await page.title();
        throw new Error(`unexpected page ${new URL(page.url()).pathname}: ${title}`);
      }
    }
    if (!page.url().startsWith(redirectUri)) throw new Error('never reached the loopback redirect');
    const heading = (await page.locator('h1').textContent()) ?? '';
    log(`loopback page: ${heading}`);
    const expected = action === 'deny' ? 'Sign-in cancelled' : 'Signed in';
    if (heading.trim() !== expected) throw new Error(`expected "${expected}", got "${heading}"`);
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err) => {
  log(`error: ${err.stack ?? err.message}`);
  process.exit(1);
});
