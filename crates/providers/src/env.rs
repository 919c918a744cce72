//! An injectable view of the process environment.
//!
//! Edition 2024 makes `std::env::set_var` unsafe and the workspace forbids `unsafe`, so everything
//! that reads `{SERVICE}_CLIENT_ID`, `CONTEXT_HARNESS_HOME` and friends reads an [`Environment`]
//! instead: the real one by default, a fixed map in tests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use context_harness_storage as storage;
use context_harness_tokens::SecretString;

use crate::error::{Error, ErrorCode, Result};

/// The environment variable naming the configuration and token directory.
pub const HOME_ENV: &str = "CONTEXT_HARNESS_HOME";

/// The largest file [`read_secret_file`] reads, in bytes (64 KiB: a client secret or a few
/// headers, with room to spare).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A snapshot of environment variables.
///
/// ```
/// use context_harness_providers::Environment;
///
/// let env = Environment::from_pairs([("GITHUB_CLIENT_ID", "Iv1.abc")]);
/// assert_eq!(env.get("GITHUB_CLIENT_ID"), Some("Iv1.abc"));
/// assert_eq!(env.get("HOME"), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// Snapshots the process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// An empty environment.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Sets one variable (on this snapshot only, never on the process).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    /// Removes one variable from this snapshot.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.vars.remove(key);
        self
    }

    /// The value of `key`, treating an empty value as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The context-harness home directory: `$CONTEXT_HARNESS_HOME`, else `$HOME/.context-harness`
    /// (`%USERPROFILE%` on Windows). `None` when neither is set.
    /// For another program's home see [`App::home_dir`](crate::App::home_dir).
    pub fn home_dir(&self) -> Option<PathBuf> {
        crate::App::default().home_dir(self)
    }
}

impl std::fmt::Debug for Environment {
    // Values may be secrets (`*_CLIENT_SECRET`); show only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("keys", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FromIterator<(OsString, OsString)> for Environment {
    fn from_iter<T: IntoIterator<Item = (OsString, OsString)>>(iter: T) -> Self {
        Self {
            vars: iter
                .into_iter()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }
}

/// The environment-variable prefix for a provider name: upper-cased, every non-alphanumeric
/// character replaced by `_` (`my-idp` → `MY_IDP`, so `MY_IDP_CLIENT_ID`).
///
/// ```
/// assert_eq!(context_harness_providers::env_prefix("my-idp.v2"), "MY_IDP_V2");
/// ```
pub fn env_prefix(provider: &str) -> String {
    provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads a file that holds a secret (a client secret, header values), the one way such a file is
/// read: opened with [`open_trusted`](storage::open_trusted) (no symbolic link, `O_NONBLOCK`, a
/// regular file owned by the effective user, in a directory only that user can write), and then
/// refused unless group and others have no access to it at all (mode 0600 or stricter, checked on
/// the opened descriptor), at most [`MAX_SECRET_FILE_BYTES`], decoded as text
/// ([`decode_text`](storage::decode_text): UTF-8, or UTF-16 with a byte-order mark). `what` names
/// the setting in messages (`--header-file`, `CONTEXT_HARNESS_CLIENT_SECRET_FILE`).
///
/// Messages name the path and the problem, never the content.
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] for a missing, unreadable, untrusted, group- or other-accessible,
/// oversized or non-text file; the hint names the fix (`chmod 600 PATH`, …).
pub fn read_secret_file(path: &Path, what: &str) -> Result<SecretString> {
    let shown = path.display();
    let refuse = |why: &str, hint: String| {
        Error::new(ErrorCode::ConfigInvalid, format!("{what} {shown}: {why}")).with_hint(hint)
    };
    let file = match storage::open_trusted(path) {
        Ok(Some(file)) => file,
        Ok(None) => {
            return Err(refuse(
                "no such file",
                "give the path of an existing file".to_owned(),
            ));
        }
        Err(e) => return Err(untrusted_secret_file(e, path, what)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = file.metadata().map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("{what} {shown}: cannot examine it"),
            )
            .with_source(e)
        })?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(refuse(
                &format!("group or others may access it (mode {mode:o}), and it holds a secret"),
                format!("chmod 600 {}", context_harness_storage::shell_quote(path)),
            ));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("{what} {shown}: cannot read it"),
            )
            .with_source(e)
        })?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_SECRET_FILE_BYTES) {
        return Err(refuse(
            &format!(
                "it is larger than {} KiB, more than a secret needs",
                MAX_SECRET_FILE_BYTES / 1024
            ),
            "give the file that holds only the secret".to_owned(),
        ));
    }
    let text = storage::decode_text(&bytes).map_err(|e| {
        refuse(
            &format!("it is not text ({e})"),
            "save it as UTF-8".to_owned(),
        )
    })?;
    Ok(SecretString::new(text.into_owned()))
}

/// [`read_secret_file`]'s error for a file (or directory) [`open_trusted`](storage::open_trusted)
/// refused or could not open: [`ErrorCode::ConfigInvalid`] with a fix that fits a file the user
/// named (not `rm`, as for a file of the home directory).
fn untrusted_secret_file(e: storage::Error, path: &Path, what: &str) -> Error {
    use storage::TrustProblem as P;
    let shown = path.display();
    let (why, hint) = match &e {
        storage::Error::Untrusted { path: bad, problem } => {
            let (bad_word, is_file) = (
                context_harness_storage::shell_quote(bad),
                bad.as_path() == path,
            );
            let (whose, fix_dir) = if is_file {
                ("it".to_owned(), String::new())
            } else {
                (format!("its directory {}", bad.display()), bad_word.clone())
            };
            match problem {
                P::Symlink => (
                    "it is a symbolic link (a file holding a secret is opened without following links)".to_owned(),
                    format!("name the file itself: `realpath {bad_word}` shows it"),
                ),
                P::NotFile => ("it is not a regular file".to_owned(), "name a regular file".to_owned()),
                P::NotDirectory => (format!("{} is not a directory", bad.display()), "check the path".to_owned()),
                P::Writable { mode } if is_file => (
                    format!("group or others may write it (mode {mode:o})"),
                    format!("chmod 600 {bad_word}"),
                ),
                P::Writable { mode } => (
                    format!("{whose} is writable by group or others (mode {mode:o})"),
                    format!("keep the file in a directory only you can write, or `chmod go-w {fix_dir}`"),
                ),
                P::Owner { owner, expected } => (
                    format!("{whose} is owned by uid {owner}, not by you (uid {expected})"),
                    e.fix().unwrap_or_else(|| "use a file of your own".to_owned()),
                ),
                _ => (e.to_string(), "use a file of your own, mode 600".to_owned()),
            }
        }
        _ => (
            format!("cannot open it ({e})"),
            "check the path and its permissions".to_owned(),
        ),
    };
    Error::new(ErrorCode::ConfigInvalid, format!("{what} {shown}: {why}")).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_prefers_the_explicit_variable() {
        let env = Environment::from_pairs([(HOME_ENV, "/x"), ("HOME", "/home/u")]);
        assert_eq!(env.home_dir(), Some(PathBuf::from("/x")));
        let env = Environment::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            env.home_dir(),
            Some(PathBuf::from("/home/u/.context-harness"))
        );
        assert_eq!(Environment::empty().home_dir(), None);
    }

    #[test]
    fn debug_hides_values() {
        let env = Environment::from_pairs([("X_CLIENT_SECRET", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
    }
}
