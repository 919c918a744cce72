//! The crate's error type: what went wrong ([`ErrorKind`]) and a message fit for a person. No hint
//! text: the program embedding this crate decides what the next step is (a command, a button, …).

use std::error::Error as StdError;
use std::fmt;

/// A `Result` whose error is [`ProtocolError`].
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;

/// A boxed underlying error (the `source` of the workspace's error types).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of protocol failure a [`ProtocolError`] is. Branch on it to choose an error code and a
/// next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URL the caller gave (a configured server, an issuer) cannot be used: not an absolute
    /// `http`/`https` URL with a host, credentials in it, a query on an issuer.
    InvalidUrl,
    /// A server's answer was refused or is unusable (malformed metadata, a missing field, an issuer
    /// or resource that does not match, an answer that is not a token response).
    InvalidResponse,
    /// The authorization server does not announce PKCE `S256` (`code_challenge_methods_supported`),
    /// so no sign-in may start (OAuth 2.1 §7.5.2, MCP "Authorization Server Metadata Discovery").
    PkceUnsupported,
    /// Dynamic client registration (RFC 7591 §3.2.2) was refused or failed: the server may not
    /// allow it, so a pre-registered client is needed.
    RegistrationRefused,
    /// The user (or the server on the user's behalf) denied the device sign-in (RFC 8628 §3.5
    /// `access_denied`).
    Denied,
    /// The device code expired before the sign-in was approved (RFC 8628 §3.5 `expired_token`, or
    /// the local deadline).
    Expired,
    /// The server failed (HTTP 5xx): worth retrying later.
    ServerError,
}

/// An error of this crate: an [`ErrorKind`], a printable message (server-supplied text in it is
/// passed through [`terminal_text`](context_harness_tokens::terminal_text)), and, when the server
/// answered with one, the OAuth `error` code, its description and the HTTP status.
///
/// Neither `Display` nor `Debug` ever contains a token, a code or a client secret; the server's
/// `error_description` is kept out of `Display` (see
/// [`oauth_error_description`](Self::oauth_error_description)).
pub struct ProtocolError(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    oauth_error: Option<String>,
    oauth_error_description: Option<String>,
    http_status: Option<u16>,
    source: Option<BoxError>,
}

impl ProtocolError {
    /// An error of `kind` with `message` (already printable).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            oauth_error: None,
            oauth_error_description: None,
            http_status: None,
            source: None,
        }))
    }

    /// Adds the HTTP status of the answer that caused the error.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.0.http_status = Some(status);
        self
    }

    /// Adds the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Takes the underlying error out (for callers that wrap this error in their own).
    pub fn take_source(&mut self) -> Option<BoxError> {
        self.0.source.take()
    }
}

impl fmt::Debug for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_error(
            f,
            "ProtocolError",
            &[("kind", &self.0.kind), ("message", &self.0.message)],
            &[
                ("oauth_error", self.0.oauth_error.as_ref().map(|v| v as _)),
                ("http_status", self.0.http_status.as_ref().map(|v| v as _)),
                ("source", self.0.source.as_ref().map(|v| v as _)),
            ],
        )
    }
}

crate::impl_message_error!(ProtocolError);
crate::impl_server_answer!(ProtocolError, pub);

/// Writes an error's `Debug` form: `name { always…, optional… }`, each optional field only when
/// it is set. Shared by the workspace's error types, so they print alike; holds no secret by
/// construction (the types keep none).
///
/// # Errors
///
/// What the formatter returns.
pub fn debug_error(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    always: &[(&str, &dyn fmt::Debug)],
    optional: &[(&str, Option<&dyn fmt::Debug>)],
) -> fmt::Result {
    let mut d = f.debug_struct(name);
    for (field, value) in always {
        d.field(field, value);
    }
    for (field, value) in optional {
        if let Some(value) = value {
            d.field(field, value);
        }
    }
    d.finish()
}

/// Adds `with_oauth` (visibility `$builder`) and the accessors of what a server answered (RFC 6749 §5.2 `error`, `error_description`, the
/// HTTP status) to an error type whose private data `self.0` has `oauth_error`,
/// `oauth_error_description` (`Option<String>`) and `http_status` (`Option<u16>`).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_server_answer {
    ($ty:ty, $builder:vis) => {
        impl $ty {
            /// Adds the server's OAuth `error` code (printable), `error_description` and HTTP
            /// status.
            #[must_use]
            $builder fn with_oauth(
                mut self,
                error: impl Into<String>,
                description: Option<String>,
                status: u16,
            ) -> Self {
                self.0.oauth_error = Some(error.into());
                self.0.oauth_error_description = description;
                self.0.http_status = Some(status);
                self
            }

            /// The OAuth `error` code the server answered with (e.g. `invalid_grant`), if any.
            pub fn oauth_error(&self) -> Option<&str> {
                self.0.oauth_error.as_deref()
            }

            /// The server's `error_description`, if any. Servers write it; it is not shown by
            /// `Display`.
            pub fn oauth_error_description(&self) -> Option<&str> {
                self.0.oauth_error_description.as_deref()
            }

            /// The HTTP status of the answer that caused the error, if there was one.
            pub fn http_status(&self) -> Option<u16> {
                self.0.http_status
            }
        }
    };
}

/// Implements `Display` (the message) and `std::error::Error::source` for an error type whose
/// private data `self.0` has `message: String` and `source: Option<Box<dyn Error + Send + Sync>>`.
///
/// The message is built printable; `Display` passes it through the terminal sanitiser once more
/// (control, format and bidi characters replaced, no length cap), so an error logged with
/// `error = %e` under any subscriber cannot carry server text raw even if a message forgot it.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_message_error {
    ($ty:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&::context_harness_tokens::terminal_text_max(
                    &self.0.message,
                    usize::MAX,
                ))
            }
        }

        impl ::std::error::Error for $ty {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                Some(self.0.source.as_deref()?)
            }
        }
    };
}

/// A server-supplied string made safe and short for messages: the workspace's one sanitiser.
pub(crate) fn printable(s: &str) -> String {
    context_harness_tokens::terminal_text(s)
}
