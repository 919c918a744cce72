//! Enterprise-Managed Authorization (`--grant-type id_jag`; the MCP extension
//! `io.modelcontextprotocol/enterprise-managed-authorization`, SEP-990; the IETF draft "Identity
//! Assertion JWT Authorization Grant"): the user's ID token from the enterprise identity provider
//! (IdP) is exchanged at the IdP's token endpoint (RFC 8693) for an ID-JAG whose audience is the
//! MCP authorization server's issuer and whose resource is the MCP server; `grant_flow` then sends
//! the ID-JAG as the assertion of the RFC 7523 §2.1 JWT-bearer grant. The user never goes to the
//! MCP authorization server.
//!
//! The ID token comes from a file the caller keeps fresh (`--id-token-file`, read at every exchange
//! as a workload identity token is), or from this client's own OpenID Connect sign-in at the IdP
//! (`idp_sign_in`). The IdP is found by discovery from its issuer (RFC 8414, then
//! OpenID Connect Discovery; its `issuer` must match exactly), under the address policy of that
//! issuer's URL. This client authenticates to the IdP with its IdP client secret when one is set
//! ([`App::idp_client_secret`](crate::App::idp_client_secret): `client_secret_basic`, or
//! `client_secret_post` when the IdP allows only that), else as a public client (`client_id` in the
//! form). Neither the ID token, the ID-JAG nor the secret is logged or stored.

use context_harness_protocol as protocol;
use protocol::{AuthorizationServerMetadata, IdJagRequest};

use super::OAuthService;
use super::grants::GrantRecord;
use crate::device::TokioClock;
use crate::discovery::Discoverer;
use crate::error::{Error, ErrorCode, Grant, Result, classify_response_error};
use crate::provider::{OAuthConfig, OAuthProvider, TokenAuthMethod, check_endpoint};
use crate::ssrf::UrlPolicy;
use crate::tokens::{self, SecretString};

/// The display name of the IdP in messages and in the configuration built for it.
const IDP_NAME: &str = "identity-provider";

/// The grant record's IdP issuer and client id, or the error saying which is missing.
pub(super) fn idp_of(grant: &GrantRecord) -> Result<(&str, &str)> {
    let missing = |what: &str, flag: &str| {
        Error::new(
            ErrorCode::ConfigMissing,
            format!("Enterprise-Managed Authorization needs the identity provider's {what}"),
        )
        .with_hint(format!("give {flag}"))
    };
    let issuer = grant
        .idp_issuer
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("issuer", "--idp-issuer URL"))?;
    let client_id = grant
        .idp_client_id
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("client id for this client", "--idp-client-id ID"))?;
    Ok((issuer, client_id))
}

impl OAuthService {
    /// The user's ID token for the `id_jag` grant `grant`: read from its file at every exchange
    /// (links followed; the user's own file with mode 0600, or root's; see `grant_flow`'s reader),
    /// or, without a file, from this client's own sign-in at the IdP (`idp_sign_in`; a browser
    /// sign-in with `options` when neither a valid stored ID token nor a refresh gives one).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for a file that cannot be used or holds no JWT; the errors of
    /// the IdP sign-in.
    pub(super) async fn idp_id_token(
        &self,
        grant: &GrantRecord,
        options: Option<&super::AuthenticateOptions>,
        key: &context_harness_storage::ProviderName,
    ) -> Result<SecretString> {
        match &grant.id_token_file {
            Some(file) => super::grant_flow::read_jwt_file(file, "ID token file"),
            None => self.idp_signed_in_id_token(grant, options, key).await,
        }
    }

    /// Exchanges `id_token` at the IdP of `grant` for an ID-JAG for the authorization server of
    /// `config` (`audience` its issuer, `resource` its resource, `scope` the grant's), transient
    /// answers waited out within the refresh budget.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigMissing`] when the authorization server's issuer is unknown (it is the
    /// audience); discovery errors; the IdP's refusal, classified (its `error` kept, so the caller
    /// does not send the same request again); [`ErrorCode::AuthFailed`] when the answer is not an
    /// ID-JAG (`issued_token_type`, RFC 8693 §2.2.1, or not a JWT).
    pub(super) async fn exchange_for_id_jag(
        &self,
        config: &OAuthConfig,
        grant: &GrantRecord,
        id_token: &SecretString,
    ) -> Result<SecretString> {
        let (issuer, client_id) = idp_of(grant)?;
        let Some(audience) = config.provider.issuer.as_deref() else {
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                "the MCP authorization server's issuer is unknown; it is the audience of the ID-JAG",
            ));
        };
        let idp = self.idp_config(issuer, client_id).await?;
        let token_url = check_endpoint(
            &idp.provider.token_url,
            "the identity provider's token_endpoint",
        )?;
        let request = IdJagRequest {
            id_token: id_token.secret(),
            audience,
            resource: config.provider.resource.as_deref(),
            scope: grant.scope.as_deref(),
        };
        let form = request.form();
        tracing::debug!(
            idp = %crate::terminal_text(issuer),
            audience = %crate::terminal_text(audience),
            "exchanging the ID token for an ID-JAG at the identity provider"
        );
        let clock = TokioClock;
        let patience = super::retry::Patience::within(
            &clock,
            self.refresh_retry_budget,
            "exchanging the ID token",
        );
        let (raw, sent_at) = super::retry::send_until_settled(
            &patience,
            || {
                self.post_with_client_auth(
                    &idp,
                    &token_url,
                    &form,
                    "identity provider token endpoint",
                )
            },
            std::convert::identity,
        )
        .await?;
        let answer = tokens::parse_token_response(
            raw.status,
            raw.content_type.as_deref(),
            &raw.body,
            sent_at,
        )
        .map_err(|e| {
            let err = classify_response_error(&e, Grant::TokenExchange);
            match err.oauth_error() {
                Some("invalid_grant") => err.with_hint(
                    "the identity provider refused the ID token: give a fresh one, issued to --idp-client-id",
                ),
                Some("unauthorized_client" | "invalid_client") => err.with_hint(
                    "the identity provider does not let this client exchange tokens for an ID-JAG; check --idp-client-id and its secret, or ask the IdP's administrator",
                ),
                Some("invalid_target") => err.with_hint(
                    "the identity provider does not know this MCP server (audience or resource); ask the IdP's administrator to enable it",
                ),
                _ => err,
            }
        })?;
        let issued = answer
            .extra
            .get("issued_token_type")
            .and_then(|v| v.as_str());
        if let Err(other) = protocol::check_issued_token_type(issued) {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the identity provider's answer is not an ID-JAG (issued_token_type {})",
                    other.map_or_else(
                        || "missing".to_owned(),
                        |t| format!("`{}`", crate::terminal_text(&t))
                    )
                ),
            ));
        }
        let id_jag = answer.access_token.secret();
        if !protocol::is_compact_jws(id_jag) {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                "the identity provider's ID-JAG is not a JWT",
            ));
        }
        Ok(SecretString::new(id_jag.to_owned()))
    }

    /// The IdP as a configuration: its metadata by discovery from `issuer` (the document's issuer
    /// must match), its token endpoint, this client's id there and its IdP client secret.
    async fn idp_config(&self, issuer: &str, client_id: &str) -> Result<OAuthConfig> {
        let url = check_endpoint(issuer, "--idp-issuer")?;
        let whom = format!(
            "the identity provider at {}",
            url.host_str().unwrap_or("server")
        );
        let policy = UrlPolicy::new(crate::ssrf::class_of_user_url(&url, &whom).await?);
        let metadata = Discoverer {
            http: &self.http,
            policy,
        }
        .authorization_server(issuer)
        .await
        .map_err(|e| {
            e.with_hint("check --idp-issuer: the identity provider's issuer identifier")
        })?;
        check_offers_exchange(&metadata)?;
        let Some(token_url) = metadata.token_endpoint.clone() else {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                "the identity provider's metadata has no token_endpoint",
            ));
        };
        let auth_url = metadata
            .authorization_endpoint
            .clone()
            .unwrap_or_else(|| token_url.clone());
        let mut provider = OAuthProvider::new(IDP_NAME, auth_url, token_url)?;
        provider.display_name = issuer.to_owned();
        provider.issuer = Some(metadata.issuer.clone());
        provider.url_policy = Some(policy);
        provider.token_auth_method =
            TokenAuthMethod::preferred(metadata.token_endpoint_auth_methods_supported.as_deref());
        let secret = self.app.idp_client_secret(&self.env)?;
        Ok(provider.to_config(client_id, secret))
    }
}

/// Refuses an IdP whose metadata lists its grants without the token exchange.
fn check_offers_exchange(metadata: &AuthorizationServerMetadata) -> Result<()> {
    match &metadata.grant_types_supported {
        Some(grants) if !grants.iter().any(|g| g == protocol::TOKEN_EXCHANGE_GRANT) => {
            Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the identity provider does not offer the token exchange (its grant_types_supported lists {})",
                    crate::terminal_text(&grants.join(", "))
                ),
            )
            .with_hint("Enterprise-Managed Authorization needs an identity provider that issues ID-JAGs"))
        }
        _ => Ok(()),
    }
}
