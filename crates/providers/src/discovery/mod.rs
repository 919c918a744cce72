//! Discovery for MCP server sign-in and issuer-only providers.
//!
//! - RFC 9728 protected-resource metadata (PRM): from a 401's `WWW-Authenticate: Bearer
//!   resource_metadata="…"`, else `/.well-known/oauth-protected-resource/<path>`, else the root.
//! - RFC 8414 authorization-server metadata, then OpenID Connect discovery, with path insertion for
//!   issuers that have a path (see [`authorization_server_metadata_urls`]).
//! - The canonical resource URI of RFC 8707 / MCP ([`canonical_resource_uri`]).
//! - SSRF hygiene: every URL learnt from a server (the challenge, the PRM, the metadata) must be
//!   `https` (plain `http` only on loopback when the starting URL is loopback itself) and must not
//!   point at link-local, metadata or (unless the starting URL is private too) private addresses.
//!
//! The parsers, URL construction and metadata types are the sans-IO
//! [`context_harness_protocol`]'s, re-exported here; this module does the fetching ([`crate::ssrf`]
//! decides which hosts may be contacted through [`UrlPolicy`]; its `cache` part keeps issuer
//! metadata between runs in [`metadata_cache_dir`]).

mod cache;

use std::time::Duration;

use url::Url;

use crate::ssrf::UrlPolicy;
pub(crate) use cache::{load_cached_metadata, store_cached_metadata};
use context_harness_protocol::parse_config_url;
pub(crate) use context_harness_protocol::{
    AuthorizationServerMetadata, Challenge, ProtectedResourceMetadata, accepted_resource,
    authorization_server_metadata_urls, bearer_resource_metadata, issuers_match,
    parse_www_authenticate, protected_resource_metadata_urls,
};

use crate::error::{Error, ErrorCode, Result};
use crate::http::{Http, Method, RawResponse, Request};

/// The MCP protocol revision announced on discovery requests (`MCP-Protocol-Version`).
pub(crate) const MCP_PROTOCOL_VERSION: &str = "2026-07-28";

/// How long discovered authorization-server metadata of a configured provider is reused.
pub(crate) const METADATA_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// The canonical form of an MCP server URI (RFC 8707 `resource`, MCP "Canonical Server URI"):
/// lowercase scheme and host, no default port, dot segments resolved, and no trailing `/` (the root
/// is written without a path). Texts that parsers read differently are refused: a backslash,
/// whitespace or control characters, user info, a fragment. This is the one URL parser of the
/// workspace ([`context_harness_protocol::ServerUrl`]), so the name tokens are stored under and
/// the server requests reach are derived from the same form.
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] when the text is not an absolute `http`/`https` URL with a host.
pub(crate) fn canonical_resource_uri(url: &str) -> Result<String> {
    crate::provider_ref::canonical_server_url(url)
}

/// A server-supplied string made safe and short for messages: the workspace's one sanitiser,
/// [`terminal_text`](crate::terminal_text).
pub(crate) fn printable(s: &str) -> String {
    crate::terminal_text(s)
}

// -------------------------------------------------------------------------------------------------
// Fetching.

/// The result of discovering an MCP server: what it is, who protects it, and that server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpServerInfo {
    /// The canonical server URI (the storage key is derived from it).
    pub server_url: String,
    /// The `resource` to send (RFC 8707), canonical: the PRM's `resource` (the server URI, or a
    /// parent the document found speaks for, see
    /// [`accepted_resource`](context_harness_protocol::accepted_resource)), else the canonical server
    /// URI.
    pub resource: String,
    /// Where the PRM was found.
    pub resource_metadata_url: String,
    /// The protected-resource metadata.
    pub resource_metadata: ProtectedResourceMetadata,
    /// The `scope` of the 401 challenge, if there was one.
    pub challenge_scope: Option<String>,
    /// The chosen authorization server's validated metadata.
    pub authorization_server: AuthorizationServerMetadata,
    /// The discovery policy the server URL implies (for later requests).
    pub policy: UrlPolicy,
}

impl McpServerInfo {
    /// The scopes to request (MCP "Scope Selection Strategy"): the challenge's `scope`, else the
    /// PRM's `scopes_supported`, else none; `offline_access` added when the server advertises it.
    pub fn default_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = match (
            &self.challenge_scope,
            &self.resource_metadata.scopes_supported,
        ) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(list)) => list.clone(),
            (None, None) => Vec::new(),
        };
        if self.authorization_server.offers_offline_access()
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".to_owned());
        }
        scopes
    }
}

/// Discovery requests (GET with `Accept: application/json` and `MCP-Protocol-Version`).
pub(crate) struct Discoverer<'a> {
    pub(crate) http: &'a Http,
    pub(crate) policy: UrlPolicy,
}

impl Discoverer<'_> {
    async fn get(&self, url: &Url, what: &str) -> Result<RawResponse> {
        // The policy client's resolver judges the host (the same lookup that is connected to).
        let request = Request {
            headers: &[("MCP-Protocol-Version", MCP_PROTOCOL_VERSION)],
            ..Request::new(Method::Get, url)
        };
        self.http.fetch(request, what, Some(self.policy)).await
    }

    /// Probes the MCP server without a token and returns the `WWW-Authenticate` challenges of a 401:
    /// an `initialize` request first; when the server lets that through (it authorizes per method,
    /// as the conformance suite's step-up server does), a `tools/list`, which servers that use
    /// authorization at all guard, so the first sign-in learns the challenge's `scope` (MCP "Scope
    /// Selection Strategy"). Empty when neither is answered with a 401.
    async fn probe(&self, server: &Url) -> Result<Vec<Challenge>> {
        let (name, version) = self.http.app().client_info();
        let client_info = serde_json::json!({"name": name, "version": version});
        let initialize = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": MCP_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": client_info,
            },
        });
        // No `MCP-Protocol-Version` on an `initialize` (MCP 2025-11-25: the header follows the
        // negotiation): a server that refuses a version it does not know with 400 before checking
        // the token would otherwise hide its challenge.
        if let Some(challenges) = self
            .probe_with(
                server,
                "initialize",
                &initialize,
                &[("Mcp-Method", "initialize")],
            )
            .await?
        {
            return Ok(challenges);
        }
        // The 2026-07-28 form (`_meta`, `Mcp-Method`), which 2025 servers read as a request outside
        // a session: a 401 when they check the token first, a 400 otherwise.
        let tools_list = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/list",
            "params": {
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MCP_PROTOCOL_VERSION,
                    "io.modelcontextprotocol/clientInfo": client_info,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        });
        let headers = [
            ("MCP-Protocol-Version", MCP_PROTOCOL_VERSION),
            ("Mcp-Method", "tools/list"),
        ];
        match self
            .probe_with(server, "tools/list", &tools_list, &headers)
            .await
        {
            Ok(challenges) => Ok(challenges.unwrap_or_default()),
            Err(e) => {
                tracing::debug!(error = %e, "the second probe failed; no challenge");
                Ok(Vec::new())
            }
        }
    }

    /// One probe: POSTs `body` (JSON-RPC `method`) with `headers` and without a token;
    /// `Some(challenges)` for a 401.
    async fn probe_with(
        &self,
        server: &Url,
        method: &str,
        body: &serde_json::Value,
        headers: &[(&'static str, &str)],
    ) -> Result<Option<Vec<Challenge>>> {
        let request = Request {
            accept: "application/json, text/event-stream",
            json: Some(body.to_string()),
            headers,
            read_body: false,
            ..Request::new(Method::Post, server)
        };
        let answer = self
            .http
            .fetch(request, "the MCP server", Some(self.policy))
            .await?;
        let status = answer.status;
        tracing::debug!(status, method, "MCP server probe");
        Ok((status == 401).then(|| {
            answer
                .www_authenticate
                .iter()
                .flat_map(|v| parse_www_authenticate(v))
                .collect()
        }))
    }

    /// Fetches `what` from each of `urls` in turn (see [`fetch_json`](Self::fetch_json)): the first
    /// document found, with its URL, or else the last miss (e.g. `HTTP 404`; `None` for no URLs).
    /// `Err` for what ends the search at once (a refused address, a transport failure).
    pub(crate) async fn first_found<T: serde::de::DeserializeOwned>(
        &self,
        urls: Vec<Url>,
        what: &str,
    ) -> Result<std::result::Result<(Url, T), Option<String>>> {
        let mut last_miss = None;
        for url in urls {
            match self.fetch_json::<T>(&url, what).await? {
                Ok(document) => return Ok(Ok((url, document))),
                Err(miss) => {
                    tracing::debug!(url = %url, miss, "no {what} here");
                    last_miss = Some(miss);
                }
            }
        }
        Ok(Err(last_miss))
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<std::result::Result<T, String>> {
        let raw = self.get(url, what).await?;
        if !(200..300).contains(&raw.status) {
            return Ok(Err(format!("HTTP {}", raw.status)));
        }
        // A 200 that is not the document (a single-page app's catch-all HTML, a JSON error) is a
        // miss like a 404: the MCP specification has the client try the next candidate.
        Ok(serde_json::from_slice(&raw.body).map_err(|e| {
            tracing::debug!(url = %url, error = %printable(&e.to_string()), "not {what}");
            format!("HTTP {} with a body that is not {what} JSON", raw.status)
        }))
    }

    /// RFC 9728 discovery: the challenge's `resource_metadata`, else the well-known URLs in order.
    pub(crate) async fn protected_resource(
        &self,
        server_url: &str,
    ) -> Result<(Url, ProtectedResourceMetadata, Option<String>)> {
        let server = parse_config_url(server_url)?;
        let challenges = self.probe(&server).await?;
        let (from_header, scope) = bearer_resource_metadata(&challenges);
        let mut candidates = Vec::new();
        if let Some(url) = &from_header {
            // A value that is not an http(s) URL counts as absent (the well-known URLs derive from
            // the user's own URL, so falling back is safe); a usable URL to a forbidden address is
            // refused.
            let usable = Url::parse(url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            match usable {
                Some(_) => candidates.push(self.policy.check(url, "resource_metadata URL")?),
                None => tracing::debug!(
                    value = %printable(url),
                    "the resource_metadata value is not a URL; trying the well-known URLs"
                ),
            }
        }
        candidates.extend(protected_resource_metadata_urls(server_url)?);
        let last_status = match self
            .first_found::<ProtectedResourceMetadata>(candidates, "protected-resource metadata")
            .await?
        {
            Ok((url, prm)) => return Ok((url, prm, scope)),
            Err(last_miss) => last_miss,
        };
        Err(Error::new(
            ErrorCode::AuthFailed,
            format!(
                "{} publishes no OAuth protected-resource metadata (RFC 9728){}",
                printable(server_url),
                last_status.map_or_else(String::new, |s| format!("; last answer: {s}"))
            ),
        )
        .with_hint("check the server URL; a server without RFC 9728 metadata needs a configured provider in providers.toml"))
    }

    /// RFC 8414 then OIDC discovery for `issuer`, trying the URLs of
    /// [`authorization_server_metadata_urls`] in order. The document's `issuer` must equal
    /// `issuer` exactly.
    pub(crate) async fn authorization_server(
        &self,
        issuer: &str,
    ) -> Result<AuthorizationServerMetadata> {
        self.policy.check(issuer, "authorization server issuer")?;
        let found = self
            .first_found::<AuthorizationServerMetadata>(
                authorization_server_metadata_urls(issuer)?,
                "authorization-server metadata",
            )
            .await?;
        let last_status = match found {
            Ok((url, metadata)) => {
                if !issuers_match(&metadata.issuer, issuer) {
                    return Err(Error::new(
                        ErrorCode::AuthFailed,
                        format!(
                            "the metadata at {url} names issuer `{}`, not `{}`; refusing it (RFC 8414 §3.3)",
                            printable(&metadata.issuer),
                            printable(issuer)
                        ),
                    ));
                }
                self.policy.check_endpoints(&metadata)?;
                tracing::debug!(url = %url, "authorization-server metadata found");
                return Ok(metadata);
            }
            Err(last_miss) => last_miss,
        };
        Err(Error::new(
            ErrorCode::AuthFailed,
            format!(
                "no authorization-server metadata found for issuer {}{}",
                printable(issuer),
                last_status.map_or_else(String::new, |s| format!(" (last answer: {s})"))
            ),
        ))
    }

    /// The whole MCP discovery: PRM (validated `resource`), then the first authorization server's
    /// metadata (validated issuer, PKCE S256 required).
    pub(crate) async fn mcp_server(&self, server_url: &str) -> Result<McpServerInfo> {
        let canonical = canonical_resource_uri(server_url)?;
        let (prm_url, prm, challenge_scope) = self.protected_resource(server_url).await?;
        // RFC 9728 §3.3: the endpoint itself, or the parent the document found speaks for
        // (the root well-known document naming the origin); the canonical form is the audience
        // sent (RFC 8707 §2). A parent's tokens are shared by every endpoint below it.
        let resource = match &prm.resource {
            Some(resource) => match accepted_resource(resource, prm_url.as_str(), &canonical) {
                Some(audience) => {
                    if audience != canonical {
                        tracing::info!(resource = %printable(&audience), "the protected-resource metadata names a parent of the endpoint; its tokens are shared by every endpoint it covers");
                    }
                    audience
                }
                None => {
                    return Err(Error::new(
                        ErrorCode::AuthFailed,
                        format!(
                            "the protected-resource metadata at {prm_url} names resource `{}`, which does not match {canonical} (nor is it the parent that document speaks for); refusing it (RFC 9728 §3.3)",
                            printable(resource)
                        ),
                    ));
                }
            },
            None => canonical.clone(),
        };
        let Some(issuer) = prm.authorization_servers.first().cloned() else {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the protected-resource metadata at {prm_url} names no authorization server"
                ),
            ));
        };
        if prm.authorization_servers.len() > 1 {
            tracing::debug!(count = prm.authorization_servers.len(), issuer = %printable(&issuer), "several authorization servers; using the first");
        }
        let metadata = self.authorization_server(&issuer).await?;
        metadata.require_s256()?;
        for (what, value, required) in [
            (
                "authorization_endpoint",
                &metadata.authorization_endpoint,
                true,
            ),
            ("token_endpoint", &metadata.token_endpoint, true),
            (
                "registration_endpoint",
                &metadata.registration_endpoint,
                false,
            ),
            ("revocation_endpoint", &metadata.revocation_endpoint, false),
            (
                "device_authorization_endpoint",
                &metadata.device_authorization_endpoint,
                false,
            ),
        ] {
            let Some(value) = value else {
                if !required {
                    continue;
                }
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    format!("the metadata of {} has no {what}", printable(&issuer)),
                ));
            };
            // Resolved now for a clear refusal before anything is sent; the policy client's
            // resolver judges every later connection again.
            let url = self.policy.check(value, what)?;
            self.policy.check_resolved(&url, what).await?;
        }
        Ok(McpServerInfo {
            server_url: canonical,
            resource,
            resource_metadata_url: prm_url.to_string(),
            resource_metadata: prm,
            challenge_scope,
            authorization_server: metadata,
            policy: self.policy,
        })
    }
}

/// the issuer's metadata: empty `auth_url`/`token_url`, and `device_auth_url`/`revocation_url` when
/// unset; turns on the RFC 9207 requirement when the server announces it.
///
/// # Errors
///
/// [`ErrorCode::AuthFailed`] when the metadata lacks an endpoint the provider needs, or lacks S256
/// while the provider uses PKCE.
pub(crate) fn apply_metadata(
    provider: &mut crate::OAuthProvider,
    metadata: &AuthorizationServerMetadata,
) -> Result<()> {
    if provider.pkce {
        metadata.require_s256()?;
    }
    let missing = |what: &str| {
        Error::new(
            ErrorCode::AuthFailed,
            format!(
                "the metadata of {} has no {what}; set it in providers.toml",
                printable(&metadata.issuer)
            ),
        )
    };
    if provider.auth_url.trim().is_empty() {
        provider.auth_url = metadata
            .authorization_endpoint
            .clone()
            .ok_or_else(|| missing("authorization_endpoint"))?;
    }
    if provider.token_url.trim().is_empty() {
        provider.token_url = metadata
            .token_endpoint
            .clone()
            .ok_or_else(|| missing("token_endpoint"))?;
    }
    if provider.device_auth_url.is_none() {
        provider
            .device_auth_url
            .clone_from(&metadata.device_authorization_endpoint);
    }
    if provider.revocation_url.is_none() {
        provider
            .revocation_url
            .clone_from(&metadata.revocation_endpoint);
    }
    if metadata.authorization_response_iss_parameter_supported == Some(true) {
        provider.iss_parameter_supported = true;
    }
    // The configured issuer may be spelt with or without a `/` for an empty path; RFC 9207's `iss`
    // is compared with the metadata's own spelling.
    if provider
        .issuer
        .as_deref()
        .is_some_and(|configured| issuers_match(configured, &metadata.issuer))
    {
        provider.issuer = Some(metadata.issuer.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical form itself is tested in `context-harness-protocol` (`well_known.rs`); here,
    /// that the wrapper keeps it and maps a refusal to [`ErrorCode::ConfigInvalid`].
    #[test]
    fn canonical_uri_wrapper() {
        assert_eq!(
            canonical_resource_uri("HTTPS://MCP.example.com:443/mcp/").ok(),
            Some("https://mcp.example.com/mcp".to_owned())
        );
        for bad in [
            "ftp://ex.com/",
            "https://u:p@ex.com/a",
            "https://ex.com/mcp#frag",
        ] {
            let err = canonical_resource_uri(bad).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some(ErrorCode::ConfigInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn scope_selection() {
        let metadata: AuthorizationServerMetadata = serde_json::from_str(
            r#"{"issuer":"https://as","scopes_supported":["openid","offline_access"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut info = McpServerInfo {
            server_url: "https://ex.com/mcp".into(),
            resource: "https://ex.com/mcp".into(),
            resource_metadata_url: String::new(),
            resource_metadata: serde_json::from_str(r#"{"scopes_supported":["mcp:tools"]}"#)
                .unwrap_or_else(|e| panic!("{e}")),
            challenge_scope: Some("read write".into()),
            authorization_server: metadata,
            policy: UrlPolicy::new(crate::ssrf::NetworkClass::Public),
        };
        assert_eq!(info.default_scopes(), ["read", "write", "offline_access"]);
        info.challenge_scope = None;
        assert_eq!(info.default_scopes(), ["mcp:tools", "offline_access"]);
        info.resource_metadata.scopes_supported = None;
        info.authorization_server.scopes_supported = None;
        assert!(info.default_scopes().is_empty());
    }
}
