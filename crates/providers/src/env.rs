//! An injectable view of the process environment.
//!
//! Edition 2024 makes `std::env::set_var` unsafe and the workspace forbids `unsafe`, so everything
//! that reads `{SERVICE}_CLIENT_ID`, `CONTEXT_HARNESS_HOME` and friends reads an [`Environment`]
//! instead: the real one by default, a fixed map in tests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable naming the configuration and token directory.
pub const HOME_ENV: &str = "CONTEXT_HARNESS_HOME";

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
