//! Accounts: several signed-in identities per provider or MCP server.
//!
//! Every entry point resolves its provider with [`OAuthService::target`]: the account given to
//! [`OAuthServiceBuilder::account`](super::OAuthServiceBuilder::account), else the provider's
//! default account as its index (`tokens/<provider>.accounts`) says when this service first uses
//! the provider — resolved once per service and provider, so a running program never changes
//! account because another process changed the default. Tokens, their locks and recovery file
//! are per account ([`ProviderRef::storage_key`]); an MCP server's record and its client
//! registration are shared by its accounts ([`ProviderRef::name`]).
//!
//! The index is written under the provider's [`LockKind::Accounts`] lock, the innermost one: a
//! sign-in adds its account after storing the tokens (the first account becomes the default), a
//! logout removes it (a removed default passes to the first remaining account). What is signed in
//! is decided under that lock too, from the records then present. Without an index file (a home
//! of version 0.2, or the file deleted) every reader uses the same index rebuilt from the token
//! directory ([`AccountIndex::rebuild`]): the `default` account first when it is signed in, the
//! others by name, the first the default. Accounts with stored tokens that an index file misses
//! (a sign-in that stopped before recording its account) are listed after its own.

use std::collections::HashMap;
use std::sync::Mutex;

use context_harness_storage as storage;
use storage::{AccountIndex, AccountName, LockKind, ProviderLock, ProviderName};

use super::OAuthService;
use super::store::blocking;
use crate::error::{Error, ErrorCode, NextStep, Result, storage_error};
use crate::protocol::AuthorizationServerMetadata;
use crate::provider::{OAuthConfig, OAuthProvider};
use crate::provider_ref::ProviderRef;

/// The `prompt` value (OpenID Connect Core §3.1.2.1) that asks the authorization server to let
/// the user choose which identity to sign in with, for a sign-in to one account of a provider
/// while another account of it is signed in (the browser's session at the server is most likely
/// the other account's). `None` when the server is not known to understand one: an unknown
/// `prompt` value is an error at some servers (oidc-provider answers `invalid_request`).
///
/// - The server's metadata lists `prompt_values_supported`: `select_account` when listed, else
///   `login` when listed.
/// - GitHub (no metadata): `select_account`, which its authorize endpoint documents.
/// - Otherwise an OpenID Provider (its metadata or the scopes asked for name `openid`): `login`,
///   which every OpenID Provider understands.
pub(super) fn identity_prompt(
    provider: &OAuthProvider,
    metadata: Option<&AuthorizationServerMetadata>,
) -> Option<&'static str> {
    if let Some(values) = metadata.and_then(|m| m.prompt_values_supported.as_ref()) {
        return ["select_account", "login"]
            .into_iter()
            .find(|p| values.iter().any(|v| v == p));
    }
    let host = url::Url::parse(&provider.auth_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if host.as_deref() == Some("github.com") {
        return Some("select_account");
    }
    let openid = metadata
        .and_then(|m| m.scopes_supported.as_ref())
        .is_some_and(|s| s.iter().any(|s| s == "openid"))
        || provider.scopes.iter().any(|s| s == "openid");
    openid.then_some("login")
}

/// `config` with `prompt` added to the authorization request's `prompt` (a space-separated list,
/// OpenID Connect Core §3.1.2.1): after a configured value such as `consent`; not when the
/// configured value is `none` (which stands alone) or the authorization URL has a `prompt` of its
/// own.
pub(super) fn with_prompt(config: &OAuthConfig, prompt: Option<&str>) -> OAuthConfig {
    let mut config = config.clone();
    let Some(prompt) = prompt else {
        return config;
    };
    let in_url = url::Url::parse(&config.provider.auth_url)
        .is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "prompt"));
    if in_url {
        return config;
    }
    let params = &mut config.provider.extra_auth_params;
    let mut values: Vec<String> = params
        .get("prompt")
        .map(|p| p.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if values.iter().any(|v| v == "none") || values.iter().any(|v| v == prompt) {
        return config;
    }
    values.push(prompt.to_owned());
    params.insert("prompt".to_owned(), values.join(" "));
    config
}

/// The storage key of `name` for the account of storage key `key` (`name` itself for the default
/// account): what another name (an identity provider's) keeps for the same account.
pub(super) fn same_account(name: &ProviderName, key: &ProviderName) -> ProviderName {
    let account = key
        .account_part()
        .and_then(|a| AccountName::new(a).ok())
        .unwrap_or_default();
    name.with_account(&account)
}

/// The default account each provider resolved to in one service (see [`OAuthService::target`]).
pub(super) type Resolved = Mutex<HashMap<ProviderName, AccountName>>;

/// `name` as an [`AccountName`], or [`ErrorCode::ConfigInvalid`] saying what an account name is.
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] with a hint listing the allowed characters.
pub(crate) fn parse_account(name: &str) -> Result<AccountName> {
    AccountName::new(name).map_err(|e| {
        Error::new(ErrorCode::ConfigInvalid, e.to_string())
            .with_hint(
                "an account name is 1 to 64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit (an e-mail address or a user name fits)",
            )
            .with_source(e)
    })
}

impl OAuthService {
    /// Parses `provider` and sets the account this service uses for it (see the module docs).
    ///
    /// # Errors
    ///
    /// As [`ProviderRef::parse`]; [`ErrorCode::Storage`] when the provider's account index cannot
    /// be read.
    pub(super) fn target(&self, provider: &str) -> Result<ProviderRef> {
        let target = ProviderRef::parse(provider)?;
        let account = self.account_of(target.name())?;
        Ok(target.with_account(account))
    }

    /// The account this service uses for `provider` (a name or an MCP server URL): the builder's
    /// [`account`](super::OAuthServiceBuilder::account), else the provider's default account, read
    /// once per service and kept (so every later call of this service agrees).
    ///
    /// # Errors
    ///
    /// As [`ProviderRef::parse`]; [`ErrorCode::Storage`] when the provider's account index cannot
    /// be read.
    pub fn account_for(&self, provider: &str) -> Result<AccountName> {
        Ok(self.target(provider)?.account().clone())
    }

    /// The account this service uses for the provider or server stored under `name`.
    fn account_of(&self, name: &ProviderName) -> Result<AccountName> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(account) = resolved.get(name) {
            return Ok(account.clone());
        }
        let account = self.index_access().default_account(name)?;
        resolved.insert(name.clone(), account.clone());
        Ok(account)
    }

    /// Whether an account of `target`'s provider other than `target`'s own is signed in (then a
    /// sign-in asks the server to let the user choose the identity, [`identity_prompt`]).
    pub(super) fn other_account_signed_in(&self, target: &ProviderRef) -> bool {
        self.accounts(target.as_str())
            .is_ok_and(|index| index.names().iter().any(|a| a != target.account()))
    }

    /// The account given to the builder ([`OAuthServiceBuilder::account`](super::OAuthServiceBuilder::account)),
    /// if one was: then every entry point uses it, whatever the providers' defaults.
    pub fn account(&self) -> Option<&AccountName> {
        self.account.as_ref()
    }

    /// The signed-in accounts of `provider` (a name or an MCP server URL) and its default account:
    /// its index (`tokens/<provider>.accounts`), or without one the index rebuilt from the token
    /// directory, plus every account with a record there that the index misses. Tokens stored
    /// under the bare name (every sign-in of version 0.2 and earlier) are the
    /// [`DEFAULT_ACCOUNT`](storage::DEFAULT_ACCOUNT), listed whether or not an index names it.
    /// The default account is one of the accounts listed (`default` when none is). Reads the
    /// store for the default account only; no network.
    ///
    /// # Errors
    ///
    /// As [`ProviderRef::parse`]; [`ErrorCode::Storage`] when the index is corrupt (its default
    /// account not among its accounts included) or the token directory or the store cannot be
    /// read.
    pub fn accounts(&self, provider: &str) -> Result<AccountIndex> {
        let target = ProviderRef::parse(provider)?;
        let default_signed_in = match self.names().load(&target) {
            Ok(tokens) => tokens.is_some(),
            // Unreadable tokens are still the default account's (logout removes them).
            Err(e) if e.code() == ErrorCode::Storage => true,
            Err(e) => return Err(e),
        };
        let mut index = self.load_index(target.name())?;
        if default_signed_in {
            index.add(AccountName::default());
        }
        Ok(index)
    }

    /// Makes `account` the default account of `provider`: the one every later command or service
    /// uses when none is named (a running one keeps the account it resolved).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for an invalid account name; [`ErrorCode::AuthRequired`] when
    /// that account is not signed in; [`ErrorCode::Storage`].
    pub fn set_default_account(&self, provider: &str, account: &str) -> Result<()> {
        let account = parse_account(account)?;
        let not_signed_in = || {
            Error::new(
                ErrorCode::AuthRequired,
                format!(
                    "account {account} of {} is not signed in",
                    crate::terminal_text(provider)
                ),
            )
            .with_step(NextStep::SignIn {
                provider: provider.to_owned(),
            })
        };
        if !self.accounts(provider)?.contains(&account) {
            return Err(not_signed_in());
        }
        let target = ProviderRef::parse(provider)?;
        // Judged again under the accounts lock: a logout may have signed the account out since.
        // (The default account's tokens may be in a store that keeps no file: asked as `accounts`
        // asks it.)
        let access = self.index_access();
        let mut signed_out = false;
        access.update(target.name(), |index| {
            if index.contains(&account)
                || (account.is_default() && access.default_signed_in(target.name()))
            {
                index.set_default(account.clone());
            } else {
                signed_out = true;
            }
        })?;
        if signed_out {
            return Err(not_signed_in());
        }
        Ok(())
    }

    /// A service like this one (the same store, home, registry, HTTP client and settings) that
    /// uses `account` for every provider, as if built with
    /// [`OAuthServiceBuilder::account`](super::OAuthServiceBuilder::account).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for an invalid account name.
    pub fn with_account(&self, account: &str) -> Result<Self> {
        let registry = std::sync::OnceLock::new();
        if let Some(r) = self.registry.get() {
            let _ = registry.set(r.clone());
        }
        Ok(Self {
            app: self.app.clone(),
            builtin_providers: self.builtin_providers,
            home: self.home.clone(),
            env: self.env.clone(),
            store: std::sync::Arc::clone(&self.store),
            registry,
            browser: std::sync::Arc::clone(&self.browser),
            http: std::sync::Arc::clone(&self.http),
            lock_dir: self.lock_dir.clone(),
            lock_timeout: self.lock_timeout,
            refresh_retry_budget: self.refresh_retry_budget,
            account: Some(parse_account(account)?),
            resolved: Resolved::default(),
        })
    }

    /// Records in the index that the account of storage key `key` has tokens now (after a sign-in
    /// stored them). A provider with only the default account keeps having no index file.
    pub(super) async fn record_account(&self, key: &ProviderName) -> Result<()> {
        let access = self.index_access();
        let key = key.clone();
        blocking(move || access.record(&key)).await
    }

    /// The index of `name` every reader uses (see [`IndexAccess::current`]).
    fn load_index(&self, name: &ProviderName) -> Result<AccountIndex> {
        self.index_access().current(name, false)
    }

    pub(super) fn index_access(&self) -> IndexAccess {
        IndexAccess {
            tokens_dir: storage::HomeLayout::new(&self.home).tokens_dir(),
            lock_dir: self.lock_dir.clone(),
            lock_timeout: self.lock_timeout,
            store: std::sync::Arc::clone(&self.store),
        }
    }
}

/// What reading and changing an account index needs; cheap to clone, so it can run off the async
/// threads.
#[derive(Clone)]
pub(super) struct IndexAccess {
    tokens_dir: std::path::PathBuf,
    lock_dir: std::path::PathBuf,
    lock_timeout: std::time::Duration,
    store: std::sync::Arc<dyn storage::TokenStore>,
}

impl IndexAccess {
    /// The index of `name` as every reader sees it: its file, or without one the index rebuilt
    /// from the records in the token directory; then the accounts with records the file misses.
    /// Its default account is one of its accounts (or `default` when it has none): a file saying
    /// otherwise is refused as corrupt.
    ///
    /// Without a file and without a record under the bare name, the store is asked whether the
    /// default account has tokens (a store that keeps them elsewhere than in files) when
    /// `ask_store` or another account has a record (the answer can change the default then);
    /// otherwise no store is read.
    fn current(&self, name: &ProviderName, ask_store: bool) -> Result<AccountIndex> {
        let found = AccountIndex::rebuild(&self.tokens_dir, name).map_err(storage_error)?;
        let loaded = AccountIndex::load(&self.tokens_dir, name).map_err(storage_error)?;
        Ok(self.combined(name, &found, loaded, ask_store))
    }

    /// [`current`](Self::current)'s index from the rebuilt one (`found`) and the file's
    /// (`loaded`).
    fn combined(
        &self,
        name: &ProviderName,
        found: &AccountIndex,
        loaded: Option<AccountIndex>,
        ask_store: bool,
    ) -> AccountIndex {
        let mut index = match loaded {
            Some(index) => index,
            None => {
                let default = found.contains(&AccountName::default())
                    || ((ask_store || !found.names().is_empty()) && self.default_signed_in(name));
                AccountIndex::implicit(default)
            }
        };
        for account in found.names() {
            index.add(account.clone());
        }
        index
    }

    /// The default account of `name`: [`current`](Self::current)`(name, false)`'s, with one
    /// shortcut giving the same answer. Without an index file, a token file under the bare name
    /// makes the rebuilt index hold the `default` account first, so `default` is the default
    /// whatever else the directory holds ([`AccountIndex::bare_record_listed`]): the directory is
    /// not listed then. An index file that cannot be read takes `current`'s way (which reports
    /// the same error `current` does, the listing's first).
    fn default_account(&self, name: &ProviderName) -> Result<AccountName> {
        let loaded = match AccountIndex::load(&self.tokens_dir, name) {
            Ok(None) if AccountIndex::bare_record_listed(&self.tokens_dir, name) => {
                return Ok(AccountName::default());
            }
            Ok(loaded) => loaded,
            Err(_) => return Ok(self.current(name, false)?.default_account().clone()),
        };
        let found = AccountIndex::rebuild(&self.tokens_dir, name).map_err(storage_error)?;
        Ok(self
            .combined(name, &found, loaded, false)
            .default_account()
            .clone())
    }

    /// See [`OAuthService::record_account`]: the account of `key` is added (the default when it is
    /// the first).
    fn record(&self, key: &ProviderName) -> Result<()> {
        let account = match key.account_part() {
            Some(part) => AccountName::new(part).map_err(storage_error)?,
            None => AccountName::default(),
        };
        self.update(key, |index| {
            index.add(account);
        })
    }

    /// Removes `target`'s account from the index (after a logout deleted its tokens); the
    /// provider's default account afterwards (the first remaining one when it was the default).
    pub(super) fn forget(&self, target: &ProviderRef) -> Result<AccountName> {
        let mut after = AccountName::default();
        self.update(target.name(), |index| {
            index.remove(target.account());
            after = index.default_account().clone();
        })?;
        Ok(after)
    }

    /// Whether the default account has tokens under the bare name (an unreadable record counts:
    /// it is still there).
    fn default_signed_in(&self, name: &ProviderName) -> bool {
        !matches!(
            self.store.load(&name.with_account(&AccountName::default())),
            Ok(None)
        )
    }

    /// Applies `change` to `name`'s index under its accounts lock and saves it. The index it starts
    /// from is read under the lock ([`current`](Self::current)): the records present then say
    /// which accounts are signed in, so a logout that deleted an account's tokens before taking
    /// the lock is seen, and no index names a default without tokens. An index left saying no
    /// more than the absence of the file says (the `default` account alone, or nothing) is
    /// removed.
    fn update(&self, name: &ProviderName, change: impl FnOnce(&mut AccountIndex)) -> Result<()> {
        let base = name.with_account(&AccountName::default());
        let _lock = ProviderLock::acquire_kind(
            &self.lock_dir,
            &base,
            LockKind::Accounts,
            self.lock_timeout,
        )
        .map_err(storage_error)?;
        let mut index = self.current(&base, true)?;
        change(&mut index);
        if index.is_implicit() {
            return AccountIndex::implicit(false)
                .save(&self.tokens_dir, &base)
                .map_err(storage_error);
        }
        index.save(&self.tokens_dir, &base).map_err(storage_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: &str) -> AuthorizationServerMetadata {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_identity_prompt_is_one_the_server_understands() {
        let github = OAuthProvider::github();
        assert_eq!(identity_prompt(&github, None), Some("select_account"));
        let mut plain = OAuthProvider::atlassian();
        plain.scopes = vec!["read:me".to_owned()];
        assert_eq!(identity_prompt(&plain, None), None);
        let mut oidc = plain.clone();
        oidc.scopes.push("openid".to_owned());
        assert_eq!(identity_prompt(&oidc, None), Some("login"));
        // Metadata decides when it lists the values.
        let listed = metadata(
            r#"{"issuer": "https://as.example", "prompt_values_supported": ["none", "login", "select_account"]}"#,
        );
        assert_eq!(
            identity_prompt(&plain, Some(&listed)),
            Some("select_account")
        );
        let login_only =
            metadata(r#"{"issuer": "https://as.example", "prompt_values_supported": ["login"]}"#);
        assert_eq!(identity_prompt(&github, Some(&login_only)), Some("login"));
        let neither =
            metadata(r#"{"issuer": "https://as.example", "prompt_values_supported": ["consent"]}"#);
        assert_eq!(identity_prompt(&oidc, Some(&neither)), None);
        // oidc-provider lists no prompt values, but is an OpenID Provider.
        let op = metadata(r#"{"issuer": "https://as.example", "scopes_supported": ["openid"]}"#);
        assert_eq!(identity_prompt(&plain, Some(&op)), Some("login"));
    }

    #[test]
    fn another_name_keeps_the_same_account() -> std::result::Result<(), storage::Error> {
        let idp = ProviderName::for_server("https://idp.example")?;
        let server = ProviderName::for_server("https://mcp.example/mcp")?;
        let work = server.with_account(&AccountName::new("work")?);
        assert_eq!(
            same_account(&idp, &work),
            idp.with_account(&AccountName::new("work")?)
        );
        assert_eq!(same_account(&idp, &server), idp);
        Ok(())
    }

    /// A store that notes each read of the bare name's tokens (the default account's) made while
    /// nobody held the provider's accounts lock.
    struct LockProbe {
        inner: storage::MemoryStore,
        lock_dir: std::path::PathBuf,
        unlocked_reads: std::sync::atomic::AtomicUsize,
    }

    impl storage::TokenStore for LockProbe {
        fn save(
            &self,
            provider: &ProviderName,
            tokens: &crate::OAuthTokens,
        ) -> storage::Result<()> {
            self.inner.save(provider, tokens)
        }
        fn load(&self, provider: &ProviderName) -> storage::Result<Option<crate::OAuthTokens>> {
            if provider.account_part().is_none() {
                let free = ProviderLock::acquire_kind(
                    &self.lock_dir,
                    provider,
                    LockKind::Accounts,
                    std::time::Duration::ZERO,
                );
                if free.is_ok() {
                    self.unlocked_reads
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            self.inner.load(provider)
        }
        fn delete(&self, provider: &ProviderName) -> storage::Result<bool> {
            self.inner.delete(provider)
        }
        fn name(&self) -> &'static str {
            "probe"
        }
        fn location(&self, provider: &ProviderName) -> String {
            self.inner.location(provider)
        }
    }

    /// Whether the default account is signed in is decided under the accounts lock, by a sign-in
    /// recording its account and by a logout forgetting one: a logout of `default` deleting its
    /// tokens while a sign-in of another account waits for the lock cannot leave an index whose
    /// default has no tokens.
    /// The default account's shortcut (no listing when the bare name's token file decides it)
    /// answers as the whole index does, in every state of the token directory.
    #[test]
    fn the_default_account_shortcut_answers_as_the_index()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let local = ProviderName::new("local")?;
        /// Files in `tokens/`, the index file's default and accounts if any, the default account.
        type State<'a> = (&'a [&'a str], Option<(&'a str, &'a [&'a str])>, &'a str);
        let states: [State<'_>; 7] = [
            (&[], None, "default"),
            (&["local.json"], None, "default"),
            (
                &["local.json", "local@work.json", "locale.json"],
                None,
                "default",
            ),
            (&["local@work.json"], None, "work"),
            (&["local@work.json", "local@alpha.backend"], None, "alpha"),
            (
                &["local.json", "local@work.json"],
                Some(("work", &["default", "work"])),
                "work",
            ),
            (&["local.json"], Some(("default", &["default"])), "default"),
        ];
        for (files, index, expected) in states {
            let home = tempfile::tempdir()?;
            let tokens_dir = home.path().join("tokens");
            std::fs::create_dir(&tokens_dir)?;
            for file in files {
                std::fs::write(tokens_dir.join(file), "{}")?;
            }
            if let Some((default, accounts)) = index {
                let mut saved = AccountIndex::implicit(false);
                for account in accounts {
                    saved.add(AccountName::new(account)?);
                }
                saved.set_default(AccountName::new(default)?);
                saved.save(&tokens_dir, &local)?;
            }
            let access = IndexAccess {
                tokens_dir: tokens_dir.clone(),
                lock_dir: tokens_dir.clone(),
                lock_timeout: std::time::Duration::from_secs(5),
                store: std::sync::Arc::new(storage::FileStore::new(tokens_dir.clone())),
            };
            let shortcut = access.default_account(&local)?;
            let whole = access.current(&local, false)?;
            assert_eq!(shortcut.as_str(), expected, "{files:?} {index:?}");
            assert_eq!(&shortcut, whole.default_account(), "{files:?} {index:?}");
        }
        // A corrupt index is refused both ways, even with the bare name's token file there.
        let home = tempfile::tempdir()?;
        let tokens_dir = home.path().join("tokens");
        std::fs::create_dir(&tokens_dir)?;
        std::fs::write(tokens_dir.join("local.json"), "{}")?;
        std::fs::write(AccountIndex::path(&tokens_dir, &local), "not json")?;
        let access = IndexAccess {
            tokens_dir: tokens_dir.clone(),
            lock_dir: tokens_dir.clone(),
            lock_timeout: std::time::Duration::from_secs(5),
            store: std::sync::Arc::new(storage::FileStore::new(tokens_dir)),
        };
        assert!(access.default_account(&local).is_err());
        assert!(access.current(&local, false).is_err());
        Ok(())
    }

    #[test]
    fn the_default_is_judged_under_the_accounts_lock()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        use storage::TokenStore as _;
        let home = tempfile::tempdir()?;
        let tokens_dir = home.path().join("tokens");
        let probe = std::sync::Arc::new(LockProbe {
            inner: storage::MemoryStore::new(),
            lock_dir: tokens_dir.clone(),
            unlocked_reads: std::sync::atomic::AtomicUsize::new(0),
        });
        let access = IndexAccess {
            tokens_dir: tokens_dir.clone(),
            lock_dir: tokens_dir.clone(),
            lock_timeout: std::time::Duration::from_secs(5),
            store: probe.clone(),
        };
        let local = ProviderName::new("local")?;
        let work = local.with_account(&AccountName::new("work")?);
        let tokens = crate::OAuthTokens::new(
            crate::AccessToken::new("at"),
            "Bearer",
            std::time::SystemTime::now(),
        );
        // A home of version 0.2 (the default account, no index), and another account signed in.
        probe.save(&local, &tokens)?;
        probe.save(&work, &tokens)?;
        let unlocked = || {
            probe
                .unlocked_reads
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        access.record(&work)?;
        assert_eq!(
            unlocked(),
            0,
            "the sign-in read the default's tokens unlocked"
        );
        let index = AccountIndex::load(&tokens_dir, &local)?;
        assert_eq!(
            index
                .as_ref()
                .map(|i| (i.names().len(), i.default_account().is_default())),
            Some((2, true))
        );
        // The default's logout: forgotten, `work` is the default now.
        probe.delete(&local)?;
        let target = ProviderRef::parse("local")?;
        let after = access.forget(&target)?;
        assert_eq!(after.as_str(), "work");
        // From a home without an index: the default's tokens gone before the sign-in took the
        // lock, the new account is the default (the index names no account without tokens).
        std::fs::remove_file(AccountIndex::path(&tokens_dir, &local))?;
        let other = local.with_account(&AccountName::new("other")?);
        probe.save(&other, &tokens)?;
        access.record(&other)?;
        assert_eq!(unlocked(), 0);
        let index = AccountIndex::load(&tokens_dir, &local)?;
        assert_eq!(
            index.as_ref().map(|i| i.default_account().as_str()),
            Some("other")
        );
        Ok(())
    }

    #[test]
    fn the_prompt_joins_a_configured_one() {
        let mut provider = OAuthProvider::atlassian();
        let config = |p: &OAuthProvider| p.to_config("id", None);
        let prompt = |c: &OAuthConfig| c.provider.extra_auth_params.get("prompt").cloned();
        // Atlassian asks for consent already.
        let joined = with_prompt(&config(&provider), Some("login"));
        assert_eq!(prompt(&joined).as_deref(), Some("consent login"));
        assert_eq!(
            prompt(&with_prompt(&joined, Some("login"))).as_deref(),
            Some("consent login")
        );
        assert_eq!(prompt(&with_prompt(&joined, None)), prompt(&joined));
        provider
            .extra_auth_params
            .insert("prompt".to_owned(), "none".to_owned());
        assert_eq!(
            prompt(&with_prompt(&config(&provider), Some("login"))).as_deref(),
            Some("none")
        );
        provider.extra_auth_params.clear();
        provider.auth_url = "https://as.example/authorize?prompt=consent".to_owned();
        assert_eq!(
            prompt(&with_prompt(&config(&provider), Some("login"))),
            None
        );
    }
}
