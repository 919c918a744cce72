//! The crate's one error type, [`Error`], and its stable classification, [`ErrorCode`].

use std::fmt;

use context_harness_protocol::BoxError;

use crate::storage;

mod convert;
mod next_step;

pub use next_step::NextStep;

pub(crate) use convert::{
    Grant, callback_error, classify_response_error, expired_without_rt, not_signed_in,
    refresh_refused_before, sanitize_code, storage_error,
};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: the Python original's `ErrorCode`, plus `Storage` and
/// `ConfigInvalid`.
///
/// Each code has a stable snake_case string ([`as_str`](Self::as_str)) for JSON output and a distinct
/// meaning a program can branch on (the CLI maps each to its own exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No tokens are stored for the provider: sign in first.
    AuthRequired,
    /// The sign-in failed: the server rejected the code or the client, or answered with something
    /// that is not a usable token response.
    AuthFailed,
    /// The user (or the server on the user's behalf) declined the authorization (`access_denied`).
    AuthCancelled,
    /// The access token has expired and there is no refresh token to renew it.
    TokenExpired,
    /// The server refused the refresh token (`invalid_grant`): sign in again.
    TokenRefreshFailed,
    /// A required setting is missing, most often the client id.
    ConfigMissing,
    /// A setting is present but wrong: a malformed `providers.toml`, a non-HTTPS endpoint, a bad URL.
    ConfigInvalid,
    /// The provider name is neither built in nor configured.
    NotFound,
    /// Waiting timed out: for the browser callback, or for an HTTP answer.
    Timeout,
    /// The server could not be reached, or answered with a server error or a non-OAuth body
    /// (5xx, HTML, garbage).
    NetworkError,
    /// Reading or writing the token store failed (keyring, files, the per-provider lock).
    Storage,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::AuthRequired,
        Self::AuthFailed,
        Self::AuthCancelled,
        Self::TokenExpired,
        Self::TokenRefreshFailed,
        Self::ConfigMissing,
        Self::ConfigInvalid,
        Self::NotFound,
        Self::Timeout,
        Self::NetworkError,
        Self::Storage,
    ];
}

context_harness_tokens::display_as_str! {
    ErrorCode {
        /// The stable snake_case name, e.g. `"auth_required"`.
        pub fn as_str;
        AuthRequired => "auth_required",
        AuthFailed => "auth_failed",
        AuthCancelled => "auth_cancelled",
        TokenExpired => "token_expired",
        TokenRefreshFailed => "token_refresh_failed",
        ConfigMissing => "config_missing",
        ConfigInvalid => "config_invalid",
        NotFound => "not_found",
        Timeout => "timeout",
        NetworkError => "network_error",
        Storage => "storage",
    }
}

/// An error from the provider registry or [`OAuthService`](crate::OAuthService).
///
/// Branch on [`code`](Self::code); show [`Display`](fmt::Display) and then [`hint`](Self::hint) to a
/// person. Neither ever contains a token, an authorization code, a verifier or a client secret: server
/// error descriptions are kept out of `Display` too (they are available from
/// [`oauth_error_description`](Self::oauth_error_description) for callers that choose to show them).
pub struct Error(Box<Inner>);

// Boxed: errors travel through every `Result` here and should stay one pointer wide.
struct Inner {
    code: ErrorCode,
    message: String,
    hint: Option<String>,
    next_step: Option<NextStep>,
    provider: Option<String>,
    account: Option<storage::AccountName>,
    oauth_error: Option<String>,
    oauth_error_description: Option<String>,
    http_status: Option<u16>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            code,
            message: message.into(),
            hint: None,
            next_step: None,
            provider: None,
            account: None,
            oauth_error: None,
            oauth_error_description: None,
            http_status: None,
            source: None,
        }))
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// Sets the next step, and the hint to its plain-language text.
    pub(crate) fn with_step(mut self, step: NextStep) -> Self {
        self.0.hint = Some(step.to_string());
        self.0.next_step = Some(step);
        self
    }

    pub(crate) fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.0.provider = Some(provider.into());
        self
    }

    /// Names the account whose tokens the error is about, unless one is named already.
    pub(crate) fn for_account(mut self, account: &storage::AccountName) -> Self {
        if self.0.account.is_none() {
            self.0.account = Some(account.clone());
        }
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.0.http_status = Some(status);
        self
    }

    /// Adds the provider name and, if none is set yet, the default next step for this code.
    pub(crate) fn for_provider(mut self, provider: &str) -> Self {
        // A URL's user info (a password typed into it) never travels with an error.
        let provider = &*context_harness_protocol::without_user_info(provider);
        if self.0.provider.is_none() {
            self.0.provider = Some(provider.to_owned());
        }
        if self.0.hint.is_none() {
            match default_step(self.0.code, provider) {
                Some(step) => self = self.with_step(step),
                None => self.0.hint = default_hint(self.0.code),
            }
        }
        self
    }

    /// The classification to branch on.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// What to do next in plain words (e.g. "sign in to atlassian", "retry later"), when there is
    /// a clear next step. It names no command of any program; see [`next_step`](Self::next_step)
    /// for the same advice as data.
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref()
    }

    /// What to do next as data, for a program to render as its own commands (the CLI prints
    /// `run `context-harness mcp auth github`` for [`NextStep::SignIn`]). `None` when the advice
    /// is only the [`hint`](Self::hint) text (retry later, check the network, fix a file).
    pub fn next_step(&self) -> Option<&NextStep> {
        self.0.next_step.as_ref()
    }

    /// The provider the failed operation was for, when there was one.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The account whose tokens the failed operation used, when it is known: set for the errors
    /// of getting or refreshing one account's tokens (not signed in, expired, refresh token
    /// refused, a DPoP-bound token without its key), so that a sign-in the [`next_step`](Self::next_step)
    /// suggests can name the account (a provider's default account need not be
    /// [`DEFAULT_ACCOUNT`](storage::DEFAULT_ACCOUNT)).
    pub fn account(&self) -> Option<&storage::AccountName> {
        self.0.account.as_ref()
    }

    /// Whether this is [`ErrorCode::AuthRequired`].
    pub fn is_auth_required(&self) -> bool {
        self.0.code == ErrorCode::AuthRequired
    }

    /// Whether signing in (again) is what cures this error: not signed in
    /// ([`ErrorCode::AuthRequired`], also for stored tokens bound to another server), expired
    /// without a refresh token ([`ErrorCode::TokenExpired`]), or the refresh token refused
    /// ([`ErrorCode::TokenRefreshFailed`], RFC 6749 §5.2 `invalid_grant`).
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self.0.code,
            ErrorCode::AuthRequired | ErrorCode::TokenExpired | ErrorCode::TokenRefreshFailed
        )
    }

    /// Whether trying again later may succeed without changing anything: the server could not be
    /// reached, answered with a server error or a rate limit ([`ErrorCode::NetworkError`]), or did
    /// not answer in time ([`ErrorCode::Timeout`]).
    pub fn is_transient(&self) -> bool {
        matches!(self.0.code, ErrorCode::NetworkError | ErrorCode::Timeout)
    }
}

/// The hint of a [`ErrorCode::NetworkError`] whose cause is an answer the server did send (5xx, a
/// rate limit, a redirect, an oversized body): the default hint, which points at the network
/// connection and proxy settings, is only for transport failures (connect, DNS, TLS, timeouts).
pub(crate) const SERVER_TROUBLE_HINT: &str = "the server answered but could not serve the request; retry later, and if it persists check the endpoint URL or the server's status";

/// A protocol error with this crate's code and, where there is a clear one, the next step.
impl From<context_harness_protocol::ProtocolError> for Error {
    fn from(mut e: context_harness_protocol::ProtocolError) -> Self {
        use context_harness_protocol::ErrorKind;
        let code = match e.kind() {
            ErrorKind::InvalidUrl => ErrorCode::ConfigInvalid,
            ErrorKind::Denied => ErrorCode::AuthCancelled,
            ErrorKind::Expired => ErrorCode::Timeout,
            ErrorKind::ServerError => ErrorCode::NetworkError,
            _ => ErrorCode::AuthFailed,
        };
        let mut error = Self::new(code, e.message());
        error = match e.kind() {
            ErrorKind::PkceUnsupported => error.with_hint(
                "ask the server operator to publish code_challenge_methods_supported, or \
                 configure the endpoints by hand in providers.toml",
            ),
            ErrorKind::RegistrationRefused => error.with_step(NextStep::UsePreRegisteredClient),
            ErrorKind::Expired => {
                error.with_hint("run the sign-in again and enter the code before it expires")
            }
            ErrorKind::ServerError => error.with_hint(SERVER_TROUBLE_HINT),
            _ => error,
        };
        error.0.oauth_error = e.oauth_error().map(str::to_owned);
        error.0.oauth_error_description = e.oauth_error_description().map(str::to_owned);
        error.0.http_status = e.http_status();
        error.0.source = e.take_source();
        error
    }
}

/// The next step for `code` about `provider`, when one is obvious.
fn default_step(code: ErrorCode, provider: &str) -> Option<NextStep> {
    let provider = provider.to_owned();
    match code {
        ErrorCode::AuthRequired | ErrorCode::TokenExpired | ErrorCode::TokenRefreshFailed => {
            Some(NextStep::SignIn { provider })
        }
        ErrorCode::AuthCancelled => Some(NextStep::SignInAndApprove { provider }),
        ErrorCode::NotFound => Some(NextStep::ListProviders),
        _ => None,
    }
}

/// The plain-language hint for `code` when there is no [`NextStep`].
fn default_hint(code: ErrorCode) -> Option<String> {
    match code {
        ErrorCode::NetworkError => {
            Some("check your network connection and proxy settings, then retry".to_owned())
        }
        ErrorCode::Timeout => {
            Some("retry; the server or the browser sign-in took too long".to_owned())
        }
        _ => None,
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        context_harness_protocol::debug_error(
            f,
            "Error",
            &[("code", &self.0.code), ("message", &self.0.message)],
            &[
                ("hint", self.0.hint.as_ref().map(|v| v as _)),
                ("provider", self.0.provider.as_ref().map(|v| v as _)),
                ("account", self.0.account.as_ref().map(|v| v as _)),
                ("oauth_error", self.0.oauth_error.as_ref().map(|v| v as _)),
                ("http_status", self.0.http_status.as_ref().map(|v| v as _)),
                ("source", self.0.source.as_ref().map(|v| v as _)),
            ],
        )
    }
}

context_harness_protocol::impl_message_error!(Error);
context_harness_protocol::impl_server_answer!(Error, pub(crate));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_distinct_snake_case_names() {
        let names: std::collections::BTreeSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }

    #[test]
    fn provider_hint_is_a_step_naming_no_command() {
        let err = Error::new(ErrorCode::AuthRequired, "not signed in").for_provider("atlassian");
        assert_eq!(err.hint(), Some("sign in to atlassian"));
        assert_eq!(
            err.next_step(),
            Some(&NextStep::SignIn {
                provider: "atlassian".to_owned()
            })
        );
        assert!(err.needs_sign_in());
        let slow = Error::new(ErrorCode::Timeout, "slow").for_provider("atlassian");
        assert_eq!(slow.next_step(), None);
        assert!(slow.hint().is_some() && slow.is_transient() && !slow.needs_sign_in());
        assert_eq!(err.provider(), Some("atlassian"));
        assert_eq!(err.to_string(), "not signed in");
    }
}
