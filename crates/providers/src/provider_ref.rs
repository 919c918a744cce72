//! What a caller names as the provider: a registry name (`github`) or an MCP server URL, and the
//! storage name ([`ProviderName`]) each maps to.

use context_harness_storage::ProviderName;

use crate::error::{Error, ErrorCode, Result};

/// Whether `provider` is meant as a server URL rather than a registry name: it starts with `http:`
/// or `https:` (no provider name contains `:`), so a malformed URL is reported as one.
pub(crate) fn is_url(provider: &str) -> bool {
    let p = provider.trim_start();
    let lower = p.get(..6).map(str::to_ascii_lowercase).unwrap_or_default();
    lower.starts_with("https:") || lower.starts_with("http:")
}

/// The canonical form of an MCP server URL (the one parser: `context_harness_storage::canonical_url`).
pub(crate) fn canonical_server_url(provider: &str) -> Result<String> {
    context_harness_storage::canonical_url(provider).map_err(|e| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "`{}` is not a usable server URL",
                crate::terminal_text(provider)
            ),
        )
        .with_source(e)
        .with_hint(
            "give the server's http(s) URL without user info, fragment, spaces or backslashes",
        )
    })
}

/// The storage name of `provider`: a registry name as is, a server URL mapped with
/// [`ProviderName::from_url`] (so `mcp token <url>` finds what `mcp auth <url>` stored).
pub(crate) fn provider_name(provider: &str) -> Result<ProviderName> {
    if is_url(provider) {
        return ProviderName::from_url(provider).map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("`{provider}` is not a usable server URL"),
            )
            .with_source(e)
        });
    }
    ProviderName::new(provider).map_err(|e| {
        Error::new(
            ErrorCode::NotFound,
            format!("`{provider}` is not a valid provider name"),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("https://mcp.example.com/mcp"));
        assert!(is_url("HTTP://127.0.0.1:9/mcp"));
        assert!(!is_url("github"));
        assert!(!is_url("http"));
        assert!(is_url("http:/127.0.0.1/mcp"));
        assert!(is_url(" https:///x"));
    }
}
