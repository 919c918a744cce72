//! The storage error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::quote::{shell_quote, user_name};

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
    /// An account name was refused before it reached any path or keyring entry (see
    /// [`AccountName`](crate::AccountName)).
    InvalidAccount {
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
    /// An account index (`tokens/<provider>.accounts`, [`AccountIndex`](crate::AccountIndex)) is
    /// not one: not its JSON, an invalid account name, or a default account that is not one of its
    /// accounts. The file is left untouched. Deleting it loses no tokens: without the file the
    /// accounts are found again from the stored records ([`AccountIndex::rebuild`](crate::AccountIndex::rebuild)).
    CorruptIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it, in words.
        reason: &'static str,
        /// The parse error, when there is one (category and position only).
        source: Option<BoxError>,
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
    /// A file or directory under the home directory could have been written by another local user, or
    /// is a symbolic link or special file where a regular file belongs; it is not used (see
    /// [`check_home`](crate::check_home)). [`Error::fix`] gives the command that fixes it.
    Untrusted {
        /// The refused file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: TrustProblem,
    },
    /// A file under the home directory is larger than any file this program keeps there
    /// ([`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES)); it is not read (at most the limit plus one byte
    /// is, whatever its size claims), so a planted huge file or an endless one cannot exhaust memory.
    TooLarge {
        /// The refused file.
        path: PathBuf,
        /// The limit it exceeds, in bytes.
        limit: u64,
    },
    /// An account index ([`AccountIndex::save`](crate::AccountIndex::save)) would be larger than
    /// [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES), which every reader refuses: it is not written
    /// (the file keeps what it held), so no save makes an index that cannot be read again.
    IndexTooLarge {
        /// The index file.
        path: PathBuf,
        /// The limit it would exceed, in bytes.
        limit: u64,
    },
    /// The tokens are recorded as kept in another backend than the one this store may read (e.g. in
    /// the keyring while [`StorageMode::File`](crate::StorageMode::File) never touches the keyring).
    /// Nothing is read from the other backend's possibly stale copy.
    RecordedElsewhere {
        /// The provider name.
        provider: String,
        /// Where the record says the tokens are.
        backend: crate::Backend,
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

/// Why a file or directory under the home directory is refused ([`Error::Untrusted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrustProblem {
    /// Writable by group or others.
    Writable {
        /// Its permission bits, e.g. `0o775`.
        mode: u32,
    },
    /// Owned by another user than the effective user.
    Owner {
        /// The owner's uid.
        owner: u32,
        /// The effective uid of this process.
        expected: u32,
    },
    /// A symbolic link where a regular file belongs (files are opened with `O_NOFOLLOW`).
    Symlink,
    /// Not a regular file (a directory, FIFO, socket or device).
    NotFile,
    /// Not a directory.
    NotDirectory,
}

impl TrustProblem {
    fn describe(self) -> String {
        match self {
            Self::Writable { mode } => {
                format!("it is writable by group or others (mode {mode:o})")
            }
            Self::Owner { owner, expected } => {
                format!("it is owned by uid {owner}, not by you (uid {expected})")
            }
            Self::Symlink => "it is a symbolic link".to_owned(),
            Self::NotFile => "it is not a regular file".to_owned(),
            Self::NotDirectory => "it is not a directory".to_owned(),
        }
    }
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
        // Keep messages short and printable even for hostile input, and never repeat a password
        // typed into a URL.
        let name = context_harness_protocol::without_user_info(name);
        let mut shown: String = name.chars().take(80).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        Self::InvalidName {
            name: shown.escape_debug().to_string(),
            reason,
        }
    }

    pub(crate) fn invalid_account(name: &str, reason: &'static str) -> Self {
        let mut shown: String = name.chars().take(80).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        Self::InvalidAccount {
            name: shown.escape_debug().to_string(),
            reason,
        }
    }

    pub(crate) fn untrusted(path: &Path, problem: TrustProblem) -> Self {
        Self::Untrusted {
            path: path.to_path_buf(),
            problem,
        }
    }

    /// For [`Error::Untrusted`], the shell command that fixes it, e.g. `chmod go-w /home/a/.context-harness`
    /// or `chown alice /home/a/.context-harness/tokens` (`rm PATH` for a symbolic link or special file).
    pub fn fix(&self) -> Option<String> {
        match self {
            Self::Untrusted { path, problem } => Some(fix_for(path, *problem)),
            _ => None,
        }
    }

    /// Whether this error is an [`Error::Untrusted`] file or directory.
    pub fn is_untrusted(&self) -> bool {
        matches!(self, Self::Untrusted { .. })
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

    /// Whether this error is an [`Error::TooLarge`] file.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }

    /// Whether this error is a [`Error::LockTimeout`].
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, Self::LockTimeout { .. })
    }

    /// Whether this error is an [`Error::InvalidName`].
    pub fn is_invalid_name(&self) -> bool {
        matches!(self, Self::InvalidName { .. })
    }

    /// Whether this error is an [`Error::InvalidAccount`].
    pub fn is_invalid_account(&self) -> bool {
        matches!(self, Self::InvalidAccount { .. })
    }

    /// Whether this error is an [`Error::Corrupt`] file or keyring value, or an
    /// [`Error::CorruptIndex`].
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. }
                | Self::CorruptIndex { .. }
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
            Self::InvalidAccount { name, reason } => {
                write!(f, "invalid account name \"{name}\": {reason}")
            }
            Self::Corrupt { path, .. } => write!(
                f,
                "token file {} is corrupt (left untouched; fix or delete it, then sign in again)",
                path.display()
            ),
            Self::CorruptIndex { path, reason, .. } => write!(
                f,
                "account index {} is corrupt: {reason} (left untouched)",
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
            Self::Untrusted { path, problem } => write!(
                f,
                "refusing to use {}: {}, so another local user could have changed it; fix: {}",
                path.display(),
                problem.describe(),
                fix_for(path, *problem)
            ),
            Self::TooLarge { path, limit } => write!(
                f,
                "refusing to read {}: it is larger than {} KiB, more than any file this program keeps there \
                 (move it away, or shrink it if you wrote it)",
                path.display(),
                limit / 1024
            ),
            Self::IndexTooLarge { path, limit } => write!(
                f,
                "refusing to write account index {}: it would be larger than {} KiB, more than a reader accepts \
                 (left as it was; log out of accounts no longer used)",
                path.display(),
                limit / 1024
            ),
            Self::RecordedElsewhere { provider, backend } => write!(
                f,
                "the tokens of {provider} are recorded as kept in the {}, which this storage mode does not read \
                 (use the `auto` storage mode, or sign in again)",
                match backend {
                    crate::Backend::Keyring => "system keyring",
                    crate::Backend::File => "token file",
                }
            ),
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
            Self::CorruptIndex {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            Self::Io { source, .. } => Some(source),
            Self::Keyring {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The command that fixes `problem` on `path`, for messages and hints.
fn fix_for(path: &Path, problem: TrustProblem) -> String {
    let quoted = shell_quote(path);
    match problem {
        TrustProblem::Writable { .. } => format!("chmod go-w {quoted}"),
        TrustProblem::Owner { expected, .. } => {
            format!("chown {} {quoted}", user_name(expected))
        }
        TrustProblem::Symlink | TrustProblem::NotFile | TrustProblem::NotDirectory => {
            format!("rm {quoted}")
        }
    }
}
