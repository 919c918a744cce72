//! What callers pass to and get back from the service: [`AuthenticateOptions`] (with
//! [`SignInFlow`] and the [`SignInUi`] that talks to the user), [`AuthOutcome`], [`LogoutOutcome`],
//! [`Revocation`] and [`TokenRevocation`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::grants::GrantOptions;
use crate::browser::BrowserOpener;
use crate::error::Error;
use crate::tokens::OAuthTokens;

/// Which sign-in flow [`OAuthService::authenticate`](crate::OAuthService::authenticate) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignInFlow {
    /// Authorization code + PKCE through the browser and the loopback redirect (the default).
    #[default]
    Browser,
    /// The device authorization grant: show a code, the user approves on any device, poll.
    /// Fails with [`ErrorCode::ConfigMissing`](crate::ErrorCode::ConfigMissing) when the provider
    /// has no device endpoint.
    Device,
    /// The device grant when the provider has a device endpoint, else the browser flow (for
    /// sessions where no browser can be opened).
    DeviceIfAvailable,
}

/// Redirect URLs pasted by the user, one message per paste, in order; closed at the end of input.
/// Each is checked like a request to the loopback listener; one that fails the checks is reported
/// (see [`SignInUi::paste_rejected`]) and the sign-in keeps waiting.
pub type PastedRedirects = tokio::sync::mpsc::Receiver<String>;

/// What a sign-in tells the user, in one place (set with [`AuthenticateOptions::ui`]).
///
/// Every method has a default that logs a `tracing` warning (or nothing), so an implementation
/// overrides only what it shows. Methods are called from the sign-in's task and must not block
/// for long. Nothing passed here is a secret: the authorization URL carries the PKCE challenge
/// and `state`, never the verifier; the device flow's user code is meant to be shown.
///
/// ```
/// use context_harness_providers::{AuthenticateOptions, SignInUi, protocol::DeviceAuthorization};
///
/// struct Terminal;
///
/// impl SignInUi for Terminal {
///     fn browser_failed(&self, url: &str, _error: &std::io::Error) {
///         eprintln!("Open this URL to sign in:\n  {url}");
///     }
///     fn device_code(&self, device: &DeviceAuthorization) {
///         eprintln!("Open {} and enter {}", device.verification_uri, device.user_code);
///     }
/// }
///
/// let options = AuthenticateOptions::new().ui(Terminal);
/// # let _ = options;
/// ```
pub trait SignInUi: Send + Sync {
    /// The browser sign-in is about to open `url` (RFC 6749 §4.1.1) with the browser opener.
    /// Default: nothing (the opener itself may say so).
    fn opening_browser(&self, url: &str) {
        let _ = url;
    }

    /// The browser opener failed: show `url` so the user can open it by hand (the sign-in keeps
    /// waiting for the callback). Default: a `tracing` warning with the URL.
    fn browser_failed(&self, url: &str, error: &io::Error) {
        // `url` is a serialised URL (ASCII, percent-encoded) built here, never cut.
        tracing::warn!(error = %crate::terminal_text(&error.to_string()), "could not open a browser; open this URL to sign in: {url}");
    }

    /// The device authorization grant (RFC 8628 §3.3) needs the user to open the verification URI
    /// and enter the user code. Default: a `tracing` warning with both.
    fn device_code(&self, device: &crate::device::DeviceAuthorization) {
        // Both are the server's text: through the terminal sanitiser.
        let user_code = crate::TerminalText(&device.user_code);
        tracing::warn!(
            user_code = %user_code,
            "to sign in, open {} and enter the code {user_code}",
            crate::TerminalText(
                device
                    .verification_uri_complete
                    .as_deref()
                    .unwrap_or(&device.verification_uri)
            ),
        );
    }

    /// A pasted redirect URL was not accepted (wrong sign-in, malformed); the sign-in keeps
    /// waiting. Default: a `tracing` warning with the reason.
    fn paste_rejected(&self, error: &Error) {
        tracing::warn!(error = %error, "the pasted redirect URL was not accepted; still waiting");
    }

    /// Another process (or another task of this one) is running an interactive sign-in to
    /// `provider` (the name or server URL as the caller gave it); this one waits for it and uses its
    /// tokens (bounded by [`AuthenticateOptions::timeout`]). Called at most once per sign-in.
    /// Default: a `tracing` warning.
    fn waiting_for_sign_in(&self, provider: &str) {
        tracing::warn!(
            "another process is signing in to {}; waiting for it",
            crate::TerminalText(provider)
        );
    }
}

/// The [`SignInUi`] used when none is given: every default.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DefaultUi;

impl SignInUi for DefaultUi {}

/// Options for [`OAuthService::authenticate`](crate::OAuthService::authenticate).
///
/// ```
/// use std::time::Duration;
/// use context_harness_providers::AuthenticateOptions;
///
/// let options = AuthenticateOptions::new()
///     .client_id("my-client")
///     .scopes(["repo"])
///     .timeout(Duration::from_secs(120));
/// # let _ = options;
/// ```
#[non_exhaustive]
pub struct AuthenticateOptions {
    /// Client id; wins over `{SERVICE}_CLIENT_ID` and the configuration.
    pub client_id: Option<String>,
    /// Scopes to request instead of the provider's defaults.
    pub scopes: Option<Vec<String>>,
    /// Loopback ports to try instead of the provider's.
    pub ports: Option<Vec<u16>>,
    /// How long to wait for the user: for the browser to come back, or for the device-flow
    /// approval (within the device code's own lifetime). Default 300 s. Also the longest wait for
    /// another process's sign-in to the same name (see
    /// [`AuthOutcome::by_other_process`]).
    pub timeout: Duration,
    /// Opener for this sign-in, instead of the service's.
    pub browser: Option<Arc<dyn BrowserOpener>>,
    /// What the sign-in tells the user (browser failure, device code, rejected paste); default:
    /// `tracing` warnings.
    pub ui: Option<Arc<dyn SignInUi>>,
    /// Redirect URLs pasted by the user, raced against the loopback listener (for `--no-browser`).
    pub pasted_redirects: Option<PastedRedirects>,
    /// Browser (default) or device authorization grant (RFC 8628).
    pub flow: SignInFlow,
    /// The device flow's clock (tests inject a fake one); default: tokio's timer.
    pub device_clock: Option<Arc<dyn crate::device::DeviceClock>>,
    /// For an MCP server URL: leave out the RFC 8707 `resource` parameter (for authorization
    /// servers that answer `invalid_target` to it). Remembered in the server's record, so refresh
    /// leaves it out too; a later sign-in without it sends `resource` again.
    pub no_resource: bool,
    /// The grant (default: as the stored tokens were obtained when that grant renews itself, else
    /// the authorization code grant) and its key and assertion files (see [`GrantOptions`]).
    pub grant: GrantOptions,
    /// Never bind the tokens to a DPoP key (RFC 9449), even when the authorization server offers
    /// it (`--no-dpop`). By default a sign-in at a server whose metadata lists `ES256` in
    /// `dpop_signing_alg_values_supported` (or whose resource requires bound tokens) makes a key.
    pub no_dpop: bool,
}

impl Default for AuthenticateOptions {
    fn default() -> Self {
        Self {
            client_id: None,
            scopes: None,
            ports: None,
            timeout: Duration::from_secs(300),
            browser: None,
            ui: None,
            pasted_redirects: None,
            no_resource: false,
            grant: GrantOptions::default(),
            no_dpop: false,
            flow: SignInFlow::Browser,
            device_clock: None,
        }
    }
}

impl fmt::Debug for AuthenticateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateOptions")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("ports", &self.ports)
            .field("timeout", &self.timeout)
            .field("browser", &self.browser.is_some())
            .field("ui", &self.ui.is_some())
            .field("pasted_redirects", &self.pasted_redirects.is_some())
            .field("flow", &self.flow)
            .field("grant", &self.grant)
            .field("no_dpop", &self.no_dpop)
            .finish_non_exhaustive()
    }
}

impl AuthenticateOptions {
    /// The defaults: configured client id and scopes, provider ports, 300 s, the service's opener.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the client id.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Replaces the requested scopes.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    context_harness_tokens::builder_setters! {
        /// Replaces the loopback ports to try.
        #[must_use]
        pub fn ports(ports: impl IntoIterator<Item = u16>) => ports =
            Some(ports.into_iter().collect());

        /// Sets how long to wait for the callback.
        #[must_use]
        pub fn timeout(timeout: Duration) => timeout = timeout;

        /// Uses `opener` for this sign-in.
        #[must_use]
        pub fn browser(opener: impl BrowserOpener + 'static) => browser = Some(Arc::new(opener));

        /// Talks to the user through `ui` (see [`SignInUi`]).
        #[must_use]
        pub fn ui(ui: impl SignInUi + 'static) => ui = Some(Arc::new(ui));

        /// Chooses the browser flow or the device authorization grant.
        #[must_use]
        pub fn flow(flow: SignInFlow) => flow = flow;

        /// Uses `clock` for the device flow's polling (tests).
        #[must_use]
        pub fn device_clock(clock: impl crate::device::DeviceClock + 'static) => device_clock =
            Some(Arc::new(clock));

        /// Races the redirect URLs received on `pasted` (typed by the user) against the loopback
        /// listener. Each is normalised as people paste (surrounding quotes or angle brackets, line
        /// breaks and spaces from terminal wrapping: RFC 3986 Appendix C) and then checked exactly
        /// like a callback; the first that passes wins.
        #[must_use]
        pub fn pasted_redirects(pasted: PastedRedirects) => pasted_redirects = Some(pasted);

        /// Leaves out the RFC 8707 `resource` parameter for an MCP server URL (see
        /// [`no_resource`](Self::no_resource)).
        #[must_use]
        pub fn without_resource(no_resource: bool) => no_resource = no_resource;

        /// Never binds the tokens to a DPoP key (see [`no_dpop`](Self::no_dpop)).
        #[must_use]
        pub fn without_dpop(no_dpop: bool) => no_dpop = no_dpop;

        /// Obtains the tokens with `grant` (client credentials, JWT-bearer; see [`GrantOptions`]).
        #[must_use]
        pub fn grant(grant: GrantOptions) => grant = grant;
    }

    /// The [`SignInUi`] in use: the one given, else the defaults.
    pub(crate) fn ui_or_default(&self) -> Arc<dyn SignInUi> {
        self.ui.clone().unwrap_or_else(|| Arc::new(DefaultUi))
    }
}

/// The result of a successful [`OAuthService::authenticate`](crate::OAuthService::authenticate).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthOutcome {
    /// The stored tokens.
    pub tokens: OAuthTokens,
    /// The redirect URI that was used (shows which port was bound).
    pub redirect_uri: String,
    /// Ports tried before the bound one, because they were busy (report them: the app registration
    /// must allow the fallback port's redirect URI).
    pub skipped_ports: Vec<u16>,
    /// The store backend's name (`"keyring"`, `"file"`, `"memory"`).
    pub store: &'static str,
    /// Where the tokens were stored, for people (never the tokens themselves).
    pub location: String,
    /// `true` when no sign-in ran here: another process was signing in to the same name, this one
    /// waited for it, and these are the tokens that sign-in stored (then
    /// [`redirect_uri`](Self::redirect_uri) is empty). One interactive sign-in per name runs at a
    /// time across processes.
    pub by_other_process: bool,
}

/// What [`OAuthService::logout`](crate::OAuthService::logout) did at the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The server confirmed revocation.
    Revoked,
    /// Revocation was not attempted: no endpoint, no secret for GitHub, or local-only logout.
    NotAttempted {
        /// Why, for people (may include where to revoke by hand).
        reason: String,
    },
    /// Revocation was attempted and failed; local tokens were deleted anyway.
    Failed {
        /// What went wrong (no secrets).
        message: String,
    },
}

/// The result of [`OAuthService::logout`](crate::OAuthService::logout).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogoutOutcome {
    /// What happened at the server, in sum: [`Revocation::Revoked`] when every token was revoked,
    /// [`Revocation::Failed`] when any revocation failed (the first failure), else
    /// [`Revocation::NotAttempted`].
    pub revocation: Revocation,
    /// One entry per token revoked or attempted (the refresh token, then the access token): RFC 7009
    /// §2.1 does not promise that revoking one revokes the other, so each is attempted even if the
    /// other fails. Empty when revocation was not attempted at all.
    pub tokens: Vec<TokenRevocation>,
    /// Whether stored tokens existed and were deleted.
    pub deleted: bool,
}

/// The revocation of one token at logout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRevocation {
    /// Which token: `"refresh token"` or `"access token"`.
    pub token: &'static str,
    /// What happened to it.
    pub result: Revocation,
}
