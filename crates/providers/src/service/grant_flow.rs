//! Running the grants that need no browser (see `grants`): the sign-in
//! ([`OAuthService::grant_sign_in`]), the renewal under the per-name lock
//! ([`OAuthService::renew_grant`]), and one request ([`OAuthService::grant_request`]) — a client
//! credentials grant authenticated with the client's secret or an RFC 7523 §2.2 client assertion
//! signed with its key, or a JWT-bearer grant (RFC 7523 §2.1) with the assertion read from its file
//! at every request, or with an ID-JAG obtained from the enterprise IdP just before (`id_jag`). A refusal is final for the credentials that got it: the same request is not
//! sent again by this process and no other grant is tried (SEP-1933).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use context_harness_protocol as protocol;
use context_harness_storage::ProviderName;
use protocol::{ClientAssertionClaims, JwsAlgorithm};
use url::Url;

use super::grants::{GrantRecord, GrantType, renewable, wire_grant};
use super::{AuthOutcome, AuthenticateOptions, CLIENT_ID_KEY, EXPIRY_BUFFER, OAuthService, mcp};
use crate::device::TokioClock;
use crate::error::{Error, ErrorCode, Grant, Result, classify_response_error, not_signed_in};
use crate::http::RawResponse;
use crate::provider::{OAuthConfig, TokenAuthMethod, check_endpoint};
use crate::provider_ref::ProviderRef;
use crate::signing::{SigningKey, random_jti};
use crate::tokens::{self, OAuthTokens, SecretString};

/// Refused requests of this process: `(home, name, digest of what was sent)`. The same request is
/// not sent again after a refusal (SEP-1933: no retry); another assertion (the file rotated) or
/// other options make another request.
static REFUSED: Mutex<Vec<(PathBuf, String, [u8; 32])>> = Mutex::new(Vec::new());

/// How the client authenticates a grant request.
enum ClientAuth {
    /// `private_key_jwt` with this key and algorithm.
    Assertion(Box<SigningKey>, JwsAlgorithm),
    /// The configuration's secret (`client_secret_basic`/`post`), or its client id alone.
    Config,
}

impl OAuthService {
    /// [`authenticate`](Self::authenticate) for a grant that renews itself (client credentials,
    /// JWT-bearer): no browser, no listener; the tokens are stored with their [`GrantRecord`] (and,
    /// for an MCP server, its record and binding, as a browser sign-in stores them).
    pub(super) async fn grant_sign_in(
        &self,
        target: &ProviderRef,
        options: &AuthenticateOptions,
        grant: GrantType,
    ) -> Result<AuthOutcome> {
        let opts = &options.grant;
        match grant {
            GrantType::IdJag => check_id_jag_options(options)?,
            GrantType::JwtBearer if opts.assertion_file.is_none() => {
                return Err(Error::new(
                    ErrorCode::ConfigMissing,
                    "the JWT-bearer grant needs the file that holds the assertion",
                )
                .with_hint("name the workload identity token's file"));
            }
            GrantType::ClientCredentials if opts.assertion_file.is_some() => {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    "an assertion file is for the JWT-bearer grant, not the client credentials grant",
                ));
            }
            _ => {}
        }
        if options.flow == crate::SignInFlow::Device {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "the device flow is an interactive sign-in; the {} grant has no user",
                    grant.as_str()
                ),
            ));
        }
        let name = target.storage_key();
        let client_id = options
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if matches!(grant, GrantType::ClientCredentials | GrantType::IdJag) && client_id.is_none() {
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                format!(
                    "the {} grant needs the pre-registered client's id",
                    grant.as_str()
                ),
            )
            .with_step(crate::NextStep::RegisterClient));
        }
        // The configuration: discovery only for an MCP server (a machine client is pre-registered:
        // no dynamic registration, no client metadata document), the registry's for a provider.
        let (mut config, record, metadata) = if target.is_mcp_server() {
            let info = self.discover_mcp_server(target.as_str()).await?;
            let mut record = mcp::McpServerRecord::from_info(&info, false)?;
            record.no_resource = options.no_resource;
            let mut provider = record.to_provider(target.name().as_str());
            provider.url_policy = Some(info.policy);
            provider.validate()?;
            let secret = match client_id {
                Some(_) if opts.private_key_file.is_none() => {
                    self.app.client_secret(&self.env, None)?
                }
                _ => None,
            };
            let config = provider.to_config(client_id.unwrap_or_default(), secret);
            (config, Some(record), Some(info.authorization_server))
        } else {
            let prepared = self.prepare_sign_in(target, options).await?;
            (prepared.config, None, None)
        };
        if let Some(m) = &metadata
            && let Some(grants) = &m.grant_types_supported
        {
            let wire = wire_grant(grant);
            if !grants.iter().any(|g| g == wire) {
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    format!(
                        "the authorization server does not offer the {} grant (its grant_types_supported lists {})",
                        grant.as_str(),
                        crate::terminal_text(&grants.join(", "))
                    ),
                ));
            }
        }
        let methods = metadata
            .as_ref()
            .and_then(|m| m.token_endpoint_auth_methods_supported.as_deref());
        let lists = |method: &str| methods.is_none_or(|l| l.iter().any(|m| m == method));
        let (client_auth, alg) = match &opts.private_key_file {
            Some(file) => {
                if !lists("private_key_jwt") {
                    return Err(Error::new(
                        ErrorCode::ConfigInvalid,
                        "the authorization server does not accept private_key_jwt client authentication",
                    )
                    .with_hint("authenticate the client with its secret instead"));
                }
                config.client_secret = None;
                let key = SigningKey::load(file)?;
                let server_algs = metadata.as_ref().and_then(|m| {
                    m.token_endpoint_auth_signing_alg_values_supported
                        .as_deref()
                });
                let alg = key.algorithm(opts.signing_alg, server_algs)?;
                ("private_key_jwt", Some(alg))
            }
            None if config.client_secret.is_some() => {
                (config.provider.token_auth_method.as_str(), None)
            }
            None if grant == GrantType::ClientCredentials => {
                return Err(Error::new(
                    ErrorCode::ConfigMissing,
                    "the client credentials grant needs the client's secret or private key",
                )
                .with_hint(format!(
                    "set {} (or {}) to the client secret, or give the client's private key file",
                    self.app.client_secret_env(),
                    self.app.client_secret_file_env()
                )));
            }
            None => ("none", None),
        };
        let scopes = options
            .scopes
            .clone()
            .unwrap_or_else(|| config.provider.scopes.clone());
        // No refresh token is asked for: the grant itself renews the tokens.
        let scope: Vec<String> = scopes
            .into_iter()
            .filter(|s| s != "offline_access")
            .collect();
        let grant_record = GrantRecord {
            grant_type: grant.as_str().to_owned(),
            client_auth: Some(client_auth.to_owned()),
            private_key_file: opts.private_key_file.as_deref().map(absolute).transpose()?,
            signing_alg: alg.map(|a| a.as_str().to_owned()),
            assertion_file: opts.assertion_file.as_deref().map(absolute).transpose()?,
            idp_issuer: opts.idp_issuer.clone(),
            idp_client_id: opts.idp_client_id.clone(),
            id_token_file: opts.id_token_file.as_deref().map(absolute).transpose()?,
            scope: (!scope.is_empty()).then(|| scope.join(" ")),
        };
        tracing::info!(
            provider = target.as_str(),
            grant = grant.as_str(),
            client_auth,
            "requesting a token without a browser"
        );
        let config = super::sign_in::with_dpop_key(&config, options.no_dpop)?;
        let tokens = self
            .grant_request(name, &config, &grant_record, Some(options))
            .await?;
        let tokens = self
            .store_sign_in(name, &config, record.as_ref(), tokens, &grant_record)
            .await?;
        Ok(self.outcome(name, tokens, String::new(), Vec::new()))
    }

    /// The grant record of `target`'s stored tokens when their grant renews itself (none when
    /// nothing usable is stored).
    pub(super) async fn stored_grant(&self, target: &ProviderRef) -> Option<GrantRecord> {
        let tokens = self.load_target(target).await.ok()??;
        mcp::check_tokens_server(target, &tokens).ok()?;
        renewable(&tokens)
    }

    /// Renews tokens whose grant renews itself (`record`): [`refresh_locked`]'s counterpart, with
    /// the same rules — under the per-name lock, tokens another process renewed meanwhile are used
    /// unless they have expired; the grant runs again only when the token is within its refresh
    /// margin (or `force`).
    ///
    /// [`refresh_locked`]: OAuthService::refresh_tokens
    pub(super) async fn renew_grant(
        &self,
        target: &ProviderRef,
        seen: &OAuthTokens,
        force: bool,
    ) -> Result<OAuthTokens> {
        let (provider, name) = (target.as_str(), target.storage_key());
        let lock = self.lock(name).await?;
        let Some(current) = self.load_locked(name).await? else {
            return Err(not_signed_in(target));
        };
        let now = SystemTime::now();
        if current != *seen && !current.is_expired_at(now, Duration::ZERO) {
            tracing::debug!(provider, "another process renewed the tokens");
            return Ok(current);
        }
        if !force && !current.needs_refresh_at(now, EXPIRY_BUFFER) {
            return Ok(current);
        }
        let Some(grant) = renewable(&current) else {
            // Signed in again meanwhile with a grant that does not renew itself.
            return if current.is_expired_at(now, Duration::ZERO) {
                Err(crate::error::expired_without_rt())
            } else {
                Ok(current)
            };
        };
        let mut config = self.grant_config(target, &current, &grant).await?;
        config.dpop_key = crate::dpop::DpopKey::from_tokens(&current);
        tracing::debug!(provider, grant = %grant.grant_type, "renewing the token with its grant");
        let mut fresh = self.grant_request(name, &config, &grant, None).await?;
        super::namespace::unbind(&mut fresh);
        mcp::carry_binding(&current, &mut fresh);
        grant.write(&mut fresh);
        crate::dpop::carry_key(&current, &mut fresh);
        // A `DPoP` answer to a request without a proof is useless: refused before it is stored.
        crate::dpop::check_answer(&fresh)?;
        fresh
            .extra
            .insert(CLIENT_ID_KEY.to_owned(), config.client_id.clone().into());
        self.save(name, fresh.clone()).await?;
        drop(lock);
        tracing::info!(provider, "access token renewed");
        Ok(fresh)
    }

    /// The configuration to run a stored grant again with: an MCP server's record (checked against
    /// the tokens' binding), or the registry's provider; the client id stored with the tokens, and
    /// its secret from the environment when it authenticates with one (never stored).
    async fn grant_config(
        &self,
        target: &ProviderRef,
        tokens: &OAuthTokens,
        grant: &GrantRecord,
    ) -> Result<OAuthConfig> {
        let uses_secret = matches!(
            grant.client_auth.as_deref(),
            Some("client_secret_basic" | "client_secret_post")
        );
        let mut config = if target.is_mcp_server() {
            let Some(record) = self.stored_record(target)? else {
                return Err(Error::new(
                    ErrorCode::AuthRequired,
                    format!("no sign-in record for {}", target.as_str()),
                ));
            };
            mcp::check_record_binding(target, &record, tokens)?;
            let mut template = record.to_provider(target.name().as_str());
            template.url_policy = Some(mcp::server_policy(&record.server_url).await);
            let client_id = tokens
                .extra
                .get(CLIENT_ID_KEY)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let secret = if uses_secret {
                self.app.client_secret(&self.env, None)?
            } else {
                None
            };
            template.to_config(client_id, secret)
        } else {
            self.stored_config(target, tokens).await?
        };
        match grant.client_auth.as_deref() {
            Some(method @ ("client_secret_basic" | "client_secret_post")) => {
                if config.client_secret.is_none() {
                    return Err(Error::new(
                        ErrorCode::ConfigMissing,
                        "renewing the token needs the client secret it was obtained with",
                    )
                    .with_hint(format!(
                        "set {} (or {}) as at the sign-in",
                        self.app.client_secret_env(),
                        self.app.client_secret_file_env()
                    )));
                }
                if let Some(method) = TokenAuthMethod::parse(method) {
                    config.provider.token_auth_method = method;
                }
            }
            _ => config.client_secret = None,
        }
        Ok(config)
    }

    /// One grant request (`grant`'s type, assertion, scope; the configuration's `resource` and client
    /// authentication), transient answers waited out within the refresh budget; the answer's
    /// refresh token dropped. A refusal is remembered: the identical request is not sent again.
    /// `options` (a sign-in's; `None` when renewing) serve a browser sign-in at the IdP that an
    /// `id_jag` grant without an ID token file may need.
    async fn grant_request(
        &self,
        name: &ProviderName,
        config: &OAuthConfig,
        grant: &GrantRecord,
        options: Option<&AuthenticateOptions>,
    ) -> Result<OAuthTokens> {
        let kind = grant.grant();
        let token_url = check_endpoint(
            &config.provider.token_url,
            &format!("providers.{}.token_url", name.as_str()),
        )?;
        // `id_jag`: what identifies the request is the user's ID token; the ID-JAG is new each time.
        let id_token = match kind {
            GrantType::IdJag => Some(self.idp_id_token(grant, options, name).await?),
            _ => None,
        };
        let assertion = match (&grant.assertion_file, kind) {
            (Some(file), GrantType::JwtBearer) => Some(read_assertion(file)?),
            (None, GrantType::JwtBearer) => {
                return Err(Error::new(
                    ErrorCode::ConfigMissing,
                    "the stored JWT-bearer grant names no assertion file",
                ));
            }
            _ => None,
        };
        let client_auth = match (&grant.client_auth.as_deref(), &grant.private_key_file) {
            (Some("private_key_jwt"), Some(file)) => {
                let key = SigningKey::load(file)?;
                let alg = key.algorithm(
                    grant.signing_alg.as_deref().and_then(JwsAlgorithm::parse),
                    None,
                )?;
                ClientAuth::Assertion(Box::new(key), alg)
            }
            _ => ClientAuth::Config,
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", wire_grant(kind))];
        if let Some(assertion) = &assertion {
            form.push(("assertion", assertion.secret()));
        }
        if let Some(scope) = &grant.scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = &config.provider.resource {
            form.push(("resource", resource));
        }
        let fingerprint = fingerprint(grant, config, assertion.as_ref().or(id_token.as_ref()));
        let refused = |entry: &(PathBuf, String, [u8; 32])| {
            entry.0 == self.home && entry.1 == name.as_str() && entry.2 == fingerprint
        };
        let remember_refusal = || {
            if let Ok(mut list) = REFUSED.lock() {
                list.push((self.home.clone(), name.as_str().to_owned(), fingerprint));
            }
        };
        if REFUSED.lock().is_ok_and(|list| list.iter().any(refused)) {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the authorization server already refused this {} request; not sending it again",
                    kind.as_str()
                ),
            )
            .with_hint("fix the client's credentials or the assertion, then start again"));
        }
        // Enterprise-Managed Authorization: the ID-JAG from the IdP is the assertion.
        let id_jag = match &id_token {
            Some(id_token) => match self.exchange_for_id_jag(config, grant, id_token).await {
                Ok(id_jag) => Some(id_jag),
                Err(e) => {
                    if e.oauth_error().is_some() && !e.is_transient() {
                        remember_refusal();
                    }
                    return Err(e);
                }
            },
            None => None,
        };
        if let Some(id_jag) = &id_jag {
            form.push(("assertion", id_jag.secret()));
        }
        // The issuer is the audience of a client assertion (RFC 7523bis; the MCP conformance suite
        // checks it); the token endpoint when no issuer is known (RFC 7523 §3).
        let audience = config
            .provider
            .issuer
            .clone()
            .unwrap_or_else(|| token_url.to_string());
        let clock = TokioClock;
        let patience =
            super::retry::Patience::within(&clock, self.refresh_retry_budget, "requesting a token");
        let (raw, sent_at) = super::retry::send_until_settled(
            &patience,
            || self.send_grant(config, &token_url, &form, &client_auth, &audience),
            std::convert::identity,
        )
        .await?;
        let classify = match kind {
            GrantType::JwtBearer | GrantType::IdJag => Grant::JwtBearer,
            _ => Grant::ClientCredentials,
        };
        match tokens::parse_token_response(
            raw.status,
            raw.content_type.as_deref(),
            &raw.body,
            sent_at,
        ) {
            Ok(mut tokens) => {
                tokens.refresh_token = None;
                tokens.refresh_token_expires_in = None;
                Ok(tokens)
            }
            Err(e) => {
                let err = classify_response_error(&e, classify);
                if err.oauth_error().is_some() && !err.is_transient() {
                    remember_refusal();
                    return Err(explain_refusal(err, kind, grant));
                }
                Err(err)
            }
        }
    }

    /// Sends one grant request: with a freshly signed client assertion (a new `jti` every time,
    /// also after a transient answer), or with the configuration's client authentication; a public
    /// client without an id sends none.
    async fn send_grant(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: &[(&str, &str)],
        client_auth: &ClientAuth,
        audience: &str,
    ) -> Result<RawResponse> {
        let policy = config.provider.url_policy;
        match client_auth {
            ClientAuth::Assertion(key, alg) => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let claims =
                    ClientAssertionClaims::new(&config.client_id, audience, now, &random_jti()?)
                        .map_err(|e| {
                            Error::new(
                                ErrorCode::ConfigInvalid,
                                "cannot build the client assertion",
                            )
                            .with_source(e)
                        })?;
                let signed = key.sign(&claims, *alg)?;
                let mut form = form.to_vec();
                form.push(("client_assertion_type", protocol::CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", &signed));
                self.post_token_form(config, url, &form, None, "token endpoint", policy)
                    .await
            }
            ClientAuth::Config if config.client_id.is_empty() && config.client_secret.is_none() => {
                self.post_token_form(config, url, form, None, "token endpoint", policy)
                    .await
            }
            ClientAuth::Config => {
                self.post_with_client_auth(config, url, form, "token endpoint")
                    .await
            }
        }
    }
}

/// What identifies a request's credentials, for [`REFUSED`]: the record, the client, and the
/// assertion (SHA-256; nothing secret is kept).
fn fingerprint(
    grant: &GrantRecord,
    config: &OAuthConfig,
    assertion: Option<&SecretString>,
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(serde_json::to_string(grant).unwrap_or_default().as_bytes());
    ctx.update(b"\0");
    ctx.update(config.client_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(config.provider.token_url.as_bytes());
    ctx.update(b"\0");
    if let Some(assertion) = assertion {
        ctx.update(assertion.secret().as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A refused grant request, with the hint that helps (never the credentials).
fn explain_refusal(err: Error, kind: GrantType, grant: &GrantRecord) -> Error {
    let hint = match (err.oauth_error(), kind) {
        (Some("invalid_grant"), GrantType::JwtBearer) => format!(
            "check the assertion in {}: its audience (the authorization server's issuer), its expiry, and that the server trusts its issuer",
            grant.assertion_file.as_deref().map_or_else(
                || "the assertion file".to_owned(),
                |p| p.display().to_string()
            )
        ),
        (Some("invalid_grant"), GrantType::IdJag) => "the MCP authorization server refused the ID-JAG: check that it trusts the identity provider (--idp-issuer) and knows --client-id as this client".to_owned(),
        (Some("unauthorized_client"), _) => format!(
            "the authorization server does not allow this client the {} grant; ask its administrator",
            kind.as_str()
        ),
        (Some("invalid_client"), _) if grant.client_auth.as_deref() == Some("private_key_jwt") => {
            "check the client id and that the server has the public key of the private key file"
                .to_owned()
        }
        (Some("invalid_client"), _) => "check the client id and secret".to_owned(),
        (Some("invalid_scope"), _) => "ask for scopes the client may have".to_owned(),
        _ => return err,
    };
    err.with_hint(hint)
}

/// `path` made absolute against the working directory (stored paths must not depend on where a
/// later command runs); no file is touched.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!("cannot make {} an absolute path", path.display()),
        )
        .with_source(e)
    })
}

/// The options of an `id_jag` sign-in, checked before anything is sent.
fn check_id_jag_options(options: &AuthenticateOptions) -> Result<()> {
    let opts = &options.grant;
    if opts.assertion_file.is_some() {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            "an assertion file is for the JWT-bearer grant; the id_jag grant takes an ID token file",
        ));
    }
    let record = GrantRecord {
        idp_issuer: opts.idp_issuer.clone(),
        idp_client_id: opts.idp_client_id.clone(),
        ..GrantRecord::interactive(GrantType::IdJag)
    };
    super::id_jag::idp_of(&record)?;
    Ok(())
}

/// The assertion of a JWT-bearer grant, read from `path` at every request
/// ([`read_provisioned`](context_harness_storage::read_provisioned): links followed, the file the
/// user's own with mode 0600 or root's, neither it nor its directory writable by group or others),
/// trimmed, and refused unless it has the shape of a JWT. Messages name the file, never its
/// content.
fn read_assertion(path: &Path) -> Result<SecretString> {
    read_jwt_file(path, "assertion file")
}

/// A JWT handed to this client in a file (`what`: `assertion file`, `ID token file`), read as
/// [`read_assertion`] describes.
pub(super) fn read_jwt_file(path: &Path, what: &str) -> Result<SecretString> {
    let shown = path.display();
    let refuse = |why: String, hint: &str| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!("the {what} {shown}: {why}"),
        )
        .with_hint(hint.to_owned())
    };
    let (bytes, own, mode) = match context_harness_storage::read_provisioned(path) {
        Ok(Some(read)) => read,
        Ok(None) => {
            return Err(refuse(
                "no such file".to_owned(),
                "give the path of the file that holds the JWT",
            ));
        }
        Err(e) => {
            let hint = e
                .fix()
                .unwrap_or_else(|| "keep the file where only you (or root) can write".to_owned());
            return Err(
                Error::new(ErrorCode::ConfigInvalid, format!("the {what} {shown}: {e}"))
                    .with_hint(hint)
                    .with_source(e),
            );
        }
    };
    // A file of the user's own holds a secret: nobody else may read it (also for root, whose own
    // files these are then). A root-owned one read by another user is the platform's (a projected
    // volume), whose permissions the platform decides.
    if own && mode & 0o077 != 0 {
        return Err(refuse(
            format!("group or others may access it (mode {mode:o}), and it holds a credential"),
            &format!("chmod 600 {shown}"),
        ));
    }
    let text = context_harness_storage::decode_text(&bytes)
        .map_err(|e| refuse(format!("it is not text ({e})"), "give the file of the JWT"))?;
    let jwt = text.trim();
    if !protocol::is_compact_jws(jwt) {
        return Err(refuse(
            "it does not hold a JWT (three base64url parts)".to_owned(),
            "give the file that holds the JWT",
        ));
    }
    Ok(SecretString::new(jwt.to_owned()))
}
