//! Enterprise-Managed Authorization (the MCP extension
//! `io.modelcontextprotocol/enterprise-managed-authorization`, SEP-990; the IETF draft "Identity
//! Assertion JWT Authorization Grant", ID-JAG), without I/O: the RFC 8693 token exchange request a
//! client sends to its enterprise identity provider (IdP) to trade the user's ID token for an
//! ID-JAG ([`IdJagRequest`]), the check of the IdP's answer ([`check_issued_token_type`]), and the
//! unverified `exp` of a JWT the client holds ([`jwt_expiry`]), to know when an ID token needs
//! renewing. The ID-JAG then goes to the MCP authorization server as the assertion of the RFC 7523
//! §2.1 JWT-bearer grant ([`JWT_BEARER_GRANT`](crate::JWT_BEARER_GRANT)).

use base64ct::{Base64UrlUnpadded, Encoding as _};

/// `grant_type` of the token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type of an OpenID Connect ID token (RFC 8693 §3): the `subject_token_type` of the
/// exchange.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The token type of an Identity Assertion JWT Authorization Grant (the ID-JAG draft §3): the
/// `requested_token_type` of the exchange, and the `issued_token_type` the IdP must answer with.
pub const ID_JAG_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// The RFC 8693 §2.1 token exchange that asks an IdP for an ID-JAG: `subject_token` the user's ID
/// token, `audience` the issuer identifier of the MCP authorization server that will accept the
/// ID-JAG, `resource` the MCP server (RFC 8707), `scope` the scopes wanted there.
///
/// ```
/// use context_harness_protocol::IdJagRequest;
///
/// let request = IdJagRequest {
///     id_token: "eyJh.eyJz.c2ln",
///     audience: "https://as.example.com",
///     resource: Some("https://mcp.example.com/mcp"),
///     scope: Some("read write"),
/// };
/// let form = request.form();
/// assert!(form.contains(&("requested_token_type", "urn:ietf:params:oauth:token-type:id-jag")));
/// assert!(form.contains(&("audience", "https://as.example.com")));
/// ```
#[derive(Clone, Copy)]
pub struct IdJagRequest<'a> {
    /// The user's OpenID Connect ID token, issued by the IdP to this client.
    pub id_token: &'a str,
    /// The MCP authorization server's issuer identifier (RFC 8414 `issuer`).
    pub audience: &'a str,
    /// The MCP server's resource identifier (RFC 8707 / RFC 9728 `resource`), when known.
    pub resource: Option<&'a str>,
    /// The scopes asked for at the MCP authorization server (space-separated), if any.
    pub scope: Option<&'a str>,
}

impl<'a> IdJagRequest<'a> {
    /// The form parameters of the request (`application/x-www-form-urlencoded`), without the
    /// client's authentication (the caller adds `client_id`, or authenticates the client).
    pub fn form(&self) -> Vec<(&'static str, &'a str)> {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("requested_token_type", ID_JAG_TOKEN_TYPE),
            ("subject_token", self.id_token),
            ("subject_token_type", ID_TOKEN_TYPE),
            ("audience", self.audience),
        ];
        if let Some(resource) = self.resource {
            form.push(("resource", resource));
        }
        if let Some(scope) = self.scope.filter(|s| !s.is_empty()) {
            form.push(("scope", scope));
        }
        form
    }
}

impl std::fmt::Debug for IdJagRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdJagRequest")
            .field("id_token", &"[redacted]")
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Checks the `issued_token_type` of a successful token exchange answer (RFC 8693 §2.2.1: required)
/// against [`ID_JAG_TOKEN_TYPE`]: a token of another type is not an ID-JAG, and sending it on as an
/// assertion would hand the authorization server something else (an access token for the IdP).
///
/// # Errors
///
/// The type received (`None` when absent), to be shown to the user.
pub fn check_issued_token_type(issued: Option<&str>) -> Result<(), Option<String>> {
    match issued {
        Some(ID_JAG_TOKEN_TYPE) => Ok(()),
        other => Err(other.map(str::to_owned)),
    }
}

/// The `exp` claim (seconds since the Unix epoch) of a compact JWT, read without checking its
/// signature: only to tell when a token this client holds needs renewing, never to trust it. `None`
/// when `jwt` is not three base64url parts, its payload is not a JSON object, or it has no
/// non-negative integer `exp`.
///
/// ```
/// use context_harness_protocol::jwt_expiry;
///
/// // {"alg":"ES256"} . {"exp":1700000000}
/// assert_eq!(jwt_expiry("eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln"), Some(1_700_000_000));
/// assert_eq!(jwt_expiry("not a jwt"), None);
/// ```
pub fn jwt_expiry(jwt: &str) -> Option<u64> {
    if !crate::is_compact_jws(jwt) {
        return None;
    }
    let payload = jwt.split('.').nth(1)?;
    let bytes = Base64UrlUnpadded::decode_vec(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            Base64UrlUnpadded::encode_string(br#"{"alg":"ES256"}"#),
            Base64UrlUnpadded::encode_string(payload.as_bytes())
        )
    }

    #[test]
    fn the_exchange_names_every_parameter_the_draft_requires() {
        let request = IdJagRequest {
            id_token: "id.tok.en",
            audience: "https://as.example.com",
            resource: Some("https://mcp.example.com/mcp"),
            scope: Some(""),
        };
        let form = request.form();
        assert_eq!(
            form,
            vec![
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("requested_token_type", ID_JAG_TOKEN_TYPE),
                ("subject_token", "id.tok.en"),
                ("subject_token_type", ID_TOKEN_TYPE),
                ("audience", "https://as.example.com"),
                ("resource", "https://mcp.example.com/mcp"),
            ]
        );
        let without = IdJagRequest {
            resource: None,
            scope: Some("a b"),
            ..request
        };
        let form = without.form();
        assert!(!form.iter().any(|(k, _)| *k == "resource"));
        assert!(form.contains(&("scope", "a b")));
        assert!(!format!("{request:?}").contains("id.tok.en"));
    }

    #[test]
    fn only_an_id_jag_is_accepted() {
        assert_eq!(check_issued_token_type(Some(ID_JAG_TOKEN_TYPE)), Ok(()));
        assert_eq!(check_issued_token_type(None), Err(None));
        assert_eq!(
            check_issued_token_type(Some("urn:ietf:params:oauth:token-type:access_token")),
            Err(Some(
                "urn:ietf:params:oauth:token-type:access_token".to_owned()
            ))
        );
    }

    #[test]
    fn expiry_is_read_only_from_a_well_formed_payload() {
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":42}"#)), Some(42));
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":-1}"#)), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":"42"}"#)), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"u"}"#)), None);
        assert_eq!(jwt_expiry(&jwt("[1]")), None);
        assert_eq!(jwt_expiry("a.b"), None);
    }
}
