//! The crate's error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Shorthand for `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the callback listener could not deliver an authorization response.
///
/// No variant ever holds the authorization code or the `state` value, so `Debug` and `Display`
/// are safe to log. Values that come from the authorization server (`error`, `error_description`,
/// `error_uri`, `iss`) are kept as sent; `Display` replaces control characters in them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Returned by [`CallbackServer::bind`](crate::CallbackServer::bind) when no port in the
    /// list could be bound on loopback. One entry per port tried, in order, with the address
    /// that failed and the I/O error (usually "address in use": another program holds it).
    AllPortsBusy {
        /// Each port tried and why it was unusable.
        attempts: Vec<PortAttempt>,
    },
    /// Returned by [`CallbackServer::wait`](crate::CallbackServer::wait) when no valid
    /// authorization response arrived before the configured timeout.
    Timeout {
        /// `true` when a callback with a missing or wrong `state` arrived (and was rejected)
        /// during the wait: possible CSRF, or an old browser tab from an earlier attempt.
        state_mismatch_seen: bool,
    },
    /// The authorization server answered `error=access_denied` with the right `state`: the
    /// user declined (or cancelled) the authorization request.
    Cancelled {
        /// `error_description`, if the server sent one.
        description: Option<String>,
        /// `iss` (RFC 9207), if the server sent one; check it before trusting `description`.
        iss: Option<String>,
    },
    /// The authorization server answered with an `error` other than `access_denied`, with the
    /// right `state` (RFC 6749 §4.1.2.1).
    Authorization {
        /// The `error` code, e.g. `invalid_scope`.
        error: String,
        /// `error_description`, if sent. Validate `iss` (RFC 9207) before showing it.
        description: Option<String>,
        /// `error_uri`, if sent.
        uri: Option<String>,
        /// `iss` (RFC 9207), if sent.
        iss: Option<String>,
    },
    /// The response had the right `state` but cannot be used (for example it has no `code`),
    /// or, from [`parse_redirect_url`](crate::parse_redirect_url), the pasted URL is malformed
    /// or is not a redirect to this client's redirect URI. `reason` is a fixed phrase.
    InvalidCallback {
        /// What was wrong, as a fixed lowercase phrase (never echoes input).
        reason: &'static str,
    },
    /// Returned by [`parse_redirect_url`](crate::parse_redirect_url) when the pasted URL's
    /// `state` is missing or differs from the expected one (an old tab, or a forged link).
    /// The listener never returns this: it rejects such requests and keeps waiting.
    StateMismatch,
    /// The [`CallbackConfig`](crate::CallbackConfig) is unusable (no ports, a bad path, a zero
    /// connection limit or header timeout).
    InvalidConfig {
        /// What was wrong, as a fixed lowercase phrase.
        reason: &'static str,
    },
    /// An I/O error outside binding, for example while registering a bound socket with the
    /// runtime.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllPortsBusy { attempts } => {
                f.write_str("no callback port available on loopback")?;
                for (i, attempt) in attempts.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { "; " })?;
                    write!(f, "{attempt}")?;
                }
                Ok(())
            }
            Self::Timeout {
                state_mismatch_seen,
            } => {
                f.write_str("timed out waiting for the authorization callback")?;
                if *state_mismatch_seen {
                    f.write_str(
                        "; a callback with a missing or wrong state was received and ignored \
                         (possible CSRF or an old browser tab)",
                    )?;
                }
                Ok(())
            }
            Self::Cancelled { .. } => f.write_str("authorization was denied or cancelled"),
            Self::Authorization {
                error, description, ..
            } => {
                f.write_str("authorization server returned error \"")?;
                write_sanitized(f, error)?;
                f.write_str("\"")?;
                if let Some(description) = description {
                    f.write_str(": ")?;
                    write_sanitized(f, description)?;
                }
                Ok(())
            }
            Self::InvalidCallback { reason } => {
                write!(f, "invalid authorization callback: {reason}")
            }
            Self::StateMismatch => f.write_str(
                "the state in the redirect url does not match this sign-in attempt \
                 (possible CSRF or an old browser tab)",
            ),
            Self::InvalidConfig { reason } => write!(f, "invalid callback configuration: {reason}"),
            Self::Io(_) => f.write_str("callback listener i/o error"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Writes provider-controlled text through the one terminal sanitiser (control, format and bidi
/// characters replaced, no length cap here), so an error message cannot rewrite the user's terminal.
fn write_sanitized(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str(&context_harness_tokens::terminal_text_max(s, usize::MAX))
}

/// One port that [`CallbackServer::bind`](crate::CallbackServer::bind) could not use.
#[derive(Debug)]
#[non_exhaustive]
pub struct PortAttempt {
    /// The port tried (for an ephemeral request, the port the system offered).
    pub port: u16,
    /// The loopback address whose bind failed (`127.0.0.1:port` or `[::1]:port`).
    pub address: SocketAddr,
    /// Why: usually "address in use", meaning another program holds the address.
    pub error: io::Error,
}

impl fmt::Display for PortAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} ({}: {})", self.port, self.address, self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_goes_through_the_terminal_sanitiser() {
        let e = Error::Authorization {
            error: "bad\u{1b}[2J".to_owned(),
            description: Some("see\u{202E}txt.exe\nnow".to_owned()),
            uri: None,
            iss: None,
        };
        let shown = e.to_string();
        assert_eq!(
            shown,
            "authorization server returned error \"bad\u{FFFD}[2J\": see\u{FFFD}txt.exe now"
        );
    }
}
