//! The storage error type.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed underlying error, returned from [`std::error::Error::source`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Saving, loading or deleting tokens failed.
///
/// `Display` is lowercase, names files and provider names but never token values; the underlying
/// cause is chained through `source()`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A provider name (or a URL to derive one from) was refused before it reached any path or keyring
    /// entry: empty, too long, a character outside `a-z 0-9 - _ .`, or a leading dot.
    InvalidName {
        /// The refused input, truncated to a printable length.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A token file exists but does not hold valid token JSON. The file is left untouched.
    Corrupt {
        /// The file that failed to parse.
        path: PathBuf,
        /// The parse error (category and position only, never the file's content).
        source: BoxError,
    },
    /// A file-system operation failed.
    Io {
        /// What was being done, e.g. `"write"` or `"create directory"`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating-system error.
        source: io::Error,
    },
    /// [`ProviderLock::acquire`](crate::ProviderLock::acquire) waited its whole bound while another
    /// process (or handle) held the lock.
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The tokens could not be turned into JSON (e.g. a non-finite time stamp).
    Encode {
        /// The serializer's error.
        source: BoxError,
    },
    /// The system keyring failed, was unavailable, or did not answer within its time bound.
    Keyring {
        /// What kind of keyring failure this is.
        kind: KeyringErrorKind,
        /// The keyring library's error, when there is one (never one that carries secret bytes).
        source: Option<BoxError>,
    },
    /// The keyring was requested ([`StorageMode::Keyring`](crate::StorageMode::Keyring)) but this build
    /// has no keyring support (the `keyring` feature is off or the platform has no store).
    KeyringUnsupported,
}

/// What went wrong with the system keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyringErrorKind {
    /// No keyring service is reachable: no session bus, no Secret Service provider, or a platform
    /// failure talking to it.
    Unavailable,
    /// The keyring exists but refused access: it is locked, or an unlock prompt was dismissed.
    AccessDenied,
    /// The keyring did not answer within the time bound (a wedged daemon or a prompt that never ends).
    /// After one timeout the store stays unavailable for the rest of the process.
    TimedOut,
    /// The keyring holds a value for this provider that is not valid token JSON.
    BadData,
    /// Any other keyring failure (ambiguous entries, refused parameters, ...).
    Other,
}

impl KeyringErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Unavailable => "system keyring is unavailable",
            Self::AccessDenied => "system keyring refused access (locked?)",
            Self::TimedOut => "system keyring did not answer in time",
            Self::BadData => "system keyring holds invalid token data",
            Self::Other => "system keyring operation failed",
        }
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_name(name: &str, reason: &'static str) -> Self {
        // Keep messages short and printable even for hostile input.
        let mut shown: String = name.chars().take(80).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        Self::InvalidName {
            name: shown.escape_debug().to_string(),
            reason,
        }
    }

    #[cfg_attr(not(feature = "keyring"), allow(dead_code))]
    pub(crate) fn keyring(kind: KeyringErrorKind, source: Option<BoxError>) -> Self {
        Self::Keyring { kind, source }
    }

    /// Whether this error says the keyring cannot be used right now (unavailable, locked, timed out),
    /// as opposed to a data problem. The auto store falls back to the file store on these.
    pub fn is_keyring_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Keyring {
                kind: KeyringErrorKind::Unavailable
                    | KeyringErrorKind::AccessDenied
                    | KeyringErrorKind::TimedOut,
                ..
            } | Self::KeyringUnsupported
        )
    }

    /// Whether this error is a [`Error::LockTimeout`].
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, Self::LockTimeout { .. })
    }

    /// Whether this error is an [`Error::InvalidName`].
    pub fn is_invalid_name(&self) -> bool {
        matches!(self, Self::InvalidName { .. })
    }

    /// Whether this error is an [`Error::Corrupt`] file or keyring value.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. }
                | Self::Keyring {
                    kind: KeyringErrorKind::BadData,
                    ..
                }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, reason } => {
                write!(f, "invalid provider name \"{name}\": {reason}")
            }
            Self::Corrupt { path, .. } => write!(
                f,
                "token file {} is corrupt (left untouched; fix or delete it, then sign in again)",
                path.display()
            ),
            Self::Io { op, path, .. } => write!(f, "failed to {op} {}", path.display()),
            Self::LockTimeout { path, waited } => write!(
                f,
                "timed out after {} ms waiting for lock {}",
                waited.as_millis(),
                path.display()
            ),
            Self::Encode { .. } => f.write_str("failed to encode tokens as json"),
            Self::Keyring { kind, .. } => f.write_str(kind.describe()),
            Self::KeyringUnsupported => {
                f.write_str("this build has no system keyring support (use file storage)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Corrupt { source, .. } | Self::Encode { source } => Some(source.as_ref()),
            Self::Io { source, .. } => Some(source),
            Self::Keyring {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}
