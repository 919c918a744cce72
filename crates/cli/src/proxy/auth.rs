//! The bridge's bearer token: read from the store at start (no network), refreshed within its margin
//! and after a 401 under the service's cross-process lock (the rules of `mcp token`), and — when no
//! tokens exist, a refresh cannot help, or the server asks for more scope (RFC 6750 §3.1
//! `insufficient_scope`) — the interactive sign-in of `mcp auth`, single-flight: every task waiting
//! for a token waits on one sign-in, and at most one browser opens per sign-in.
//!
//! A step-up asks for the union of the scopes the token holds, the `--scope` values, the stored
//! record's and the challenge's `scope`; when the challenge names none (the official Python SDK's
//! 403), the protected-resource metadata's `scopes_supported` (MCP "Scope Selection Strategy"). It
//! runs once per token: when it cannot help (nothing new to ask for, the sign-in failed, or the
//! server still refuses the new token), the request gets an `auth_failed` [`AuthFailure`] whose hint
//! names `context-harness mcp auth <url> --scope …`, and so do later requests refused the same way.
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

use super::upstream::Upstream;
use crate::auth::{Opener, choose_opener};
use crate::context::safe_lines;

/// Sign-in options, as `mcp auth <url>` takes them.
#[derive(Debug, Clone)]
pub(crate) struct SignInSettings {
    pub(crate) client_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) ports: Vec<u16>,
    pub(crate) timeout: Duration,
    pub(crate) no_resource: bool,
    /// `--grant-type` and its files (without it, stored tokens are renewed as they were obtained).
    pub(crate) grant: context_harness_providers::GrantOptions,
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
}

/// A 403 `error="insufficient_scope"` challenge (RFC 6750 §3.1).
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeChallenge {
    /// Its `scope` (valid scope tokens only); empty when it names none.
    pub(crate) scopes: Vec<String>,
    /// Its `resource_metadata` URL, unchecked.
    pub(crate) resource_metadata: Option<String>,
}

/// A token the server refused for scope that no step-up fixes.
struct ScopeRefusal {
    /// The generation of the refused token.
    generation: u64,
    /// The scopes asked for (a challenge naming others may still step up).
    asked: Vec<String>,
    failure: AuthFailure,
}

/// Scopes that say nothing about a resource's access: a step-up for only these cannot help.
fn grants_access(scope: &str) -> bool {
    !matches!(scope, "offline_access" | "openid")
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
    /// The last scope refusal no step-up could fix (at most one browser per token and scope set).
    refusal: Mutex<Option<ScopeRefusal>>,
    /// The scopes of the last step-up sign-in.
    asked: Mutex<Vec<String>>,
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
            refusal: Mutex::new(None),
            asked: Mutex::new(Vec::new()),
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
        }
    }

    /// The step-up of MCP "Step-Up Authorization Flow" after the token of `generation` got a 403
    /// `insufficient_scope`: a sign-in for the union of the scopes held, the `--scope` values, the
    /// stored record's, and the challenge's — or, when it names none, the `scopes_supported` of the
    /// protected-resource metadata (RFC 9728), fetched with `upstream` from the challenge's
    /// `resource_metadata` (on the server's origin only), the record's, or the well-known URLs. A
    /// no-op when another task renewed the token meanwhile (the caller retries).
    ///
    /// # Errors
    ///
    /// An `auth_failed` [`AuthFailure`] (hint: `mcp auth <url> --scope …`) when there is no scope
    /// the token lacks, when the sign-in fails (refused, timed out, no browser; its code kept when
    /// it is `network_error` or `storage`: the authorization server or the store failed), or when
    /// this token and scope set already met that fate.
    pub(crate) async fn step_up(
        &self,
        generation: u64,
        challenge: ScopeChallenge,
        upstream: &Upstream,
    ) -> Result<(), AuthFailure> {
        let mut gate = self.gate.lock().await;
        if self.generation() != generation {
            return Ok(());
        }
        if let Some(failure) = self.refused(generation, &challenge.scopes) {
            // Tried already: no second browser. A sign-in done meanwhile in a terminal counts.
            if let Ok(Some(stored)) = self.service.cached_valid_token(&self.url)
                && self.in_hand().as_ref() != Some(&stored.access_token)
            {
                tracing::info!("picking up the tokens stored meanwhile");
                self.set(stored);
                return Ok(());
            }
            return Err(failure);
        }
        let held = self.held_scopes();
        let record = self.service.mcp_server_record(&self.url).ok().flatten();
        let mut wanted = challenge.scopes.clone();
        if wanted.is_empty() {
            let candidates = metadata_urls(
                &self.url,
                record.as_ref().map(|r| r.resource_metadata_url.as_str()),
                challenge.resource_metadata.as_deref(),
            );
            match upstream.scopes_supported(&candidates, &self.url).await {
                Some(scopes) => {
                    tracing::info!(scopes = %scopes.join(" "), "the server names no scope; asking for its scopes_supported");
                    wanted = scopes;
                }
                None => tracing::info!(
                    "the server names no scope and its protected-resource metadata lists none"
                ),
            }
        }
        let mut union: Vec<String> = Vec::new();
        for scope in held
            .iter()
            .cloned()
            .chain(self.settings.scopes.iter().cloned())
            .chain(record.map(|r| r.scopes).unwrap_or_default())
            .chain(wanted)
        {
            if !union.contains(&scope) {
                union.push(scope);
            }
        }
        let lacking = union.iter().any(|s| grants_access(s) && !held.contains(s));
        if !lacking {
            let hint = self.scope_hint(&[]);
            let failure = AuthFailure {
                message: format!(
                    "{} refuses the token for this request (HTTP 403 insufficient_scope) and names no scope it lacks; run `{hint}` with the scope the server needs, then retry",
                    self.url
                ),
                code: ErrorCode::AuthFailed.as_str(),
                hint,
            };
            self.remember_refusal(generation, union, failure.clone());
            return Err(failure);
        }
        tracing::info!(scopes = %union.join(" "), "the server asks for more scope; signing in again");
        if let Ok(mut asked) = self.asked.lock() {
            asked.clone_from(&union);
        }
        // A step-up is a new request of the user: a previous failure does not block it.
        *gate = None;
        match self.sign_in(&mut gate, Some(union.clone())).await {
            Ok(_) => Ok(()),
            Err(inner) => {
                let hint = self.scope_hint(&union);
                let failure = AuthFailure {
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
                };
                eprintln!("context-harness: {}", safe_lines(&failure.message));
                self.remember_refusal(generation, union, failure.clone());
                Err(failure)
            }
        }
    }

    /// The failure for a token of `generation` refused for scope again right after its step-up;
    /// remembered, so later requests refused the same way do not open another browser.
    pub(crate) fn scope_still_refused(&self, generation: u64) -> AuthFailure {
        let asked = self.asked.lock().map(|a| a.clone()).unwrap_or_default();
        let hint = self.scope_hint(&asked);
        let failure = AuthFailure {
            message: format!(
                "{} still refuses the token after a sign-in for more scope (HTTP 403 insufficient_scope; asked for: {}): the authorization server did not grant what the server needs, or the account lacks it; run `{hint}` with the scope the server needs, then retry",
                self.url,
                if asked.is_empty() {
                    "no scope".to_owned()
                } else {
                    asked.join(" ")
                }
            ),
            code: ErrorCode::AuthFailed.as_str(),
            hint,
        };
        self.remember_refusal(generation, asked, failure.clone());
        failure
    }

    /// The remembered refusal of `generation`, unless the challenge names a scope not asked yet.
    fn refused(&self, generation: u64, named: &[String]) -> Option<AuthFailure> {
        let refusal = self.refusal.lock().ok()?;
        let refusal = refusal.as_ref()?;
        (refusal.generation == generation && named.iter().all(|s| refusal.asked.contains(s)))
            .then(|| refusal.failure.clone())
    }

    fn remember_refusal(&self, generation: u64, asked: Vec<String>, failure: AuthFailure) {
        if let Ok(mut refusal) = self.refusal.lock() {
            *refusal = Some(ScopeRefusal {
                generation,
                asked,
                failure,
            });
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

    /// `context-harness mcp auth <url> --scope …` for `scopes` (a placeholder when none is known).
    fn scope_hint(&self, scopes: &[String]) -> String {
        let mut hint = self.hint();
        if scopes.is_empty() {
            hint.push_str(" --scope <scope>");
        }
        for scope in scopes {
            hint.push_str(" --scope ");
            hint.push_str(scope);
        }
        hint
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
        // A step-up says what failed itself (its fix names the scopes).
        let step_up = scopes.is_some();
        // A text browser (lynx, w3m, …) would read the JSON-RPC stdin and write into the JSON-RPC
        // stdout: the URL goes to stderr instead.
        let text_browser = std::env::var("BROWSER")
            .is_ok_and(|b| context_harness_providers::browser_needs_terminal(&b));
        let opener = if text_browser {
            Opener::Manual(
                "BROWSER names a text browser, which would share the bridge's stdin and stdout",
            )
        } else {
            choose_opener(false)
        };
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
            .grant(s.grant.clone())
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
                if !step_up {
                    eprintln!("context-harness: {}", safe_lines(&failure.message));
                }
                *gate = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// A 403 that is not `insufficient_scope`: the server at `host` refuses this request to this
    /// token (or to no token); `error` is the challenge's `error` code, if any. Code `auth_failed`:
    /// a sign-in, perhaps with another account, is the way out, never a retry.
    pub(crate) fn forbidden(&self, host: &str, error: Option<String>) -> AuthFailure {
        AuthFailure {
            message: format!(
                "the MCP server at {host} refuses this request (HTTP 403 Forbidden{}); check the account's access, or sign in again with `context-harness mcp auth {}`",
                error.map(|e| format!(", {e}")).unwrap_or_default(),
                self.url
            ),
            code: ErrorCode::AuthFailed.as_str(),
            hint: self.hint(),
        }
    }

    /// A 401 again after a refresh and a sign-in: code `auth_failed`.
    pub(crate) fn unauthorized_again(&self) -> AuthFailure {
        AuthFailure {
            message: format!(
                "{} refuses the token even after a new sign-in; run `context-harness mcp auth {}` and check the account's access",
                self.url, self.url
            ),
            code: ErrorCode::AuthFailed.as_str(),
            hint: self.hint(),
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

/// Where to look for the protected-resource metadata of `server_url`, in order, without
/// duplicates: the challenge's `resource_metadata` when it is on the server's origin (a hostile
/// server must not aim the bridge elsewhere) or is the recorded one, the record's URL (checked at
/// discovery), the RFC 9728 well-known URLs of the server URL.
fn metadata_urls(
    server_url: &str,
    recorded: Option<&str>,
    challenge: Option<&str>,
) -> Vec<url::Url> {
    let origin = url::Url::parse(server_url).ok().map(|u| u.origin());
    let mut urls: Vec<url::Url> = Vec::new();
    let from_challenge = challenge
        .and_then(|c| url::Url::parse(c.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let recorded = recorded
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if let Some(url) = from_challenge {
        if Some(url.origin()) == origin || Some(&url) == recorded.as_ref() {
            urls.push(url);
        } else {
            tracing::info!("the challenge's resource_metadata is on another origin; not fetched");
        }
    }
    urls.extend(recorded);
    urls.extend(
        context_harness_providers::protocol::protected_resource_metadata_urls(server_url)
            .unwrap_or_default(),
    );
    let mut unique: Vec<url::Url> = Vec::new();
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

    fn strings(urls: Vec<url::Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn metadata_urls_stay_on_known_ground() {
        let server = "https://mcp.ex/mcp";
        let path = "https://mcp.ex/.well-known/oauth-protected-resource/mcp";
        let root = "https://mcp.ex/.well-known/oauth-protected-resource";
        assert_eq!(strings(metadata_urls(server, None, None)), [path, root]);
        // The challenge's URL on the server's origin comes first; a duplicate is dropped.
        assert_eq!(
            strings(metadata_urls(server, None, Some("https://mcp.ex/prm"))),
            ["https://mcp.ex/prm", path, root]
        );
        assert_eq!(
            strings(metadata_urls(server, Some(path), Some(path))),
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
                strings(metadata_urls(server, None, Some(hostile))),
                [path, root],
                "{hostile}"
            );
        }
        let recorded = "https://as.ex/prm";
        assert_eq!(
            strings(metadata_urls(server, Some(recorded), Some(recorded))),
            [recorded, path, root]
        );
        assert_eq!(
            strings(metadata_urls(server, Some(recorded), None)),
            [recorded, path, root]
        );
    }
}
