//! Metadata documents: RFC 9728 protected-resource metadata and RFC 8414 / OpenID Connect
//! Discovery authorization-server metadata, with the checks that need no network.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, ProtocolError, Result, printable};

/// Deserialises a metadata `scopes_supported` list, dropping every entry that is not an RFC 6749
/// §3.3 scope token (controls, escapes, spaces, non-ASCII), so such text is never requested,
/// stored or printed.
fn de_scopes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Vec<String>>, D::Error> {
    let scopes = Option::<Vec<String>>::deserialize(deserializer)?;
    Ok(scopes.map(|list| {
        list.into_iter()
            .filter(|s| context_harness_tokens::is_scope_token(s))
            .collect()
    }))
}

/// RFC 9728 protected-resource metadata (fields this client uses; unknown ones are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (REQUIRED by RFC 9728 §2).
    #[serde(default)]
    pub resource: Option<String>,
    /// Issuers of the authorization servers that protect the resource.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource uses (entries that are not RFC 6749 §3.3 scope tokens are dropped).
    #[serde(default, deserialize_with = "de_scopes")]
    pub scopes_supported: Option<Vec<String>>,
    /// How bearer tokens may be sent (`header`, …).
    #[serde(default)]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// A human-readable name.
    #[serde(default)]
    pub resource_name: Option<String>,
    /// RFC 9449 §5.2: the resource accepts DPoP-bound access tokens only.
    #[serde(default)]
    pub dpop_bound_access_tokens_required: Option<bool>,
}

/// RFC 8414 / OpenID Connect Discovery metadata (all optional except `issuer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier; must equal the issuer the document was fetched for.
    pub issuer: String,
    /// The authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// RFC 7591 dynamic client registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// RFC 7662 introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 8628 device authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// PKCE methods; MCP clients refuse to proceed when this lacks `S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint (absent = `client_secret_basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms the token endpoint accepts for `private_key_jwt` client assertions (RFC 8414
    /// §2; the MCP client-credentials extension requires it when JWT authentication is offered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Scopes the server knows (entries that are not RFC 6749 §3.3 scope tokens are dropped).
    #[serde(
        default,
        deserialize_with = "de_scopes",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes_supported: Option<Vec<String>>,
    /// Grant types the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Response types the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// RFC 9207: the server always sends `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Whether Client ID Metadata Documents are accepted (not used by this client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
    /// RFC 9449 §5.1: the JWS algorithms the server accepts for DPoP proofs; present when it
    /// issues DPoP-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// The `prompt` values the authorization endpoint understands (`login`, `select_account`, …;
    /// "Initiating User Registration via OpenID Connect 1.0" §4.1, in the IANA OAuth Authorization
    /// Server Metadata registry). Absent at most servers, which then understand at most what
    /// their protocol defines (OpenID Connect Core §3.1.2.1 for an OpenID Provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_values_supported: Option<Vec<String>>,
}

impl AuthorizationServerMetadata {
    /// Whether `code_challenge_methods_supported` lists `S256`.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    /// Whether the server advertises `offline_access` in `scopes_supported`.
    pub fn offers_offline_access(&self) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "offline_access"))
    }

    /// The MCP PKCE gate: refuses metadata that does not announce S256.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PkceUnsupported`] naming the issuer.
    pub fn require_s256(&self) -> Result<()> {
        if self.supports_s256() {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorKind::PkceUnsupported,
                format!(
                    "the authorization server {} does not announce PKCE S256 support \
                     (code_challenge_methods_supported); refusing to sign in without PKCE",
                    printable(&self.issuer)
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_deserializes_with_only_issuer_and_gates_pkce() {
        let m: AuthorizationServerMetadata =
            serde_json::from_str(r#"{"issuer":"https://as.ex.com","unknown":1}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(!m.supports_s256());
        let err = m
            .require_s256()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("https://as.ex.com") && err.contains("S256"),
            "{err}"
        );
        assert!(serde_json::from_str::<AuthorizationServerMetadata>("{}").is_err());
        let m: AuthorizationServerMetadata = serde_json::from_str(
            r#"{"issuer":"https://as.ex.com","code_challenge_methods_supported":["plain","S256"],
                "scopes_supported":["offline_access"],"authorization_response_iss_parameter_supported":true}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(m.supports_s256() && m.offers_offline_access());
    }

    /// Off-spec and hostile metadata the parser meets: what is kept, dropped or refused.
    #[test]
    fn metadata_quirks() {
        // (document, parses, scopes kept)
        let table: &[(&str, bool, Option<&[&str]>)] = &[
            // Unknown fields are ignored; `scopes_supported` absent stays absent.
            (r#"{"issuer":"https://as","x_vendor":{"a":1}}"#, true, None),
            // Entries that are not RFC 6749 §3.3 scope tokens are dropped, the rest kept in order.
            (
                r#"{"issuer":"https://as","scopes_supported":["openid","bad scope","\u001b[31m","é","offline_access"]}"#,
                true,
                Some(&["openid", "offline_access"]),
            ),
            (
                r#"{"issuer":"https://as","scopes_supported":[]}"#,
                true,
                Some(&[]),
            ),
            // `null` counts as absent.
            (
                r#"{"issuer":"https://as","scopes_supported":null}"#,
                true,
                None,
            ),
            // Wrong types are refused, not guessed at.
            (
                r#"{"issuer":"https://as","scopes_supported":"openid"}"#,
                false,
                None,
            ),
            (
                r#"{"issuer":"https://as","scopes_supported":[1]}"#,
                false,
                None,
            ),
            (r#"{"issuer":1}"#, false, None),
            (r#"{"issuer":"https://as","token_endpoint":7}"#, false, None),
            (r#"[]"#, false, None),
        ];
        for (doc, parses, scopes) in table {
            let parsed = serde_json::from_str::<AuthorizationServerMetadata>(doc);
            assert_eq!(parsed.is_ok(), *parses, "{doc}");
            if let Ok(m) = parsed {
                let want = scopes.map(|s| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
                assert_eq!(m.scopes_supported, want, "{doc}");
            }
        }
        // RFC 9728: every field is optional to this parser (the caller checks `resource`).
        let prm: ProtectedResourceMetadata = serde_json::from_str(
            r#"{"authorization_servers":["https://as"],"scopes_supported":["mcp:tools","a b"],"jwks_uri":"x"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(prm.resource, None);
        assert_eq!(prm.scopes_supported, Some(vec!["mcp:tools".to_owned()]));
        assert!(
            serde_json::from_str::<ProtectedResourceMetadata>(
                r#"{"authorization_servers":"https://as"}"#
            )
            .is_err()
        );
    }

    /// What a server writes in `code_challenge_methods_supported`: only an exact `S256` counts.
    #[test]
    fn pkce_gate_table() {
        for (methods, ok) in [
            (r#"["S256"]"#, true),
            (r#"["plain","S256"]"#, true),
            (r#"["s256"]"#, false),
            (r#"["plain"]"#, false),
            (r#"[]"#, false),
            ("null", false),
        ] {
            let doc = format!(
                r#"{{"issuer":"https://as","code_challenge_methods_supported":{methods}}}"#
            );
            let m: AuthorizationServerMetadata =
                serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.require_s256().is_ok(), ok, "{methods}");
            if let Err(e) = m.require_s256() {
                assert_eq!(e.kind(), ErrorKind::PkceUnsupported);
            }
        }
    }
}
