//! The auto store: keyring when it works, else the file store, remembering which holds what.

use std::path::{Path, PathBuf};
#[cfg(feature = "keyring")]
use std::sync::atomic::{AtomicBool, Ordering};

use context_harness_tokens::OAuthTokens;

use crate::error::Result;
use crate::file::FileStore;
use crate::fs::{read_private, remove_if_exists, write_private_atomic};
#[cfg(feature = "keyring")]
use crate::keyring::KeyringStore;
use crate::{ProviderName, StorageMode, TokenStore};

/// Which backend holds a provider's tokens, as recorded by [`AutoStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The system keyring.
    Keyring,
    /// The 0600 token file.
    File,
}

/// What the marker file `<provider>.backend` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Keyring,
    File,
    /// In the file, and an older copy may remain in the keyring (the keyring failed after having
    /// worked). `delete` then also clears the keyring.
    FileStaleKeyring,
}

impl Marker {
    fn parse(bytes: &[u8]) -> Option<Self> {
        match std::str::from_utf8(bytes).ok()?.trim() {
            "keyring" => Some(Self::Keyring),
            "file" => Some(Self::File),
            "file stale-keyring" => Some(Self::FileStaleKeyring),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Keyring => "keyring\n",
            Self::File => "file\n",
            Self::FileStaleKeyring => "file stale-keyring\n",
        }
    }

    fn backend(self) -> Backend {
        match self {
            Self::Keyring => Backend::Keyring,
            Self::File | Self::FileStaleKeyring => Backend::File,
        }
    }
}

/// The store the CLI uses by default: the system keyring when a write to it succeeds within its time
/// bound, otherwise the file store — and it remembers, per provider, which one holds the tokens.
///
/// * **Save**: providers recorded as "file" go straight to the file (no D-Bus, no threads). Otherwise
///   the keyring is tried (the write itself is the probe, bounded to ≈ 3 s); on success the choice is
///   recorded and any older plaintext file for that provider (e.g. one written by the Python original) is
///   removed. If the keyring is unavailable, locked or times out, the tokens are written to the file, a
///   one-line warning says where they went, the choice is recorded, and the keyring is not tried again
///   in this process.
/// * **Load**: reads the recorded backend and nothing else. With no record, only the file is read
///   (the keyring first in [`StorageMode::Keyring`]), so files written by the Python original are found and a
///   provider that was never saved costs no keyring round trip. A provider recorded as "keyring" is
///   read from the keyring only: a failed or timed-out keyring read is an error that says so, never a
///   fallback to a (stale) file copy, and an entry gone from the keyring means "not signed in".
///   [`StorageMode::File`] never touches the keyring, so it reports a provider recorded as "keyring"
///   as [`Error::RecordedElsewhere`](crate::Error::RecordedElsewhere).
/// * **Delete**: removes the file, the keyring entry (when one may exist) and the record.
///
/// The record is a small file `<provider>.backend` (0600, written atomically) next to the token files;
/// it holds only the word `keyring` or `file`. A provider recorded as "file" stays in the file even if
/// the keyring comes back later; deleting (signing out) clears the record.
///
/// [`open_store`](crate::open_store) also uses this type for the forced modes so that the record stays
/// truthful whichever mode wrote last: [`StorageMode::File`] never touches the keyring, and
/// [`StorageMode::Keyring`] reports keyring failures instead of falling back.
#[derive(Debug)]
pub struct AutoStore {
    file: FileStore,
    mode: StorageMode,
    /// The keyring service name (shown by `location`; the keyring store holds its own copy).
    service: String,
    #[cfg(feature = "keyring")]
    keyring: Option<KeyringStore>,
    /// Set once the keyring proved unusable in this process.
    #[cfg(feature = "keyring")]
    keyring_down: AtomicBool,
}

impl AutoStore {
    /// An auto store over `dir` (usually `$CONTEXT_HARNESS_HOME/tokens`) and, with the `keyring`
    /// feature, this platform's keyring. Without the feature it is the file store plus the record.
    pub fn new(dir: PathBuf) -> Self {
        Self::build(dir, StorageMode::Auto, crate::KEYRING_SERVICE)
    }

    /// An auto store over `dir` and the given keyring store (e.g. one made with
    /// [`KeyringStore::with_credential_store`] or a shorter timeout).
    #[cfg(feature = "keyring")]
    pub fn with_keyring(dir: PathBuf, keyring: KeyringStore) -> Self {
        let mut store = Self::build(dir, StorageMode::Auto, crate::KEYRING_SERVICE);
        keyring.service().clone_into(&mut store.service);
        store.keyring = Some(keyring);
        store
    }

    pub(crate) fn build(dir: PathBuf, mode: StorageMode, service: &str) -> Self {
        Self {
            file: FileStore::new(dir),
            mode,
            service: service.to_owned(),
            #[cfg(feature = "keyring")]
            keyring: (mode != StorageMode::File).then(|| KeyringStore::new().with_service(service)),
            #[cfg(feature = "keyring")]
            keyring_down: AtomicBool::new(false),
        }
    }

    /// The directory holding token files and records.
    pub fn dir(&self) -> &Path {
        self.file.dir()
    }

    /// Which backend holds `provider`'s tokens according to the record (`None`: nothing recorded,
    /// e.g. never saved by this crate, or a file written by the Python original).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) when the record exists but cannot be read.
    pub fn backend_for(&self, provider: &ProviderName) -> Result<Option<Backend>> {
        Ok(self.marker(provider)?.map(Marker::backend))
    }

    fn marker_path(&self, provider: &ProviderName) -> PathBuf {
        self.file
            .dir()
            .join(format!("{}.backend", provider.as_str()))
    }

    fn marker(&self, provider: &ProviderName) -> Result<Option<Marker>> {
        Ok(read_private(&self.marker_path(provider))?.and_then(|b| Marker::parse(&b)))
    }

    fn set_marker(&self, provider: &ProviderName, old: Option<Marker>, new: Marker) -> Result<()> {
        if old == Some(new) {
            return Ok(());
        }
        write_private_atomic(&self.marker_path(provider), new.as_str().as_bytes())
    }

    /// Saves to the file and records that, noting a possibly stale keyring copy: one recorded before,
    /// or one that an abandoned (timed-out) keyring write may still leave behind.
    fn save_file(
        &self,
        provider: &ProviderName,
        tokens: &OAuthTokens,
        old: Option<Marker>,
        keyring_may_hold: bool,
    ) -> Result<()> {
        self.file.save(provider, tokens)?;
        let new = match old {
            _ if keyring_may_hold => Marker::FileStaleKeyring,
            Some(Marker::Keyring | Marker::FileStaleKeyring) => Marker::FileStaleKeyring,
            _ => Marker::File,
        };
        self.set_marker(provider, old, new)
    }

    /// The keyring, when this store uses one and it has not failed in this process.
    #[cfg(feature = "keyring")]
    fn live_keyring(&self) -> Option<&KeyringStore> {
        if self.keyring_down.load(Ordering::Relaxed) {
            return None;
        }
        self.keyring.as_ref()
    }

    /// Saves to the keyring; on failure falls back to the file (auto mode) or reports it (keyring mode).
    /// Without the `keyring` feature: [`crate::Error::KeyringUnsupported`] in keyring mode, the file
    /// otherwise.
    fn save_keyring_first(
        &self,
        provider: &ProviderName,
        tokens: &OAuthTokens,
        old: Option<Marker>,
    ) -> Result<()> {
        #[cfg(not(feature = "keyring"))]
        {
            if self.mode == StorageMode::Keyring {
                return Err(crate::Error::KeyringUnsupported);
            }
            self.save_file(provider, tokens, old, false)
        }
        #[cfg(feature = "keyring")]
        {
            let attempt = match self.live_keyring() {
                Some(keyring) => keyring.save(provider, tokens),
                None => Err(crate::Error::keyring(
                    crate::KeyringErrorKind::Unavailable,
                    Some("the keyring failed earlier in this process".into()),
                )),
            };
            match attempt {
                Ok(()) => {
                    self.set_marker(provider, old, Marker::Keyring)?;
                    // The keyring holds the tokens now; do not leave an older plaintext copy behind.
                    if let Err(err) = self.file.delete(provider) {
                        tracing::warn!(
                            provider = provider.as_str(),
                            error = %err,
                            "could not remove the old token file after saving to the keyring"
                        );
                    }
                    Ok(())
                }
                Err(err @ crate::Error::Encode { .. }) => Err(err),
                Err(err) if self.mode == StorageMode::Keyring => {
                    self.keyring_failed(&err);
                    Err(err)
                }
                Err(err) => {
                    self.keyring_failed(&err);
                    // A write that timed out was abandoned, not undone: it may still land in the keyring
                    // (say, once the user unlocks it), so signing out must clear the keyring as well.
                    let abandoned = matches!(
                        err,
                        crate::Error::Keyring {
                            kind: crate::KeyringErrorKind::TimedOut,
                            ..
                        }
                    );
                    self.save_file(provider, tokens, old, abandoned)?;
                    tracing::warn!(
                        provider = provider.as_str(),
                        "{err}; tokens saved to {} instead (mode 0600)",
                        self.file.location(provider)
                    );
                    Ok(())
                }
            }
        }
    }

    /// Reads the keyring, and only the keyring: a failure (unavailable, locked, timed out) is an error
    /// that says so, never a fallback to a file copy.
    #[cfg(feature = "keyring")]
    fn load_keyring(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        // Asked even after an earlier failure in this process, so that the error says what is wrong
        // now (a wedged keyring answers `TimedOut` at once by itself).
        let attempt = match self.keyring.as_ref() {
            Some(keyring) => keyring.load(provider),
            None => Err(crate::Error::KeyringUnsupported),
        };
        if let Err(err) = &attempt {
            self.keyring_failed(err);
        }
        attempt
    }

    #[cfg(not(feature = "keyring"))]
    fn load_keyring(&self, _provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        Err(crate::Error::KeyringUnsupported)
    }

    #[cfg(feature = "keyring")]
    fn keyring_failed(&self, err: &crate::Error) {
        if err.is_keyring_unavailable() {
            self.keyring_down.store(true, Ordering::Relaxed);
        }
    }
}

impl TokenStore for AutoStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()> {
        let old = self.marker(provider)?;
        let file_only = match self.mode {
            StorageMode::File => true,
            StorageMode::Auto => matches!(old, Some(Marker::File | Marker::FileStaleKeyring)),
            StorageMode::Keyring => false,
        };
        if file_only {
            return self.save_file(provider, tokens, old, false);
        }
        self.save_keyring_first(provider, tokens, old)
    }

    fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        // Read only the recorded backend: a copy in the other one is stale by construction, and
        // reading it could replay an old refresh token.
        let marker = self.marker(provider)?;
        match (marker, self.mode) {
            (Some(Marker::File | Marker::FileStaleKeyring), _) => self.file.load(provider),
            (Some(Marker::Keyring), StorageMode::File) => Err(crate::Error::RecordedElsewhere {
                provider: provider.as_str().to_owned(),
                backend: Backend::Keyring,
            }),
            (Some(Marker::Keyring), _) => self.load_keyring(provider),
            // Nothing recorded: a file of the Python original (or an older version), or nothing at all.
            (None, StorageMode::Keyring) => match self.load_keyring(provider)? {
                Some(tokens) => Ok(Some(tokens)),
                None => self.file.load(provider),
            },
            (None, _) => self.file.load(provider),
        }
    }

    fn delete(&self, provider: &ProviderName) -> Result<bool> {
        let marker = self.marker(provider)?;
        #[cfg_attr(not(feature = "keyring"), allow(unused_mut))]
        let mut removed = self.file.delete(provider)?;
        let keyring_may_hold = self.mode != StorageMode::File
            && (self.mode == StorageMode::Keyring
                || matches!(marker, Some(Marker::Keyring | Marker::FileStaleKeyring)));
        if keyring_may_hold {
            #[cfg(feature = "keyring")]
            {
                let attempt = match self.keyring.as_ref() {
                    Some(keyring) => keyring.delete(provider),
                    None => Err(crate::Error::KeyringUnsupported),
                };
                match attempt {
                    Ok(gone) => removed |= gone,
                    // The live copy is in the keyring: signing out must not pretend it worked.
                    Err(err) if marker == Some(Marker::Keyring) => return Err(err),
                    Err(err) => tracing::debug!(
                        provider = provider.as_str(),
                        error = %err,
                        "could not clear a possible old keyring copy"
                    ),
                }
            }
            #[cfg(not(feature = "keyring"))]
            if marker == Some(Marker::Keyring) {
                return Err(crate::Error::KeyringUnsupported);
            }
        }
        remove_if_exists(&self.marker_path(provider))?;
        Ok(removed)
    }

    fn name(&self) -> &'static str {
        self.mode.as_str()
    }

    fn secrets(&self) -> Option<crate::SecretSlots> {
        #[cfg(feature = "keyring")]
        if self.mode != StorageMode::File {
            return self
                .keyring
                .clone()
                .map(|keyring| crate::SecretSlots::new(self.mode, keyring));
        }
        None
    }

    fn location(&self, provider: &ProviderName) -> String {
        let in_keyring = match self.mode {
            StorageMode::File => false,
            StorageMode::Keyring => true,
            StorageMode::Auto => matches!(self.marker(provider), Ok(Some(Marker::Keyring))),
        };
        if in_keyring {
            format!(
                "system keyring (service \"{}\", user \"{}\")",
                self.service,
                provider.as_str()
            )
        } else {
            self.file.location(provider)
        }
    }
}
