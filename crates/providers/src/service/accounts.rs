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
//! logout removes it (a removed default passes to the first remaining account).

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
        let account = self
            .load_index(name)?
            .map(|index| index.default_account().clone())
            .unwrap_or_default();
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

    /// The signed-in accounts of `provider` (a name or an MCP server URL) and its default account,
    /// from its index (`tokens/<provider>.accounts`). Tokens stored under the bare name (every
    /// sign-in of version 0.2 and earlier) are the
    /// [`DEFAULT_ACCOUNT`](storage::DEFAULT_ACCOUNT), listed whether or not an index names it.
    /// Reads the store for those only; no network.
    ///
    /// # Errors
    ///
    /// As [`ProviderRef::parse`]; [`ErrorCode::Storage`] when the index or the store cannot be
    /// read.
    pub fn accounts(&self, provider: &str) -> Result<AccountIndex> {
        let target = ProviderRef::parse(provider)?;
        let default_signed_in = match self.names().load(&target) {
            Ok(tokens) => tokens.is_some(),
            // Unreadable tokens are still the default account's (logout removes them).
            Err(e) if e.code() == ErrorCode::Storage => true,
            Err(e) => return Err(e),
        };
        let mut index = self
            .load_index(target.name())?
            .unwrap_or_else(|| AccountIndex::implicit(false));
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
        let signed_in = self.accounts(provider)?;
        if !signed_in.contains(&account) {
            return Err(Error::new(
                ErrorCode::AuthRequired,
                format!(
                    "account {account} of {} is not signed in",
                    crate::terminal_text(provider)
                ),
            )
            .with_step(NextStep::SignIn {
                provider: provider.to_owned(),
            }));
        }
        let target = ProviderRef::parse(provider)?;
        self.update_index(
            target.name(),
            signed_in.names().contains(&AccountName::default()),
            |index| {
                index.set_default(account);
            },
        )
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

    fn load_index(&self, name: &ProviderName) -> Result<Option<AccountIndex>> {
        self.index_access().load(name)
    }

    fn update_index(
        &self,
        name: &ProviderName,
        default_signed_in: bool,
        change: impl FnOnce(&mut AccountIndex),
    ) -> Result<()> {
        self.index_access().update(name, default_signed_in, change)
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
    fn load(&self, name: &ProviderName) -> Result<Option<AccountIndex>> {
        AccountIndex::load(&self.tokens_dir, name).map_err(storage_error)
    }

    /// See [`OAuthService::record_account`].
    fn record(&self, key: &ProviderName) -> Result<()> {
        let base = key.with_account(&AccountName::default());
        let account = match key.account_part() {
            Some(part) => AccountName::new(part).map_err(storage_error)?,
            None => AccountName::default(),
        };
        if account.is_default() && self.load(&base)?.is_none() {
            return Ok(());
        }
        let default_signed_in = self.default_signed_in(&base);
        self.update(&base, default_signed_in, |index| {
            index.add(account);
        })
    }

    /// Removes `target`'s account from the index (after a logout deleted its tokens); the
    /// provider's default account afterwards (the first remaining one when it was the default).
    pub(super) fn forget(&self, target: &ProviderRef) -> Result<AccountName> {
        let name = target.name();
        let default_signed_in = !target.account().is_default() && self.default_signed_in(name);
        let mut after = AccountName::default();
        self.update(name, default_signed_in, |index| {
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

    /// Applies `change` to `name`'s index under its accounts lock and saves it; a provider without
    /// an index starts from the implicit one (the default account when `default_signed_in`). An
    /// index left saying no more than the absence of the file says is removed.
    fn update(
        &self,
        name: &ProviderName,
        default_signed_in: bool,
        change: impl FnOnce(&mut AccountIndex),
    ) -> Result<()> {
        let _lock =
            ProviderLock::acquire_kind(&self.lock_dir, name, LockKind::Accounts, self.lock_timeout)
                .map_err(storage_error)?;
        let mut index = self
            .load(name)?
            .unwrap_or_else(|| AccountIndex::implicit(default_signed_in));
        change(&mut index);
        if index.is_implicit() {
            return AccountIndex::implicit(false)
                .save(&self.tokens_dir, name)
                .map_err(storage_error);
        }
        index.save(&self.tokens_dir, name).map_err(storage_error)
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
