//! Which grant obtains and renews a token set: [`GrantType`], the [`GrantOptions`] of a sign-in,
//! and the [`GrantRecord`] stored with the tokens. The grants without a browser run in
//! `grant_flow`.
//!
//! - The client credentials grant (RFC 6749 §4.4; the MCP extension
//!   `io.modelcontextprotocol/oauth-client-credentials`): the client authenticates with its secret
//!   (`client_secret_basic`, or `client_secret_post` when the server allows only that) or with an
//!   RFC 7523 §2.2 client assertion signed by its private key (`private_key_jwt`: `iss` = `sub` =
//!   the client id, `aud` = the issuer, a fresh `jti`, `exp` 5 minutes on).
//! - The JWT-bearer grant (RFC 7523 §2.1; MCP workload identity, SEP-1933): the assertion is a
//!   workload identity token read from its file at every request (platforms rotate it on disk).
//! - Enterprise-Managed Authorization (SEP-990, the ID-JAG draft; `id_jag`): the user's ID token
//!   from the enterprise IdP (a file, or the IdP's own OIDC sign-in, see `id_jag`) is exchanged at
//!   the IdP (RFC 8693) for an ID-JAG, which is the assertion of the JWT-bearer grant at the MCP
//!   authorization server. The user never goes to the MCP authorization server.
//!
//! None issues a refresh token (one that comes anyway is dropped: it would only be a long-lived
//! secret on disk): a token set is renewed by running its grant again, under the same per-name lock
//! and with the same single-flight rules as a refresh (`grant_flow`). What the grant
//! needs for that — its type, the client authentication, the key or assertion file's path, the
//! signing algorithm, the scope; never a secret — is stored with the tokens ([`GrantRecord`], under
//! the key `grant`), so renewal needs no options. A field of that name in a token endpoint's answer
//! is the server's text and is dropped before anything is stored.
//!
//! A refusal (`invalid_grant`, `unauthorized_client`, `invalid_client`, …) is final for the
//! credentials that got it: the same request is not sent again by this process, and no other grant
//! is tried in its place (SEP-1933); a rotated assertion file is a new request.

use std::path::PathBuf;

use context_harness_protocol as protocol;
use protocol::JwsAlgorithm;
use serde::{Deserialize, Serialize};

use crate::tokens::OAuthTokens;

/// Which OAuth grant obtains (and renews) a token set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum GrantType {
    /// The authorization code grant with PKCE through the browser (RFC 6749 §4.1): the default.
    #[default]
    AuthorizationCode,
    /// The device authorization grant (RFC 8628), chosen with [`SignInFlow`](crate::SignInFlow).
    DeviceCode,
    /// The client credentials grant (RFC 6749 §4.4): a machine identity, no user, no browser.
    ClientCredentials,
    /// The JWT-bearer grant (RFC 7523 §2.1) with a workload identity assertion (SEP-1933).
    JwtBearer,
    /// Enterprise-Managed Authorization: an ID-JAG from the enterprise IdP (RFC 8693 token
    /// exchange of the user's ID token), then the JWT-bearer grant with it at the MCP authorization
    /// server.
    IdJag,
}

impl GrantType {
    /// The name used on the command line, in stored records and in `mcp status --json`:
    /// `authorization_code`, `device_code`, `client_credentials`, `jwt_bearer`, `id_jag`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::DeviceCode => "device_code",
            Self::ClientCredentials => "client_credentials",
            Self::JwtBearer => "jwt_bearer",
            Self::IdJag => "id_jag",
        }
    }

    /// The grant named `name` (see [`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::AuthorizationCode,
            Self::DeviceCode,
            Self::ClientCredentials,
            Self::JwtBearer,
            Self::IdJag,
        ]
        .into_iter()
        .find(|g| g.as_str() == name)
    }

    /// Whether tokens of this grant are renewed by running the grant again (no refresh token
    /// from the authorization server): the client credentials, JWT-bearer and `id_jag` grants (the
    /// last with a fresh ID-JAG, from an ID token kept fresh with the IdP's refresh token).
    pub fn renews_itself(self) -> bool {
        matches!(
            self,
            Self::ClientCredentials | Self::JwtBearer | Self::IdJag
        )
    }

    /// The grant that produced `tokens`, as recorded with them at sign-in; tokens stored without a
    /// record (by an older version) came from the authorization code (or device) grant.
    pub fn of_tokens(tokens: &OAuthTokens) -> Self {
        GrantRecord::read(tokens)
            .and_then(|r| Self::parse(&r.grant_type))
            .unwrap_or_default()
    }
}

/// How [`OAuthService::authenticate`](crate::OAuthService::authenticate) obtains tokens (set with
/// [`AuthenticateOptions::grant`](crate::AuthenticateOptions::grant)). Paths are made absolute
/// when the tokens are stored, and the files are read again at every token request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantOptions {
    /// The grant. `None`: the grant the stored tokens were obtained with when it renews itself (a
    /// client credentials or JWT-bearer grant is run again as it was), else the authorization code
    /// grant.
    pub grant_type: Option<GrantType>,
    /// A PEM private key (PKCS#8, or PKCS#1 RSA; the user's own file, mode 0600): the client
    /// authenticates with an RFC 7523 §2.2 `private_key_jwt` assertion instead of a secret.
    pub private_key_file: Option<PathBuf>,
    /// The JWS algorithm of that assertion (default: the key's own — `ES256` for P-256, `ES384`,
    /// `RS256` for RSA, `EdDSA` — or the first the authorization server lists that fits the key).
    pub signing_alg: Option<JwsAlgorithm>,
    /// The file holding the assertion of the JWT-bearer grant (a workload identity token), read at
    /// every token request. Symbolic links are followed (a Kubernetes projected volume swaps one to
    /// rotate the token); the file they lead to must be the user's own with mode 0600 (also when the
    /// user is root), or root's when the user is not (the platform's file, readable as the platform
    /// decides), and neither it nor its directory may be writable by group or others.
    pub assertion_file: Option<PathBuf>,
    /// `id_jag`: the enterprise IdP's issuer identifier (its OpenID Connect discovery is read from
    /// it). Its client secret, when it wants one, comes from
    /// [`App::idp_client_secret`](crate::App::idp_client_secret), never from here.
    pub idp_issuer: Option<String>,
    /// `id_jag`: this client's id at the IdP.
    pub idp_client_id: Option<String>,
    /// `id_jag`: a file holding the user's ID token from the IdP (read as
    /// [`assertion_file`](Self::assertion_file) is, at every exchange). Without it the user signs
    /// in to the IdP in the browser (OpenID Connect, PKCE) and its refresh token is kept.
    pub id_token_file: Option<PathBuf>,
}

impl GrantOptions {
    /// The client credentials grant.
    pub fn client_credentials() -> Self {
        Self {
            grant_type: Some(GrantType::ClientCredentials),
            ..Self::default()
        }
    }

    /// The JWT-bearer grant with the assertion in `file`.
    pub fn jwt_bearer(file: impl Into<PathBuf>) -> Self {
        Self {
            grant_type: Some(GrantType::JwtBearer),
            assertion_file: Some(file.into()),
            ..Self::default()
        }
    }

    /// Enterprise-Managed Authorization with the IdP `issuer`, where this client is `client_id`.
    pub fn id_jag(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            grant_type: Some(GrantType::IdJag),
            idp_issuer: Some(issuer.into()),
            idp_client_id: Some(client_id.into()),
            ..Self::default()
        }
    }

    /// `id_jag`: the user's ID token is read from `file` (no sign-in at the IdP).
    #[must_use]
    pub fn id_token_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.id_token_file = Some(file.into());
        self
    }

    /// Authenticates the client with `private_key_jwt`, signed by the PEM key in `file`.
    #[must_use]
    pub fn private_key_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.private_key_file = Some(file.into());
        self
    }

    /// Signs the client assertion with `alg`.
    #[must_use]
    pub fn signing_alg(mut self, alg: JwsAlgorithm) -> Self {
        self.signing_alg = Some(alg);
        self
    }
}

/// The key, among the tokens' extra fields, of the [`GrantRecord`].
const GRANT_KEY: &str = "grant";

/// What produced a token set, stored with it (no secret, no key material): enough to run the grant
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrantRecord {
    /// [`GrantType::as_str`].
    #[serde(rename = "type")]
    pub(super) grant_type: String,
    /// How the client authenticates: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) client_auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) private_key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) assertion_file: Option<PathBuf>,
    /// `id_jag`: the IdP's issuer identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) idp_issuer: Option<String>,
    /// `id_jag`: this client's id at the IdP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) idp_client_id: Option<String>,
    /// `id_jag`: the ID token's file; none when the IdP's own sign-in provides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) id_token_file: Option<PathBuf>,
    /// The scope requested (space-separated), asked for again at renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scope: Option<String>,
}

impl GrantRecord {
    /// The record of an interactive sign-in (nothing to renew it with but a refresh token).
    pub(crate) fn interactive(grant: GrantType) -> Self {
        Self {
            grant_type: grant.as_str().to_owned(),
            client_auth: None,
            private_key_file: None,
            signing_alg: None,
            assertion_file: None,
            idp_issuer: None,
            idp_client_id: None,
            id_token_file: None,
            scope: None,
        }
    }

    fn read(tokens: &OAuthTokens) -> Option<Self> {
        serde_json::from_value(tokens.extra.get(GRANT_KEY)?.clone()).ok()
    }

    pub(super) fn grant(&self) -> GrantType {
        GrantType::parse(&self.grant_type).unwrap_or_default()
    }

    /// Stores this record in `tokens`, replacing whatever the token endpoint's answer had there.
    pub(crate) fn write(&self, tokens: &mut OAuthTokens) {
        tokens.extra.remove(GRANT_KEY);
        if let Ok(value) = serde_json::to_value(self) {
            tokens.extra.insert(GRANT_KEY.to_owned(), value);
        }
    }
}

/// The stored tokens' record when their grant renews itself.
pub(super) fn renewable(tokens: &OAuthTokens) -> Option<GrantRecord> {
    GrantRecord::read(tokens).filter(|r| r.grant().renews_itself())
}

/// Keeps the grant record of `old` on `new` (after a refresh: a field of that name in the token
/// endpoint's answer is the server's text).
pub(super) fn carry_grant(old: &OAuthTokens, new: &mut OAuthTokens) {
    new.extra.remove(GRANT_KEY);
    if let Some(value) = old.extra.get(GRANT_KEY) {
        new.extra.insert(GRANT_KEY.to_owned(), value.clone());
    }
}

/// The `grant_type` value of `grant` on the wire.
pub(super) fn wire_grant(grant: GrantType) -> &'static str {
    match grant {
        GrantType::JwtBearer | GrantType::IdJag => protocol::JWT_BEARER_GRANT,
        GrantType::ClientCredentials => protocol::CLIENT_CREDENTIALS_GRANT,
        GrantType::DeviceCode => protocol::DEVICE_CODE_GRANT,
        GrantType::AuthorizationCode => "authorization_code",
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::tokens::AccessToken;

    #[test]
    fn grant_names_round_trip() {
        for grant in [
            GrantType::AuthorizationCode,
            GrantType::DeviceCode,
            GrantType::ClientCredentials,
            GrantType::JwtBearer,
            GrantType::IdJag,
        ] {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
        assert_eq!(GrantType::parse("password"), None);
        assert!(GrantType::ClientCredentials.renews_itself());
        assert!(GrantType::JwtBearer.renews_itself());
        assert!(GrantType::IdJag.renews_itself());
        assert!(!GrantType::AuthorizationCode.renews_itself());
    }

    /// A token endpoint's answer cannot plant a grant record (it would name files to send).
    #[test]
    fn the_record_replaces_a_field_of_its_name_from_the_answer() {
        let mut tokens = OAuthTokens::new(AccessToken::new("at"), "Bearer", SystemTime::now());
        tokens.extra.insert(
            GRANT_KEY.to_owned(),
            serde_json::json!({"type": "jwt_bearer", "assertion_file": "/home/u/.ssh/id_ed25519"}),
        );
        assert_eq!(GrantType::of_tokens(&tokens), GrantType::JwtBearer);
        GrantRecord::interactive(GrantType::AuthorizationCode).write(&mut tokens);
        assert_eq!(GrantType::of_tokens(&tokens), GrantType::AuthorizationCode);
        assert!(renewable(&tokens).is_none());
        let untouched = OAuthTokens::new(AccessToken::new("at"), "Bearer", SystemTime::now());
        assert_eq!(
            GrantType::of_tokens(&untouched),
            GrantType::AuthorizationCode
        );
    }
}
