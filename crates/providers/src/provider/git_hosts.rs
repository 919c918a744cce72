//! Which provider's access tokens are the HTTPS credentials of a git host, for git credential
//! helpers (`context-harness git-credential`): [`OAuthProvider::git_hosts`] and
//! [`OAuthProvider::serves_git_host`].
//!
//! An entry is `host` or `host:port` (ASCII: an IDN host in its punycode form), compared without
//! regard to ASCII case. An entry without a port matches the default port of the request's scheme
//! (443 for `https`), so `github.com` matches `https://github.com/…` and `https://github.com:443/…`.

use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::provider::{OAuthProvider, is_loopback_host};

/// Providers whose name alone maps a git host: the built-in `github` → `github.com` and the
/// built-in `gitlab` → `gitlab.com`. A provider's own `git_hosts` replaces this.
pub(crate) const WELL_KNOWN: [(&str, &str); 2] =
    [("github", "github.com"), ("gitlab", "gitlab.com")];

/// The [`WELL_KNOWN`] git hosts of a provider called `name` (none for other names).
pub(crate) fn well_known(name: &str) -> Vec<String> {
    WELL_KNOWN
        .iter()
        .filter(|(provider, _)| *provider == name)
        .map(|(_, host)| (*host).to_owned())
        .collect()
}

/// `(host, port)` of `authority` (`host` or `host:port`, git's `host` attribute): the host
/// lower-cased (as a URL has it: IPv6 in brackets), the port as written (`None` when absent).
/// `None` when it is not a plain authority (user info, a path, a query, characters outside a host
/// name, a port out of range).
fn host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    // Parsed as an https URL for the host rules (and so that a default port is not kept apart).
    let url = Url::parse(&format!("https://{authority}/")).ok()?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())?
        .to_ascii_lowercase();
    let port = match authority.rsplit_once(':') {
        Some((before, digits)) if !before.contains(':') || before.ends_with(']') => {
            Some(digits.parse::<u16>().ok()?)
        }
        _ => None,
    };
    (url.username().is_empty() && url.password().is_none() && url.path() == "/")
        .then_some((host, port))
}

/// Checks a provider's `git_hosts` entries (each a plain `host` or `host:port`).
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] naming `providers.<provider>.git_hosts` and the entry.
pub(crate) fn check(entries: &[String], provider: &str) -> Result<()> {
    match entries.iter().find(|e| host_port(e).is_none()) {
        None => Ok(()),
        Some(bad) => Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "providers.{provider}.git_hosts: `{}` is not a host name or host:port (e.g. \"git.example.com\" or \"git.example.com:8443\")",
                crate::terminal_text(bad)
            ),
        )
        .with_hint(format!(
            "fix providers.{provider}.git_hosts: host names only, no scheme, user or path"
        ))),
    }
}

impl OAuthProvider {
    /// Whether this provider's access tokens are the credentials of a git remote, from git's
    /// credential attributes `protocol` and `host` (the host name and, when the URL gave one, its
    /// port): the host is one of [`git_hosts`](Self::git_hosts). Only `https` remotes qualify, and
    /// `http` to a loopback host (tests, local mirrors): a token never goes over plain HTTP to
    /// another machine. An entry without a port matches the scheme's default port.
    ///
    /// ```
    /// use context_harness_providers::ProviderRegistry;
    ///
    /// let registry = ProviderRegistry::from_toml_str(
    ///     "[providers.acme]\nissuer = \"https://sso.acme.example\"\ngit_hosts = [\"git.acme.example:8443\"]\n",
    ///     "providers.toml",
    /// )?;
    /// let serving = |protocol: &str, host: &str| -> Vec<String> {
    ///     let providers = registry.iter().map(|(p, _)| p);
    ///     providers.filter(|p| p.serves_git_host(protocol, host)).map(|p| p.name.clone()).collect()
    /// };
    /// assert_eq!(serving("https", "github.com"), ["github"]);
    /// assert_eq!(serving("https", "GitHub.com:443"), ["github"]);
    /// assert_eq!(serving("https", "git.acme.example:8443"), ["acme"]);
    /// assert!(serving("https", "git.acme.example").is_empty());
    /// assert!(serving("http", "github.com").is_empty());
    /// # Ok::<(), context_harness_providers::Error>(())
    /// ```
    pub fn serves_git_host(&self, protocol: &str, host: &str) -> bool {
        let scheme = protocol.to_ascii_lowercase();
        let Some((name, port)) = host_port(host) else {
            return false;
        };
        let allowed = match scheme.as_str() {
            "https" => true,
            "http" => Url::parse(&format!("http://{host}/"))
                .ok()
                .and_then(|u| u.host().map(|h| is_loopback_host(&h)))
                .unwrap_or(false),
            _ => false,
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let wanted = (name, port.unwrap_or(default_port));
        allowed
            && self.git_hosts.iter().any(|entry| {
                host_port(entry).is_some_and(|(h, p)| (h, p.unwrap_or(default_port)) == wanted)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hosts(hosts: &[&str]) -> OAuthProvider {
        let mut provider = OAuthProvider::from_issuer("acme", "https://sso.acme.example")
            .unwrap_or_else(|e| panic!("{e}"));
        provider.git_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        provider
    }

    #[test]
    fn built_in_and_well_known_hosts() {
        let github = OAuthProvider::github();
        assert!(github.serves_git_host("https", "github.com"));
        assert!(github.serves_git_host("HTTPS", "GitHub.COM:443"));
        let gitlab = OAuthProvider::new(
            "gitlab",
            "https://gitlab.com/oauth/authorize",
            "https://gitlab.com/oauth/token",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(gitlab.git_hosts, ["gitlab.com"]);
        assert!(gitlab.serves_git_host("https", "gitlab.com"));
        assert!(!gitlab.serves_git_host("https", "github.com"));
        assert!(with_hosts(&[]).git_hosts.is_empty());
        // Other ports, other hosts, other schemes, plain http to a public host: no.
        for (protocol, host) in [
            ("https", "github.com:8443"),
            ("https", "api.github.com"),
            ("http", "github.com"),
            ("ssh", "github.com"),
            ("https", ""),
            ("https", "user@github.com"),
            ("https", "github.com/path"),
        ] {
            assert!(!github.serves_git_host(protocol, host), "{protocol} {host}");
        }
    }

    #[test]
    fn ports_and_loopback_http() {
        let acme = with_hosts(&["Git.Acme.example", "127.0.0.1:8080", "[::1]:9"]);
        assert!(acme.serves_git_host("https", "git.acme.example"));
        assert!(acme.serves_git_host("https", "git.acme.example:443"));
        assert!(acme.serves_git_host("http", "127.0.0.1:8080"));
        assert!(acme.serves_git_host("http", "[::1]:9"));
        assert!(!acme.serves_git_host("http", "git.acme.example"));
        assert!(!acme.serves_git_host("http", "127.0.0.1:8081"));
        assert!(!acme.serves_git_host("https", "127.0.0.1"));
        // A port written out is compared as written, the default one included.
        let explicit = with_hosts(&["127.0.0.1:443", "git.example:443"]);
        assert!(explicit.serves_git_host("http", "127.0.0.1:443"));
        assert!(!explicit.serves_git_host("http", "127.0.0.1"));
        assert!(explicit.serves_git_host("https", "git.example"));
    }

    #[test]
    fn bad_entries_are_config_errors() {
        for bad in [
            "https://git.example",
            "user@git.example",
            "git.example/x",
            "",
            "a b",
            "git.example:99999",
            "git.example:",
            "::1",
        ] {
            let err = with_hosts(&[bad]).validate().err();
            assert_eq!(
                err.as_ref().map(Error::code),
                Some(ErrorCode::ConfigInvalid),
                "{bad}"
            );
            assert!(
                err.is_some_and(|e| e.to_string().contains("providers.acme.git_hosts")),
                "{bad}"
            );
        }
        assert!(
            with_hosts(&["git.example:8443", "10.0.0.1"])
                .validate()
                .is_ok()
        );
    }
}
