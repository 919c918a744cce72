//! The per-provider account index, `tokens/<provider>.accounts`: which accounts of a provider (or
//! server) are signed in, and which one is used when none is named.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::account::AccountName;
use crate::error::{Error, Result};
use crate::fs::{remove_if_exists, write_private_atomic};
use crate::{MAX_FILE_BYTES, ProviderName, read_trusted};

/// The accounts of one provider or server, and its default account.
///
/// Kept in `tokens/<provider>.accounts` (0600, written atomically, read the trusted way) as JSON:
/// `{"default": "work", "accounts": ["default", "work"]}`, accounts in the order they were first
/// signed in; the default is always one of them (a file saying otherwise is
/// [`Error::CorruptIndex`]). The file is written once a second account is signed in, or another
/// account becomes the default. Without it (a home of version 0.2, or the file deleted) the index
/// is [`rebuilt`](Self::rebuild) from the records in the token directory: nothing but the default
/// account's tokens under the bare provider name, as every version before accounts stored them,
/// means the [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT) alone. Callers changing it across
/// processes hold the provider's [`LockKind::Accounts`](crate::LockKind::Accounts) lock around
/// [`load`](Self::load) and [`save`](Self::save).
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
    /// The same names as `accounts`: membership in constant time, so an index of many names (a
    /// file of 4 MiB holds some 400 000, a token directory as many records) is read in linear
    /// time, not quadratic.
    members: HashSet<AccountName>,
}

/// The endings of the files that hold (or point to) an account's tokens: the token file, the
/// backend record (tokens in the keyring), the recovery file.
const RECORD_SUFFIXES: [&str; 3] = [".json", ".backend", ".recovery"];

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
        let mut index = Self {
            default: AccountName::default(),
            accounts: Vec::new(),
            members: HashSet::new(),
        };
        if default_signed_in {
            index.add(AccountName::default());
        }
        index
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
    /// [`Error::CorruptIndex`] naming the file when it is not an index, or its default account is
    /// not one of its accounts (left untouched).
    pub fn load(tokens_dir: &Path, provider: &ProviderName) -> Result<Option<Self>> {
        let path = Self::path(tokens_dir, provider);
        let Some(bytes) = read_trusted(&path)? else {
            return Ok(None);
        };
        Self::parse(&bytes)
            .map(Some)
            .map_err(|(reason, source)| Error::CorruptIndex {
                path,
                reason,
                source,
            })
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, (&'static str, Option<crate::BoxError>)> {
        const NOT_AN_INDEX: &str =
            "it is not an account index (JSON with a \"default\" name and a list of \"accounts\")";
        let text = crate::decode_text(bytes).map_err(|e| (NOT_AN_INDEX, Some(e.into())))?;
        let file: IndexFile =
            serde_json::from_str(&text).map_err(|e| (NOT_AN_INDEX, Some(e.into())))?;
        let invalid = |e: Error| ("it holds an invalid account name", Some(e.into()));
        let mut index = Self::implicit(false);
        for name in &file.accounts {
            index.add(AccountName::new(name).map_err(invalid)?);
        }
        let default = AccountName::new(&file.default).map_err(invalid)?;
        // Every reader resolves "no --account" to this name: one that is not signed in would have
        // commands sign in (or fail for) an account no listing shows as the default.
        if !index.contains(&default) {
            return Err(("its default account is not one of its accounts", None));
        }
        index.default = default;
        Ok(index)
    }

    /// Whether [`rebuild`](Self::rebuild) would certainly find the
    /// [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT) of `provider` signed in, known without listing
    /// `tokens_dir`: its token file under the bare name (`<provider>.json`) is there (`lstat`; any
    /// kind of file, as a listing counts it) and `tokens_dir` can be listed (`faccessat`
    /// `R_OK` with the effective ids, as `opendir` is judged). `false` says nothing: list with
    /// [`rebuild`](Self::rebuild). Two system calls instead of a listing's five and its 32 KiB
    /// buffer: the fast path of `mcp token` asks this to resolve the default account of a provider
    /// without an index file.
    pub fn bare_record_listed(tokens_dir: &Path, provider: &ProviderName) -> bool {
        let record = tokens_dir.join(format!("{}{}", provider.base_name(), RECORD_SUFFIXES[0]));
        std::fs::symlink_metadata(record).is_ok()
            && rustix::fs::accessat(
                rustix::fs::CWD,
                tokens_dir,
                rustix::fs::Access::READ_OK,
                rustix::fs::AtFlags::EACCESS,
            )
            .is_ok()
    }

    /// The index the records in `tokens_dir` imply, for a provider without an index file (or to
    /// find accounts a file misses): the accounts of `provider` with a token file
    /// (`<provider>@<account>.json`), a backend record (`<provider>@<account>.backend`, which the
    /// keyring's tokens have) or a recovery file (`.recovery`); the bare name's for the
    /// [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT). It comes first when present, the others follow
    /// by name; the first is the default. Locks and other files are not records. Only file names
    /// are read, never a file. A store that keeps nothing in `tokens_dir` (a memory store) has no
    /// records here.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `tokens_dir` exists but cannot be listed.
    pub fn rebuild(tokens_dir: &Path, provider: &ProviderName) -> Result<Self> {
        let base = provider.base_name();
        let entries = match std::fs::read_dir(tokens_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::implicit(false));
            }
            Err(e) => return Err(Error::io("list", tokens_dir, e)),
        };
        let mut default = false;
        let mut others: BTreeSet<AccountName> = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", tokens_dir, e))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            let Some(key) = RECORD_SUFFIXES
                .iter()
                .find_map(|suffix| file.strip_suffix(suffix))
            else {
                continue;
            };
            let Some((name, account)) = ProviderName::parse_key(key) else {
                continue;
            };
            if name.as_str() != base {
                continue;
            }
            if account.is_default() {
                default = true;
            } else {
                others.insert(account);
            }
        }
        let mut index = Self::implicit(default);
        for account in others {
            index.add(account);
        }
        Ok(index)
    }

    /// Writes the index to `tokens_dir` (0600, atomically, compact JSON), or removes the file when
    /// no account is left. An index [`load`](Self::load) would refuse as too large is not written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written or removed; [`Error::Encode`];
    /// [`Error::IndexTooLarge`] past [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES) (the file is left
    /// as it was).
    pub fn save(&self, tokens_dir: &Path, provider: &ProviderName) -> Result<()> {
        let path = Self::path(tokens_dir, provider);
        if self.accounts.is_empty() {
            return remove_if_exists(&path).map(drop);
        }
        let file = IndexFile {
            default: self.default.to_string(),
            accounts: self.accounts.iter().map(ToString::to_string).collect(),
        };
        // Compact: what reads within the cap is saved within it again (pretty-printing added
        // some 6 bytes a name).
        let json = serde_json::to_vec(&file).map_err(|e| Error::Encode {
            source: Box::new(e),
        })?;
        if !u64::try_from(json.len()).is_ok_and(|len| len <= MAX_FILE_BYTES) {
            return Err(Error::IndexTooLarge {
                path,
                limit: MAX_FILE_BYTES,
            });
        }
        write_private_atomic(&path, &json)
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
        self.members.contains(account)
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
        self.members.insert(account.clone());
        self.accounts.push(account);
        true
    }

    /// Removes `account` (its tokens were deleted). When it was the default, the first remaining
    /// account becomes the default (the [`DEFAULT_ACCOUNT`](crate::DEFAULT_ACCOUNT) when none
    /// is left). `false` when it was not there.
    pub fn remove(&mut self, account: &AccountName) -> bool {
        let removed = self.members.remove(account);
        if removed {
            self.accounts.retain(|a| a != account);
        }
        if &self.default == account {
            self.default = self.accounts.first().cloned().unwrap_or_default();
        }
        removed
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
            // Named for what it is: no token file.
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.starts_with("account index "), "{message}");
            assert!(!message.contains("token file"), "{message}");
            assert!(path.is_file());
        }
        Ok(())
    }

    /// A default that is not one of the accounts would be resolved by the commands that use "the
    /// default account" and shown as no row's default by the listing: refused for every reader.
    #[test]
    fn a_default_outside_the_accounts_is_corrupt() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let local = ProviderName::new("local")?;
        let path = AccountIndex::path(dir.path(), &local);
        for bad in [
            r#"{"default": "evil", "accounts": ["default"]}"#,
            r#"{"default": "work", "accounts": []}"#,
            r#"{"default": "default", "accounts": []}"#,
        ] {
            write_private_atomic(&path, bad.as_bytes())?;
            let err = AccountIndex::load(dir.path(), &local).err();
            assert!(
                matches!(
                    &err,
                    Some(Error::CorruptIndex { path: p, reason, source: None })
                        if *p == path && reason.contains("default account is not one of its accounts")
                ),
                "{bad}: {err:?}"
            );
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains(
                    "local.accounts is corrupt: its default account is not one of its accounts"
                ),
                "{message}"
            );
        }
        write_private_atomic(
            &path,
            br#"{"default": "work", "accounts": ["default", "Work"]}"#,
        )?;
        let index = AccountIndex::load(dir.path(), &local)?;
        assert_eq!(
            index.as_ref().map(AccountIndex::default_account),
            Some(&name("work"))
        );
        Ok(())
    }

    /// A hostile index of as many names as the 4 MiB cap lets in is read whole and right. Every
    /// command reads it: the quadratic search this replaced took over 500 s on it (so `mcp token`
    /// hung; [`AccountIndex::rebuild`] shared it). Reading it now takes about 0.4 s in a debug build;
    /// no time is asserted here (a timed test would be flaky), a quadratic regression would show as a
    /// suite that runs for minutes.
    #[test]
    fn an_index_of_many_accounts_is_read_whole() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let local = ProviderName::new("local")?;
        let names: Vec<String> = (0..380_000).map(|i| format!("a{i}")).collect();
        let json = serde_json::json!({"default": "a7", "accounts": names}).to_string();
        assert!(json.len() < 4 * 1024 * 1024, "{}", json.len());
        write_private_atomic(&AccountIndex::path(dir.path(), &local), json.as_bytes())?;
        let index = AccountIndex::load(dir.path(), &local)?;
        let index = index.ok_or(Error::CorruptIndex {
            path: dir.path().to_path_buf(),
            reason: "missing",
            source: None,
        })?;
        assert_eq!(index.names().len(), names.len());
        assert_eq!(index.default_account(), &name("a7"));
        assert!(index.contains(&name("a379999")));
        Ok(())
    }

    /// What reads within the cap is saved within it again: an index of as many names as the cap
    /// lets in, changed and saved, reads back (a pretty-printed save made it half as large again,
    /// past the cap, so the next command refused it); an index no reader would accept is not
    /// written at all, and the file keeps what it held.
    #[test]
    fn a_save_never_writes_what_a_load_refuses() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let local = ProviderName::new("local")?;
        let path = AccountIndex::path(dir.path(), &local);
        let names: Vec<String> = (0..380_000).map(|i| format!("a{i}")).collect();
        let json = serde_json::json!({"default": "a7", "accounts": names}).to_string();
        write_private_atomic(&path, json.as_bytes())?;
        let missing = || Error::CorruptIndex {
            path: path.clone(),
            reason: "missing",
            source: None,
        };
        let mut index = AccountIndex::load(dir.path(), &local)?.ok_or_else(missing)?;
        index.add(name("one-more"));
        index.save(dir.path(), &local)?;
        let again = AccountIndex::load(dir.path(), &local)?.ok_or_else(missing)?;
        assert_eq!(again, index);

        // 70 000 names of 60 characters: more than 4 MiB however it is written.
        for i in 0..70_000 {
            index.add(name(&format!("{i:0>60}")));
        }
        let before = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let refused = index.save(dir.path(), &local);
        assert!(
            matches!(&refused, Err(Error::IndexTooLarge { path: p, limit }) if p == &path && *limit == MAX_FILE_BYTES),
            "{refused:?}"
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("refusing to write account index ") && message.contains("4096 KiB"),
            "{message}"
        );
        let after = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        assert!(after == before, "the refused save changed the file");
        assert_eq!(
            AccountIndex::load(dir.path(), &local)?.ok_or_else(missing)?,
            again
        );
        Ok(())
    }

    /// Without an index file, the accounts are the records in the token directory.
    #[test]
    fn the_index_is_rebuilt_from_the_records() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let tokens = dir.path().join("tokens");
        let local = ProviderName::new("local")?;
        assert_eq!(
            AccountIndex::rebuild(&tokens, &local)?,
            AccountIndex::implicit(false)
        );
        std::fs::create_dir(&tokens).map_err(|e| Error::io("mkdir", &tokens, e))?;
        for file in [
            // Records: a token file, a keyring account's backend record, a recovery file.
            "local@work.json",
            "local@zed.backend",
            "local@bob.recovery",
            "local@bob.json",
            // Not records of an account of `local`.
            "local@lock-only.lock",
            "local@signing.signin-lock",
            "local.accounts",
            "local.accounts-lock",
            "local@Upper.json",
            "local@default.json",
            ".local@tmp.json.tmp.1.2",
            "localx@other.json",
            "other@work.json",
            "other.json",
            "local@a b.json",
        ] {
            let path = tokens.join(file);
            std::fs::write(&path, b"").map_err(|e| Error::io("write", &path, e))?;
        }
        let index = AccountIndex::rebuild(&tokens, &local)?;
        assert_eq!(index.names(), &[name("bob"), name("work"), name("zed")]);
        assert_eq!(index.default_account(), &name("bob"));
        // An account's key names the same provider.
        assert_eq!(
            AccountIndex::rebuild(&tokens, &local.with_account(&name("work")))?,
            index
        );
        // The bare name's record is the default account, first and the default.
        let bare = tokens.join("local.backend");
        std::fs::write(&bare, b"keyring\n").map_err(|e| Error::io("write", &bare, e))?;
        let index = AccountIndex::rebuild(&tokens, &local)?;
        assert_eq!(
            index.names(),
            &[
                AccountName::default(),
                name("bob"),
                name("work"),
                name("zed")
            ]
        );
        assert!(index.default_account().is_default());
        Ok(())
    }
}
