//! The in-memory store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use context_harness_tokens::OAuthTokens;

use crate::error::{Error, Result};
use crate::{ProviderName, TokenStore};

/// Keeps tokens in process memory only: for tests and for embedding in programs that persist tokens
/// themselves. Nothing survives the process.
///
/// Tokens are kept as their JSON text, so a save/load round trip exercises the same serialisation as
/// the persistent stores.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<ProviderName, String>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<ProviderName, String>> {
        // A panic while holding the lock cannot leave a half-written String in the map.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Deliberately not deriving Debug: that would print the token JSON.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("providers", &self.entries().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()> {
        let json = tokens.to_json().map_err(|e| Error::Encode {
            source: Box::new(e),
        })?;
        self.entries().insert(provider.clone(), json);
        Ok(())
    }

    fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        let Some(json) = self.entries().get(provider).cloned() else {
            return Ok(None);
        };
        OAuthTokens::from_json(&json)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: "<memory>".into(),
                source: Box::new(e),
            })
    }

    fn delete(&self, provider: &ProviderName) -> Result<bool> {
        Ok(self.entries().remove(provider).is_some())
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn location(&self, _provider: &ProviderName) -> String {
        "process memory".to_owned()
    }
}
