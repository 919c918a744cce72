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

/// How the authorization URL of a sign-in is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Browser {
    /// Opened in the system browser (or `$BROWSER`), and shown on stderr unless
    /// [`SignInSettings::quiet`].
    System,
    /// Only shown on stderr, for the user to open, after the reason given here (e.g. "This is an
    /// SSH session").
    Manual(String),
}

/// The sign-in the bridge starts when it needs one (options as `mcp auth <url>` takes them), and
/// the name it goes by in messages. Everything a sign-in shows goes to stderr, never stdout.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignInSettings {
    /// The OAuth client id (`None`: the configured or dynamically registered one).
    pub client_id: Option<String>,
    /// The scopes to ask for (empty: what discovery chooses).
    pub scopes: Vec<String>,
    /// The loopback ports the redirect listener may use (empty: the library's defaults).
    pub ports: Vec<u16>,
    /// How long a sign-in may take in all. Default 300 s.
    pub timeout: Duration,
    /// No `resource` parameter (RFC 8707) in the sign-in.
    pub no_resource: bool,
    /// Never bind the tokens to a DPoP key (RFC 9449), even when the authorization server offers
    /// it (`--no-dpop`).
    pub no_dpop: bool,
    /// The grant and its files (default: stored tokens are renewed as they were obtained).
    pub grant: context_harness_providers::GrantOptions,
    /// How the authorization URL is shown. Default [`Browser::System`]; a text browser named by
    /// `$BROWSER` is never started (it would share the bridge's stdin and stdout).
    pub browser: Browser,
    /// No progress messages on stderr (the authorization URL is still shown when it is not
    /// opened: without it nobody can sign in).
    pub quiet: bool,
    /// The prefix of the bridge's stderr messages (`context-harness`).
    pub program: String,
    /// The command that signs in to a server, shown in hints followed by the server URL
    /// (`context-harness mcp auth`).
    pub sign_in_command: String,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            client_id: None,
            scopes: Vec::new(),
            ports: Vec::new(),
            timeout: Duration::from_secs(300),
            no_resource: false,
            no_dpop: false,
            grant: context_harness_providers::GrantOptions::default(),
            browser: Browser::System,
            quiet: false,
            program: "context-harness".to_owned(),
            sign_in_command: "context-harness mcp auth".to_owned(),
        }
    }
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
/// An [`AuthFailure`] naming the sign-in command and the URL: refused, timed out, no browser
/// (`auth_required`), or the code of the provider error.
pub(super) async fn sign_in(
    auth: &Auth,
    scopes: Option<Vec<String>>,
) -> Result<OAuthTokens, AuthFailure> {
    let s = &auth.settings;
    let url = auth.url.clone();
    let quiet = s.quiet;
    let program = s.program.clone();
    // A text browser (lynx, w3m, …) would read the JSON-RPC stdin and write into the JSON-RPC
    // stdout: the URL goes to stderr instead.
    let text_browser = std::env::var("BROWSER")
        .is_ok_and(|b| context_harness_providers::browser_needs_terminal(&b));
    let opener = if text_browser {
        Browser::Manual(
            "BROWSER names a text browser, which would share the bridge's stdin and stdout"
                .to_owned(),
        )
    } else {
        s.browser.clone()
    };
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<String>();
    let failed_tx = Mutex::new(Some(failed_tx));
    let show = move |auth_url: &str| -> std::io::Result<()> {
        // Shown even with -q: without it nobody can sign in. Never stdout (the JSON-RPC channel).
        match &opener {
            Browser::Manual(why) => {
                eprintln!(
                    "{program}: {url} needs a sign-in. {why}; open this URL in a browser:\n\n    {auth_url}\n"
                );
                Ok(())
            }
            Browser::System => {
                if !quiet {
                    eprintln!(
                        "{program}: {url} needs a sign-in; opening the browser (or open this URL):\n\n    {auth_url}\n"
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
        .without_dpop(s.no_dpop)
        .grant(s.grant.clone())
        .ui(BrowserFailed {
            failed: failed_tx,
            program: s.program.clone(),
        });
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
        eprintln!("{}: signed in to {}", s.program, auth.url);
    }
    Ok(outcome.tokens)
}

/// Reports the first browser failure of a sign-in over a channel (the proxy then fails the
/// request instead of waiting for a sign-in nobody can see); says when another process signs in.
struct BrowserFailed {
    failed: Mutex<Option<tokio::sync::oneshot::Sender<String>>>,
    /// [`SignInSettings::program`].
    program: String,
}

impl context_harness_providers::SignInUi for BrowserFailed {
    fn browser_failed(&self, _url: &str, err: &std::io::Error) {
        if let Some(tx) = self.failed.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(err.to_string());
        }
    }

    /// Another process (another bridge, `mcp auth`) is signing in to this server: said once on
    /// stderr (never stdout, the JSON-RPC channel), even with -q, since requests wait meanwhile.
    fn waiting_for_sign_in(&self, provider: &str) {
        eprintln!(
            "{0}: another {0} process is signing in to {1}; waiting…",
            self.program,
            context_harness_providers::terminal_text(provider)
        );
    }
}
