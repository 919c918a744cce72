//! Which provider's access tokens are the HTTPS credentials of a git host, for git credential
//! helpers (`context-harness git-credential`): [`OAuthProvider::git_hosts`] and
//! [`ProviderRegistry::git_host_provider`].
//!
//! An entry is `host` or `host:port` (ASCII: an IDN host in its punycode form), compared without
//! regard to ASCII case. An entry without a port matches the default port of the request's scheme
//! (443 for `https`), so `github.com` matches `https://github.com/…` and `https://github.com:443/…`.

use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::provider::{OAuthProvider, is_loopback_host};
use crate::registry::ProviderRegistry;

/// Providers whose name alone maps a git host: the built-in `github` → `github.com`, and a
/// provider named `gitlab` (none is built in: a `[providers.gitlab]` of `providers.toml`) →
/// `gitlab.com`. A provider's own `git_hosts` replaces this.
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

/// `(host, port)` of `authority` (`host` or `host:port`, git's `host` attribute) under `scheme`:
/// the host lower-cased, the port `None` when absent or the scheme's default. `None` when it is not
/// a plain authority (user info, a path, a query, characters outside a host name).
fn host_port(scheme: &str, authority: &str) -> Option<(String, Option<u16>)> {
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    let url = Url::parse(&format!("{scheme}://{authority}/")).ok()?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())?
        .to_ascii_lowercase();
    (url.username().is_empty() && url.password().is_none() && url.path() == "/")
        .then_some((host, url.port()))
}

/// Checks a provider's `git_hosts` entries (each a plain `host` or `host:port`).
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] naming `providers.<provider>.git_hosts` and the entry.
pub(crate) fn check(entries: &[String], provider: &str) -> Result<()> {
    match entries.iter().find(|e| host_port("https", e).is_none()) {
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

impl ProviderRegistry {
    /// The provider whose access tokens are the credentials of a git remote, from git's credential
    /// attributes `protocol` and `host` (the host name and, when the URL gave one, its port): the
    /// provider listing that host in its [`git_hosts`](OAuthProvider::git_hosts). Only `https`
    /// remotes are answered, and `http` to a loopback host (tests, local mirrors): a token never
    /// goes over plain HTTP to another machine.
    ///
    /// ```
    /// use context_harness_providers::ProviderRegistry;
    ///
    /// let registry = ProviderRegistry::from_toml_str(
    ///     "[providers.acme]\nissuer = \"https://sso.acme.example\"\ngit_hosts = [\"git.acme.example:8443\"]\n",
    ///     "providers.toml",
    /// )?;
    /// let name = |protocol, host| registry.git_host_provider(protocol, host).map(|p| p.map(|p| p.name.clone()));
    /// assert_eq!(name("https", "github.com")?.as_deref(), Some("github"));
    /// assert_eq!(name("https", "git.acme.example:8443")?.as_deref(), Some("acme"));
    /// assert_eq!(name("https", "git.acme.example")?, None);
    /// assert_eq!(name("http", "github.com")?, None);
    /// # Ok::<(), context_harness_providers::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when two providers list the same host (naming both).
    pub fn git_host_provider(&self, protocol: &str, host: &str) -> Result<Option<&OAuthProvider>> {
        let scheme = protocol.to_ascii_lowercase();
        let Some((name, port)) = host_port(&scheme, host) else {
            return Ok(None);
        };
        let allowed = match scheme.as_str() {
            "https" => true,
            "http" => Url::parse(&format!("http://{host}/"))
                .ok()
                .and_then(|u| u.host().map(|h| is_loopback_host(&h)))
                .unwrap_or(false),
            _ => false,
        };
        if !allowed {
            return Ok(None);
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let wanted = (name, port.unwrap_or(default_port));
        let mut found = self.iter().map(|(p, _)| p).filter(|provider| {
            provider.git_hosts.iter().any(|entry| {
                host_port("https", entry)
                    .is_some_and(|(h, p)| (h, p.unwrap_or(default_port)) == wanted)
            })
        });
        let first = found.next();
        if let (Some(first), Some(second)) = (first, found.next()) {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "providers {} and {} both list the git host {}",
                    first.name,
                    second.name,
                    crate::terminal_text(host)
                ),
            )
            .with_hint(format!(
                "keep {} in the git_hosts of one of them (for a built-in provider, set git_hosts = [] in its table)",
                crate::terminal_text(host)
            )));
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(toml: &str) -> ProviderRegistry {
        ProviderRegistry::from_toml_str(toml, "providers.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn mapped(registry: &ProviderRegistry, protocol: &str, host: &str) -> Option<String> {
        registry
            .git_host_provider(protocol, host)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|p| p.name.clone())
    }

    #[test]
    fn built_in_and_well_known_hosts() {
        let builtin = ProviderRegistry::builtin();
        assert_eq!(
            mapped(&builtin, "https", "github.com").as_deref(),
            Some("github")
        );
        assert_eq!(
            mapped(&builtin, "https", "GitHub.COM:443").as_deref(),
            Some("github")
        );
        // No gitlab provider unless one is configured; then gitlab.com without saying so.
        assert_eq!(mapped(&builtin, "https", "gitlab.com"), None);
        let with_gitlab = registry(
            "[providers.gitlab]\nauth_url = \"https://gitlab.com/oauth/authorize\"\ntoken_url = \"https://gitlab.com/oauth/token\"\n",
        );
        assert_eq!(
            mapped(&with_gitlab, "https", "gitlab.com").as_deref(),
            Some("gitlab")
        );
        // Other ports, other hosts, other schemes, plain http to a public host: nothing.
        for (protocol, host) in [
            ("https", "github.com:8443"),
            ("https", "api.github.com"),
            ("http", "github.com"),
            ("ssh", "github.com"),
            ("https", ""),
            ("https", "user@github.com"),
            ("https", "github.com/path"),
        ] {
            assert_eq!(mapped(&builtin, protocol, host), None, "{protocol} {host}");
        }
    }

    #[test]
    fn configured_hosts_replace_the_defaults_and_http_is_for_loopback_only() {
        let registry = registry(
            "[providers.github]\ngit_hosts = []\n\
             [providers.acme]\nissuer = \"https://sso.acme.example\"\ngit_hosts = [\"git.acme.example\", \"127.0.0.1:8080\", \"[::1]:9\"]\n",
        );
        assert_eq!(mapped(&registry, "https", "github.com"), None);
        assert_eq!(
            mapped(&registry, "https", "git.acme.example").as_deref(),
            Some("acme")
        );
        assert_eq!(
            mapped(&registry, "https", "git.acme.example:443").as_deref(),
            Some("acme")
        );
        assert_eq!(
            mapped(&registry, "http", "127.0.0.1:8080").as_deref(),
            Some("acme")
        );
        assert_eq!(
            mapped(&registry, "http", "[::1]:9").as_deref(),
            Some("acme")
        );
        assert_eq!(mapped(&registry, "http", "git.acme.example"), None);
        assert_eq!(mapped(&registry, "http", "127.0.0.1:8081"), None);
    }

    #[test]
    fn bad_entries_and_shared_hosts_are_config_errors() {
        for bad in [
            "https://git.example",
            "user@git.example",
            "git.example/x",
            "",
            "a b",
            "git.example:99999",
        ] {
            let toml = format!(
                "[providers.acme]\nissuer = \"https://sso.acme.example\"\ngit_hosts = [\"{bad}\"]\n"
            );
            let err = ProviderRegistry::from_toml_str(&toml, "providers.toml").err();
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
        let shared = registry(
            "[providers.acme]\nissuer = \"https://sso.acme.example\"\ngit_hosts = [\"GitHub.com\"]\n",
        );
        let err = shared.git_host_provider("https", "github.com").err();
        assert_eq!(
            err.as_ref().map(Error::code),
            Some(ErrorCode::ConfigInvalid)
        );
        assert!(err.is_some_and(|e| e.to_string().contains("acme and github")));
    }
}
