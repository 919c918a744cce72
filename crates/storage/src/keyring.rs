//! The system keyring store (feature `keyring`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use context_harness_tokens::OAuthTokens;
use keyring_core::{CredentialStore, Entry};

use crate::error::{BoxError, Error, KeyringErrorKind, Result};
use crate::{KEYRING_SERVICE, ProviderName, TokenStore};

/// The default bound on each keyring call (the same 3 s that gh uses).
pub const DEFAULT_KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// The keyring user name of the entry written and deleted by [`KeyringStore::probe`]. It starts with a
/// dot, so it can never be a provider name.
const PROBE_USER: &str = ".probe";

/// Stores each provider's token JSON in the system keyring: service [`KEYRING_SERVICE`](crate::KEYRING_SERVICE)
/// (or the one given to [`KeyringStore::with_service`]), user = the provider name.
///
/// The platform store is the Secret Service (over D-Bus, via `dbus-secret-service-keyring-store`) on
/// Linux and FreeBSD, the Keychain on macOS and the Credential Manager on Windows; elsewhere every call
/// fails with [`KeyringErrorKind::Unavailable`].
///
/// **Every call is bounded.** Each operation runs on a short-lived worker thread and the caller waits
/// at most the timeout ([`DEFAULT_KEYRING_TIMEOUT`] unless changed with [`KeyringStore::with_timeout`]).
/// A locked keyring whose unlock prompt can never finish, or a wedged daemon, therefore returns
/// [`KeyringErrorKind::TimedOut`] instead of hanging; after a timeout this store (and its clones) answer
/// `TimedOut` at once for the rest of the process rather than piling up stuck threads. On Linux a cheap
/// pre-check runs first: with neither `DBUS_SESSION_BUS_ADDRESS` nor `$XDG_RUNTIME_DIR/bus` there is no
/// session bus, and calls fail with `Unavailable` in microseconds without spawning anything.
///
/// Creating a `KeyringStore` does no I/O; the platform store is connected on first use.
#[derive(Clone)]
pub struct KeyringStore {
    shared: Arc<Shared>,
    timeout: Duration,
    /// The keyring service name of every entry (an application's name, not a secret).
    service: Arc<str>,
}

struct Shared {
    source: Source,
    /// The connected platform store, once a worker created it.
    connected: Mutex<Option<Arc<CredentialStore>>>,
    /// Set after a call timed out: the keyring is treated as wedged from then on.
    wedged: AtomicBool,
}

enum Source {
    Platform,
    Given(Arc<CredentialStore>),
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field(
                "source",
                &match self.shared.source {
                    Source::Platform => "platform",
                    Source::Given(_) => "given",
                },
            )
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .field("wedged", &self.shared.wedged.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyringStore {
    /// A store backed by this platform's keyring (connected lazily, on first use).
    pub fn new() -> Self {
        Self::from_source(Source::Platform)
    }

    /// A store backed by a `keyring-core` credential store of the caller's choice, e.g.
    /// `keyring_core::mock::Store` in tests or another platform store. No pre-check applies.
    pub fn with_credential_store(store: Arc<CredentialStore>) -> Self {
        Self::from_source(Source::Given(store))
    }

    fn from_source(source: Source) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                connected: Mutex::new(None),
                wedged: AtomicBool::new(false),
            }),
            timeout: DEFAULT_KEYRING_TIMEOUT,
            service: Arc::from(KEYRING_SERVICE),
        }
    }

    /// Uses `service` as the keyring service name of every entry instead of
    /// [`KEYRING_SERVICE`](crate::KEYRING_SERVICE) (an embedding program's own name, so that its
    /// entries are its own).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Arc::from(service.into());
        self
    }

    /// The keyring service name of every entry.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Changes the bound on each call (default [`DEFAULT_KEYRING_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a call may reach a keyring at all: `false` after a timeout, or (for the platform store on
    /// Linux/FreeBSD) when there is no session bus. Costs no I/O beyond one `stat`.
    pub fn may_be_available(&self) -> bool {
        !self.shared.wedged.load(Ordering::Relaxed)
            && match self.shared.source {
                Source::Platform => platform::session_bus_possible(),
                Source::Given(_) => true,
            }
    }

    /// Checks that the keyring accepts writes: writes, reads back and deletes a throw-away entry
    /// (user `.probe`), each step bounded.
    ///
    /// A readable keyring is not enough: gnome-keyring without a default collection answers reads with
    /// "no entry" and refuses every write.
    ///
    /// # Errors
    ///
    /// [`Error::Keyring`] saying why the keyring cannot be used.
    pub fn probe(&self) -> Result<()> {
        let value = format!("{} keyring probe", self.service);
        let expect = value.clone();
        let round_trip = self
            .call(PROBE_USER, move |entry| {
                entry.set_password(&value)?;
                let back = entry.get_password();
                // Clean up even when the read failed; a failed delete does not change the verdict.
                let _ = entry.delete_credential();
                Ok(back? == expect)
            })?
            .map_err(convert)?;
        if round_trip {
            Ok(())
        } else {
            Err(Error::keyring(
                KeyringErrorKind::Other,
                Some("keyring returned a different value than was written".into()),
            ))
        }
    }

    /// Runs `op` on the entry for `user`, on a worker thread, waiting at most the timeout. Keyring
    /// errors come back raw (so callers can treat `NoEntry` as they need).
    fn call<T, F>(&self, user: &str, op: F) -> Result<keyring_core::Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Entry) -> keyring_core::Result<T> + Send + 'static,
    {
        if self.shared.wedged.load(Ordering::Relaxed) {
            return Err(Error::keyring(
                KeyringErrorKind::TimedOut,
                Some("the keyring timed out earlier in this process".into()),
            ));
        }
        if matches!(self.shared.source, Source::Platform) && !platform::session_bus_possible() {
            return Err(Error::keyring(
                KeyringErrorKind::Unavailable,
                Some(
                    "no session bus (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus)"
                        .into(),
                ),
            ));
        }
        let shared = Arc::clone(&self.shared);
        let service = Arc::clone(&self.service);
        let user = user.to_owned();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("context-harness-keyring".to_owned())
            .spawn(move || {
                let result = shared
                    .store()
                    .and_then(|store| Entry::new_in_store(&store, &service, &user))
                    .and_then(|entry| op(&entry));
                // The receiver is gone when the caller timed out; nothing to do then.
                let _ = tx.send(result);
            })
            .map_err(|e| Error::keyring(KeyringErrorKind::Other, Some(Box::new(e))))?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => Ok(result),
            Err(RecvTimeoutError::Timeout) => {
                self.shared.wedged.store(true, Ordering::Relaxed);
                Err(Error::keyring(
                    KeyringErrorKind::TimedOut,
                    Some(format!("no answer within {} ms", self.timeout.as_millis()).into()),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(Error::keyring(
                KeyringErrorKind::Other,
                Some("the keyring worker thread failed".into()),
            )),
        }
    }
}

impl KeyringStore {
    /// Writes `value` as the secret of the entry for `user` (bounded like every call).
    pub(crate) fn set_raw(&self, user: &str, value: &str) -> Result<()> {
        let value = value.to_owned();
        self.call(user, move |entry| entry.set_password(&value))?
            .map_err(convert)
    }

    /// The secret of the entry for `user`, `Ok(None)` when there is none.
    pub(crate) fn get_raw(&self, user: &str) -> Result<Option<String>> {
        match self.call(user, |entry| entry.get_password())? {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(err) => Err(convert(err)),
        }
    }

    /// Deletes the entry for `user`; whether one existed.
    pub(crate) fn delete_raw(&self, user: &str) -> Result<bool> {
        match self.call(user, |entry| entry.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(err) => Err(convert(err)),
        }
    }
}

impl Shared {
    fn store(&self) -> keyring_core::Result<Arc<CredentialStore>> {
        match &self.source {
            Source::Given(store) => Ok(Arc::clone(store)),
            Source::Platform => {
                let mut connected = self
                    .connected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(store) = connected.as_ref() {
                    return Ok(Arc::clone(store));
                }
                let store = platform::connect()?;
                *connected = Some(Arc::clone(&store));
                Ok(store)
            }
        }
    }
}

/// Converts a keyring error (other than `NoEntry`, which callers handle) into ours, never keeping one
/// that carries secret bytes.
fn convert(err: keyring_core::Error) -> Error {
    use keyring_core::Error as K;
    let (kind, source): (KeyringErrorKind, Option<BoxError>) = match err {
        K::PlatformFailure(_) | K::NoDefaultStore => {
            (KeyringErrorKind::Unavailable, Some(Box::new(err)))
        }
        K::NoStorageAccess(_) => (KeyringErrorKind::AccessDenied, Some(Box::new(err))),
        // Both carry the stored bytes (our token JSON): drop them.
        K::BadEncoding(_) | K::BadDataFormat(..) => (
            KeyringErrorKind::BadData,
            Some("the keyring value is not valid utf-8 or not in the expected format".into()),
        ),
        // Its Display/Debug lists the matching credentials; keep only the count.
        K::Ambiguous(entries) => (
            KeyringErrorKind::Other,
            Some(format!("{} keyring entries match this provider", entries.len()).into()),
        ),
        other => (KeyringErrorKind::Other, Some(other.to_string().into())),
    };
    Error::keyring(kind, source)
}

impl TokenStore for KeyringStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()> {
        let json = tokens.to_json().map_err(|e| Error::Encode {
            source: Box::new(e),
        })?;
        self.call(provider.as_str(), move |entry| entry.set_password(&json))?
            .map_err(convert)
    }

    fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        let json = match self.call(provider.as_str(), |entry| entry.get_password())? {
            Ok(json) => json,
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(err) => return Err(convert(err)),
        };
        OAuthTokens::from_json(&json)
            .map(Some)
            .map_err(|e| Error::keyring(KeyringErrorKind::BadData, Some(Box::new(e))))
    }

    fn delete(&self, provider: &ProviderName) -> Result<bool> {
        match self.call(provider.as_str(), |entry| entry.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(err) => Err(convert(err)),
        }
    }

    fn name(&self) -> &'static str {
        "keyring"
    }

    fn secrets(&self) -> Option<crate::SecretSlots> {
        Some(crate::SecretSlots::new(
            crate::StorageMode::Keyring,
            self.clone(),
        ))
    }

    fn location(&self, provider: &ProviderName) -> String {
        format!(
            "system keyring (service \"{}\", user \"{}\")",
            self.service,
            provider.as_str()
        )
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod platform {
    use std::path::Path;
    use std::sync::Arc;

    use keyring_core::CredentialStore;

    /// Whether a session bus could exist: `DBUS_SESSION_BUS_ADDRESS` is set, or `$XDG_RUNTIME_DIR/bus`
    /// exists. Without either, connecting can only fail, so skip it.
    pub(super) fn session_bus_possible() -> bool {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
            return true;
        }
        std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .is_some_and(|d| Path::new(&d).join("bus").exists())
    }

    pub(super) fn connect() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
        Ok(store)
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use std::sync::Arc;

    use keyring_core::CredentialStore;

    pub(super) fn session_bus_possible() -> bool {
        true
    }

    pub(super) fn connect() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
        Ok(store)
    }
}

#[cfg(windows)]
mod platform {
    use std::sync::Arc;

    use keyring_core::CredentialStore;

    pub(super) fn session_bus_possible() -> bool {
        true
    }

    pub(super) fn connect() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
        Ok(store)
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "macos",
    windows
)))]
mod platform {
    use std::sync::Arc;

    use keyring_core::CredentialStore;

    /// No keyring store is wired up for this platform.
    pub(super) fn session_bus_possible() -> bool {
        false
    }

    pub(super) fn connect() -> keyring_core::Result<Arc<CredentialStore>> {
        Err(keyring_core::Error::NoDefaultStore)
    }
}
