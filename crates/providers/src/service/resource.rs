//! The protected-resource metadata of an MCP server outside a sign-in (RFC 9728): what a client
//! reads when the server's 403 `insufficient_scope` names no scope (MCP "Scope Selection
//! Strategy"), fetched by discovery under the server URL's address policy.

use url::Url;

use super::OAuthService;
use crate::discovery::{
    Discoverer, ProtectedResourceMetadata, accepted_resource, printable,
    protected_resource_metadata_urls,
};
use crate::error::Result;
use crate::provider::check_endpoint;
use crate::provider_ref::ProviderRef;
use crate::ssrf::UrlPolicy;

impl OAuthService {
    /// The protected-resource metadata of MCP server `server_url` (RFC 9728 §2), without signing in
    /// and without a token. Tried in order: `challenge_url` — a `WWW-Authenticate`
    /// `resource_metadata` (RFC 9728 §5.1) — when it is on the server's origin or is the URL the
    /// stored sign-in record names (a server must not aim the client elsewhere), the record's URL,
    /// then the well-known URLs of the server URL (§3.1). Fetched by discovery: the address policy
    /// of the server URL, no redirects, bounded in size and time. A document naming a resource that
    /// is neither the server nor the parent its URL speaks for (§3.3) is not used.
    ///
    /// `Ok(None)` when no candidate serves one (or the one found names another resource).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`](crate::ErrorCode::ConfigInvalid) for a bad server URL;
    /// [`ErrorCode::AuthFailed`](crate::ErrorCode::AuthFailed) for a refused address;
    /// [`ErrorCode::NetworkError`](crate::ErrorCode::NetworkError) or
    /// [`ErrorCode::Timeout`](crate::ErrorCode::Timeout) when a fetch fails.
    pub async fn mcp_resource_metadata(
        &self,
        server_url: &str,
        challenge_url: Option<&str>,
    ) -> Result<Option<ProtectedResourceMetadata>> {
        let target = ProviderRef::parse_server_url(server_url)?;
        let canonical = target.as_str();
        let url = check_endpoint(canonical, "server URL")?;
        let policy = UrlPolicy::new(crate::ssrf::class_of_url(&url).await);
        let recorded = self
            .mcp_server_record(server_url)?
            .map(|r| r.resource_metadata_url);
        let mut candidates = Vec::new();
        for url in metadata_candidates(canonical, recorded.as_deref(), challenge_url) {
            match policy.check(url.as_str(), "protected-resource metadata URL") {
                Ok(url) => candidates.push(url),
                Err(e) => tracing::info!(error = %e, "not fetching this metadata URL"),
            }
        }
        let discoverer = Discoverer {
            http: &self.http,
            policy,
        };
        let found = discoverer
            .first_found::<ProtectedResourceMetadata>(candidates, "protected-resource metadata")
            .await?;
        let Ok((url, metadata)) = found else {
            return Ok(None);
        };
        if let Some(resource) = &metadata.resource
            && accepted_resource(resource, url.as_str(), canonical).is_none()
        {
            tracing::info!(url = %url, resource = %printable(resource), "the protected-resource metadata names another resource; not used");
            return Ok(None);
        }
        Ok(Some(metadata))
    }
}

/// Where to look for the protected-resource metadata of `server_url`, in order, each once: the
/// challenge's `resource_metadata` when it is on the server's origin or is the recorded URL, the
/// recorded URL (checked at sign-in), the RFC 9728 well-known URLs of the server URL.
fn metadata_candidates(
    server_url: &str,
    recorded: Option<&str>,
    challenge: Option<&str>,
) -> Vec<Url> {
    let web = |text: &str| {
        Url::parse(text.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    };
    let origin = Url::parse(server_url).ok().map(|u| u.origin());
    let recorded = recorded.and_then(web);
    let mut urls: Vec<Url> = Vec::new();
    if let Some(url) = challenge.and_then(web) {
        if Some(url.origin()) == origin || Some(&url) == recorded.as_ref() {
            urls.push(url);
        } else {
            tracing::info!("the challenge's resource_metadata is on another origin; not fetched");
        }
    }
    urls.extend(recorded);
    urls.extend(protected_resource_metadata_urls(server_url).unwrap_or_default());
    let mut unique: Vec<Url> = Vec::new();
    for url in urls {
        if !unique.contains(&url) {
            unique.push(url);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn candidates_stay_on_known_ground() {
        let server = "https://mcp.ex/mcp";
        let path = "https://mcp.ex/.well-known/oauth-protected-resource/mcp";
        let root = "https://mcp.ex/.well-known/oauth-protected-resource";
        assert_eq!(
            strings(metadata_candidates(server, None, None)),
            [path, root]
        );
        // The challenge's URL on the server's origin comes first; a duplicate is dropped.
        assert_eq!(
            strings(metadata_candidates(
                server,
                None,
                Some("https://mcp.ex/prm")
            )),
            ["https://mcp.ex/prm", path, root]
        );
        assert_eq!(
            strings(metadata_candidates(server, Some(path), Some(path))),
            [path, root]
        );
        // Another origin (or scheme) is not fetched, unless it is the recorded URL.
        for hostile in [
            "http://169.254.169.254/latest/meta-data",
            "http://mcp.ex/prm",
            "https://mcp.ex:8443/prm",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert_eq!(
                strings(metadata_candidates(server, None, Some(hostile))),
                [path, root],
                "{hostile}"
            );
        }
        let recorded = "https://as.ex/prm";
        assert_eq!(
            strings(metadata_candidates(server, Some(recorded), Some(recorded))),
            [recorded, path, root]
        );
        assert_eq!(
            strings(metadata_candidates(server, Some(recorded), None)),
            [recorded, path, root]
        );
    }
}
