//! The per-provider account index, `tokens/<provider>.accounts`: which accounts of a provider (or
//! server) are signed in, and which one is used when none is named.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::account::AccountName;
use crate::error::{Error, Result};
use crate::fs::{remove_if_exists, write_private_atomic};
use crate::{ProviderName, read_trusted};

/// The accounts of one provider or server, and its default account.
///
/// Kept in `tokens/<provider>.accounts` (0600, written atomically, read the trusted way) as JSON:
/// `{"default": "work", "accounts": ["default", "work"]}`, accounts in the order they were first
/// signed in. A provider without the file has at most the [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT)
/// (whose tokens are under the bare provider name, as every version before accounts stored them);
/// the file is written once a second account is signed in, or another account becomes the
/// default. Callers changing it across processes hold the provider's
/// [`LockKind::Accounts`](crate::LockKind::Accounts) lock around [`load`](Self::load) and
/// [`save`](Self::save).
///
/// ```
/// use context_harness_storage::{AccountIndex, AccountName};
///
/// // A home of version 0.2: tokens under the bare name, no index.
/// let mut index = AccountIndex::implicit(true);
/// assert_eq!(index.default_account().as_str(), "default");
/// index.add(AccountName::new("work")?);
/// assert_eq!(index.names().len(), 2);
/// // The first account signed in stays the default until it is changed.
/// assert!(index.default_account().is_default());
/// index.set_default(AccountName::new("work")?);
/// index.remove(&AccountName::new("work")?);
/// assert!(index.default_account().is_default());
/// # Ok::<(), context_harness_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIndex {
    default: AccountName,
    accounts: Vec<AccountName>,
}

/// The file's JSON.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    default: String,
    accounts: Vec<String>,
}

impl AccountIndex {
    /// The index a provider without an index file has: the [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT)
    /// alone when `default_signed_in` (tokens are stored under the bare provider name), else no
    /// account (and `default` as the default).
    pub fn implicit(default_signed_in: bool) -> Self {
        Self {
            default: AccountName::default(),
            accounts: if default_signed_in {
                vec![AccountName::default()]
            } else {
                Vec::new()
            },
        }
    }

    /// `tokens_dir/<provider>.accounts`, the index file of `provider` (its base name: an account
    /// key's account part is ignored).
    pub fn path(tokens_dir: &Path, provider: &ProviderName) -> PathBuf {
        tokens_dir.join(format!("{}.accounts", provider.base_name()))
    }

    /// Reads `provider`'s index file from `tokens_dir`; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// As [`read_trusted`] (a file another user could have written, a link, too large);
    /// [`Error::Corrupt`] naming the file when it is not an index (left untouched).
    pub fn load(tokens_dir: &Path, provider: &ProviderName) -> Result<Option<Self>> {
        let path = Self::path(tokens_dir, provider);
        let Some(bytes) = read_trusted(&path)? else {
            return Ok(None);
        };
        Self::parse(&bytes)
            .map(Some)
            .map_err(|source| Error::Corrupt { path, source })
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, crate::BoxError> {
        let text = crate::decode_text(bytes)?;
        let file: IndexFile = serde_json::from_str(&text)?;
        let mut accounts: Vec<AccountName> = Vec::with_capacity(file.accounts.len());
        for name in &file.accounts {
            let name = AccountName::new(name)?;
            if !accounts.contains(&name) {
                accounts.push(name);
            }
        }
        Ok(Self {
            default: AccountName::new(&file.default)?,
            accounts,
        })
    }

    /// Writes the index to `tokens_dir` (0600, atomically), or removes the file when no account is
    /// left.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written or removed; [`Error::Encode`].
    pub fn save(&self, tokens_dir: &Path, provider: &ProviderName) -> Result<()> {
        let path = Self::path(tokens_dir, provider);
        if self.accounts.is_empty() {
            return remove_if_exists(&path).map(drop);
        }
        let file = IndexFile {
            default: self.default.to_string(),
            accounts: self.accounts.iter().map(ToString::to_string).collect(),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| Error::Encode {
            source: Box::new(e),
        })?;
        write_private_atomic(&path, json.as_bytes())
    }

    /// The account used when none is named.
    pub fn default_account(&self) -> &AccountName {
        &self.default
    }

    /// The signed-in accounts, in the order they were first signed in.
    pub fn names(&self) -> &[AccountName] {
        &self.accounts
    }

    /// Whether `account` is in the index.
    pub fn contains(&self, account: &AccountName) -> bool {
        self.accounts.contains(account)
    }

    /// Adds `account` (a sign-in stored its tokens); the first account of an empty index becomes
    /// the default. `false` when it was there already.
    pub fn add(&mut self, account: AccountName) -> bool {
        if self.contains(&account) {
            return false;
        }
        if self.accounts.is_empty() {
            self.default = account.clone();
        }
        self.accounts.push(account);
        true
    }

    /// Removes `account` (its tokens were deleted). When it was the default, the first remaining
    /// account becomes the default (the [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT) when none
    /// is left). `false` when it was not there.
    pub fn remove(&mut self, account: &AccountName) -> bool {
        let before = self.accounts.len();
        self.accounts.retain(|a| a != account);
        if &self.default == account {
            self.default = self.accounts.first().cloned().unwrap_or_default();
        }
        self.accounts.len() != before
    }

    /// Makes `account` the default (adding it when missing).
    pub fn set_default(&mut self, account: AccountName) {
        self.add(account.clone());
        self.default = account;
    }

    /// Whether this index says nothing the absence of a file would not: at most the
    /// [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT), which is the default.
    pub fn is_implicit(&self) -> bool {
        self.default.is_default() && self.accounts.iter().all(AccountName::is_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn first_account_is_the_default_and_removal_moves_it() {
        let mut index = AccountIndex::implicit(false);
        assert!(index.names().is_empty());
        assert!(index.add(name("work")));
        assert!(!index.add(name("work")));
        assert!(index.add(name("home")));
        assert_eq!(index.default_account(), &name("work"));
        assert!(!index.is_implicit());
        assert!(index.remove(&name("work")));
        assert_eq!(index.default_account(), &name("home"));
        assert!(!index.remove(&name("work")));
        assert!(index.remove(&name("home")));
        assert!(index.default_account().is_default());
        assert!(index.is_implicit());
        // A 0.2 home: the bare-name tokens are the default account and stay it.
        let mut old = AccountIndex::implicit(true);
        assert!(old.is_implicit());
        old.add(name("work"));
        assert!(old.default_account().is_default());
        old.set_default(name("work"));
        assert_eq!(old.default_account(), &name("work"));
        assert_eq!(old.names(), &[AccountName::default(), name("work")]);
    }

    #[test]
    fn the_file_round_trips_and_is_private() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let tokens = dir.path().join("tokens");
        let github = ProviderName::new("github")?;
        assert_eq!(AccountIndex::load(&tokens, &github)?, None);
        let mut index = AccountIndex::implicit(true);
        index.add(name("Work"));
        index.save(&tokens, &github)?;
        let path = tokens.join("github.accounts");
        assert!(path.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(|e| Error::io("stat", &path, e))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // An account's key names the same index.
        let key = github.with_account(&name("work"));
        assert_eq!(AccountIndex::load(&tokens, &key)?, Some(index.clone()));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Encode { source: e.into() })?;
        assert_eq!(
            json,
            serde_json::json!({"default": "default", "accounts": ["default", "work"]})
        );
        // Empty: the file goes.
        index.remove(&AccountName::default());
        index.remove(&name("work"));
        index.save(&tokens, &github)?;
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn a_bad_file_is_corrupt_and_left_alone() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let github = ProviderName::new("github")?;
        let path = AccountIndex::path(dir.path(), &github);
        for bad in [
            "not json",
            r#"{"default": "../x", "accounts": []}"#,
            r#"{"default": "a", "accounts": ["a b"]}"#,
            r#"{"accounts": []}"#,
        ] {
            write_private_atomic(&path, bad.as_bytes())?;
            let err = AccountIndex::load(dir.path(), &github).err();
            assert!(
                err.as_ref().is_some_and(Error::is_corrupt),
                "{bad}: {err:?}"
            );
            assert!(path.is_file());
        }
        Ok(())
    }
}
