//! The bundled local authorization server (`tests/authorization-server/server.mjs`, node oidc-provider) as
//! `demo` and `bench` use it: start it on an ephemeral loopback port, talk to its `/test/*` hooks, write a
//! `providers.toml` entry for it, and point `BROWSER` at the stand-in browser `tests/browser/follow.mjs`.
//!
//! std only: a few lines of HTTP/1.1 over `TcpStream` and a tiny JSON field reader are enough for the
//! server's one-line answers, and keep xtask's dependencies minimal (as `xtask/Cargo.toml` asks).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The public native client the server registers (PKCE, no secret).
pub(crate) const PUBLIC_CLIENT: &str = "ch-public";

/// The stand-in browser script, relative to the root.
const FOLLOW_SCRIPT: &str = "tests/browser/follow.mjs";

/// A running local authorization server (started by `context-harness-test-support`); stopped on drop.
#[derive(Debug)]
pub(crate) struct AuthServer {
    _server: context_harness_test_support::AuthorizationServer,
    /// `http://127.0.0.1:PORT`.
    pub(crate) issuer: String,
    /// The TCP port.
    pub(crate) port: u16,
}

impl AuthServer {
    /// Starts `server.mjs` on an ephemeral port with these `AS_*` variables and waits for its ready line.
    /// The server's own log goes to `log` (it only writes diagnostics there).
    pub(crate) fn start(root: &Path, env: &[(&str, &str)], log: &Path) -> Result<Self> {
        let server = context_harness_test_support::AuthorizationServer::start(
            root,
            env,
            context_harness_test_support::ServerLog::File(log.to_path_buf()),
        )
        .map_err(|e| anyhow::anyhow!("the local authorization server did not start: {e}"))?;
        Ok(Self {
            issuer: server.issuer().to_owned(),
            port: server.port(),
            _server: server,
        })
    }

    /// `POST /test/reset`: zero the counters.
    pub(crate) fn reset_stats(&self) -> Result<()> {
        self.request("POST", "/test/reset", "").map(drop)
    }

    /// `GET /test/stats` → `refresh_requests`.
    pub(crate) fn refresh_requests(&self) -> Result<u64> {
        let body = self.request("GET", "/test/stats", "")?;
        json_number(&body, "refresh_requests")
            .map(|n| n as u64)
            .with_context(|| format!("unexpected /test/stats answer: {body}"))
    }

    /// One HTTP/1.1 request to the server; returns the body of a 2xx answer.
    fn request(&self, method: &str, path: &str, body: &str) -> Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("cannot connect to {}", self.issuer))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let ok = head
            .split_whitespace()
            .nth(1)
            .is_some_and(|s| s.starts_with('2'));
        if !ok {
            bail!(
                "{method} {path}: {}",
                head.lines().next().unwrap_or("no answer")
            );
        }
        Ok(body.to_owned())
    }

    /// A `[providers.NAME]` entry for this server (public client, refresh tokens, the loopback `ports`
    /// tried in order; 0 = any free port).
    pub(crate) fn providers_toml(&self, name: &str, display_name: &str, ports: &[u16]) -> String {
        let issuer = &self.issuer;
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let ports = ports.join(", ");
        format!(
            r#"# Written by `cargo xtask`: the bundled local authorization server (test-only, loopback).
[providers.{name}]
display_name = "{display_name}"
auth_url = "{issuer}/auth"
token_url = "{issuer}/token"
revocation_url = "{issuer}/token/revocation"
issuer = "{issuer}"
iss_parameter_supported = true
client_id = "{PUBLIC_CLIENT}"
scopes = ["openid", "offline_access"]
# oidc-provider issues a refresh token for offline_access only with prompt=consent.
extra_auth_params = {{ prompt = "consent" }}
redirect_host = "127.0.0.1"
ports = [{ports}]
"#
        )
    }
}

/// The `BROWSER` value that runs the stand-in browser (plain HTTP, follows the redirects of an auto-approving
/// server until the loopback callback).
pub(crate) fn follow_browser(root: &Path) -> String {
    format!("node {}", root.join(FOLLOW_SCRIPT).display())
}

/// Where a provider's tokens live in the file store of `home`.
pub(crate) fn token_file(home: &Path, provider: &str) -> PathBuf {
    home.join("tokens").join(format!("{provider}.json"))
}

/// A loopback port that is free right now (bound and released at once). Like the CLI's default 8080, a
/// fixed port spares the kernel's search for a free ephemeral port at every bind.
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The span of the value of `"key":` in flat JSON text (after the colon and any spaces).
fn value_start(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let after_key = text.find(&needle)? + needle.len();
    let rest = &text[after_key..];
    let colon = rest.find(|c: char| !c.is_whitespace())?;
    if !rest[colon..].starts_with(':') {
        return None;
    }
    let value = &rest[colon + 1..];
    let skip = value.find(|c: char| !c.is_whitespace())?;
    Some(after_key + colon + 1 + skip)
}

/// The number at `"key":` in JSON text (first occurrence), with its byte range.
pub(crate) fn json_number_span(text: &str, key: &str) -> Option<(f64, std::ops::Range<usize>)> {
    let start = value_start(text, key)?;
    let len = text[start..]
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(text.len() - start);
    let value = text[start..start + len].parse().ok()?;
    Some((value, start..start + len))
}

/// The number at `"key":` in JSON text (first occurrence).
pub(crate) fn json_number(text: &str, key: &str) -> Option<f64> {
    json_number_span(text, key).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_read() {
        let line = r#"{"issuer":"http://127.0.0.1:4321","port":4321,"pid":7}"#;
        assert_eq!(json_number(line, "port"), Some(4321.0));
        let pretty = "{\n  \"issued_at\": 1700000000.25,\n  \"expires_in\": 3600\n}";
        let (v, span) = json_number_span(pretty, "issued_at").unwrap_or((0.0, 0..0));
        assert!((v - 1_700_000_000.25).abs() < 1e-6);
        assert_eq!(&pretty[span], "1700000000.25");
        assert_eq!(json_number(pretty, "missing"), None);
    }
}
