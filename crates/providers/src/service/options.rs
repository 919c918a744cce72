//! What callers pass to and get back from the service: [`AuthenticateOptions`] (with
//! [`SignInFlow`]), [`AuthOutcome`], [`LogoutOutcome`], [`Revocation`] and [`TokenRevocation`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

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
/// (see [`AuthenticateOptions::on_rejected_paste`]) and the sign-in keeps waiting.
pub type PastedRedirects = tokio::sync::mpsc::Receiver<String>;

/// Called with the reason when a pasted redirect URL is not accepted (the sign-in goes on).
pub type RejectedPasteHandler = Arc<dyn Fn(&Error) + Send + Sync>;

/// Called with the authorization URL and the error when the browser could not be opened.
pub type BrowserErrorHandler = Arc<dyn Fn(&str, &io::Error) + Send + Sync>;

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
    /// approval (within the device code's own lifetime). Default 300 s.
    pub timeout: Duration,
    /// Opener for this sign-in, instead of the service's.
    pub browser: Option<Arc<dyn BrowserOpener>>,
    /// Called when the opener fails, with the URL to show; default: a `tracing` warning with the URL.
    pub on_browser_error: Option<BrowserErrorHandler>,
    /// Redirect URLs pasted by the user, raced against the loopback listener (for `--no-browser`).
    pub pasted_redirects: Option<PastedRedirects>,
    /// Told why a pasted redirect URL was not accepted; default: a `tracing` warning.
    pub on_rejected_paste: Option<RejectedPasteHandler>,
    /// Browser (default) or device authorization grant (RFC 8628).
    pub flow: SignInFlow,
    /// Shows the device flow's user code and verification URI; default: a `tracing` warning.
    pub device_prompt: Option<crate::device::DevicePrompt>,
    /// The device flow's clock (tests inject a fake one); default: tokio's timer.
    pub device_clock: Option<Arc<dyn crate::device::DeviceClock>>,
    /// For an MCP server URL: leave out the RFC 8707 `resource` parameter (for authorization
    /// servers that answer `invalid_target` to it). Remembered in the server's record, so refresh
    /// leaves it out too; a later sign-in without it sends `resource` again.
    pub no_resource: bool,
}

impl Default for AuthenticateOptions {
    fn default() -> Self {
        Self {
            client_id: None,
            scopes: None,
            ports: None,
            timeout: Duration::from_secs(300),
            browser: None,
            on_browser_error: None,
            pasted_redirects: None,
            on_rejected_paste: None,
            no_resource: false,
            flow: SignInFlow::Browser,
            device_prompt: None,
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
            .field("pasted_redirects", &self.pasted_redirects.is_some())
            .field("flow", &self.flow)
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

    /// Replaces the loopback ports to try.
    #[must_use]
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = Some(ports.into_iter().collect());
        self
    }

    /// Sets how long to wait for the callback.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses `opener` for this sign-in.
    #[must_use]
    pub fn browser(mut self, opener: impl BrowserOpener + 'static) -> Self {
        self.browser = Some(Arc::new(opener));
        self
    }

    /// Calls `handler(url, error)` when the browser cannot be opened.
    #[must_use]
    pub fn on_browser_error(
        mut self,
        handler: impl Fn(&str, &io::Error) + Send + Sync + 'static,
    ) -> Self {
        self.on_browser_error = Some(Arc::new(handler));
        self
    }

    /// Chooses the browser flow or the device authorization grant.
    #[must_use]
    pub fn flow(mut self, flow: SignInFlow) -> Self {
        self.flow = flow;
        self
    }

    /// Calls `prompt` with the device flow's user code and verification URI (show them to the user).
    #[must_use]
    pub fn device_prompt(
        mut self,
        prompt: impl Fn(&crate::device::DeviceAuthorization) + Send + Sync + 'static,
    ) -> Self {
        self.device_prompt = Some(Arc::new(prompt));
        self
    }

    /// Uses `clock` for the device flow's polling (tests).
    #[must_use]
    pub fn device_clock(mut self, clock: impl crate::device::DeviceClock + 'static) -> Self {
        self.device_clock = Some(Arc::new(clock));
        self
    }

    /// Races the redirect URLs received on `pasted` (typed by the user) against the loopback
    /// listener. Each is normalised as people paste (surrounding quotes or angle brackets, line
    /// breaks and spaces from terminal wrapping: RFC 3986 Appendix C) and then checked exactly like
    /// a callback; the first that passes wins.
    #[must_use]
    pub fn pasted_redirects(mut self, pasted: PastedRedirects) -> Self {
        self.pasted_redirects = Some(pasted);
        self
    }

    /// Leaves out the RFC 8707 `resource` parameter for an MCP server URL (see
    /// [`no_resource`](Self::no_resource)).
    #[must_use]
    pub fn without_resource(mut self, no_resource: bool) -> Self {
        self.no_resource = no_resource;
        self
    }

    /// Sets what is told the reason when a pasted redirect URL is not accepted.
    #[must_use]
    pub fn on_rejected_paste(mut self, handler: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_rejected_paste = Some(Arc::new(handler));
        self
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
