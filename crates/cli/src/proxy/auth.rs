//! The bridge's bearer token: read from the store at start (no network), refreshed within its margin
//! and after a 401 under the service's cross-process lock (the rules of `mcp token`), and — when no
//! tokens exist, a refresh cannot help, or the server asks for more scope (RFC 6750 §3.1
//! `insufficient_scope`) — the interactive sign-in of `mcp auth`, single-flight: every task waiting
//! for a token waits on one sign-in, and at most one browser opens per sign-in.
//!
//! When a sign-in is impossible (no browser, timed out, refused), every waiting and later request
//! gets an [`AuthFailure`] naming `context-harness mcp auth <url>`; a later request first looks at the
//! store again, so a sign-in done meanwhile in a terminal is picked up without a restart.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use context_harness_providers::{
    AccessToken, AuthenticateOptions, BrowserOpener, EXPIRY_BUFFER, Error, ErrorCode, OAuthService,
    OAuthTokens, SignInFlow, SystemBrowser,
};

use crate::auth::{Opener, choose_opener};

/// Sign-in options, as `mcp auth <url>` takes them.
#[derive(Debug, Clone)]
pub(crate) struct SignInSettings {
    pub(crate) client_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) ports: Vec<u16>,
    pub(crate) timeout: Duration,
    pub(crate) no_resource: bool,
    pub(crate) quiet: bool,
}

/// Why no token could be had; becomes a JSON-RPC error response. Holds no secret.
#[derive(Debug, Clone)]
pub(crate) struct AuthFailure {
    /// Says what happened and what to run.
    pub(crate) message: String,
    /// The stable [`ErrorCode`] name.
    pub(crate) code: &'static str,
    /// The command that fixes it.
    pub(crate) hint: String,
}

/// What a failed request asks of the token.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// The server answered 401: refresh (or sign in when a refresh cannot help).
    Refresh,
    /// A 401 again after a refresh: sign in.
    SignIn,
    /// 403 `insufficient_scope` with these scopes: sign in for the union.
    MoreScope(Vec<String>),
}

struct Current {
    tokens: Option<OAuthTokens>,
    /// The store was read and held no usable tokens (then requests go without one until a 401).
    store_checked: bool,
    /// Bumped whenever the tokens change: a task that saw an older generation fail just retries.
    generation: u64,
}

/// The bearer of one bridge.
pub(crate) struct Auth {
    service: OAuthService,
    url: String,
    settings: SignInSettings,
    current: Mutex<Current>,
    /// Held while refreshing or signing in; holds the last sign-in failure.
    gate: tokio::sync::Mutex<Option<AuthFailure>>,
}

impl Auth {
    /// Reads the stored tokens (the store only: no discovery, no network).
    pub(crate) fn new(service: OAuthService, url: String, settings: SignInSettings) -> Self {
        let tokens = match service.cached_valid_token(&url) {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::info!(error = %e, "no usable stored tokens at start");
                None
            }
        };
        Self {
            service,
            url,
            settings,
            current: Mutex::new(Current {
                tokens,
                store_checked: false,
                generation: 0,
            }),
            gate: tokio::sync::Mutex::new(None),
        }
    }

    fn fresh(&self) -> Option<(AccessToken, u64)> {
        let current = self.current.lock().ok()?;
        let tokens = current.tokens.as_ref()?;
        (!tokens.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER))
            .then(|| (tokens.access_token.clone(), current.generation))
    }

    /// The token in memory, whatever its state (for the `DELETE` at the end: never a sign-in).
    pub(crate) fn in_hand(&self) -> Option<AccessToken> {
        let current = self.current.lock().ok()?;
        current.tokens.as_ref().map(|t| t.access_token.clone())
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

    /// The access token to send and its generation: the one in memory, else the store's (refreshed
    /// within its margin, single-flight across processes). `None` when there is none: the request
    /// goes without one (servers without auth exist), and a 401 then starts the sign-in.
    pub(crate) async fn bearer(&self) -> Result<(Option<AccessToken>, u64), AuthFailure> {
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

    fn failure_text(&self, what: &str) -> AuthFailure {
        AuthFailure {
            message: format!("cannot get a token for {}: {what}", self.url),
            code: ErrorCode::Storage.as_str(),
            hint: self.hint(),
        }
    }

    /// Renews the token after the server refused the one of `generation`; a no-op when another
    /// task renewed it meanwhile (the caller then retries with the new one).
    pub(crate) async fn recover(&self, generation: u64, step: Step) -> Result<(), AuthFailure> {
        let mut gate = self.gate.lock().await;
        if self.generation() != generation {
            return Ok(());
        }
        match step {
            Step::Refresh if self.in_hand().is_none() => {
                self.sign_in(&mut gate, None).await.map(drop)
            }
            Step::Refresh => match self.service.refresh_tokens(&self.url).await {
                Ok(tokens) => {
                    tracing::info!("the server refused the access token; refreshed it");
                    self.set(tokens);
                    Ok(())
                }
                Err(e) if is_transient(&e) => Err(self.failure(&e)),
                Err(e) => {
                    tracing::info!(error = %e, "refresh after a 401 failed; signing in");
                    self.sign_in(&mut gate, None).await.map(drop)
                }
            },
            Step::SignIn => self.sign_in(&mut gate, None).await.map(drop),
            Step::MoreScope(scopes) => {
                let mut union: Vec<String> = Vec::new();
                let record_scopes = self
                    .service
                    .mcp_server_record(&self.url)
                    .ok()
                    .flatten()
                    .map(|r| r.scopes)
                    .unwrap_or_default();
                let held: Vec<String> = self
                    .current
                    .lock()
                    .ok()
                    .and_then(|c| {
                        c.tokens
                            .as_ref()
                            .map(|t| t.scopes().into_iter().map(str::to_owned).collect())
                    })
                    .unwrap_or_default();
                for scope in record_scopes
                    .into_iter()
                    .chain(self.settings.scopes.iter().cloned())
                    .chain(held)
                    .chain(scopes)
                {
                    if !union.contains(&scope) {
                        union.push(scope);
                    }
                }
                tracing::info!(scopes = %union.join(" "), "the server asks for more scope; signing in again");
                // A step-up is a new request of the user: a previous failure does not block it.
                *gate = None;
                self.sign_in(&mut gate, Some(union)).await.map(drop)
            }
        }
    }

    /// The interactive sign-in (caller holds the gate). After a failure, only the store is looked at
    /// again (a sign-in done meanwhile in a terminal); no second browser opens.
    async fn sign_in(
        &self,
        gate: &mut Option<AuthFailure>,
        scopes: Option<Vec<String>>,
    ) -> Result<(AccessToken, u64), AuthFailure> {
        // Someone (another process, `mcp auth` in a terminal) may have stored other tokens.
        if let Ok(Some(stored)) = self.service.cached_valid_token(&self.url) {
            let known = self
                .current
                .lock()
                .ok()
                .and_then(|c| {
                    c.tokens
                        .as_ref()
                        .map(|t| t.access_token == stored.access_token)
                })
                .unwrap_or(false);
            if !known && scopes.is_none() {
                *gate = None;
                return Ok(self.set(stored));
            }
        }
        if let Some(failure) = gate.as_ref() {
            return Err(failure.clone());
        }
        let s = &self.settings;
        let url = self.url.clone();
        let quiet = s.quiet;
        let opener = choose_opener(false);
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<String>();
        let failed_tx = Mutex::new(Some(failed_tx));
        let show = move |auth_url: &str| -> std::io::Result<()> {
            // Shown even with -q: without it nobody can sign in. Never stdout (the JSON-RPC channel).
            match opener {
                Opener::Manual(why) => {
                    eprintln!(
                        "context-harness: {url} needs a sign-in. {why}; open this URL in a browser:\n\n    {auth_url}\n"
                    );
                    Ok(())
                }
                Opener::System => {
                    if !quiet {
                        eprintln!(
                            "context-harness: {url} needs a sign-in; opening the browser (or open this URL):\n\n    {auth_url}\n"
                        );
                    }
                    SystemBrowser.open(auth_url)
                }
            }
        };
        let mut options = AuthenticateOptions::new()
            .timeout(s.timeout)
            .flow(SignInFlow::Browser)
            .browser(show)
            .without_resource(s.no_resource)
            .ui(BrowserFailed(failed_tx));
        if !s.ports.is_empty() {
            options = options.ports(s.ports.clone());
        }
        if let Some(id) = &s.client_id {
            options = options.client_id(id.clone());
        }
        match scopes {
            Some(scopes) => options = options.scopes(scopes),
            None if !s.scopes.is_empty() => options = options.scopes(s.scopes.clone()),
            None => {}
        }
        let outcome = tokio::select! {
            outcome = self.service.authenticate(&self.url, options) => outcome.map_err(|e| self.failure(&e)),
            Ok(why) = failed_rx => Err(AuthFailure {
                message: format!(
                    "{} needs a sign-in and no browser could be opened ({why}); run `context-harness mcp auth {}` in a terminal, then retry",
                    self.url, self.url
                ),
                code: ErrorCode::AuthRequired.as_str(),
                hint: self.hint(),
            }),
        };
        match outcome {
            Ok(outcome) => {
                if let Ok(mut current) = self.current.lock() {
                    current.store_checked = false;
                }
                if !s.quiet {
                    eprintln!("context-harness: signed in to {}", self.url);
                }
                *gate = None;
                Ok(self.set(outcome.tokens))
            }
            Err(failure) => {
                eprintln!("context-harness: {}", failure.message);
                *gate = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// Remembers that the token of a fresh sign-in was refused at once: later requests get
    /// `failure` instead of another browser (a sign-in stored meanwhile is still picked up).
    pub(crate) async fn give_up(&self, failure: AuthFailure) {
        *self.gate.lock().await = Some(failure);
    }

    fn hint(&self) -> String {
        format!("context-harness mcp auth {}", self.url)
    }

    /// The JSON-RPC side of a provider error: its message, and what to run.
    fn failure(&self, e: &Error) -> AuthFailure {
        let code = e.code();
        let message = if is_transient(e) {
            format!("cannot get a token for {}: {e}", self.url)
        } else {
            format!(
                "{} needs a sign-in ({e}); run `context-harness mcp auth {}` in a terminal, then retry",
                self.url, self.url
            )
        };
        AuthFailure {
            message,
            code: code.as_str(),
            hint: self.hint(),
        }
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

/// Reports the first browser failure of a sign-in over a channel (the proxy then fails the
/// request instead of waiting for a sign-in nobody can see).
struct BrowserFailed(Mutex<Option<tokio::sync::oneshot::Sender<String>>>);

impl context_harness_providers::SignInUi for BrowserFailed {
    fn browser_failed(&self, _url: &str, err: &std::io::Error) {
        if let Some(tx) = self.0.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(err.to_string());
        }
    }
}
