//! The bridge's bearer token: read from the store at start (no network), refreshed within its
//! margin under the service's cross-process lock (the rules of `mcp token`), and renewed after the
//! server refuses it by the one recovery every transport uses ([`Auth::recover`]): the decisions are
//! the sans-IO [`AuthRecovery`] of `context-harness-protocol` (RFC 6750 §3, RFC 9728 §5, MCP
//! "Step-Up Authorization Flow"), the actions — refresh, reading the store again, the interactive
//! sign-in of `mcp auth` ([`super::sign_in`]), the protected-resource metadata through the
//! library's discovery — are here. Single-flight: decisions and actions run under one gate, so
//! every task waiting for a token waits on one refresh or sign-in, and concurrent refusals of the
//! same token cause one renewal.
//!
//! Bounds a server cannot push (see [`AuthRecovery`]): one refresh per token generation and per
//! exchange; one sign-in per exchange, none after a failed one or one whose token was refused at
//! once; one step-up per token lineage, asking for the union of the scopes held, configured,
//! recorded and named (the metadata's `scopes_supported` only when the 403 names none); then an
//! `auth_failed` [`AuthFailure`] whose hint names `context-harness mcp auth <url> --scope …`. A
//! later request first looks at the store again, so a sign-in done meanwhile in a terminal is
//! picked up without a restart.
//!
//! The bearer goes only to URLs its audience covers ([`Auth::bearer_for`]): the stored record's
//! `resource` (else the server URL), by discovery's rule (`resource_covers`: same origin, a
//! path-segment prefix).

use std::sync::Mutex;
use std::time::SystemTime;

use context_harness_providers::protocol::{
    AuthRecovery, Decision, Exchange, GiveUp, GiveUpReason, Outcome, Refusal, Sent, resource_covers,
};
use context_harness_providers::{
    AccessToken, EXPIRY_BUFFER, Error, ErrorCode, OAuthService, OAuthTokens,
};
use context_harness_providers::{DpopKey, is_dpop_bound};
use url::Url;

use super::sign_in::{AuthFailure, SignInSettings};
use crate::safe_lines;

struct Current {
    tokens: Option<OAuthTokens>,
    /// The store was read and held no usable tokens (then requests go without one until a 401).
    store_checked: bool,
    /// Bumped whenever the tokens change: a task that saw an older generation fail just retries.
    generation: u64,
}

/// The recovery state and the failures its give-ups are told with (held under the gate).
struct Gate {
    recovery: AuthRecovery,
    /// The last failed interactive sign-in (later requests get it: no second browser).
    sign_in_failure: Option<AuthFailure>,
    /// The last failed step-up.
    step_up_failure: Option<AuthFailure>,
    /// The last refresh failure a sign-in would not fix.
    refresh_failure: Option<AuthFailure>,
}

/// A request's bearer: the token to send, if any, and what the recovery needs to know of it.
pub(crate) struct Bearer {
    pub(crate) token: Option<AccessToken>,
    pub(crate) sent: Sent,
    /// The DPoP key of a DPoP-bound token (RFC 9449): then each request carries a fresh proof.
    pub(crate) dpop: Option<DpopKey>,
}

/// The bearer of one bridge.
pub(crate) struct Auth {
    pub(super) service: OAuthService,
    pub(super) url: String,
    host: String,
    pub(super) settings: SignInSettings,
    current: Mutex<Current>,
    /// The tokens' audience, canonical: the stored record's `resource`, else the server URL's.
    audience: Mutex<String>,
    /// Held while refreshing or signing in (and while deciding).
    gate: tokio::sync::Mutex<Gate>,
    /// The latest `DPoP-Nonce` the server sent (RFC 9449 §9), put in later proofs.
    dpop_nonce: Mutex<Option<String>>,
}

impl Auth {
    /// Reads the stored tokens and sign-in record (the store only: no discovery, no network).
    pub(crate) fn new(service: OAuthService, url: String, settings: SignInSettings) -> Self {
        let tokens = match service.cached_valid_token(&url) {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::info!(error = %e, "no usable stored tokens at start");
                None
            }
        };
        let record = service.mcp_server_record(&url).ok().flatten();
        let recorded = record
            .as_ref()
            .map(|r| r.scopes.clone())
            .unwrap_or_default();
        let host = Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "server".to_owned());
        let audience = audience_of(&service, &url);
        Self {
            gate: tokio::sync::Mutex::new(Gate {
                recovery: AuthRecovery::new(settings.scopes.clone(), recorded),
                sign_in_failure: None,
                step_up_failure: None,
                refresh_failure: None,
            }),
            service,
            url,
            host,
            settings,
            current: Mutex::new(Current {
                tokens,
                store_checked: false,
                generation: 0,
            }),
            audience: Mutex::new(audience),
            dpop_nonce: Mutex::new(None),
        }
    }

    /// The DPoP key of the tokens in memory when they are DPoP-bound (RFC 9449).
    pub(crate) fn dpop_key(&self) -> Option<DpopKey> {
        let current = self.current.lock().ok()?;
        current
            .tokens
            .as_ref()
            .filter(|t| is_dpop_bound(t))
            .and_then(DpopKey::from_tokens)
    }

    /// The resource server's latest DPoP nonce.
    pub(crate) fn dpop_nonce(&self) -> Option<String> {
        self.dpop_nonce.lock().ok()?.clone()
    }

    /// Keeps the resource server's `DPoP-Nonce` (at most 1 KiB of visible ASCII) for later proofs.
    pub(crate) fn set_dpop_nonce(&self, nonce: &str) {
        if nonce.is_empty() || nonce.len() > 1024 || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return;
        }
        if let Ok(mut held) = self.dpop_nonce.lock() {
            *held = Some(nonce.to_owned());
        }
    }

    fn fresh(&self) -> Option<(AccessToken, u64)> {
        let current = self.current.lock().ok()?;
        let tokens = current.tokens.as_ref()?;
        (!tokens.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER))
            .then(|| (tokens.access_token.clone(), current.generation))
    }

    /// The token in memory, whatever its state (for the `DELETE` at the end: never a sign-in).
    fn in_hand(&self) -> Option<AccessToken> {
        let current = self.current.lock().ok()?;
        current.tokens.as_ref().map(|t| t.access_token.clone())
    }

    /// [`Self::in_hand`] when its audience covers `url` (else none: the bearer never goes there).
    pub(crate) fn in_hand_for(&self, url: &Url) -> Option<AccessToken> {
        self.in_hand().filter(|_| self.covers(url))
    }

    /// Whether a token is in memory.
    pub(crate) fn holds_token(&self) -> bool {
        self.in_hand().is_some()
    }

    /// Whether the token is being renewed now (a refresh, or a sign-in bounded by `--timeout`):
    /// the request timeout does not run out meanwhile.
    pub(crate) fn renewing(&self) -> bool {
        self.gate.try_lock().is_err()
    }

    fn generation(&self) -> u64 {
        self.current.lock().map_or(0, |c| c.generation)
    }

    fn set(&self, tokens: OAuthTokens) -> (AccessToken, u64) {
        let token = tokens.access_token.clone();
        match self.current.lock() {
            Ok(mut current) => {
                current.tokens = Some(tokens);
                current.generation = current.generation.wrapping_add(1);
                (token, current.generation)
            }
            Err(_) => (token, 0),
        }
    }

    /// Whether the tokens' audience covers `url` (same origin, a path-segment prefix: the rule
    /// discovery accepts a parent resource by, RFC 9728 §3.3).
    pub(crate) fn covers(&self, url: &Url) -> bool {
        self.audience
            .lock()
            .is_ok_and(|audience| resource_covers(&audience, url.as_str()))
    }

    /// The refusal to send the bearer to `url`, outside its audience.
    pub(crate) fn outside_audience(&self, url: &Url) -> AuthFailure {
        let audience = self.audience.lock().map(|a| a.clone()).unwrap_or_default();
        AuthFailure {
            message: format!(
                "the MCP server at {} sends the bridge to {}, outside the audience of its token ({audience}); the token is not sent there, refused",
                self.host,
                url.path()
            ),
            code: ErrorCode::AuthFailed.as_str(),
            hint: self.hint(),
        }
    }

    /// The bearer for a request to `url`: the token in memory, else the store's (refreshed within
    /// its margin, single-flight across processes); none when there is none (servers without auth
    /// exist: a 401 then starts the sign-in).
    ///
    /// # Errors
    ///
    /// [`Self::outside_audience`] when a token is held and its audience does not cover `url`;
    /// a failed renewal that a sign-in would not fix.
    pub(crate) async fn bearer_for(&self, url: &Url) -> Result<Bearer, AuthFailure> {
        let (token, generation) = self.bearer().await?;
        if token.is_some() && !self.covers(url) {
            return Err(self.outside_audience(url));
        }
        Ok(Bearer {
            dpop: token.as_ref().and_then(|_| self.dpop_key()),
            sent: Sent {
                generation,
                bearer: token.is_some(),
                granted: self.held_scopes(),
            },
            token,
        })
    }

    async fn bearer(&self) -> Result<(Option<AccessToken>, u64), AuthFailure> {
        if let Some((token, generation)) = self.fresh() {
            return Ok((Some(token), generation));
        }
        if let Some(generation) = self.known_empty() {
            return Ok((None, generation));
        }
        tracing::debug!("the token is within its refresh margin; waiting for the gate");
        let _gate = self.gate.lock().await;
        if let Some((token, generation)) = self.fresh() {
            return Ok((Some(token), generation));
        }
        tracing::debug!("renewing the token within its margin");
        match self.service.ensure_valid_token(&self.url).await {
            Ok(tokens) => {
                let (token, generation) = self.set(tokens);
                Ok((Some(token), generation))
            }
            Err(e) if needs_sign_in(&e) => {
                tracing::debug!(error = %e, "no usable token; sending without one");
                let mut current = self
                    .current
                    .lock()
                    .map_err(|_| self.failure_text("internal state poisoned"))?;
                current.tokens = None;
                current.store_checked = true;
                Ok((None, current.generation))
            }
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// `Some(generation)` when the store was looked at and holds nothing usable.
    fn known_empty(&self) -> Option<u64> {
        let current = self.current.lock().ok()?;
        (current.tokens.is_none() && current.store_checked).then_some(current.generation)
    }

    /// The recovery of every transport after the server refused the request `exchange` sent with
    /// `sent`: the decisions of [`AuthRecovery`], carried out under the gate. `Ok` when the request
    /// should go again (with the token now in hand).
    ///
    /// # Errors
    ///
    /// The [`AuthFailure`] of the give-up: `auth_failed`/`auth_required` with a hint naming
    /// `context-harness mcp auth <url>` (and `--scope …` for scope refusals), or the code of a
    /// refresh or sign-in that failed for a reason a sign-in would not fix.
    pub(crate) async fn recover(
        &self,
        exchange: &mut Exchange,
        refusal: &Refusal,
        sent: &Sent,
    ) -> Result<(), AuthFailure> {
        let mut gate = self.gate.lock().await;
        let current = self.generation();
        let mut decision = gate.recovery.on_refusal(exchange, refusal, sent, current);
        loop {
            tracing::debug!(
                ?decision,
                status = refusal.status.code(),
                "recovering from a refusal"
            );
            let outcome = match decision {
                Decision::Retry => return Ok(()),
                Decision::GiveUp(give_up) => return Err(self.give_up(&gate, &give_up)),
                Decision::Refresh => self.refresh(&mut gate).await,
                Decision::Reload => self.reload(&mut gate),
                Decision::SignIn { scopes } => {
                    let scopes = (!scopes.is_empty()).then_some(scopes);
                    match super::sign_in::sign_in(self, scopes).await {
                        Ok(tokens) => {
                            self.adopt(&mut gate, tokens);
                            Outcome::SignedIn
                        }
                        Err(failure) => {
                            eprintln!(
                                "{}: {}",
                                self.settings.program,
                                safe_lines(&failure.message)
                            );
                            gate.sign_in_failure = Some(failure);
                            Outcome::SignInFailed
                        }
                    }
                }
                Decision::StepUp { scopes } => {
                    tracing::info!(scopes = %scopes.join(" "), "the server asks for more scope; signing in again");
                    match super::sign_in::sign_in(self, Some(scopes.clone())).await {
                        Ok(tokens) => {
                            self.adopt(&mut gate, tokens);
                            Outcome::SignedIn
                        }
                        Err(inner) => {
                            let failure = self.step_up_failed(&inner, scopes);
                            eprintln!(
                                "{}: {}",
                                self.settings.program,
                                safe_lines(&failure.message)
                            );
                            gate.step_up_failure = Some(failure);
                            Outcome::SignInFailed
                        }
                    }
                }
                Decision::FetchScopes { resource_metadata } => {
                    Outcome::ScopesSupported(self.scopes_supported(resource_metadata).await)
                }
            };
            decision = gate.recovery.on_outcome(exchange, outcome);
        }
    }

    async fn refresh(&self, gate: &mut Gate) -> Outcome {
        match self.service.refresh_tokens(&self.url).await {
            Ok(tokens) => {
                tracing::info!("the server refused the access token; refreshed it");
                self.set(tokens);
                Outcome::Refreshed
            }
            Err(e) if is_transient(&e) => {
                gate.refresh_failure = Some(self.failure(&e));
                Outcome::RefreshFailed { transient: true }
            }
            Err(e) => {
                tracing::info!(error = %e, "the refresh after a refusal failed");
                Outcome::RefreshFailed { transient: false }
            }
        }
    }

    /// Another usable token in the store (a sign-in done meanwhile, e.g. in a terminal) is taken.
    fn reload(&self, gate: &mut Gate) -> Outcome {
        match self.service.cached_valid_token(&self.url) {
            Ok(Some(stored)) if self.in_hand().as_ref() != Some(&stored.access_token) => {
                tracing::info!("picking up the tokens stored meanwhile");
                self.adopt(gate, stored);
                Outcome::TokenObserved
            }
            _ => Outcome::NothingNew,
        }
    }

    /// Takes the tokens of a sign-in or of the store: the record written with them is read again
    /// (their audience, the scopes asked for), and the store counts as looked at afresh.
    fn adopt(&self, gate: &mut Gate, tokens: OAuthTokens) {
        self.set(tokens);
        if let Ok(mut current) = self.current.lock() {
            current.store_checked = false;
        }
        if let Ok(mut audience) = self.audience.lock() {
            *audience = audience_of(&self.service, &self.url);
        }
        if let Some(record) = self.service.mcp_server_record(&self.url).ok().flatten() {
            gate.recovery.set_recorded(record.scopes);
        }
    }

    /// The protected-resource metadata's `scopes_supported` (MCP "Scope Selection Strategy"),
    /// through the library's discovery; failures are logged only (empty: none to ask for).
    async fn scopes_supported(&self, resource_metadata: Option<String>) -> Vec<String> {
        match self
            .service
            .mcp_resource_metadata(&self.url, resource_metadata.as_deref())
            .await
        {
            Ok(Some(metadata)) => {
                let scopes = metadata.scopes_supported.unwrap_or_default();
                tracing::info!(scopes = %scopes.join(" "), "the server names no scope; its protected-resource metadata lists these");
                scopes
            }
            Ok(None) => {
                tracing::info!(
                    "the server names no scope and publishes no protected-resource metadata"
                );
                Vec::new()
            }
            Err(e) => {
                tracing::info!(error = %e, "the server names no scope and its protected-resource metadata cannot be read");
                Vec::new()
            }
        }
    }

    /// The scopes the token in hand was granted (its `scope`; empty when unknown).
    fn held_scopes(&self) -> Vec<String> {
        self.current
            .lock()
            .ok()
            .and_then(|c| {
                c.tokens
                    .as_ref()
                    .map(|t| t.scopes().into_iter().map(str::to_owned).collect())
            })
            .unwrap_or_default()
    }

    /// The sign-in command and the URL: `context-harness mcp auth <url>`.
    pub(super) fn hint(&self) -> String {
        format!("{} {}", self.settings.sign_in_command, self.url)
    }

    /// What a give-up says to the host.
    fn give_up(&self, gate: &Gate, give_up: &GiveUp) -> AuthFailure {
        let hint = give_up.hint(&self.hint());
        let auth_failed = |message: String| AuthFailure {
            message,
            code: ErrorCode::AuthFailed.as_str(),
            hint: hint.clone(),
        };
        match &give_up.reason {
            GiveUpReason::Unauthorized => auth_failed(format!(
                "{} refuses the token even after a new sign-in; run `{hint}` and check the account's access",
                self.url
            )),
            GiveUpReason::RefreshFailed => gate
                .refresh_failure
                .clone()
                .unwrap_or_else(|| self.failure_text("the refresh failed")),
            GiveUpReason::SignInFailed => gate.sign_in_failure.clone().unwrap_or_else(|| AuthFailure {
                message: format!(
                    "{} needs a sign-in; run `{hint}` in a terminal, then retry",
                    self.url
                ),
                code: ErrorCode::AuthRequired.as_str(),
                hint: hint.clone(),
            }),
            GiveUpReason::Forbidden { error } => auth_failed(format!(
                "the MCP server at {} refuses this request (HTTP 403 Forbidden{}); check the account's access, or sign in again with `{hint}`",
                self.host,
                error.as_ref().map(|e| format!(", {e}")).unwrap_or_default(),
            )),
            GiveUpReason::NoScopeLacking => auth_failed(format!(
                "{} refuses the token for this request (HTTP 403 insufficient_scope) and names no scope it lacks; run `{hint}` with the scope the server needs, then retry",
                self.url
            )),
            GiveUpReason::StepUpFailed => gate
                .step_up_failure
                .clone()
                .unwrap_or_else(|| auth_failed(format!(
                    "{} refuses the token for this request (HTTP 403 insufficient_scope) and the sign-in for more scope did not finish; run `{hint}` in a terminal, then retry",
                    self.url
                ))),
            GiveUpReason::StillInsufficient => auth_failed(format!(
                "{} still refuses the token after a sign-in for more scope (HTTP 403 insufficient_scope; asked for: {}): the authorization server did not grant what the server needs, or the account lacks it; run `{hint}` with the scope the server needs, then retry",
                self.url,
                if give_up.scopes.is_empty() {
                    "no scope".to_owned()
                } else {
                    give_up.scopes.join(" ")
                }
            )),
            _ => auth_failed(format!(
                "{} keeps refusing the token while it changes; run `{hint}` and check the account's access",
                self.url
            )),
        }
    }

    /// The failure of a step-up sign-in for `scopes` (`inner`: the sign-in's own failure; its code
    /// is kept when the authorization server or the store failed).
    fn step_up_failed(&self, inner: &AuthFailure, scopes: Vec<String>) -> AuthFailure {
        let hint = GiveUp {
            reason: GiveUpReason::StepUpFailed,
            scopes,
        }
        .hint(&self.hint());
        AuthFailure {
            message: format!(
                "{} refuses the token for this request (HTTP 403 insufficient_scope) and the sign-in for more scope failed ({}); run `{hint}` in a terminal, then retry",
                self.url, inner.code
            ),
            code: if matches!(inner.code, "network_error" | "storage") {
                inner.code
            } else {
                ErrorCode::AuthFailed.as_str()
            },
            hint,
        }
    }

    fn failure_text(&self, what: &str) -> AuthFailure {
        AuthFailure {
            message: format!("cannot get a token for {}: {what}", self.url),
            code: ErrorCode::Storage.as_str(),
            hint: self.hint(),
        }
    }

    /// The JSON-RPC side of a provider error: its message, and what to run.
    pub(super) fn failure(&self, e: &Error) -> AuthFailure {
        let code = e.code();
        let message = if is_transient(e) {
            format!("cannot get a token for {}: {e}", self.url)
        } else {
            format!(
                "{} needs a sign-in ({e}); run `{}` in a terminal, then retry",
                self.url,
                self.hint()
            )
        };
        AuthFailure {
            message,
            code: code.as_str(),
            hint: self.hint(),
        }
    }
}

/// The audience of the tokens of `url`: the stored record's `resource`, else the server URL in
/// canonical form (what a sign-in binds them to).
fn audience_of(service: &OAuthService, url: &str) -> String {
    match service.mcp_server_record(url) {
        Ok(Some(record)) => record.resource,
        _ => context_harness_providers::protocol::canonical_url(url).unwrap_or_default(),
    }
}

/// Errors that a sign-in fixes (no tokens, no refresh token, refresh refused).
fn needs_sign_in(e: &Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::AuthRequired | ErrorCode::TokenExpired | ErrorCode::TokenRefreshFailed
    )
}

/// Errors a sign-in would not fix (the authorization server is down, the store fails).
fn is_transient(e: &Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::NetworkError | ErrorCode::Timeout | ErrorCode::Storage
    )
}
