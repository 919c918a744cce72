//! The floor `cargo xtask bench` compares `context-harness mcp token` against: the least a token command
//! can do. It reads `$CONTEXT_HARNESS_HOME/tokens/<provider>.json` (the file store's format), checks the
//! expiry with the same margin, `min(60 s, half the lifetime)`, and prints the access token. It parses the JSON with `serde_json`
//! like the real program does, so the comparison is fair, and does nothing else.
//!
//! Usage: `CONTEXT_HARNESS_HOME=DIR token-floor PROVIDER`. Exit 0 with the token on stdout, 1 when it is
//! missing, unreadable or expired.

#![allow(clippy::print_stderr)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// The cap of the margin `context-harness` uses before an access token's expiry (`min(cap, lifetime / 2)`).
const EXPIRY_BUFFER_SECS: f64 = 60.0;

fn main() -> ExitCode {
    let (Some(home), Some(provider)) = (
        std::env::var_os("CONTEXT_HARNESS_HOME"),
        std::env::args().nth(1),
    ) else {
        eprintln!("usage: CONTEXT_HARNESS_HOME=DIR token-floor PROVIDER");
        return ExitCode::FAILURE;
    };
    let path = PathBuf::from(home)
        .join("tokens")
        .join(format!("{provider}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return ExitCode::FAILURE;
    };
    let Ok(tokens) = serde_json::from_str::<serde_json::Value>(&text) else {
        return ExitCode::FAILURE;
    };
    let Some(access_token) = tokens["access_token"].as_str() else {
        return ExitCode::FAILURE;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let (Some(issued_at), Some(expires_in)) =
        (tokens["issued_at"].as_f64(), tokens["expires_in"].as_f64())
        && now + EXPIRY_BUFFER_SECS.min(expires_in / 2.0) >= issued_at + expires_in
    {
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{access_token}").is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
