//! What a caller names as the provider: a registry name (`github`) or an MCP server URL, parsed once
//! into a [`ProviderRef`] that carries the storage name ([`ProviderName`]) each maps to.

use std::fmt;

use context_harness_storage::{AccountName, ProviderName};

use crate::error::{Error, ErrorCode, Result};

/// A provider as the caller named it, parsed once: a registry name, or an MCP server URL with its
/// canonical form and the storage name derived from that form; and the account of it in use.
///
/// Every public [`OAuthService`](crate::OAuthService) method that takes a `&str` provider parses
/// it with [`ProviderRef::parse`] first (and sets the service's account with
/// [`with_account`](Self::with_account)) and passes the result inward, so the questions "is this
/// a URL" and "which account" have one answer everywhere.
///
/// Two names: [`name`](Self::name) is the provider's (or server's) own, for what all its accounts
/// share (the registry entry, an MCP server's record, its client registration);
/// [`storage_key`](Self::storage_key) is the account's, for what each account has on its own
/// (tokens, their locks, the recovery file).
///
/// ```
/// use context_harness_providers::ProviderRef;
/// use context_harness_providers::storage::AccountName;
///
/// let named = ProviderRef::parse("github")?;
/// assert_eq!(named.name().as_str(), "github");
/// assert_eq!(named.server_url(), None);
/// assert!(named.account().is_default());
/// assert_eq!(named.storage_key().as_str(), "github");
///
/// let work = named.with_account(AccountName::new("work")?);
/// assert_eq!(work.name().as_str(), "github");
/// assert_eq!(work.storage_key().as_str(), "github@work");
///
/// let server = ProviderRef::parse("HTTPS://MCP.example.com/mcp/")?;
/// assert_eq!(server.server_url(), Some("https://mcp.example.com/mcp"));
/// assert_eq!(server.name().as_str(), "_mcp.example.com-mcp");
///
/// // The servers' namespace is not a provider name.
/// assert!(ProviderRef::parse("_mcp.example.com-mcp").is_err());
/// assert_eq!(server.as_str(), "HTTPS://MCP.example.com/mcp/");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef {
    kind: Kind,
    account: AccountName,
    /// The storage key of `account` (`name` for the default account).
    key: ProviderName,
}

/// What the caller named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A provider of the registry (built in or from `providers.toml`), by its name.
    Named(ProviderName),
    /// An MCP server, by its URL.
    McpServer {
        /// The canonical server URL (`context_harness_storage::canonical_url`).
        url: String,
        /// The storage name derived from the canonical URL ([`ProviderName::for_server`]).
        name: ProviderName,
        /// The URL as the caller wrote it (what messages show).
        given: String,
    },
}

impl ProviderRef {
    /// Parses what a caller named as the provider, with the default account (see
    /// [`with_account`](Self::with_account)). A text that starts with `http:` or `https:` (no
    /// provider name contains `:`) is a server URL, so a malformed URL is reported as one.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for a server URL that `canonical_url` refuses (user info,
    /// fragment, spaces, backslashes, no host); [`ErrorCode::NotFound`] for a name that cannot be a
    /// provider name (`a-z`, `0-9`, `-`, `_`, `.`, at most 64 characters).
    pub fn parse(provider: &str) -> Result<Self> {
        if !Self::is_server_url(provider) {
            let name = ProviderName::new(provider).map_err(|e| {
                Error::new(
                    ErrorCode::NotFound,
                    format!(
                        "`{}` is not a valid provider name",
                        crate::terminal_text(&context_harness_protocol::without_user_info(
                            provider
                        ))
                    ),
                )
                .with_source(e)
            })?;
            if name.is_server_name() {
                return Err(reserved_name(provider));
            }
            return Ok(Self::of(Kind::Named(name)));
        }
        Self::parse_server_url(provider)
    }

    /// Parses `server_url` as an MCP server URL, whatever it starts with.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for a text that `canonical_url` refuses.
    pub(crate) fn parse_server_url(provider: &str) -> Result<Self> {
        let url = canonical_server_url(provider)?;
        let name = ProviderName::for_server(provider).map_err(|e| unusable_url(provider, e))?;
        Ok(Self::of(Kind::McpServer {
            url,
            name,
            given: provider.to_owned(),
        }))
    }

    /// `kind` with the default account.
    fn of(kind: Kind) -> Self {
        let key = match &kind {
            Kind::Named(name) | Kind::McpServer { name, .. } => name.clone(),
        };
        Self {
            kind,
            account: AccountName::default(),
            key,
        }
    }

    /// The same provider with `account` in use.
    #[must_use]
    pub fn with_account(mut self, account: AccountName) -> Self {
        self.key = self.name().with_account(&account);
        self.account = account;
        self
    }

    /// Whether `provider` is meant as a server URL rather than a registry name: it starts (after
    /// leading whitespace) with `http:` or `https:`, in any case. Nothing is validated.
    pub fn is_server_url(provider: &str) -> bool {
        let p = provider.trim_start();
        let lower = p.get(..6).map(str::to_ascii_lowercase).unwrap_or_default();
        lower.starts_with("https:") || lower.starts_with("http:")
    }

    /// The provider's storage name, shared by all its accounts: the registry name, or the one
    /// derived from the canonical server URL. Names the MCP server's record and its client
    /// registration; the registry is looked up by it.
    pub fn name(&self) -> &ProviderName {
        match &self.kind {
            Kind::Named(name) | Kind::McpServer { name, .. } => name,
        }
    }

    /// The account in use ([`DEFAULT_ACCOUNT`](context_harness_storage::DEFAULT_ACCOUNT) unless
    /// [`with_account`](Self::with_account) said otherwise).
    pub fn account(&self) -> &AccountName {
        &self.account
    }

    /// The storage key of the account in use: [`name`](Self::name) for the default account, else
    /// `<name>@<account>` ([`ProviderName::with_account`]). Names the account's tokens, its
    /// refresh and sign-in locks and its recovery file.
    pub fn storage_key(&self) -> &ProviderName {
        &self.key
    }

    /// The storage name an MCP server had before server names got a namespace of their own
    /// (version 0.2 and earlier: [`ProviderName::from_url`], which a `providers.toml` entry could
    /// share); `None` for a registry name. Only used to move such tokens to [`name`](Self::name).
    pub(crate) fn legacy_name(&self) -> Option<ProviderName> {
        match &self.kind {
            Kind::Named(_) => None,
            Kind::McpServer { url, .. } => ProviderName::from_url(url).ok(),
        }
    }

    /// The canonical server URL of an MCP server; `None` for a registry name.
    pub fn server_url(&self) -> Option<&str> {
        match &self.kind {
            Kind::Named(_) => None,
            Kind::McpServer { url, .. } => Some(url),
        }
    }

    /// Whether this is an MCP server URL.
    pub fn is_mcp_server(&self) -> bool {
        matches!(self.kind, Kind::McpServer { .. })
    }

    /// The text as the caller wrote it (what messages and hints show).
    pub fn as_str(&self) -> &str {
        match &self.kind {
            Kind::Named(name) => name.as_str(),
            Kind::McpServer { given, .. } => given,
        }
    }
}

/// The canonical form of an MCP server URL (see [`ProviderRef::parse_server_url`]).
pub(crate) fn canonical_server_url(provider: &str) -> Result<String> {
    context_harness_storage::canonical_url(provider).map_err(|e| unusable_url(provider, e))
}

/// The error for a provider name in the servers' namespace (`_…`): those names belong to MCP
/// servers, which are named by their URL only.
fn reserved_name(provider: &str) -> Error {
    Error::new(
        ErrorCode::ConfigInvalid,
        format!(
            "`{}` is the storage name of an MCP server, not a provider name",
            crate::terminal_text(provider)
        ),
    )
    .with_hint(
        "name the MCP server by its URL (`mcp status` lists them); provider names cannot start with `_`",
    )
}

/// The error for a server URL that `canonical_url` refuses.
fn unusable_url(provider: &str, e: context_harness_storage::Error) -> Error {
    Error::new(
        ErrorCode::ConfigInvalid,
        format!(
            "`{}` is not a usable server URL",
            crate::terminal_text(&context_harness_protocol::without_user_info(provider))
        ),
    )
    .with_source(e)
    .with_hint("give the server's http(s) URL without user info, fragment, spaces or backslashes")
}

impl fmt::Display for ProviderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The file-system-safe name of an authorization server's `issuer` URL (the cache file and the
/// redirect path use it).
///
/// # Errors
///
/// `code` with "issuer `…` `why`" when the URL cannot name one.
pub(crate) fn issuer_name(issuer: &str, code: ErrorCode, why: &str) -> Result<ProviderName> {
    ProviderName::from_url(issuer).map_err(|e| {
        Error::new(
            code,
            format!("issuer `{}` {why}", crate::terminal_text(issuer)),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised() {
        assert!(ProviderRef::is_server_url("https://mcp.example.com/mcp"));
        assert!(ProviderRef::is_server_url("HTTP://127.0.0.1:9/mcp"));
        assert!(!ProviderRef::is_server_url("github"));
        assert!(!ProviderRef::is_server_url("http"));
        assert!(ProviderRef::is_server_url("http:/127.0.0.1/mcp"));
        assert!(ProviderRef::is_server_url(" https:///x"));
    }

    #[test]
    fn names_and_urls_parse_once_with_their_errors()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let named = ProviderRef::parse("github")?;
        assert_eq!(named.name(), &ProviderName::new("github")?);
        assert_eq!(named.storage_key(), named.name());
        let work = named.clone().with_account(AccountName::new("Work")?);
        assert_eq!(work.storage_key().as_str(), "github@work");
        assert_eq!(work.name(), named.name());
        assert_eq!(work.as_str(), "github");
        // Back to the default account: the bare name again.
        assert_eq!(work.with_account(AccountName::default()), named);
        assert!(!named.is_mcp_server());
        assert_eq!(named.to_string(), "github");

        let local = ProviderRef::parse("http://127.0.0.1:8931/mcp/")?;
        assert_eq!(local.server_url(), Some("http://127.0.0.1:8931/mcp"));
        assert_eq!(
            local.name(),
            &ProviderName::for_server("http://127.0.0.1:8931/mcp")?
        );
        assert_eq!(
            local.legacy_name(),
            Some(ProviderName::from_url("http://127.0.0.1:8931/mcp")?)
        );
        assert!(local.name().is_server_name());
        let reserved = ProviderRef::parse(local.name().as_str()).err();
        assert_eq!(reserved.map(|e| e.code()), Some(ErrorCode::ConfigInvalid));
        assert_eq!(local.as_str(), "http://127.0.0.1:8931/mcp/");

        let bad_name = ProviderRef::parse("Git Hub").err();
        assert_eq!(bad_name.map(|e| e.code()), Some(ErrorCode::NotFound));
        for bad in [
            "http:/127.0.0.1/mcp",
            " https://x.example/mcp",
            "https://user@x.example/mcp",
            "https://x.example/mcp#f",
            "https://evil.example\\@good.example",
            "https://x.example/\u{1b}[2J",
        ] {
            let Err(e) = ProviderRef::parse(bad) else {
                panic!("{bad:?} parsed");
            };
            assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{bad:?}");
            assert!(e.to_string().contains("is not a usable server URL"), "{e}");
            assert!(!e.to_string().contains('\u{1b}'), "{e}");
            assert!(e.hint().is_some_and(|h| h.contains("user info")), "{bad:?}");
        }
        Ok(())
    }
}
