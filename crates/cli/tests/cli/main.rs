//! End-to-end tests of the `context-harness` binary.
//!
//! Every test runs the built binary (`CARGO_BIN_EXE_context-harness`) in its own temporary home,
//! configured only through the child's environment (`--storage file`, so the developer's keyring is
//! never touched). Flows run against the repository's local `oidc-provider` server
//! (`tests/authorization-server`); the browser is `tests/browser/driver.mjs` (headless Chromium) or
//! `tests/browser/follow.mjs` (plain HTTP, for a server in auto-approve or deny mode). When node, the
//! server's `node_modules` or Chromium are missing, a test prints a note and passes, except with
//! `CI=true`, where it fails.

// Tests panic on failure by design, and print notes when a prerequisite is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod accounts;
mod argv_secrets;
mod basic;
mod binary;
mod browser;
mod browser_env;
mod conformance;
mod dpop;
mod dpop_oidc;
mod exec;
mod first_run;
mod flows;
mod forged;
mod git_credential;
mod grants;
mod headers_helper;
mod hostile;
mod hostile_log;
#[path = "../../../providers/tests/integration/hostile_stub.rs"]
mod hostile_stub;
mod id_jag;
mod interop;
mod lifecycle;
mod mcp;
mod names;
mod one_sign_in;
mod proxy;
mod proxy_2026;
mod proxy_auth;
mod proxy_bounds;
mod proxy_python;
mod proxy_redirect;
mod quirks;
mod registration_secrets;
mod secrets;
mod strict;
// Shared with the providers' integration tests: a self-signed HTTPS stub made with `openssl`.
#[path = "../../../providers/tests/integration/tls_stub.rs"]
mod tls_stub;
mod util;
