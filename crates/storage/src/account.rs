//! Accounts: several signed-in identities of one provider or server, each with its own storage key.
//!
//! An [`AccountName`] names one identity (`work`, `alice@example.com`). The account named
//! [`DEFAULT_ACCOUNT`] keeps its tokens under the bare provider name, exactly where version 0.2 and
//! earlier kept them, so an existing home needs no migration: its tokens are the `default` account.
//! Any other account's storage key is `<provider>@<account>` ([`ProviderName::with_account`]); no
//! provider name and no server name contains `@`, so the keys of two accounts (or of an account and
//! a provider) can never be the same.

use std::fmt;

use crate::ProviderName;
use crate::error::{Error, Result};

/// The name of the account whose tokens live under the bare provider name: every record written by
/// version 0.2 or earlier, and the account used when none is named and the provider has no
/// [`AccountIndex`](crate::AccountIndex) saying otherwise.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The longest accepted account name, in bytes (names are ASCII).
pub const MAX_ACCOUNT_LEN: usize = 64;

/// What separates the provider name from the account name in a storage key (`github@work`).
pub const ACCOUNT_SEPARATOR: char = '@';

/// A validated account name: 1 to [`MAX_ACCOUNT_LEN`] characters of `A-Z a-z 0-9 . _ @ + -`, the
/// first a letter or a digit, so an e-mail address or a git user name fits as it is.
///
/// Names are ASCII-case-insensitive and kept in lowercase (`Work` and `work` are one account):
/// the storage key becomes a file name, and the file systems of macOS and Windows do not tell
/// `github@Work.json` from `github@work.json`.
///
/// ```
/// use context_harness_storage::{AccountName, ProviderName};
///
/// let work = AccountName::new("Alice@Example.com")?;
/// assert_eq!(work.as_str(), "alice@example.com");
/// let github = ProviderName::new("github")?;
/// assert_eq!(github.with_account(&work).as_str(), "github@alice@example.com");
/// // The default account keeps the bare name, where version 0.2 stored its tokens.
/// assert_eq!(github.with_account(&AccountName::default()).as_str(), "github");
/// assert!(AccountName::new("../x").is_err());
/// # Ok::<(), context_harness_storage::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName(String);

impl AccountName {
    /// Validates `name` and folds it to lowercase (no trimming).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAccount`] when the name is empty, longer than [`MAX_ACCOUNT_LEN`], does not
    /// start with a letter or digit, or contains anything but `A-Z a-z 0-9 . _ @ + -`.
    pub fn new(name: &str) -> Result<Self> {
        let Some(first) = name.bytes().next() else {
            return Err(Error::invalid_account(name, "it is empty"));
        };
        if name.len() > MAX_ACCOUNT_LEN {
            return Err(Error::invalid_account(
                name,
                "it is longer than 64 characters",
            ));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(Error::invalid_account(
                name,
                "it must start with a letter or a digit",
            ));
        }
        if !name.bytes().all(is_account_byte) {
            return Err(Error::invalid_account(
                name,
                "only letters, digits, '.', '_', '@', '+' and '-' are allowed",
            ));
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    /// Whether this is the [`DEFAULT_ACCOUNT`] (tokens under the bare provider name).
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_ACCOUNT
    }

    /// The name (lowercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for AccountName {
    /// The [`DEFAULT_ACCOUNT`].
    fn default() -> Self {
        Self(DEFAULT_ACCOUNT.to_owned())
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for AccountName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for AccountName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for AccountName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

fn is_account_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-')
}

impl ProviderName {
    /// The storage key of `account` of this provider (or server): the bare name for the
    /// [`DEFAULT_ACCOUNT`], else `<name>@<account>`. The key names the token record (file, keyring
    /// entry), the backend record, the recovery file and both locks of that account. Of a key that
    /// already names an account, only the provider part is used.
    pub fn with_account(&self, account: &AccountName) -> Self {
        let base = self.base_name();
        if account.is_default() {
            return Self::from_checked(base.to_owned());
        }
        Self::from_checked(format!("{base}{ACCOUNT_SEPARATOR}{account}"))
    }

    /// The provider (or server) part of a storage key: everything before the first `@`, i.e. the
    /// whole name for a provider name or a default account's key.
    pub fn base_name(&self) -> &str {
        self.as_str()
            .split_once(ACCOUNT_SEPARATOR)
            .map_or(self.as_str(), |(base, _)| base)
    }

    /// The account part of a storage key (after the first `@`); `None` for a bare name, which is
    /// the [`DEFAULT_ACCOUNT`]'s.
    pub fn account_part(&self) -> Option<&str> {
        self.as_str()
            .split_once(ACCOUNT_SEPARATOR)
            .map(|(_, account)| account)
    }

    /// Parses a storage key as written in a file name (`github`, `github@work`): the provider name
    /// and the account. `None` when either part is invalid, or the account part names the
    /// [`DEFAULT_ACCOUNT`] (whose key is the bare name).
    pub fn parse_key(key: &str) -> Option<(Self, AccountName)> {
        match key.split_once(ACCOUNT_SEPARATOR) {
            None => Some((Self::new(key).ok()?, AccountName::default())),
            Some((base, account)) => {
                let account = AccountName::new(account).ok()?;
                // Keys are written in lowercase; another spelling is no key of ours.
                if account.is_default() || account.as_str() != key.get(base.len() + 1..)? {
                    return None;
                }
                Some((Self::new(base).ok()?, account))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_emails_git_names_and_folds_case() -> Result<()> {
        for (name, stored) in [
            ("work", "work"),
            ("Work", "work"),
            ("alice@example.com", "alice@example.com"),
            ("a.b_c+d-e", "a.b_c+d-e"),
            ("0", "0"),
            ("octo-cat", "octo-cat"),
        ] {
            assert_eq!(AccountName::new(name)?.as_str(), stored, "{name}");
        }
        let longest = "a".repeat(MAX_ACCOUNT_LEN);
        assert_eq!(AccountName::new(&longest)?.as_str(), longest);
        assert!(AccountName::new("DEFAULT")?.is_default());
        assert!(AccountName::default().is_default());
        assert!(!AccountName::new("work")?.is_default());
        Ok(())
    }

    #[test]
    fn refuses_what_cannot_be_a_file_name_part() {
        for name in [
            "",
            ".hidden",
            "-flag",
            "@x",
            "+x",
            "_x",
            "a/b",
            "..",
            "../x",
            "a b",
            "a:b",
            "a\\b",
            "a\nb",
            "é",
            "a\0",
            &"a".repeat(MAX_ACCOUNT_LEN + 1),
        ] {
            let err = AccountName::new(name).err();
            assert!(
                err.as_ref().is_some_and(Error::is_invalid_account),
                "{name:?}"
            );
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.starts_with("invalid account name"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn keys_of_accounts_never_collide() -> Result<()> {
        let github = ProviderName::new("github")?;
        let work = AccountName::new("work")?;
        let key = github.with_account(&work);
        assert_eq!(key.as_str(), "github@work");
        assert_eq!(key.base_name(), "github");
        assert_eq!(key.account_part(), Some("work"));
        // Idempotent on the provider part; the default account is the bare name.
        assert_eq!(key.with_account(&work), key);
        assert_eq!(key.with_account(&AccountName::default()), github);
        assert_eq!(github.base_name(), "github");
        assert_eq!(github.account_part(), None);
        // No provider or server name has '@', so no account key is another provider's name.
        assert!(ProviderName::new(key.as_str()).is_err());
        let email = github.with_account(&AccountName::new("a@b.example")?);
        assert_eq!(email.base_name(), "github");
        assert_eq!(email.account_part(), Some("a@b.example"));
        let server = ProviderName::for_server("https://mcp.example.com/mcp")?;
        assert_eq!(
            server.with_account(&work).as_str(),
            "_mcp.example.com-mcp@work"
        );
        Ok(())
    }

    #[test]
    fn keys_parse_back() -> Result<()> {
        let parsed = |key: &str| {
            ProviderName::parse_key(key).map(|(p, a)| (p.as_str().to_owned(), a.to_string()))
        };
        assert_eq!(
            parsed("github"),
            Some(("github".to_owned(), "default".to_owned()))
        );
        assert_eq!(
            parsed("github@a@b.example"),
            Some(("github".to_owned(), "a@b.example".to_owned()))
        );
        for bad in [
            "github@default",
            "github@Work",
            "GitHub@work",
            "github@",
            "@work",
            "a/b@c",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
        Ok(())
    }
}
