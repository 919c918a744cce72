//! Signing in: [`OAuthService::authenticate`] picks the flow (the device grant is in
//! `device_flow`), runs the browser sign-in (authorization code + PKCE over a loopback redirect,
//! RFC 6749 §4.1, RFC 7636, RFC 8252) with pasted redirect URLs raced against the listener, checks
//! the RFC 9207 `iss`, and stores the tokens of a fresh sign-in.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use context_harness_callback_server as callback;
use context_harness_pkce as pkce;
use context_harness_storage::ProviderName;
use url::Url;

use super::grants::{GrantRecord, GrantType};
use super::one_sign_in::Turn;
use super::store::{blocking, remove_recovery};
use super::{
    AuthOutcome, AuthenticateOptions, CLIENT_ID_KEY, McpServerRecord, OAuthService, for_provider,
    mcp,
};
use crate::error::{Error, ErrorCode, Grant, Result, callback_error};
use crate::provider::{OAuthConfig, check_endpoint};
use crate::tokens::OAuthTokens;

/// Lines pasted within this time of each other are one paste (a wrapped URL).
const PASTE_CONTINUATION: Duration = Duration::from_millis(150);

/// A paste longer than this is not joined with further lines.
const MAX_PASTE_BYTES: usize = 16 * 1024;

impl OAuthService {
    /// Runs the browser sign-in: PKCE S256 and `state`, loopback listener bound first, browser opened,
    /// callback checked (state, RFC 9207 `iss`), code exchanged, tokens stored.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigMissing`]/[`ErrorCode::ConfigInvalid`]/[`ErrorCode::NotFound`] before
    /// anything starts; [`ErrorCode::AuthCancelled`] when the user denies; [`ErrorCode::Timeout`]
    /// when no callback comes; [`ErrorCode::AuthFailed`] for a refused code or a mix-up;
    /// [`ErrorCode::NetworkError`]; [`ErrorCode::Storage`].
    pub async fn authenticate(
        &self,
        provider: &str,
        options: AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        for_provider(provider, self.authenticate_inner(provider, options)).await
    }

    async fn authenticate_inner(
        &self,
        provider: &str,
        mut options: AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        let target = self.target(provider)?;
        let name = target.storage_key().clone();
        // Tokens an older version kept under a shared name go to their owner before anything is
        // written under this name.
        self.settle_target(&target).await?;
        // A grant without a user (client credentials, JWT-bearer) needs no browser and no sign-in
        // lock (`grants`); without a grant asked for, tokens obtained with one are renewed as they
        // were, never replaced by a browser sign-in.
        match options.grant.grant_type {
            Some(grant) if grant.renews_itself() || grant == GrantType::IdJag => {
                return self.grant_sign_in(&target, &options, grant).await;
            }
            None if self.stored_grant(&target).await.is_some() => {
                let tokens = self.refresh_tokens(provider).await?;
                return Ok(self.outcome(&name, tokens, String::new(), Vec::new()));
            }
            _ => {}
        }
        // One interactive sign-in per name across processes: wait for another one's, and use its
        // tokens (`one_sign_in`); else hold the sign-in lock until this one's tokens are stored.
        let _sign_in_lock = match self.sign_in_turn(&target, &options).await? {
            Turn::Shared(outcome) => return Ok(*outcome),
            Turn::Ours(lock) => lock,
        };
        let mut prepared = self.prepare_sign_in(&target, &options).await?;
        // Another account of this provider is signed in: the browser's session at the server is
        // most likely that one's, so ask the server to let the user choose (`accounts`).
        let prompt = if self.other_account_signed_in(&target) {
            let metadata = prepared.info.as_ref().map(|i| &i.authorization_server);
            super::accounts::identity_prompt(&prepared.config.provider, metadata)
        } else {
            None
        };
        let device = self.use_device_flow(provider, &prepared.config, options.flow)?;
        // With `--port 0` and a dynamic registration, the listener bound before registering.
        let listener = prepared.listener.take();
        let record = prepared.record.as_ref();
        // The device flow (`device`) or the browser flow with a resolved configuration.
        let sign_in = async |config: &OAuthConfig,
                             options: &mut AuthenticateOptions,
                             listener: Option<callback::CallbackServer>| {
            let config = &super::accounts::with_prompt(config, prompt);
            let config = &with_dpop_key(config, options.no_dpop)?;
            if device {
                self.authenticate_device(provider, &name, config, record, options)
                    .await
            } else {
                self.browser_sign_in(provider, &name, config, record, options, listener)
                    .await
            }
        };
        let first = sign_in(&prepared.config, &mut options, listener).await;
        match first {
            // A dynamically registered client the server no longer knows: register again, once.
            Err(e) if prepared.dynamic_issuer.is_some() && mcp::is_invalid_client(&e) => {
                let (config, listener) = self.reregister(&target, &prepared, &options).await?;
                sign_in(&config, &mut options, listener).await
            }
            other => other,
        }
    }

    /// The browser flow with a resolved configuration, waiting on `listener` when one was bound
    /// already for this configuration's redirect path (`--port 0` with a dynamic registration).
    pub(super) async fn browser_sign_in(
        &self,
        provider: &str,
        name: &ProviderName,
        config: &OAuthConfig,
        record: Option<&McpServerRecord>,
        options: &mut AuthenticateOptions,
        listener: Option<callback::CallbackServer>,
    ) -> Result<AuthOutcome> {
        let p = &config.provider;
        let auth_url = check_endpoint(&p.auth_url, &format!("providers.{provider}.auth_url"))?;
        let token_url = check_endpoint(&p.token_url, &format!("providers.{provider}.token_url"))?;

        let pkce = if p.pkce {
            Some(pkce::PkceChallenge::generate().map_err(|e| {
                Error::new(ErrorCode::AuthFailed, "cannot generate the PKCE verifier")
                    .with_source(e)
            })?)
        } else {
            None
        };
        let state = pkce::State::generate().map_err(|e| {
            Error::new(ErrorCode::AuthFailed, "cannot generate the state").with_source(e)
        })?;

        // Bind first, so the redirect URI (and its port) is known before the browser opens.
        let mut cb = callback::CallbackConfig::default();
        cb.ports = options.ports.clone().unwrap_or_else(|| p.ports.clone());
        cb.host = p.redirect_host;
        cb.path.clone_from(&p.redirect_path);
        cb.timeout = options.timeout;
        let bound_for_this = |server: &callback::CallbackServer| {
            Url::parse(server.redirect_uri()).is_ok_and(|u| u.path() == p.redirect_path)
        };
        let server = match listener {
            Some(server) if bound_for_this(&server) => server,
            _ => callback::CallbackServer::bind(cb)
                .await
                .map_err(callback_error)?,
        };
        let redirect_uri = server.redirect_uri().to_owned();
        let mut skipped_ports: Vec<u16> = server.skipped_ports().iter().map(|a| a.port).collect();
        skipped_ports.dedup();

        let scopes = options.scopes.clone().unwrap_or_else(|| p.scopes.clone());
        let url = authorization_url(
            &auth_url,
            config,
            &redirect_uri,
            &scopes,
            &state,
            pkce.as_ref(),
        );
        tracing::info!(provider, redirect_uri = %redirect_uri, "waiting for the authorization callback");

        let opener = options
            .browser
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.browser));
        let ui = options.ui_or_default();
        ui.opening_browser(url.as_str());
        let url_for_opener = url.to_string();
        // The opener runs beside the listener: a text browser named in $BROWSER (lynx, w3m, curl)
        // runs in the foreground until it exits, and its request to the callback must be answered
        // meanwhile.
        let mut opening = tokio::task::spawn_blocking(move || opener.open(&url_for_opener));
        let mut opener_done = false;
        // Build the HTTP client (it loads the system TLS roots: tens of ms) while the user is in the
        // browser, so the code exchange after the callback does not wait for it.
        let http = Arc::clone(&self.http);
        drop(tokio::task::spawn_blocking(move || http.prewarm()));

        // RFC 9207 §2.4: an error response is checked against the issuer too before it is acted on.
        let to_error = |e: callback::Error| {
            let iss = match &e {
                callback::Error::Cancelled { iss, .. }
                | callback::Error::Authorization { iss, .. } => Some(iss.as_deref()),
                _ => None,
            };
            match iss.map(|iss| {
                check_callback_issuer(iss, p.issuer.as_deref(), p.iss_parameter_supported)
            }) {
                Some(Err(mix_up)) => mix_up,
                _ => callback_error(e),
            }
        };
        let wait = server.wait(&state);
        tokio::pin!(wait);
        let mut pasted = options.pasted_redirects.take();
        let response = loop {
            tokio::select! {
                result = &mut wait => break result.map_err(to_error)?,
                opened = &mut opening, if !opener_done => {
                    opener_done = true;
                    let opened = opened.unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
                    if let Err(e) = opened {
                        ui.browser_failed(url.as_str(), &e);
                    }
                }
                line = async {
                    match pasted.as_mut() {
                        Some(lines) => lines.recv().await,
                        None => std::future::pending().await,
                    }
                }, if pasted.is_some() => {
                    let Some(first) = line else {
                        // End of input: the listener alone answers.
                        pasted = None;
                        continue;
                    };
                    // A terminal hands a wrapped URL over as several lines at once: the lines
                    // that follow within a moment are part of the same paste.
                    let mut batch = vec![first];
                    if let Some(lines) = pasted.as_mut() {
                        while batch.iter().map(String::len).sum::<usize>() < MAX_PASTE_BYTES {
                            match tokio::time::timeout(PASTE_CONTINUATION, lines.recv()).await {
                                Ok(Some(more)) => batch.push(more),
                                Ok(None) => {
                                    pasted = None;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    let mut accepted = None;
                    for candidate in paste_candidates(&batch) {
                        match callback::parse_redirect_url(&candidate, &redirect_uri, &state) {
                            Ok(response) => {
                                accepted = Some(response);
                                break;
                            }
                            // Like a bad request at the listener: say why, keep waiting.
                            Err(e @ (callback::Error::InvalidCallback { .. } | callback::Error::StateMismatch)) => {
                                ui.paste_rejected(&callback_error(e));
                            }
                            // An error response for this very sign-in (denied, server error).
                            Err(e) => return Err(to_error(e)),
                        }
                    }
                    if let Some(response) = accepted {
                        break response;
                    }
                }
            }
        };

        // RFC 9207: the response must come from the issuer we sent the user to.
        check_callback_issuer(
            response.iss.as_deref(),
            p.issuer.as_deref(),
            p.iss_parameter_supported,
        )?;

        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", response.code.secret()),
            ("redirect_uri", &redirect_uri),
        ];
        if let Some(pkce) = &pkce {
            form.push(("code_verifier", pkce.verifier().secret()));
        }
        if let Some(resource) = &p.resource {
            form.push(("resource", resource));
        }
        let tokens = self
            .token_request(config, &token_url, &form, Grant::Exchange)
            .await?;
        let grant = GrantRecord::interactive(GrantType::AuthorizationCode);
        let tokens = self
            .store_sign_in(name, config, record, tokens, &grant)
            .await?;
        Ok(self.outcome(name, tokens, redirect_uri, skipped_ports))
    }

    /// Stores the tokens of a fresh sign-in (browser or device flow, or a grant that renews itself):
    /// clears any refresh-failure mark and records which client and which `grant` they belong to, so
    /// refresh (or renewal) uses the same.
    ///
    /// For an MCP server, `record` (what discovery found) is bound to the tokens and written beside
    /// them, both under the provider lock: only a sign-in that succeeded changes where the
    /// server's tokens are sent.
    pub(super) async fn store_sign_in(
        &self,
        name: &ProviderName,
        config: &OAuthConfig,
        record: Option<&McpServerRecord>,
        mut tokens: OAuthTokens,
        grant: &GrantRecord,
    ) -> Result<OAuthTokens> {
        tokens.refresh_failed_at = None;
        tokens
            .extra
            .insert(CLIENT_ID_KEY.to_owned(), config.client_id.clone().into());
        // A field of the binding's name in the token endpoint's answer is that server's text, not
        // a binding: only an MCP server sign-in's own record binds tokens (else a provider's
        // authorization server could have its tokens moved under a server's name and sent there).
        super::namespace::unbind(&mut tokens);
        if let Some(record) = record {
            mcp::bind_tokens(&mut tokens, record);
        }
        // Which grant made them (a field of that name in the answer is replaced too).
        grant.write(&mut tokens);
        // The DPoP key the token requests were signed with; the answer's field of that name is not.
        crate::dpop::DpopKey::strip(&mut tokens);
        if let Some(key) = &config.dpop_key {
            key.write(&mut tokens);
        }
        // A `DPoP` answer to a request without a proof is useless: refused before it is stored.
        crate::dpop::check_answer(&tokens)?;
        // Under the refresh lock: a refresh running in another process must not write its (older)
        // grant over this sign-in after we store it.
        let _lock = self.lock(name).await?;
        self.save(name, tokens.clone()).await?;
        if let Some(record) = record {
            // An MCP server's record is shared by its accounts: under the server's own name.
            self.save_record(name.base_name(), record)?;
        }
        // A recovery file from an earlier failed save holds an older grant now.
        let recovery = self.recovery_path(name);
        blocking(move || remove_recovery(&recovery)).await?;
        // The account is signed in: in the provider's index (the first one becomes the default).
        self.record_account(name).await?;
        tracing::info!(
            provider = name.as_str(),
            store = self.store.name(),
            "signed in; tokens stored"
        );
        Ok(tokens)
    }
}

/// The URLs in one paste of `lines`: a line that starts like a URL (`http…`, possibly after `<`,
/// `"`, `'` or `` ` ``) begins a new one, and the lines after it, up to the next such line, are its
/// continuation (a terminal wrapped it). Each URL is its lines joined.
/// `config` with a new DPoP key (RFC 9449) when its provider offers DPoP and `no_dpop` is off;
/// else `config` as it is.
///
/// # Errors
///
/// [`ErrorCode::AuthFailed`] when the random source fails.
pub(super) fn with_dpop_key(config: &OAuthConfig, no_dpop: bool) -> Result<OAuthConfig> {
    let mut config = config.clone();
    config.dpop_key = if config.provider.dpop && !no_dpop {
        tracing::debug!("the authorization server offers DPoP: binding the tokens to a new key");
        Some(crate::dpop::DpopKey::generate()?)
    } else {
        None
    };
    Ok(config)
}

fn paste_candidates(lines: &[String]) -> Vec<String> {
    let starts_a_url = |line: &str| {
        let line = line
            .trim_start()
            .trim_start_matches(['<', '"', '\'', '`'])
            .trim_start();
        line.get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    };
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some(current) if !starts_a_url(line) => current.push_str(line),
            _ => out.push(line.clone()),
        }
    }
    out
}

/// The authorization request URL (RFC 6749 §4.1.1 + PKCE + provider extras).
fn authorization_url(
    base: &Url,
    config: &OAuthConfig,
    redirect_uri: &str,
    scopes: &[String],
    state: &pkce::State,
    pkce: Option<&pkce::PkceChallenge>,
) -> Url {
    let p = &config.provider;
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", &config.client_id);
        q.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(" "));
        }
        q.append_pair("state", state.as_str());
        if let Some(pkce) = pkce {
            q.append_pair("code_challenge", pkce.challenge().as_str());
            q.append_pair("code_challenge_method", pkce.challenge().method());
        }
        if let Some(audience) = &p.audience {
            q.append_pair("audience", audience);
        }
        if let Some(resource) = &p.resource {
            q.append_pair("resource", resource);
        }
        for (k, v) in &p.extra_auth_params {
            q.append_pair(k, v);
        }
    }
    url
}

/// The RFC 9207 §2.4 check of the authorization response's `iss` (MCP 2026-07-28 "Authorization
/// Response Validation"): announced and present → equal; announced and absent → refuse; not
/// announced and present → equal; neither → proceed. No issuer configured → nothing to compare.
fn check_callback_issuer(iss: Option<&str>, expected: Option<&str>, announced: bool) -> Result<()> {
    match (iss, expected) {
        (Some(iss), Some(expected)) if !same_issuer(iss, expected) => Err(Error::new(
            ErrorCode::AuthFailed,
            "the authorization response came from a different issuer than expected (possible mix-up attack)",
        )),
        (None, Some(_)) if announced => Err(Error::new(
            ErrorCode::AuthFailed,
            "the authorization response lacks the `iss` parameter the server announces (RFC 9207)",
        )),
        _ => Ok(()),
    }
}

/// Issuer comparison (RFC 9207 §2.4: simple string comparison, no normalisation at all — not
/// even of a trailing slash).
fn same_issuer(a: &str, b: &str) -> bool {
    a == b
}

#[cfg(test)]
mod iss_tests {
    use super::check_callback_issuer as check;

    #[test]
    fn rfc9207_table() {
        let as_ = Some("https://as.example.com");
        assert!(check(Some("https://as.example.com"), as_, true).is_ok());
        assert!(check(Some("https://evil.example.com"), as_, true).is_err());
        assert!(check(None, as_, true).is_err());
        assert!(check(Some("https://as.example.com"), as_, false).is_ok());
        assert!(check(Some("https://evil.example.com"), as_, false).is_err());
        assert!(check(None, as_, false).is_ok());
        // No normalisation: a trailing slash, case or a default port make a different issuer.
        assert!(check(Some("https://as.example.com/"), as_, true).is_err());
        assert!(check(Some("https://AS.example.com"), as_, true).is_err());
        assert!(check(Some("https://as.example.com:443"), as_, true).is_err());
    }
}

#[cfg(test)]
mod paste_tests {
    use super::paste_candidates;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_wrapped_url_is_one_candidate_and_a_new_url_starts_another() {
        assert_eq!(
            paste_candidates(&lines("http://a/cb?code=1&st\nate=2")),
            ["http://a/cb?code=1&state=2"]
        );
        assert_eq!(
            paste_candidates(&lines(
                "<http://a/cb?x\n>\n\"HTTP://b/cb\"\n'http://c\n/cb'"
            )),
            ["<http://a/cb?x>", "\"HTTP://b/cb\"", "'http://c/cb'"]
        );
        // A scrap before any URL stands alone.
        assert_eq!(
            paste_candidates(&lines("oops\nhttp://a/cb")),
            ["oops", "http://a/cb"]
        );
    }
}
