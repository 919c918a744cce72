//! The bridge's interactive sign-in: the browser flow of `mcp auth <url>`, started only when
//! [`Auth::recover`](super::auth::Auth::recover) decides one (at most one browser per decision).
//! Nothing goes to stdout (the JSON-RPC channel): the URL and what happens are on stderr, and a
//! text browser, which would share stdin and stdout, is never started.

use std::sync::Mutex;
use std::time::Duration;

use context_harness_providers::{
    AuthenticateOptions, BrowserOpener, ErrorCode, OAuthTokens, SignInFlow, SystemBrowser,
};

use super::auth::Auth;
use crate::auth::{Opener, choose_opener};

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

/// The sign-in of `mcp auth` for `auth`'s server, asking for `scopes` (`None`: the configured
/// `--scope` values, else what discovery chooses). Bounded by `--timeout`; fails at once when no
/// browser can be opened.
///
/// # Errors
///
/// An [`AuthFailure`] naming `context-harness mcp auth <url>`: refused, timed out, no browser
/// (`auth_required`), or the code of the provider error.
pub(super) async fn sign_in(
    auth: &Auth,
    scopes: Option<Vec<String>>,
) -> Result<OAuthTokens, AuthFailure> {
    let s = &auth.settings;
    let url = auth.url.clone();
    let quiet = s.quiet;
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
        outcome = auth.service.authenticate(&auth.url, options) => outcome.map_err(|e| auth.failure(&e)),
        Ok(why) = failed_rx => Err(AuthFailure {
            message: format!(
                "{} needs a sign-in and no browser could be opened ({why}); run `{}` in a terminal, then retry",
                auth.url,
                auth.hint()
            ),
            code: ErrorCode::AuthRequired.as_str(),
            hint: auth.hint(),
        }),
    };
    let outcome = outcome?;
    if !s.quiet {
        eprintln!("context-harness: signed in to {}", auth.url);
    }
    Ok(outcome.tokens)
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

    /// Another process (another bridge, `mcp auth`) is signing in to this server: said once on
    /// stderr (never stdout, the JSON-RPC channel), even with -q, since requests wait meanwhile.
    fn waiting_for_sign_in(&self, provider: &str) {
        eprintln!(
            "context-harness: another context-harness process is signing in to {}; waiting…",
            context_harness_providers::terminal_text(provider)
        );
    }
}
