//! One owner per token name.
//!
//! An MCP server's tokens are stored under a name of the servers' namespace
//! ([`ProviderName::for_server`], `_…`), which no configured provider can have (the registry's
//! naming rule refuses a leading `_`, and [`ProviderRef::parse`] refuses such a name), so a
//! `providers.toml` entry can never read, replace, refresh or delete a server's tokens, and a
//! server can never be sent a provider's.
//!
//! Version 0.2 stored a server's tokens under [`ProviderName::from_url`], a name a provider could
//! share. Such tokens carry the binding written at sign-in (the server URL they were issued for);
//! the first time either name is used, [`Names::load`] moves them, with their recovery file and
//! the server's record, to the server's own name. Tokens without a binding are never moved to a
//! server: nothing says that server's sign-in wrote them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use context_harness_storage as storage;
use storage::{AccountName, ProviderName, TokenStore};

use super::mcp;
use super::store::{acquire_lock, load_newest, remove_recovery};
use crate::error::{Error, ErrorCode, Result, storage_error};
use crate::provider_ref::ProviderRef;
use crate::tokens::OAuthTokens;

/// What the move of tokens between names needs: the store, the home directory and the locks. Cheap
/// to clone, so the work can run off the async threads.
#[derive(Clone)]
pub(super) struct Names {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) home: PathBuf,
    pub(super) lock_dir: PathBuf,
    pub(super) lock_timeout: Duration,
}

impl Names {
    /// The tokens `target` owns (the recovery file's when there is one), after moving tokens that
    /// an older version stored under a shared name to their owner. A provider never gets tokens
    /// bound to an MCP server; a server gets only tokens bound to it (checked by the callers with
    /// `mcp::check_tokens_server`).
    ///
    /// Takes no lock when nothing is to be moved; must not be called while holding `target`'s
    /// lock (a move takes it).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`] when the store or a file fails.
    pub(super) fn load(&self, target: &ProviderRef) -> Result<Option<OAuthTokens>> {
        let tokens = self.load_name(target.storage_key())?;
        if self.settle(target, tokens.as_ref())? {
            return self.load_name(target.storage_key());
        }
        Ok(tokens)
    }

    /// Moves what needs moving for `target` before something is written or deleted under its name
    /// (sign-in, logout). Tokens that cannot be read are nobody's to move: they are left for the
    /// caller (logout removes them, a sign-in replaces them). A failed move is an error.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`] when moving fails.
    ///
    /// For an account other than the default one, the default account is settled: what an older
    /// version stored is the default account's, and an account index written next must see it.
    pub(super) fn settle_before_write(&self, target: &ProviderRef) -> Result<()> {
        let default;
        let target = if target.account().is_default() {
            target
        } else {
            default = target.clone().with_account(AccountName::default());
            &default
        };
        let Ok(current) = self.load_name(target.storage_key()) else {
            return Ok(());
        };
        self.settle(target, current.as_ref()).map(drop)
    }

    /// Moves what needs moving for `target`, whose storage key currently holds `current`;
    /// `Ok(true)` when something was moved (the caller reads again). Only the default account has
    /// anything to move: older versions knew no other.
    fn settle(&self, target: &ProviderRef, current: Option<&OAuthTokens>) -> Result<bool> {
        if !target.account().is_default() {
            return Ok(false);
        }
        match target.server_url() {
            Some(url) => {
                if current.is_some() {
                    return Ok(false);
                }
                let Some(legacy) = target.legacy_name() else {
                    return Ok(false);
                };
                let bound_here = self
                    .load_name(&legacy)?
                    .is_some_and(|old| mcp::bound_server(&old).as_deref() == Some(url));
                let record_here = read_record_url(&self.home, &legacy).as_deref() == Some(url);
                if !bound_here && !record_here {
                    return Ok(false);
                }
                self.move_legacy(&legacy, url)?;
                Ok(bound_here)
            }
            None => {
                let Some(server_url) = current.and_then(mcp::bound_server) else {
                    return Ok(false);
                };
                self.move_legacy(target.name(), &server_url)?;
                Ok(true)
            }
        }
    }

    /// Moves the tokens under `legacy` that are bound to `server_url` (and its record and
    /// recovery file) to the server's own name, under both names' locks. Never loses tokens: the
    /// new copy is written before the old one is deleted, and tokens already under the new name
    /// (a later sign-in) are kept.
    ///
    /// Only from the name an older version gave that server ([`ProviderName::from_url`] of
    /// `server_url`): tokens under any other name that say they are bound to `server_url` were not
    /// written by that server's sign-in (a provider's token endpoint, or a planted file, put the
    /// binding there), and are never moved to it.
    pub(super) fn move_legacy(&self, legacy: &ProviderName, server_url: &str) -> Result<()> {
        let new = ProviderName::for_server(server_url).map_err(storage_error)?;
        if &new == legacy {
            return Ok(());
        }
        if ProviderName::from_url(server_url).ok().as_ref() != Some(legacy) {
            tracing::warn!(
                name = legacy.as_str(),
                server = %crate::terminal_text(server_url),
                "tokens or a record under this name say they belong to an MCP server whose sign-in never used this name; not moving them"
            );
            return Ok(());
        }
        // Always the legacy lock first: no other path holds a server's lock while taking another.
        let _legacy_lock = acquire_lock(&self.lock_dir, legacy, self.lock_timeout)?;
        let _new_lock = acquire_lock(&self.lock_dir, &new, self.lock_timeout)?;
        // Read again under the locks: another process may have moved them meanwhile.
        let old = self.load_name(legacy)?;
        let bound = old
            .as_ref()
            .is_some_and(|t| mcp::bound_server(t).as_deref() == Some(server_url));
        if bound && let Some(tokens) = &old {
            if self.load_name(&new)?.is_none() {
                self.store.save(&new, tokens).map_err(storage_error)?;
            }
            remove_recovery(&recovery_file(&self.home, legacy))?;
            self.store.delete(legacy).map_err(storage_error)?;
        }
        move_record(&self.home, legacy, &new, server_url)?;
        tracing::info!(
            from = legacy.as_str(),
            to = new.as_str(),
            tokens = bound,
            "moved an MCP server's sign-in to the servers' namespace"
        );
        Ok(())
    }

    /// The newest tokens stored under `name` (the recovery file first).
    pub(super) fn load_name(&self, name: &ProviderName) -> Result<Option<OAuthTokens>> {
        load_newest(self.store.as_ref(), &recovery_file(&self.home, name), name)
    }
}

impl super::OAuthService {
    /// The mover of tokens between names for this service's store and home.
    pub(super) fn names(&self) -> Names {
        Names {
            store: Arc::clone(&self.store),
            home: self.home.clone(),
            lock_dir: self.lock_dir.clone(),
            lock_timeout: self.lock_timeout,
        }
    }

    /// [`Names::settle_before_write`] off the async threads.
    pub(super) async fn settle_target(&self, target: &ProviderRef) -> Result<()> {
        let names = self.names();
        let target = target.clone();
        super::store::blocking(move || names.settle_before_write(&target)).await
    }

    /// [`Names::load`] off the async threads.
    pub(super) async fn load_target(&self, target: &ProviderRef) -> Result<Option<OAuthTokens>> {
        let names = self.names();
        let target = target.clone();
        super::store::blocking(move || names.load(&target)).await
    }
}

/// Removes an MCP server binding from `tokens` (see `mcp::bind_tokens`): a token endpoint's answer
/// is the server's text, and a field of that name in it binds nothing.
pub(super) fn unbind(tokens: &mut OAuthTokens) {
    tokens.extra.remove(BINDING_KEY);
}

/// The key `mcp::bind_tokens` stores a binding under (tested against `mcp::bound_server` below).
const BINDING_KEY: &str = "mcp_server";

/// `tokens/<name>.recovery` under `home` (see `OAuthService::recovery_path`).
pub(super) fn recovery_file(home: &Path, name: &ProviderName) -> PathBuf {
    storage::HomeLayout::new(home)
        .tokens_dir()
        .join(format!("{}.recovery", name.as_str()))
}

/// The `server_url` of the record stored under `name`, if there is a readable one.
fn read_record_url(home: &Path, name: &ProviderName) -> Option<String> {
    Some(mcp::read_record(home, name.as_str()).ok()??.server_url)
}

/// Moves `mcp/<legacy>.json` to `mcp/<new>.json` when it is the record of `server_url` (an existing
/// record under the new name wins; the old one is then removed).
fn move_record(
    home: &Path,
    legacy: &ProviderName,
    new: &ProviderName,
    server_url: &str,
) -> Result<()> {
    let Some(record) = mcp::read_record(home, legacy.as_str())? else {
        return Ok(());
    };
    if record.server_url != server_url {
        return Ok(());
    }
    if mcp::read_record(home, new.as_str())?.is_none() {
        mcp::write_record(home, new.as_str(), &record)?;
    }
    let path = mcp::record_path(home, legacy.as_str());
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::new(
            ErrorCode::Storage,
            format!(
                "cannot remove the moved MCP server record {}",
                path.display()
            ),
        )
        .with_source(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::AccessToken;

    /// `unbind` removes exactly what `mcp::bound_server` reads.
    #[test]
    fn unbind_removes_the_binding() {
        let mut tokens = OAuthTokens::new(
            AccessToken::new("at"),
            "Bearer",
            std::time::SystemTime::now(),
        );
        tokens.extra.insert(
            BINDING_KEY.to_owned(),
            serde_json::json!({
                "server_url": "https://victim.example/mcp",
                "issuer": "https://evil.example",
                "token_endpoint": "https://evil.example/token"
            }),
        );
        assert_eq!(
            mcp::bound_server(&tokens).as_deref(),
            Some("https://victim.example/mcp")
        );
        unbind(&mut tokens);
        assert_eq!(mcp::bound_server(&tokens), None);
    }
}
