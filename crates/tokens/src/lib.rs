//! OAuth token model: secret newtypes, expiry with a buffer, and token-response parsing.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use context_harness_tokens::{DEFAULT_EXPIRY_BUFFER, OAuthTokens, parse_token_response};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = SystemTime::now();
//! // GitHub-style: lowercase token type, comma-separated scopes, `expires_in` as a string.
//! let body = br#"{"access_token":"gho_example","token_type":"bearer","expires_in":"3600","scope":"repo,gist"}"#;
//! let tokens = parse_token_response(200, Some("application/json"), body, now)?;
//! assert!(tokens.is_bearer());
//! assert_eq!(tokens.scopes(), ["repo", "gist"]);
//! assert!(!tokens.is_expired_at(now, DEFAULT_EXPIRY_BUFFER));
//! assert!(tokens.is_expired_at(now + Duration::from_secs(3600 - 30), DEFAULT_EXPIRY_BUFFER));
//!
//! // Round-trips through the stored (compatible with the Python original) JSON.
//! let json = tokens.to_json()?;
//! assert_eq!(OAuthTokens::from_json(&json)?, tokens);
//!
//! // Secrets stay out of `Debug` output and out of errors.
//! assert!(!format!("{tokens:?}").contains("gho_example"));
//! let err = parse_token_response(200, None, b"error=bad_verification_code&access_token=x", now)
//!     .unwrap_err();
//! assert_eq!(err.oauth_error(), Some("bad_verification_code"));
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - [`AccessToken`], [`RefreshToken`] and [`IdToken`] print `[redacted]` under `Debug` and have no
//!   `Display`; the only way to the value is the explicit `secret()` accessor. [`OAuthTokens`]'s
//!   `Debug` shows only the keys of its preserved unknown fields, since their values may be secret.
//! - Errors never quote a response body or token file: [`ResponseError`] carries only the status and
//!   the OAuth `error`, `error_description` and `error_uri` fields (sanitised for the terminal), and
//!   [`Error`] only a category and position. serde_json's messages, which can quote values, are dropped.
//! - An `error` field wins over `access_token` whatever the HTTP status, so a GitHub-style "200 with an
//!   error" never becomes a token.
//! - Expiry errs on the safe side: the default buffer is 60 s and an invalid `issued_at` counts as
//!   long expired. For short-lived tokens the refresh margin is `min(60 s, half the lifetime)`
//!   ([`OAuthTokens::refresh_margin`], [`OAuthTokens::needs_refresh_at`]), so a 30 s token is used for
//!   15 s instead of counting as expired on arrival. An unknown lifetime (no `expires_in`) is the one exception: the token is used until
//!   the server rejects it, as RFC 6749 intends.
//! - Secrets are ordinary `String`s and are not zeroed on drop (no extra dependency for it); keep their
//!   lifetime short and never log them.

mod error;
mod macros;
mod response;
mod secret;
mod status;
mod terminal;
mod tokens;

pub use error::{Error, ErrorKind, Result};
pub use response::{MAX_BODY_LEN, ResponseError, parse_response_object, parse_token_response};
pub use secret::{AccessToken, ClientSecret, IdToken, REDACTED, RefreshToken, SecretString};
pub use status::{AuthStatus, UnknownAuthStatus};
pub use terminal::{
    MAX_TERMINAL_CHARS, REPLACEMENT, TerminalText, is_format_char, is_scope_token,
    is_unsafe_for_terminal, is_vschar, terminal_text, terminal_text_max, valid_scope,
};
pub use tokens::{
    DEFAULT_EXPIRY_BUFFER, MAX_LIFETIME_SECS, OAuthTokens, from_unix_seconds, unix_seconds,
};

#[cfg(test)]
mod tests;
