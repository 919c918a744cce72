//! Integration tests for `context-harness-providers`: one binary, one module per topic.
//!
//! Most scenarios run against the repository's real authorization server (`tests/authorization-server`,
//! node `oidc-provider`), started per test on an ephemeral loopback port. Without `node_modules` there
//! they print a note and pass, except under `CI=true`, where that is a failure. GitHub's quirks use a
//! small local stub (`github_stub.rs`).

// Test code: unwrap/expect/panic are the assertions, and the child-process protocol prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod accounts;
mod browser_env;
mod cimd;
mod dpop_library;
mod embed;
mod flows;
mod github_stub;
mod hostile;
mod hostile_logs;
mod hostile_stub;
mod interop;
mod interop_net;
mod lifecycle;
mod mcp;
mod mcp_security;
mod offline;
mod one_sign_in;
mod recovery;
mod ssrf;
mod ssrf_proxy;
mod support;
mod tls_stub;
