//! Listener configuration.

use std::time::Duration;

use crate::error::{Error, Result};

/// The ports tried by default, in order (what users of the Python original registered).
pub const DEFAULT_PORTS: [u16; 3] = [8080, 3000, 57548];

/// The default redirect path.
pub const DEFAULT_PATH: &str = "/callback";

/// How long [`CallbackServer::wait`](crate::CallbackServer::wait) waits by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a client may take to send its request headers by default (slowloris guard).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections are served at once by default; further ones wait in the backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Which host name the advertised redirect URI uses.
///
/// The listener always binds loopback only (`127.0.0.1`, plus `[::1]` where the host has
/// IPv6); this only chooses the spelling sent to the authorization server, which must match
/// what is registered there exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedirectHost {
    /// `http://localhost:{port}/callback`: the default, what users of the Python original register. Both
    /// address families are bound so whichever one the browser resolves `localhost` to reaches
    /// this listener.
    #[default]
    Localhost,
    /// `http://127.0.0.1:{port}/callback`: the IP literal RFC 8252 §8.3 recommends. Requires
    /// IPv4 loopback.
    Ipv4,
    /// `http://[::1]:{port}/callback`. Requires IPv6 loopback.
    Ipv6,
}

impl RedirectHost {
    /// The host as written in a URI: `localhost`, `127.0.0.1` or `[::1]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Localhost => "localhost",
            Self::Ipv4 => "127.0.0.1",
            Self::Ipv6 => "[::1]",
        }
    }
}

/// Settings for [`CallbackServer::bind`](crate::CallbackServer::bind).
///
/// Start from [`CallbackConfig::default()`] and adjust with the `with_*` methods or by assigning
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackConfig {
    /// Ports to try, in order; the first one free on loopback wins. `0` asks the system for an
    /// ephemeral port, for authorization servers that accept any loopback port (RFC 8252 §7.3).
    /// Default: [`DEFAULT_PORTS`].
    pub ports: Vec<u16>,
    /// Host spelling of the advertised redirect URI. Default: [`RedirectHost::Localhost`].
    pub host: RedirectHost,
    /// Redirect path; only `GET` requests to exactly this path count. Default: `/callback`.
    pub path: String,
    /// How long [`CallbackServer::wait`](crate::CallbackServer::wait) waits for a valid
    /// response, counted from the call. Default: 300 s.
    pub timeout: Duration,
    /// How long one client may take to send its request headers (slowloris guard; at most an
    /// hour is applied). Default: 10 s.
    pub header_read_timeout: Duration,
    /// Connections served at once **per listener** (IPv4 and IPv6 each have their own, so one
    /// family cannot starve the other). When a listener is full, a new connection evicts the
    /// oldest one that has not sent a complete request head yet. Default: 16.
    pub max_connections: usize,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            ports: DEFAULT_PORTS.to_vec(),
            host: RedirectHost::default(),
            path: DEFAULT_PATH.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl CallbackConfig {
    /// The default configuration (ports 8080, 3000, 57548; `localhost`; `/callback`; 300 s).
    pub fn new() -> Self {
        Self::default()
    }

    context_harness_tokens::builder_setters! {
        /// Sets the ports to try, in order (`0` for an ephemeral port).
        #[must_use]
        pub fn with_ports(ports: impl Into<Vec<u16>>) => ports = ports.into();

        /// Sets the host spelling of the redirect URI.
        #[must_use]
        pub fn with_host(host: RedirectHost) => host = host;

        /// Sets the redirect path (must start with `/`).
        #[must_use]
        pub fn with_path(path: impl Into<String>) => path = path.into();

        /// Sets how long to wait for the authorization response.
        #[must_use]
        pub fn with_timeout(timeout: Duration) => timeout = timeout;

        /// Sets how long one client may take to send its request headers.
        #[must_use]
        pub fn with_header_read_timeout(timeout: Duration) => header_read_timeout = timeout;

        /// Sets how many connections are served at once.
        #[must_use]
        pub fn with_max_connections(max: usize) => max_connections = max;
    }

    /// The redirect URI this configuration advertises for `port`, e.g.
    /// `http://localhost:8080/callback`. Built from the same code the listener uses, so what
    /// is registered and what is sent cannot drift apart.
    pub fn redirect_uri_for(&self, port: u16) -> String {
        format!("http://{}:{}{}", self.host.as_str(), port, self.path)
    }

    /// The redirect URIs of every fixed port in [`ports`](Self::ports), in order (ephemeral `0`
    /// entries are skipped): what to register with dynamic client registration.
    pub fn redirect_uris(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter(|&&p| p != 0)
            .map(|&p| self.redirect_uri_for(p))
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason| Err(Error::InvalidConfig { reason });
        if self.ports.is_empty() {
            return invalid("no ports to try");
        }
        if !valid_path(&self.path) {
            return invalid("path must start with '/' and contain only unreserved path characters");
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1");
        }
        if self.header_read_timeout.is_zero() {
            return invalid("header_read_timeout must be greater than zero");
        }
        Ok(())
    }
}

/// A path of RFC 3986 `pchar`s and `/`, without percent-encoding, query or fragment, so that
/// comparing it with the request path byte for byte is exact.
fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn default_redirect_uris_match_the_seed() {
        let c = CallbackConfig::default();
        assert_eq!(
            c.redirect_uris(),
            [
                "http://localhost:8080/callback",
                "http://localhost:3000/callback",
                "http://localhost:57548/callback"
            ]
        );
        let c = c.with_host(RedirectHost::Ipv4).with_ports([0, 3000]);
        assert_eq!(c.redirect_uris(), ["http://127.0.0.1:3000/callback"]);
        assert_eq!(
            c.with_host(RedirectHost::Ipv6).redirect_uri_for(1),
            "http://[::1]:1/callback"
        );
    }

    #[test]
    fn validation() {
        assert!(CallbackConfig::default().validate().is_ok());
        let bad = [
            CallbackConfig::default().with_ports([]),
            CallbackConfig::default().with_path("callback"),
            CallbackConfig::default().with_path("/a?b"),
            CallbackConfig::default().with_path("/a#b"),
            CallbackConfig::default().with_path("/a%20b"),
            CallbackConfig::default().with_path("/a b"),
            CallbackConfig::default().with_max_connections(0),
            CallbackConfig::default().with_header_read_timeout(Duration::ZERO),
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(Error::InvalidConfig { .. })),
                "{c:?}"
            );
        }
    }
}
