//! [`OAuthService`]: sign-in, storage, refresh and logout, composed from the member crates.
//!
//! This module holds the service, its builder and the local-only reads; each flow has its own
//! module: `sign_in` (browser), `device_flow` (RFC 8628), `refresh`, `logout` (and revocation),
//! `config` (configuration resolution for every provider), `mcp` (what is specific to an MCP
//! server URL), `resource` (its protected-resource metadata outside a sign-in), `token_endpoint`
//! (client authentication and the form post), `store` (loads, saves, the provider lock, the
//! recovery file), `one_sign_in` (one interactive sign-in per name across processes) and `retry`
//! (transient answers).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use context_harness_storage as storage;
use context_harness_tokens as tokens;

use storage::{StorageMode, TokenStore};
use tokens::{AuthStatus, OAuthTokens};

use crate::app::App;
use crate::browser::{BrowserOpener, SystemBrowser};
use crate::env::Environment;
use crate::error::{Error, ErrorCode, Result, not_signed_in, storage_error};
use crate::http::{Credentials, Http, HttpSettings, Method, ProxyEnv, Request};
use crate::provider::{OAuthConfig, check_endpoint};
use crate::registry::ProviderRegistry;

mod accounts;
mod config;
mod dcr;
mod device_flow;
mod grant_flow;
mod grants;
mod id_jag;
mod idp_sign_in;
mod logout;
mod mcp;
mod namespace;
mod one_sign_in;
mod options;
mod refresh;
mod rejected;
mod resource;
mod retry;
mod sign_in;
mod store;
mod token_endpoint;

use accounts::parse_account;
pub use grants::{GrantOptions, GrantType};
pub use mcp::McpServerRecord;
pub use options::{
    AuthOutcome, AuthenticateOptions, LogoutOutcome, PastedRedirects, Revocation, SignInFlow,
    SignInUi, TokenRevocation,
};

/// The cap of the refresh margin (the Python original's 60 s). Tokens are refreshed when they expire within
/// `min(EXPIRY_BUFFER, half their lifetime)` ([`OAuthTokens::refresh_margin`]), so a token that lives
/// 60 s or less is still used for the first half of its life instead of being refreshed on every use.
pub const EXPIRY_BUFFER: Duration = tokens::DEFAULT_EXPIRY_BUFFER;

/// How long a refresh keeps retrying answers that mean "try again later" (HTTP 429, HTTP 503,
/// `temporarily_unavailable`) before it fails with [`ErrorCode::NetworkError`]. Each wait follows
/// the server's `Retry-After` (at most 10 s), else an exponential back-off with jitter.
pub const REFRESH_RETRY_BUDGET: Duration = retry::REFRESH_RETRY_BUDGET;

/// The key under which the client id a token set belongs to is kept beside the tokens (it is not
/// secret; refresh must use the same client the grant was issued to).
const CLIENT_ID_KEY: &str = "client_id";

/// Builder for [`OAuthService`].
#[must_use]
pub struct OAuthServiceBuilder {
    app: Option<String>,
    app_version: Option<String>,
    client_metadata_url: Option<String>,
    home: Option<PathBuf>,
    env: Option<Environment>,
    store: Option<Arc<dyn TokenStore>>,
    storage_mode: Option<StorageMode>,
    registry: Option<ProviderRegistry>,
    builtin_providers: bool,
    browser: Arc<dyn BrowserOpener>,
    http: HttpSettings,
    lock_dir: Option<PathBuf>,
    lock_timeout: Duration,
    refresh_retry_budget: Duration,
    account: Option<String>,
}

impl fmt::Debug for OAuthServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthServiceBuilder")
            .field("app", &self.app)
            .field("home", &self.home)
            .field("account", &self.account)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl OAuthServiceBuilder {
    context_harness_tokens::builder_setters! {
        /// Signs in as the program `name` instead of context-harness (see [`App`]): its keyring
        /// service, its home `$NAME_HOME` else `~/.name`, its `NAME_STORAGE` variable, its
        /// `User-Agent`, RFC 7591 `client_name` and MCP `clientInfo`. Checked by
        /// [`build`](Self::build): 1 to 64 lowercase ASCII letters, digits and `-`, starting with a
        /// letter.
        pub fn app(name: impl Into<String>) => app = Some(name.into());

        /// The version in the `User-Agent` and the MCP `clientInfo` (default: this crate's
        /// version). Checked by [`build`](Self::build) ([`App::with_version`]).
        pub fn app_version(version: impl Into<String>) => app_version = Some(version.into());

        /// The HTTPS URL of the application's Client ID Metadata Document, the `client_id` at MCP
        /// authorization servers that accept one (default: the application's
        /// `{NAME}_CLIENT_METADATA_URL` variable; see [`App::client_metadata_url`]). Checked by
        /// [`build`](Self::build) ([`App::with_client_metadata_url`]).
        pub fn client_metadata_url(url: impl Into<String>) => client_metadata_url = Some(url.into());

        /// Whether the default registry includes the built-in providers (`github`, `atlassian`;
        /// default `true`). With `false` it holds only what `providers.toml` configures; add
        /// providers in code with [`registry`](Self::registry) and [`ProviderRegistry::insert`].
        /// MCP server URLs need no registry entry either way.
        pub fn builtin_providers(builtins: bool) => builtin_providers = builtins;

        /// The home directory (default: `$CONTEXT_HARNESS_HOME`, else `~/.context-harness`; for an
        /// [`app`](Self::app) `$NAME_HOME`, else `~/.name`).
        pub fn home(home: impl Into<PathBuf>) => home = Some(home.into());

        /// The environment to read `{SERVICE}_CLIENT_ID`/`_SECRET` and the home from (default: the
        /// process environment).
        pub fn environment(env: Environment) => env = Some(env);

        /// The token store (default: `storage::open_store(mode, home)` with
        /// [`storage_mode`](Self::storage_mode)).
        pub fn store(store: Arc<dyn TokenStore>) => store = Some(store);

        /// The storage mode used when no store is given (default: the application's `NAME_STORAGE`
        /// variable, e.g. `CONTEXT_HARNESS_STORAGE`, else `Auto`).
        pub fn storage_mode(mode: StorageMode) => storage_mode = Some(mode);

        /// The provider registry (default: built-ins plus `home/providers.toml`, loaded on first
        /// use).
        pub fn registry(registry: ProviderRegistry) => registry = Some(registry);

        /// The browser opener (default [`SystemBrowser`]).
        pub fn browser(opener: impl BrowserOpener + 'static) => browser = Arc::new(opener);

        /// HTTP timeouts.
        pub fn http_settings(settings: HttpSettings) => http = settings;

        /// Where per-provider refresh locks live (default `storage::HomeLayout::lock_dir`,
        /// `home/tokens`).
        pub fn lock_dir(dir: impl Into<PathBuf>) => lock_dir = Some(dir.into());

        /// How long to wait for another process's refresh (default: request timeout + 30 s).
        pub fn lock_timeout(timeout: Duration) => lock_timeout = timeout;

        /// How long a refresh keeps retrying "try again later" answers (default
        /// [`REFRESH_RETRY_BUDGET`], 30 s). `Duration::ZERO` tries once.
        pub fn refresh_retry_budget(budget: Duration) => refresh_retry_budget = budget;

        /// The account every entry point of the service uses, for every provider (default: each
        /// provider's default account, as its index `tokens/<provider>.accounts` says when the
        /// service first uses it: the first account signed in, or the one made the default with
        /// [`OAuthService::set_default_account`]; for a provider without an index, the one its
        /// stored tokens imply: `default` when signed in, else the first account by name).
        /// Checked by [`build`](Self::build) ([`storage::AccountName`]: 1 to 64 letters, digits,
        /// `.`, `_`, `@`, `+`, `-`, starting with a letter or digit; case-insensitive).
        pub fn account(name: impl Into<String>) => account = Some(name.into());
    }

    /// Builds the service. Cheap: no HTTP client, no registry file read, no network.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigMissing`] if no home is given and none can be derived from the
    /// environment; [`ErrorCode::ConfigInvalid`] for an invalid [`account`](Self::account) name;
    /// [`ErrorCode::Storage`] if the default store cannot be opened, or if the home
    /// directory, one of its directories or `providers.toml` is owned by another user or writable by
    /// group or others (see `storage::check_home`; the hint names the `chmod`/`chown` that fixes it).
    pub fn build(self) -> Result<OAuthService> {
        let app = match &self.app {
            Some(name) => App::new(name)?,
            None => App::default(),
        };
        let app = match &self.app_version {
            Some(version) => app.with_version(version)?,
            None => app,
        };
        let app = match &self.client_metadata_url {
            Some(url) => app.with_client_metadata_url(url)?,
            None => app,
        };
        let account = self.account.as_deref().map(parse_account).transpose()?;
        let env = self.env.unwrap_or_else(Environment::from_process);
        let Some(home) = self.home.or_else(|| app.home_dir(&env)) else {
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                format!("cannot locate the {} home directory", app.name()),
            )
            .with_hint(format!("set {} or HOME", app.home_env())));
        };
        let storage_mode = match (self.storage_mode, env.get(&app.storage_env())) {
            (Some(mode), _) => mode,
            (None, None) => StorageMode::Auto,
            (None, Some(value)) => value.parse().map_err(|e| {
                Error::new(
                    ErrorCode::ConfigInvalid,
                    format!("{}: {e}", app.storage_env()),
                )
            })?,
        };
        // StrictModes: refuse a home (or tokens/, mcp/, ..., providers.toml) another user could write.
        storage::check_home(&home).map_err(storage_error)?;
        let store = match self.store {
            Some(store) => store,
            None => {
                let store = storage::open_store_for(storage_mode, &home, app.keyring_service());
                Arc::from(store.map_err(storage_error)?)
            }
        };
        let registry = OnceLock::new();
        if let Some(r) = self.registry {
            let _ = registry.set(r);
        }
        let lock_timeout = if self.lock_timeout.is_zero() {
            self.http.request_timeout + Duration::from_secs(30)
        } else {
            self.lock_timeout
        };
        let proxy = ProxyEnv::from_env(&env);
        Ok(OAuthService {
            lock_dir: self
                .lock_dir
                .unwrap_or_else(|| storage::HomeLayout::new(&home).lock_dir()),
            home,
            env,
            store,
            registry,
            browser: self.browser,
            http: Arc::new(Http::new(self.http, proxy).with_app(app.clone())),
            app,
            builtin_providers: self.builtin_providers,
            lock_timeout,
            refresh_retry_budget: self.refresh_retry_budget,
            account,
            resolved: accounts::Resolved::default(),
        })
    }
}

/// OAuth 2.1 + PKCE sign-in, token storage, refresh and logout for one user's providers.
///
/// Async methods need a tokio runtime; the sync ones ([`cached_valid_token`](Self::cached_valid_token),
/// [`get_status`](Self::get_status), [`get_tokens`](Self::get_tokens)) need none and never touch the
/// network or build the HTTP client.
///
/// ```no_run
/// use context_harness_providers::{AuthenticateOptions, OAuthService};
///
/// # async fn run() -> Result<(), context_harness_providers::Error> {
/// let service = OAuthService::new()?;
/// if service.cached_valid_token("github")?.is_none() {
///     service.authenticate("github", AuthenticateOptions::new()).await?;
/// }
/// let bearer = service.get_bearer_token("github").await?;
/// // send `Authorization: Bearer {bearer.secret()}`
/// # let _ = bearer;
/// # Ok(())
/// # }
/// ```
pub struct OAuthService {
    app: App,
    builtin_providers: bool,
    home: PathBuf,
    env: Environment,
    store: Arc<dyn TokenStore>,
    registry: OnceLock<ProviderRegistry>,
    browser: Arc<dyn BrowserOpener>,
    http: Arc<Http>,
    lock_dir: PathBuf,
    lock_timeout: Duration,
    refresh_retry_budget: Duration,
    /// The account of [`OAuthServiceBuilder::account`], if one was given.
    account: Option<storage::AccountName>,
    /// The default account each provider resolved to when no account was given (`accounts`).
    resolved: accounts::Resolved,
}

impl fmt::Debug for OAuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthService")
            .field("home", &self.home)
            .field("store", &self.store.name())
            .field("account", &self.account)
            .field("http_client_built", &self.http.is_built())
            .finish_non_exhaustive()
    }
}

impl OAuthService {
    /// The HTTP client of this service.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// A service with every default (process environment, default home and store).
    ///
    /// # Errors
    ///
    /// See [`OAuthServiceBuilder::build`].
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder for a configured service.
    pub fn builder() -> OAuthServiceBuilder {
        OAuthServiceBuilder {
            app: None,
            app_version: None,
            client_metadata_url: None,
            home: None,
            env: None,
            store: None,
            storage_mode: None,
            registry: None,
            builtin_providers: true,
            browser: Arc::new(SystemBrowser),
            http: HttpSettings::default(),
            lock_dir: None,
            lock_timeout: Duration::ZERO,
            refresh_retry_budget: REFRESH_RETRY_BUDGET,
            account: None,
        }
    }

    /// The home directory (tokens, MCP records, registrations, cache, `providers.toml`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The application the service signs in as (context-harness unless
    /// [`OAuthServiceBuilder::app`] said otherwise).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The token store in use.
    pub fn store(&self) -> &dyn TokenStore {
        self.store.as_ref()
    }

    /// The environment snapshot in use.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// Whether the HTTP client has been built (it is built on first network use only).
    pub fn http_client_built(&self) -> bool {
        self.http.is_built()
    }

    /// The provider registry (loads `providers.toml` on first use).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for a malformed `providers.toml`.
    pub fn registry(&self) -> Result<&ProviderRegistry> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let loaded = if self.builtin_providers {
            ProviderRegistry::load(&self.home)?
        } else {
            ProviderRegistry::load_without_builtins(&self.home)?
        };
        Ok(self.registry.get_or_init(|| loaded))
    }

    /// The provider with its credentials resolved (call arg, `{SERVICE}_CLIENT_ID`, configuration).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`], [`ErrorCode::ConfigMissing`], [`ErrorCode::ConfigInvalid`].
    pub fn resolve_config(&self, provider: &str, client_id: Option<&str>) -> Result<OAuthConfig> {
        self.registry()?.resolve(provider, client_id, &self.env)
    }

    /// Where `provider`'s tokens are (or would be) stored, for people.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for a name that cannot be a provider name.
    pub fn storage_location(&self, provider: &str) -> Result<String> {
        Ok(self.store.location(self.target(provider)?.storage_key()))
    }

    /// The stored tokens if the access token is still valid beyond its refresh margin
    /// (`min(`[`EXPIRY_BUFFER`]`, half its lifetime)`): the fast path for `mcp token`. Reads the
    /// store only: no runtime, no HTTP client, no registry.
    ///
    /// `Ok(None)` means "use [`ensure_valid_token`](Self::ensure_valid_token)" (not signed in,
    /// expired, or DPoP-bound tokens whose key is not stored).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for an invalid name; [`ErrorCode::Storage`] if the store fails.
    pub fn cached_valid_token(&self, provider: &str) -> Result<Option<OAuthTokens>> {
        let target = self.target(provider)?;
        let tokens = self.names().load(&target)?;
        if let Some(tokens) = &tokens {
            mcp::check_tokens_server(&target, tokens)?;
        }
        // Tokens that lost their DPoP key are not valid either: the slow path says why.
        Ok(tokens.filter(|t| {
            !t.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER) && !crate::dpop::lost_key(t)
        }))
    }

    /// The stored tokens, whatever their state (the Python original's `get_tokens`).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthRequired`] when none are stored; [`ErrorCode::Storage`].
    pub fn get_tokens(&self, provider: &str) -> Result<OAuthTokens> {
        let target = self.target(provider)?;
        match self.names().load(&target)? {
            Some(tokens) => {
                mcp::check_tokens_server(&target, &tokens)?;
                Ok(tokens)
            }
            None => Err(not_signed_in(&target)),
        }
    }

    /// The authentication status: not authenticated, authenticated, expired (within the refresh
    /// margin, `min(60 s, half the lifetime)`), or refresh failed (the server refused the refresh
    /// token).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for an invalid name; [`ErrorCode::Storage`].
    pub fn get_status(&self, provider: &str) -> Result<AuthStatus> {
        let target = self.target(provider)?;
        Ok(match self.names().load(&target)? {
            None => AuthStatus::NotAuthenticated,
            Some(tokens) => {
                mcp::check_tokens_server(&target, &tokens)?;
                tokens.status_at(SystemTime::now(), tokens.refresh_margin(EXPIRY_BUFFER))
            }
        })
    }

    /// Sends a GET to `url` with a valid token (refreshing first if needed) and returns the status
    /// and body: `Authorization: Bearer` (RFC 6750 §2.1), or for a DPoP-bound token
    /// `Authorization: DPoP` with a fresh proof (RFC 9449 §7.1), sent once more with the server's
    /// nonce when it asks for one (§9). Used by the examples and for `resources_url`.
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token), plus [`ErrorCode::ConfigInvalid`] for a
    /// non-HTTPS URL and [`ErrorCode::NetworkError`]/[`ErrorCode::Timeout`].
    pub async fn get_with_token(&self, provider: &str, url: &str) -> Result<(u16, Vec<u8>)> {
        let url = check_endpoint(url, "url")?;
        let tokens = self.ensure_valid_token(provider).await?;
        let token = tokens.access_token.secret();
        let Some(key) = crate::dpop::DpopKey::from_tokens(&tokens) else {
            let request = Request {
                credentials: Some(Credentials::Bearer(token)),
                ..Request::new(Method::Get, &url)
            };
            let raw = self.http.fetch(request, "API", None).await?;
            return Ok((raw.status, raw.body));
        };
        let raw = crate::dpop::send_with_proof(&key, "GET", &url, Some(token), |proof| {
            let url = &url;
            async move {
                let request = Request {
                    credentials: Some(Credentials::Dpop {
                        token,
                        proof: &proof,
                    }),
                    ..Request::new(Method::Get, url)
                };
                self.http.fetch(request, "API", None).await
            }
        })
        .await?;
        Ok((raw.status, raw.body))
    }
}

/// Runs a public entry point's `work` and names `provider` in its error, with the code's default
/// hint or next step when it has none (see `Error::for_provider`); every entry point taking a
/// provider reports its errors this way.
async fn for_provider<T>(provider: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
    work.await.map_err(|e| e.for_provider(provider))
}
