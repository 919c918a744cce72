//! Why the bridge could not start: [`Error`]. Once it runs, failures are JSON-RPC error responses
//! to the requests they hit, never an `Error`.

use std::fmt;

use context_harness_providers::ErrorCode;

/// Why the bridge could not be configured or started. Messages never contain a header value or a
/// token.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting is wrong (the server URL, an extra header, a header file's line): the code
    /// [`ErrorCode::ConfigInvalid`].
    Config {
        /// What is wrong (names the setting, never a secret value).
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// A failure of the provider library: a header file that cannot be used
    /// ([`read_secret_file`](context_harness_providers::read_secret_file)).
    Provider(context_harness_providers::Error),
    /// The async runtime could not be started ([`run_stdio`](crate::run_stdio)).
    Runtime(std::io::Error),
    /// The HTTP client could not be built (TLS setup, proxies).
    Http(reqwest::Error),
}

impl Error {
    /// A [`Error::Config`].
    pub(crate) fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The stable code of the failure, when it has one (`config_invalid`, or the provider error's).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Config { .. } => Some(ErrorCode::ConfigInvalid),
            Self::Provider(e) => Some(e.code()),
            Self::Runtime(_) | Self::Http(_) => None,
        }
    }

    /// What to do about it, when known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Config { hint, .. } => Some(hint),
            Self::Provider(e) => e.hint(),
            Self::Runtime(_) | Self::Http(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { message, .. } => f.write_str(message),
            Self::Provider(e) => e.fmt(f),
            Self::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            Self::Http(e) => write!(f, "cannot build the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config { .. } => None,
            Self::Provider(e) => Some(e),
            Self::Runtime(e) => Some(e),
            Self::Http(e) => Some(e),
        }
    }
}

impl From<context_harness_providers::Error> for Error {
    fn from(e: context_harness_providers::Error) -> Self {
        Self::Provider(e)
    }
}
