//! Small secrets other than tokens (a dynamically registered client's `client_secret` and
//! `registration_access_token`), kept in the same backend as the tokens.

use crate::ProviderName;
use crate::StorageMode;
use crate::auto::Backend;
use crate::error::Result;
#[cfg(feature = "keyring")]
use crate::keyring::KeyringStore;

/// Where a token store keeps secrets that are not tokens, obtained from
/// [`TokenStore::secrets`](crate::TokenStore::secrets).
///
/// Each secret is one keyring entry with the token store's service (default
/// [`KEYRING_SERVICE`](crate::KEYRING_SERVICE)) and user
/// `<kind>:<name>` (e.g. `registration:auth.example.com`); the colon keeps it apart from every
/// provider name. A store that keeps tokens only in files has no `SecretSlots` (the secret then stays
/// in its 0600 file, as the tokens do).
///
/// * [`StorageMode::Auto`]: the keyring when it accepts the write, else [`Backend::File`] is returned
///   (with a warning) and the caller keeps the secret in its private file.
/// * [`StorageMode::Keyring`]: the keyring or an error, never a file.
///
/// Reads go to the keyring only; a failed or timed-out read is an error that says so.
#[derive(Clone, Debug)]
pub struct SecretSlots {
    mode: StorageMode,
    #[cfg(feature = "keyring")]
    keyring: KeyringStore,
}

impl SecretSlots {
    /// Secret slots in `keyring`, for a store in `mode` (`Auto` or `Keyring`).
    #[cfg(feature = "keyring")]
    pub(crate) fn new(mode: StorageMode, keyring: KeyringStore) -> Self {
        Self { mode, keyring }
    }

    /// The keyring user name of the slot for `kind` and `name`: `<kind>:<name>`.
    pub fn user(kind: &str, name: &ProviderName) -> String {
        format!("{kind}:{}", name.as_str())
    }

    /// Stores `value` in the keyring slot for `kind` (a short word such as `registration`) and
    /// `name`; returns [`Backend::Keyring`], or in [`StorageMode::Auto`] [`Backend::File`] when the
    /// keyring cannot be written (unavailable, locked, timed out) and the caller should keep the
    /// secret in its private file instead.
    ///
    /// # Errors
    ///
    /// [`Error::Keyring`](crate::Error::Keyring) in [`StorageMode::Keyring`] when the keyring
    /// cannot be written, or for a failure that is not about availability.
    pub fn save(&self, kind: &str, name: &ProviderName, value: &str) -> Result<Backend> {
        #[cfg(feature = "keyring")]
        {
            let user = Self::user(kind, name);
            match self.keyring.set_raw(&user, value) {
                Ok(()) => Ok(Backend::Keyring),
                Err(err) if self.mode == StorageMode::Auto && err.is_keyring_unavailable() => {
                    tracing::warn!(
                        slot = user.as_str(),
                        "{err}; the secret stays in its private file (mode 0600)"
                    );
                    Ok(Backend::File)
                }
                Err(err) => Err(err),
            }
        }
        #[cfg(not(feature = "keyring"))]
        {
            let _ = (kind, name, value, self.mode);
            Ok(Backend::File)
        }
    }

    /// The secret in the slot for `kind` and `name`, `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Keyring`](crate::Error::Keyring) when the keyring fails or does not answer in time
    /// (never a fallback to anything else).
    pub fn load(&self, kind: &str, name: &ProviderName) -> Result<Option<String>> {
        #[cfg(feature = "keyring")]
        {
            self.keyring.get_raw(&Self::user(kind, name))
        }
        #[cfg(not(feature = "keyring"))]
        {
            let _ = (kind, name);
            Err(crate::Error::KeyringUnsupported)
        }
    }

    /// Removes the slot for `kind` and `name`; whether something was there.
    ///
    /// # Errors
    ///
    /// [`Error::Keyring`](crate::Error::Keyring) when the keyring fails or does not answer in time.
    pub fn delete(&self, kind: &str, name: &ProviderName) -> Result<bool> {
        #[cfg(feature = "keyring")]
        {
            self.keyring.delete_raw(&Self::user(kind, name))
        }
        #[cfg(not(feature = "keyring"))]
        {
            let _ = (kind, name);
            Err(crate::Error::KeyringUnsupported)
        }
    }
}
