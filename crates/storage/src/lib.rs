//! Token storage: keyring, file and memory backends behind one small trait.
//!
//! Every backend implements [`TokenStore`] — save, load (`Ok(None)` when nothing is stored), delete
//! (whether something was there) — for a validated [`ProviderName`]. [`open_store`] picks the backend
//! the way the CLI does: [`StorageMode::Auto`] (keyring when it works, else a private file),
//! [`StorageMode::Keyring`] or [`StorageMode::File`].
//!
//! # Example
//!
//! ```
//! use context_harness_storage::{FileStore, ProviderName, TokenStore};
//! use context_harness_tokens::OAuthTokens;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let home = tempfile::tempdir()?;
//! // Usually `$CONTEXT_HARNESS_HOME/tokens`.
//! let store = FileStore::new(home.path().join("tokens"));
//! let github = ProviderName::new("github")?;
//! assert!(store.load(&github)?.is_none());
//!
//! let tokens = OAuthTokens::from_json(r#"{"access_token": "gho_example", "token_type": "bearer",
//!     "expires_in": 3600, "scope": "repo", "issued_at": 1700000000.5}"#)?;
//! store.save(&github, &tokens)?;
//! let loaded = store.load(&github)?.ok_or("tokens vanished")?;
//! assert_eq!(loaded.access_token.secret(), "gho_example");
//!
//! assert!(store.delete(&github)?);
//! assert!(!store.delete(&github)?);
//!
//! // Names reach paths only after validation.
//! assert!(ProviderName::new("../../etc/passwd").is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! * `keyring` (off by default): [`KeyringStore`], and the keyring half of [`AutoStore`], using
//!   `keyring-core` with the Secret Service store (`dbus-secret-service-keyring-store`, libdbus linked
//!   statically, pure-Rust crypto) on Linux and FreeBSD, the Keychain store on macOS and the Credential
//!   Manager store on Windows. Without it, [`StorageMode::Auto`] is the file store and
//!   [`StorageMode::Keyring`] is refused with [`Error::KeyringUnsupported`].
//!
//! # Security
//!
//! * **What is stored where.** A provider's tokens (access, refresh and ID token, expiry, scopes) are one
//!   JSON document in the format of the original Python tool. In the keyring it is the secret of the
//!   entry with service `context-harness` and user = provider name. In a file it is
//!   `$CONTEXT_HARNESS_HOME/tokens/<provider>.json` (default `~/.context-harness/tokens`). Next to it the
//!   auto store keeps `<provider>.backend` (the word `keyring` or `file`, nothing secret) and the locks
//!   keep an empty `<provider>.lock` (refresh) and `<provider>.signin-lock` (sign-in).
//! * **Accounts.** A provider can have several signed-in accounts ([`AccountName`]). The
//!   [`DEFAULT_ACCOUNT`] keeps everything above under the bare provider name (where version 0.2
//!   kept it: nothing to migrate); any other account's storage key is `<provider>@<account>`
//!   ([`ProviderName::with_account`]), used wherever the provider name is used above. The
//!   provider's accounts and its default one are listed in `<provider>.accounts` ([`AccountIndex`]).
//! * **Names.** Every path and keyring entry is built from a [`ProviderName`]: lowercase letters, digits,
//!   `-`, `_`, `.`, no leading dot, at most 64 bytes — so no name can escape the directory or name a
//!   hidden or temporary file. URLs are mapped with [`ProviderName::from_url`], whose hashed form uses
//!   64 bits of SHA-256 so that a hostile URL cannot be made to share another server's tokens.
//! * **Permissions (Unix).** The token directory is created 0700 and every file 0600 *when it is
//!   opened* (`O_CREAT|O_EXCL` with the mode), never chmod-ed after the secret is written. Like OpenSSH's
//!   `StrictModes`, a directory or file another local user could have written (group/other write bits,
//!   another owner), a symbolic link or a special file is refused with [`Error::Untrusted`], naming the
//!   path and the `chmod go-w PATH` / `chown USER PATH` that fixes it ([`check_home`], [`open_trusted`]);
//!   files are opened with `O_NOFOLLOW | O_NONBLOCK`, checked with `fstat` and read up to
//!   [`MAX_FILE_BYTES`] ([`Error::TooLarge`] past it). Group/other *read* bits are tightened
//!   to 0700/0600 with a warning. On Windows files inherit
//!   the ACL of the user's profile directory, which only the user (and administrators) can read.
//! * **Atomicity.** Writes go to a fresh temporary file in the same directory, are `fsync`ed, renamed
//!   over the old file, and the directory is `fsync`ed ([`write_private_atomic`]). A reader or a crash
//!   at any point sees the old tokens or the new ones, never a torn file. A file that does not parse is
//!   reported ([`Error::Corrupt`], naming the file) and is never deleted or overwritten by a read.
//! * **Locking.** [`ProviderLock`] is an OS advisory lock per provider with a bounded wait; hold it
//!   around read-modify-write sequences (refresh) so that concurrent processes neither lose an update
//!   nor refresh twice. The OS releases it if the holder dies. A second lock per provider
//!   ([`LockKind::SignIn`]) is held for a whole interactive sign-in, so that processes needing the
//!   same provider at once share one sign-in; it is taken before the refresh lock, never inside it.
//! * **Keyring and fallback.** Every keyring call runs on a worker thread bounded by ≈ 3 s, and a cheap
//!   check skips the keyring at once when there is no session bus, so a locked or wedged keyring never
//!   hangs the program. When the keyring cannot be written (no service, locked, timed out) the auto
//!   store falls back to the 0600 file and *says so* in a one-line warning naming the file; the choice
//!   is recorded per provider, and reads go to the recorded backend only: a failed or timed-out keyring
//!   read is an error that says so, never a fallback to a file copy.
//! * **No leaks.** Tokens are never logged, and error messages name files and providers but never
//!   contain token values; keyring errors that carry the stored bytes are dropped, not chained.

mod account;
mod account_index;
mod auto;
mod error;
mod file;
mod fs;
#[cfg(feature = "keyring")]
mod keyring;
mod layout;
mod lock;
mod memory;
mod name;
mod quote;
mod secret;
mod text;
mod trust;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use context_harness_tokens::OAuthTokens;

pub use account::{ACCOUNT_SEPARATOR, AccountName, DEFAULT_ACCOUNT, MAX_ACCOUNT_LEN};
pub use account_index::AccountIndex;
pub use auto::{AutoStore, Backend};
pub use error::{BoxError, Error, KeyringErrorKind, Result, TrustProblem};
pub use file::FileStore;
pub use fs::write_private_atomic;
#[cfg(feature = "keyring")]
pub use keyring::{DEFAULT_KEYRING_TIMEOUT, KeyringStore};
/// The `keyring-core` crate, for building a custom or mock credential store to pass to
/// [`KeyringStore::with_credential_store`].
#[cfg(feature = "keyring")]
pub use keyring_core;
pub use layout::{
    CACHE_DIR, DISCOVERY_CACHE_DIR, HomeLayout, MCP_DIR, PROVIDERS_FILE, REGISTRATIONS_DIR,
    TOKENS_DIR,
};
pub use lock::{LockKind, ProviderLock};
pub use memory::MemoryStore;
pub use name::{MAX_NAME_LEN, ProviderName, SERVER_NAME_PREFIX, canonical_url};
pub use quote::shell_quote;
pub use secret::SecretSlots;
pub use text::{TextError, decode_text};
pub use trust::{
    HOME_DIRS, HOME_FILES, MAX_FILE_BYTES, check_dir, check_home, open_trusted, read_provisioned,
    read_trusted,
};

/// The keyring service name under which every entry is stored (the user name is the provider name).
pub const KEYRING_SERVICE: &str = "context-harness";

/// Saves, loads and deletes one token set per provider.
///
/// Implementations are safe to share between threads. A single `save` replaces the stored tokens
/// atomically; callers doing load-modify-save across processes hold a [`ProviderLock`].
pub trait TokenStore: Send + Sync {
    /// Stores `tokens` for `provider`, replacing what was there.
    ///
    /// # Errors
    ///
    /// When the tokens cannot be encoded or the backend cannot be written.
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()>;

    /// The tokens stored for `provider`, or `Ok(None)` when there are none.
    ///
    /// # Errors
    ///
    /// When the backend cannot be read, or holds something that is not valid token JSON
    /// ([`Error::Corrupt`] for files; the data is left as it is).
    fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>>;

    /// Removes `provider`'s tokens; `Ok(true)` when something was removed, `Ok(false)` when nothing
    /// was stored.
    ///
    /// # Errors
    ///
    /// When the backend cannot be changed.
    fn delete(&self, provider: &ProviderName) -> Result<bool>;

    /// A short name for the backend: `"file"`, `"keyring"`, `"memory"` or `"auto"`.
    fn name(&self) -> &'static str;

    /// A human-readable description of where `provider`'s tokens are (or would be) stored, for
    /// messages such as "tokens saved to …". Never contains a secret.
    fn location(&self, provider: &ProviderName) -> String;

    /// Where this store keeps secrets that are not tokens (e.g. a dynamically registered client's
    /// secret) so that they share the tokens' backend: `Some` for a store that uses the keyring,
    /// `None` (the default) for one that keeps tokens in files or memory — the secret then stays in
    /// its own 0600 file.
    fn secrets(&self) -> Option<SecretSlots> {
        None
    }
}

/// `TokenStore` for a smart pointer to a store: every method forwards to the store it points to.
macro_rules! forward_token_store {
    ($($pointer:ident)::+) => {
        impl<T: TokenStore + ?Sized> TokenStore for $($pointer)::+<T> {
            fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()> {
                (**self).save(provider, tokens)
            }
            fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
                (**self).load(provider)
            }
            fn delete(&self, provider: &ProviderName) -> Result<bool> {
                (**self).delete(provider)
            }
            fn name(&self) -> &'static str {
                (**self).name()
            }
            fn location(&self, provider: &ProviderName) -> String {
                (**self).location(provider)
            }
            fn secrets(&self) -> Option<SecretSlots> {
                (**self).secrets()
            }
        }
    };
}

forward_token_store!(Box);
forward_token_store!(std::sync::Arc);

/// Which backend [`open_store`] uses; the CLI's `--storage` / `CONTEXT_HARNESS_STORAGE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StorageMode {
    /// The keyring when a write succeeds within its bound, else the 0600 file (see [`AutoStore`]).
    #[default]
    Auto,
    /// Only the keyring; failures are errors, never a silent fallback. Existing token files are still
    /// read (and migrated on the next save).
    Keyring,
    /// Only the 0600 file; never touches the keyring.
    File,
}

context_harness_tokens::display_as_str! {
    StorageMode {
        /// `"auto"`, `"keyring"` or `"file"`.
        pub fn as_str;
        Auto => "auto",
        Keyring => "keyring",
        File => "file",
    }
}

/// The error from parsing a [`StorageMode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseStorageModeError {
    input: String,
}

impl fmt::Display for ParseStorageModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown storage mode {:?} (expected auto, keyring or file)",
            self.input
        )
    }
}

impl std::error::Error for ParseStorageModeError {}

impl FromStr for StorageMode {
    type Err = ParseStorageModeError;

    /// Parses `auto`, `keyring` or `file` (ASCII case-insensitive, surrounding spaces ignored).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "keyring" => Ok(Self::Keyring),
            "file" => Ok(Self::File),
            _ => Err(ParseStorageModeError {
                input: s.chars().take(40).collect(),
            }),
        }
    }
}

/// The token directory under a `CONTEXT_HARNESS_HOME` directory: `home/tokens`
/// ([`HomeLayout::tokens_dir`]).
pub fn tokens_dir(home: &Path) -> PathBuf {
    HomeLayout::new(home).tokens_dir()
}

/// Opens the store for `mode` with its token files in `home/tokens` (`home` is the
/// `CONTEXT_HARNESS_HOME` directory, by default `~/.context-harness`). Does no I/O.
///
/// All three modes keep the per-provider backend record of [`AutoStore`] up to date, so switching modes
/// never makes a later read pick up stale tokens. [`StorageMode::File`] never touches the keyring.
///
/// # Errors
///
/// [`Error::KeyringUnsupported`] for [`StorageMode::Keyring`] when built without the `keyring` feature.
pub fn open_store(mode: StorageMode, home: &Path) -> Result<Box<dyn TokenStore>> {
    open_store_for(mode, home, KEYRING_SERVICE)
}

/// [`open_store`] for a program of its own: keyring entries get `keyring_service` as their service
/// name instead of [`KEYRING_SERVICE`] (token files stay in `home/tokens`). Does no I/O.
///
/// # Errors
///
/// [`Error::KeyringUnsupported`] for [`StorageMode::Keyring`] when built without the `keyring` feature.
pub fn open_store_for(
    mode: StorageMode,
    home: &Path,
    keyring_service: &str,
) -> Result<Box<dyn TokenStore>> {
    if mode == StorageMode::Keyring && !cfg!(feature = "keyring") {
        return Err(Error::KeyringUnsupported);
    }
    Ok(Box::new(AutoStore::build(
        tokens_dir(home),
        mode,
        keyring_service,
    )))
}
