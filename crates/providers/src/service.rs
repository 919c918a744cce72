//! [`OAuthService`]: sign-in, storage, refresh and logout, composed from the member crates.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use context_harness_callback_server as callback;
use context_harness_pkce as pkce;
use context_harness_storage as storage;
use context_harness_tokens as tokens;

use storage::{ProviderLock, ProviderName, StorageMode, TokenStore};
use tokens::{AccessToken, AuthStatus, OAuthTokens, ResponseError};
use url::Url;

use crate::browser::{BrowserOpener, SystemBrowser};
use crate::env::Environment;
use crate::error::{Error, ErrorCode, Result, SERVER_TROUBLE_HINT};
use crate::http::{Http, HttpSettings, ProxyEnv};
use crate::provider::{OAuthConfig, RevocationStyle, TokenAuthMethod, check_endpoint};
use crate::registry::ProviderRegistry;

mod device_flow;
mod mcp;
mod retry;

pub use device_flow::SignInFlow;
pub use mcp::McpServerRecord;
pub(crate) use mcp::canonical_server_url;

/// The cap of the refresh margin (the seed's 60 s). Tokens are refreshed when they expire within
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

/// Redirect URLs pasted by the user, one message per paste, in order; closed at the end of input.
/// Each is checked like a request to the loopback listener; one that fails the checks is reported
/// (see [`AuthenticateOptions::on_rejected_paste`]) and the sign-in keeps waiting.
pub type PastedRedirects = tokio::sync::mpsc::Receiver<String>;

/// Lines pasted within this time of each other are one paste (a wrapped URL).
const PASTE_CONTINUATION: Duration = Duration::from_millis(150);

/// A paste longer than this is not joined with further lines.
const MAX_PASTE_BYTES: usize = 16 * 1024;

/// Called with the reason when a pasted redirect URL is not accepted (the sign-in goes on).
pub type RejectedPasteHandler = Arc<dyn Fn(&Error) + Send + Sync>;

/// Called with the authorization URL and the error when the browser could not be opened.
pub type BrowserErrorHandler = Arc<dyn Fn(&str, &io::Error) + Send + Sync>;

/// Options for [`OAuthService::authenticate`].
///
/// ```
/// use std::time::Duration;
/// use context_harness_providers::AuthenticateOptions;
///
/// let options = AuthenticateOptions::new()
///     .client_id("my-client")
///     .scopes(["repo"])
///     .timeout(Duration::from_secs(120));
/// # let _ = options;
/// ```
#[non_exhaustive]
pub struct AuthenticateOptions {
    /// Client id; wins over `{SERVICE}_CLIENT_ID` and the configuration.
    pub client_id: Option<String>,
    /// Scopes to request instead of the provider's defaults.
    pub scopes: Option<Vec<String>>,
    /// Loopback ports to try instead of the provider's.
    pub ports: Option<Vec<u16>>,
    /// How long to wait for the user: for the browser to come back, or for the device-flow
    /// approval (within the device code's own lifetime). Default 300 s.
    pub timeout: Duration,
    /// Opener for this sign-in, instead of the service's.
    pub browser: Option<Arc<dyn BrowserOpener>>,
    /// Called when the opener fails, with the URL to show; default: a `tracing` warning with the URL.
    pub on_browser_error: Option<BrowserErrorHandler>,
    /// Redirect URLs pasted by the user, raced against the loopback listener (for `--no-browser`).
    pub pasted_redirects: Option<PastedRedirects>,
    /// Told why a pasted redirect URL was not accepted; default: a `tracing` warning.
    pub on_rejected_paste: Option<RejectedPasteHandler>,
    /// Browser (default) or device authorization grant (RFC 8628).
    pub flow: SignInFlow,
    /// Shows the device flow's user code and verification URI; default: a `tracing` warning.
    pub device_prompt: Option<crate::device::DevicePrompt>,
    /// The device flow's clock (tests inject a fake one); default: tokio's timer.
    pub device_clock: Option<Arc<dyn crate::device::DeviceClock>>,
    /// For an MCP server URL: leave out the RFC 8707 `resource` parameter (for authorization
    /// servers that answer `invalid_target` to it). Remembered in the server's record, so refresh
    /// leaves it out too; a later sign-in without it sends `resource` again.
    pub no_resource: bool,
}

impl Default for AuthenticateOptions {
    fn default() -> Self {
        Self {
            client_id: None,
            scopes: None,
            ports: None,
            timeout: Duration::from_secs(300),
            browser: None,
            on_browser_error: None,
            pasted_redirects: None,
            on_rejected_paste: None,
            no_resource: false,
            flow: SignInFlow::Browser,
            device_prompt: None,
            device_clock: None,
        }
    }
}

impl fmt::Debug for AuthenticateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateOptions")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("ports", &self.ports)
            .field("timeout", &self.timeout)
            .field("browser", &self.browser.is_some())
            .field("pasted_redirects", &self.pasted_redirects.is_some())
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl AuthenticateOptions {
    /// The defaults: configured client id and scopes, provider ports, 300 s, the service's opener.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the client id.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Replaces the requested scopes.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the loopback ports to try.
    #[must_use]
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = Some(ports.into_iter().collect());
        self
    }

    /// Sets how long to wait for the callback.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses `opener` for this sign-in.
    #[must_use]
    pub fn browser(mut self, opener: impl BrowserOpener + 'static) -> Self {
        self.browser = Some(Arc::new(opener));
        self
    }

    /// Calls `handler(url, error)` when the browser cannot be opened.
    #[must_use]
    pub fn on_browser_error(
        mut self,
        handler: impl Fn(&str, &io::Error) + Send + Sync + 'static,
    ) -> Self {
        self.on_browser_error = Some(Arc::new(handler));
        self
    }

    /// Chooses the browser flow or the device authorization grant.
    #[must_use]
    pub fn flow(mut self, flow: SignInFlow) -> Self {
        self.flow = flow;
        self
    }

    /// Calls `prompt` with the device flow's user code and verification URI (show them to the user).
    #[must_use]
    pub fn device_prompt(
        mut self,
        prompt: impl Fn(&crate::device::DeviceAuthorization) + Send + Sync + 'static,
    ) -> Self {
        self.device_prompt = Some(Arc::new(prompt));
        self
    }

    /// Uses `clock` for the device flow's polling (tests).
    #[must_use]
    pub fn device_clock(mut self, clock: impl crate::device::DeviceClock + 'static) -> Self {
        self.device_clock = Some(Arc::new(clock));
        self
    }

    /// Races the redirect URLs received on `pasted` (typed by the user) against the loopback
    /// listener. Each is normalised as people paste (surrounding quotes or angle brackets, line
    /// breaks and spaces from terminal wrapping: RFC 3986 Appendix C) and then checked exactly like
    /// a callback; the first that passes wins.
    #[must_use]
    pub fn pasted_redirects(mut self, pasted: PastedRedirects) -> Self {
        self.pasted_redirects = Some(pasted);
        self
    }

    /// Leaves out the RFC 8707 `resource` parameter for an MCP server URL (see
    /// [`no_resource`](Self::no_resource)).
    #[must_use]
    pub fn without_resource(mut self, no_resource: bool) -> Self {
        self.no_resource = no_resource;
        self
    }

    /// Sets what is told the reason when a pasted redirect URL is not accepted.
    #[must_use]
    pub fn on_rejected_paste(mut self, handler: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_rejected_paste = Some(Arc::new(handler));
        self
    }
}

/// The result of a successful [`OAuthService::authenticate`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthOutcome {
    /// The stored tokens.
    pub tokens: OAuthTokens,
    /// The redirect URI that was used (shows which port was bound).
    pub redirect_uri: String,
    /// Ports tried before the bound one, because they were busy (report them: the app registration
    /// must allow the fallback port's redirect URI).
    pub skipped_ports: Vec<u16>,
    /// The store backend's name (`"keyring"`, `"file"`, `"memory"`).
    pub store: &'static str,
    /// Where the tokens were stored, for people (never the tokens themselves).
    pub location: String,
}

/// What [`OAuthService::logout`] did at the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The server confirmed revocation.
    Revoked,
    /// Revocation was not attempted: no endpoint, no secret for GitHub, or local-only logout.
    NotAttempted {
        /// Why, for people (may include where to revoke by hand).
        reason: String,
    },
    /// Revocation was attempted and failed; local tokens were deleted anyway.
    Failed {
        /// What went wrong (no secrets).
        message: String,
    },
}

/// The result of [`OAuthService::logout`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogoutOutcome {
    /// What happened at the server, in sum: [`Revocation::Revoked`] when every token was revoked,
    /// [`Revocation::Failed`] when any revocation failed (the first failure), else
    /// [`Revocation::NotAttempted`].
    pub revocation: Revocation,
    /// One entry per token revoked or attempted (the refresh token, then the access token): RFC 7009
    /// §2.1 does not promise that revoking one revokes the other, so each is attempted even if the
    /// other fails. Empty when revocation was not attempted at all.
    pub tokens: Vec<TokenRevocation>,
    /// Whether stored tokens existed and were deleted.
    pub deleted: bool,
}

/// The revocation of one token at logout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRevocation {
    /// Which token: `"refresh token"` or `"access token"`.
    pub token: &'static str,
    /// What happened to it.
    pub result: Revocation,
}

/// Builder for [`OAuthService`].
#[must_use]
pub struct OAuthServiceBuilder {
    home: Option<PathBuf>,
    env: Option<Environment>,
    store: Option<Arc<dyn TokenStore>>,
    storage_mode: StorageMode,
    registry: Option<ProviderRegistry>,
    browser: Arc<dyn BrowserOpener>,
    http: HttpSettings,
    lock_dir: Option<PathBuf>,
    lock_timeout: Duration,
    refresh_retry_budget: Duration,
}

impl fmt::Debug for OAuthServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthServiceBuilder")
            .field("home", &self.home)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl OAuthServiceBuilder {
    /// The context-harness home (default: `$CONTEXT_HARNESS_HOME`, else `~/.context-harness`).
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// The environment to read `{SERVICE}_CLIENT_ID`/`_SECRET` and the home from (default: the
    /// process environment).
    pub fn environment(mut self, env: Environment) -> Self {
        self.env = Some(env);
        self
    }

    /// The token store (default: `storage::open_store(mode, home)` with [`storage_mode`](Self::storage_mode)).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The storage mode used when no store is given (default `Auto`).
    pub fn storage_mode(mut self, mode: StorageMode) -> Self {
        self.storage_mode = mode;
        self
    }

    /// The provider registry (default: built-ins plus `home/providers.toml`, loaded on first use).
    pub fn registry(mut self, registry: ProviderRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The browser opener (default [`SystemBrowser`]).
    pub fn browser(mut self, opener: impl BrowserOpener + 'static) -> Self {
        self.browser = Arc::new(opener);
        self
    }

    /// HTTP timeouts.
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// Where per-provider refresh locks live (default `storage::tokens_dir(home)`).
    pub fn lock_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lock_dir = Some(dir.into());
        self
    }

    /// How long to wait for another process's refresh (default: request timeout + 30 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a refresh keeps retrying "try again later" answers (default
    /// [`REFRESH_RETRY_BUDGET`], 30 s). `Duration::ZERO` tries once.
    pub fn refresh_retry_budget(mut self, budget: Duration) -> Self {
        self.refresh_retry_budget = budget;
        self
    }

    /// Builds the service. Cheap: no HTTP client, no registry file read, no network.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigMissing`] if no home is given and none can be derived from the
    /// environment; [`ErrorCode::Storage`] if the default store cannot be opened, or if the home
    /// directory, one of its directories or `providers.toml` is owned by another user or writable by
    /// group or others (see `storage::check_home`; the hint names the `chmod`/`chown` that fixes it).
    pub fn build(self) -> Result<OAuthService> {
        let env = self.env.unwrap_or_else(Environment::from_process);
        let Some(home) = self.home.or_else(|| env.home_dir()) else {
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                "cannot locate the context-harness home directory",
            )
            .with_hint("set CONTEXT_HARNESS_HOME or HOME"));
        };
        // StrictModes: refuse a home (or tokens/, mcp/, ..., providers.toml) another user could write.
        storage::check_home(&home).map_err(storage_error)?;
        let store = match self.store {
            Some(store) => store,
            None => {
                Arc::from(storage::open_store(self.storage_mode, &home).map_err(storage_error)?)
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
            lock_dir: self.lock_dir.unwrap_or_else(|| storage::tokens_dir(&home)),
            home,
            env,
            store,
            registry,
            browser: self.browser,
            http: Arc::new(Http::new(self.http, proxy)),
            lock_timeout,
            refresh_retry_budget: self.refresh_retry_budget,
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
    home: PathBuf,
    env: Environment,
    store: Arc<dyn TokenStore>,
    registry: OnceLock<ProviderRegistry>,
    browser: Arc<dyn BrowserOpener>,
    http: Arc<Http>,
    lock_dir: PathBuf,
    lock_timeout: Duration,
    refresh_retry_budget: Duration,
}

impl fmt::Debug for OAuthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthService")
            .field("home", &self.home)
            .field("store", &self.store.name())
            .field("http_client_built", &self.http.is_built())
            .finish_non_exhaustive()
    }
}

/// What a token request is for (changes how errors are classified).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    Exchange,
    Refresh,
}

impl OAuthService {
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
            home: None,
            env: None,
            store: None,
            storage_mode: StorageMode::Auto,
            registry: None,
            browser: Arc::new(SystemBrowser),
            http: HttpSettings::default(),
            lock_dir: None,
            lock_timeout: Duration::ZERO,
            refresh_retry_budget: REFRESH_RETRY_BUDGET,
        }
    }

    /// The context-harness home directory.
    pub fn home(&self) -> &Path {
        &self.home
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

    /// A `reqwest` client builder for other HTTP traffic of the program (e.g. an MCP proxy), set up
    /// as this service's own clients: rustls with the `ring` provider, the proxies of the service's
    /// [`Environment`] (`HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`, never the process
    /// environment read behind its back) with loopback destinations always direct (issue 13 item
    /// 5), the [`HttpSettings::connect_timeout`], no redirects and the context-harness user agent.
    ///
    /// It sets no overall request timeout (the caller may stream answers) and no SSRF policy.
    /// Report a transport failure with [`tls_trust_failure`](crate::tls_trust_failure) first, so an
    /// untrusted certificate is named as such.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        self.http.builder()
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
        let loaded = ProviderRegistry::load(&self.home)?;
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
        Ok(self.store.location(&provider_name(provider)?))
    }

    // ---------------------------------------------------------------------------------------------
    // Sync, local-only operations.

    /// The stored tokens if the access token is still valid beyond its refresh margin
    /// (`min(`[`EXPIRY_BUFFER`]`, half its lifetime)`): the fast path for `mcp token`. Reads the
    /// store only: no runtime, no HTTP client, no registry.
    ///
    /// `Ok(None)` means "use [`ensure_valid_token`](Self::ensure_valid_token)" (not signed in, or
    /// expired).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for an invalid name; [`ErrorCode::Storage`] if the store fails.
    pub fn cached_valid_token(&self, provider: &str) -> Result<Option<OAuthTokens>> {
        let name = provider_name(provider)?;
        let tokens = load_newest(self.store.as_ref(), &self.recovery_path(&name), &name)?;
        if let Some(tokens) = &tokens {
            mcp::check_tokens_server(provider, tokens)?;
        }
        Ok(tokens.filter(|t| !t.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER)))
    }

    /// The stored tokens, whatever their state (the seed's `get_tokens`).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthRequired`] when none are stored; [`ErrorCode::Storage`].
    pub fn get_tokens(&self, provider: &str) -> Result<OAuthTokens> {
        let name = provider_name(provider)?;
        match load_newest(self.store.as_ref(), &self.recovery_path(&name), &name)? {
            Some(tokens) => {
                mcp::check_tokens_server(provider, &tokens)?;
                Ok(tokens)
            }
            None => Err(not_signed_in(provider)),
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
        let name = provider_name(provider)?;
        Ok(
            match load_newest(self.store.as_ref(), &self.recovery_path(&name), &name)? {
                None => AuthStatus::NotAuthenticated,
                Some(tokens) => {
                    tokens.status_at(SystemTime::now(), tokens.refresh_margin(EXPIRY_BUFFER))
                }
            },
        )
    }

    /// Deletes the stored tokens without contacting the server. Returns whether any existed.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`].
    pub fn logout_local(&self, provider: &str) -> Result<bool> {
        let name = provider_name(provider)?;
        // Under the refresh lock, like `logout`: a refresh in flight cannot bring the tokens back.
        let _lock = self.lock_blocking(&name)?;
        let recovered = remove_recovery(&self.recovery_path(&name))?;
        Ok(self.store.delete(&name).map_err(storage_error)? || recovered)
    }

    // ---------------------------------------------------------------------------------------------
    // Async operations.

    /// Runs the browser sign-in: PKCE S256 and `state`, loopback listener bound first, browser opened,
    /// callback checked (state, RFC 9207 `iss`), code exchanged, tokens stored.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigMissing`]/[`ErrorCode::ConfigInvalid`]/[`ErrorCode::NotFound`] before
    /// anything starts; [`ErrorCode::AuthCancelled`] when the user denies; [`ErrorCode::Timeout`]
    /// when no callback comes; [`ErrorCode::AuthFailed`] for a refused code or a mix-up;
    /// [`ErrorCode::NetworkError`]; [`ErrorCode::Storage`].
    pub async fn authenticate(
        &self,
        provider: &str,
        options: AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        self.authenticate_inner(provider, options)
            .await
            .map_err(|e| e.for_provider(provider))
    }

    async fn authenticate_inner(
        &self,
        provider: &str,
        mut options: AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        let name = provider_name(provider)?;
        let prepared = self
            .prepare_sign_in(
                provider,
                options.client_id.as_deref(),
                options.ports.as_deref(),
                options.no_resource,
            )
            .await?;
        if self.use_device_flow(provider, &prepared.config, options.flow)? {
            let result = self
                .authenticate_device(
                    provider,
                    &name,
                    &prepared.config,
                    prepared.record.as_ref(),
                    &options,
                )
                .await;
            return match result {
                Err(e) if prepared.dynamic_issuer.is_some() && mcp::is_invalid_client(&e) => {
                    let config = self
                        .reregister(provider, &prepared, options.ports.as_deref())
                        .await?;
                    self.authenticate_device(
                        provider,
                        &name,
                        &config,
                        prepared.record.as_ref(),
                        &options,
                    )
                    .await
                }
                other => other,
            };
        }
        match self
            .browser_sign_in(
                provider,
                &name,
                &prepared.config,
                prepared.record.as_ref(),
                &mut options,
            )
            .await
        {
            Err(e) if prepared.dynamic_issuer.is_some() && mcp::is_invalid_client(&e) => {
                let config = self
                    .reregister(provider, &prepared, options.ports.as_deref())
                    .await?;
                self.browser_sign_in(
                    provider,
                    &name,
                    &config,
                    prepared.record.as_ref(),
                    &mut options,
                )
                .await
            }
            other => other,
        }
    }

    /// The browser flow with a resolved configuration.
    async fn browser_sign_in(
        &self,
        provider: &str,
        name: &ProviderName,
        config: &OAuthConfig,
        record: Option<&McpServerRecord>,
        options: &mut AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        let p = &config.provider;
        let auth_url = check_endpoint(&p.auth_url, &format!("providers.{provider}.auth_url"))?;
        let token_url = check_endpoint(&p.token_url, &format!("providers.{provider}.token_url"))?;

        let pkce = if p.pkce {
            Some(pkce::PkceChallenge::generate().map_err(|e| {
                Error::new(ErrorCode::AuthFailed, "cannot generate the PKCE verifier")
                    .with_source(e)
            })?)
        } else {
            None
        };
        let state = pkce::State::generate().map_err(|e| {
            Error::new(ErrorCode::AuthFailed, "cannot generate the state").with_source(e)
        })?;

        // Bind first, so the redirect URI (and its port) is known before the browser opens.
        let mut cb = callback::CallbackConfig::default();
        cb.ports = options.ports.clone().unwrap_or_else(|| p.ports.clone());
        cb.host = p.redirect_host;
        cb.path.clone_from(&p.redirect_path);
        cb.timeout = options.timeout;
        let server = callback::CallbackServer::bind(cb)
            .await
            .map_err(callback_error)?;
        let redirect_uri = server.redirect_uri().to_owned();
        let mut skipped_ports: Vec<u16> = server.skipped_ports().iter().map(|a| a.port).collect();
        skipped_ports.dedup();

        let scopes = options.scopes.clone().unwrap_or_else(|| p.scopes.clone());
        let url = authorization_url(
            &auth_url,
            config,
            &redirect_uri,
            &scopes,
            &state,
            pkce.as_ref(),
        );
        tracing::info!(provider, redirect_uri = %redirect_uri, "waiting for the authorization callback");

        let opener = options
            .browser
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.browser));
        let url_for_opener = url.to_string();
        // The opener runs beside the listener: a text browser named in $BROWSER (lynx, w3m, curl)
        // runs in the foreground until it exits, and its request to the callback must be answered
        // meanwhile.
        let mut opening = tokio::task::spawn_blocking(move || opener.open(&url_for_opener));
        let mut opener_done = false;
        // Build the HTTP client (it loads the system TLS roots: tens of ms) while the user is in the
        // browser, so the code exchange after the callback does not wait for it.
        let http = Arc::clone(&self.http);
        drop(tokio::task::spawn_blocking(move || http.prewarm()));

        // RFC 9207 §2.4: an error response is checked against the issuer too before it is acted on.
        let to_error = |e: callback::Error| {
            let iss = match &e {
                callback::Error::Cancelled { iss, .. }
                | callback::Error::Authorization { iss, .. } => Some(iss.as_deref()),
                _ => None,
            };
            match iss.map(|iss| {
                check_callback_issuer(iss, p.issuer.as_deref(), p.iss_parameter_supported)
            }) {
                Some(Err(mix_up)) => mix_up,
                _ => callback_error(e),
            }
        };
        let wait = server.wait(&state);
        tokio::pin!(wait);
        let mut pasted = options.pasted_redirects.take();
        let response = loop {
            tokio::select! {
                result = &mut wait => break result.map_err(to_error)?,
                opened = &mut opening, if !opener_done => {
                    opener_done = true;
                    let opened = opened.unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
                    if let Err(e) = opened {
                        match &options.on_browser_error {
                            Some(handler) => handler(url.as_str(), &e),
                            None => tracing::warn!(
                                error = %e,
                                "could not open a browser; open this URL to sign in: {url}"
                            ),
                        }
                    }
                }
                line = async {
                    match pasted.as_mut() {
                        Some(lines) => lines.recv().await,
                        None => std::future::pending().await,
                    }
                }, if pasted.is_some() => {
                    let Some(first) = line else {
                        // End of input: the listener alone answers.
                        pasted = None;
                        continue;
                    };
                    // A terminal hands a wrapped URL over as several lines at once: the lines
                    // that follow within a moment are part of the same paste.
                    let mut batch = vec![first];
                    if let Some(lines) = pasted.as_mut() {
                        while batch.iter().map(String::len).sum::<usize>() < MAX_PASTE_BYTES {
                            match tokio::time::timeout(PASTE_CONTINUATION, lines.recv()).await {
                                Ok(Some(more)) => batch.push(more),
                                Ok(None) => {
                                    pasted = None;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    let mut accepted = None;
                    for candidate in paste_candidates(&batch) {
                        match callback::parse_redirect_url(&candidate, &redirect_uri, &state) {
                            Ok(response) => {
                                accepted = Some(response);
                                break;
                            }
                            // Like a bad request at the listener: say why, keep waiting.
                            Err(e @ (callback::Error::InvalidCallback { .. } | callback::Error::StateMismatch)) => {
                                let err = callback_error(e);
                                match &options.on_rejected_paste {
                                    Some(handler) => handler(&err),
                                    None => tracing::warn!(error = %err, "the pasted redirect URL was not accepted; still waiting"),
                                }
                            }
                            // An error response for this very sign-in (denied, server error).
                            Err(e) => return Err(to_error(e)),
                        }
                    }
                    if let Some(response) = accepted {
                        break response;
                    }
                }
            }
        };

        // RFC 9207: the response must come from the issuer we sent the user to.
        check_callback_issuer(
            response.iss.as_deref(),
            p.issuer.as_deref(),
            p.iss_parameter_supported,
        )?;

        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", response.code.secret()),
            ("redirect_uri", &redirect_uri),
        ];
        if let Some(pkce) = &pkce {
            form.push(("code_verifier", pkce.verifier().secret()));
        }
        if let Some(resource) = &p.resource {
            form.push(("resource", resource));
        }
        let tokens = self
            .token_request(config, &token_url, form, Grant::Exchange)
            .await?;
        let tokens = self.store_sign_in(name, config, record, tokens).await?;
        Ok(AuthOutcome {
            tokens,
            redirect_uri,
            skipped_ports,
            store: self.store.name(),
            location: self.store.location(name),
        })
    }

    /// Valid tokens for `provider`, refreshed first when the access token expires within its refresh
    /// margin, `min(`[`EXPIRY_BUFFER`]`, half its lifetime)`. Refreshes are single-flight across
    /// processes whatever the lifetime: a per-provider file lock, under which the stored tokens are
    /// re-read, and tokens that changed while waiting for it (another process refreshed) are used
    /// unless they have actually expired. A token that is still valid but has no refresh token is
    /// returned as it is.
    ///
    /// Answers meaning "try again later" (HTTP 429/503, `temporarily_unavailable`) are retried within
    /// [`REFRESH_RETRY_BUDGET`]. Once the server has answered, the new tokens are saved even if this
    /// future is dropped; if the store fails, they go to a 0600 recovery file beside the token files
    /// (a warning says where), which every later read prefers until a save to the store succeeds.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthRequired`] when not signed in; [`ErrorCode::TokenExpired`] when expired
    /// without a refresh token; [`ErrorCode::TokenRefreshFailed`] when the server refuses the
    /// refresh token (the stored tokens stay, marked); [`ErrorCode::NetworkError`]/
    /// [`ErrorCode::Timeout`]/[`ErrorCode::AuthFailed`] for transport and server faults (storage is
    /// untouched; [`ErrorCode::NetworkError`] naming the status when the server still asks to wait
    /// after the retry budget); [`ErrorCode::Storage`].
    pub async fn ensure_valid_token(&self, provider: &str) -> Result<OAuthTokens> {
        self.ensure_inner(provider)
            .await
            .map_err(|e| e.for_provider(provider))
    }

    async fn ensure_inner(&self, provider: &str) -> Result<OAuthTokens> {
        let name = provider_name(provider)?;
        let Some(tokens) = self.load(&name).await? else {
            return Err(self.missing_tokens(provider));
        };
        mcp::check_tokens_server(provider, &tokens)?;
        if !tokens.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER) {
            return Ok(tokens);
        }
        self.refresh_locked(provider, &name, &tokens, false).await
    }

    /// The access token from [`ensure_valid_token`](Self::ensure_valid_token).
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token).
    pub async fn get_bearer_token(&self, provider: &str) -> Result<AccessToken> {
        Ok(self.ensure_valid_token(provider).await?.access_token)
    }

    /// Refreshes now, whether or not the access token has expired (single-flight like
    /// [`ensure_valid_token`](Self::ensure_valid_token): if another process refreshed meanwhile,
    /// its result is returned).
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token); without a refresh token,
    /// [`ErrorCode::TokenExpired`] whose message says so and how long the access token stays valid.
    pub async fn refresh_tokens(&self, provider: &str) -> Result<OAuthTokens> {
        async {
            let name = provider_name(provider)?;
            let Some(tokens) = self.load(&name).await? else {
                return Err(self.missing_tokens(provider));
            };
            self.refresh_locked(provider, &name, &tokens, true).await
        }
        .await
        .map_err(|e| e.for_provider(provider))
    }

    async fn refresh_locked(
        &self,
        provider: &str,
        name: &ProviderName,
        seen: &OAuthTokens,
        force: bool,
    ) -> Result<OAuthTokens> {
        // Fail fast, before taking the lock, on what no refresh can fix.
        if seen.refresh_token.is_none() {
            return no_refresh_token(seen, force);
        }
        if !force && seen.refresh_failed_at.is_some() {
            return Err(refresh_refused_before());
        }
        let lock = self.lock(name).await?;
        let Some(current) = self.load_locked(name).await? else {
            return Err(not_signed_in(provider));
        };
        // Tokens that changed while we waited for the lock were refreshed (or signed in) by someone
        // else: use them unless they have actually expired. Comparing with the refresh margin here
        // would refresh again a token that lives less than twice the margin (a refresh storm).
        if current != *seen && !current.is_expired_at(SystemTime::now(), Duration::ZERO) {
            tracing::debug!(provider, "another process refreshed the tokens");
            return Ok(current);
        }
        if !force && !current.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER) {
            return Ok(current);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return no_refresh_token(&current, force);
        };
        if !force && current.refresh_failed_at.is_some() {
            return Err(refresh_refused_before());
        }
        if current.is_refresh_token_expired_at(SystemTime::now()) {
            return Err(Error::new(
                ErrorCode::TokenExpired,
                "the refresh token has expired",
            ));
        }
        // The client and endpoints come from the tokens read under the lock: another process may
        // have signed in again (with another client) since `seen` was read.
        let config = self.stored_config(provider, &current).await?;
        let token_url = check_endpoint(
            &config.provider.token_url,
            &format!("providers.{provider}.token_url"),
        )?;

        tracing::debug!(provider, "refreshing the access token");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ];
        if let Some(resource) = &config.provider.resource {
            form.push(("resource", resource));
        }
        match self.refresh_request(&config, &token_url, form).await {
            Ok(fresh) => {
                let mut merged = current.merge_refresh(fresh);
                mcp::carry_binding(&current, &mut merged);
                merged.refresh_failed_at = None;
                merged
                    .extra
                    .insert(CLIENT_ID_KEY.to_owned(), config.client_id.clone().into());
                // The server may have rotated the refresh token: from here on the old one is dead,
                // so the new set must be kept whatever happens (see `save_rotation`).
                self.save_rotation(provider, name, merged.clone(), lock)
                    .await?;
                tracing::info!(provider, "access token refreshed");
                Ok(merged)
            }
            Err(e) if mcp::is_invalid_client(&e) && mcp::is_url(provider) => {
                // The dynamically registered client is gone: its refresh token is useless. Forget
                // the registration so the next sign-in registers again, and mark the tokens.
                self.forget_registration(provider);
                let mut marked = current;
                marked.mark_refresh_failed(SystemTime::now());
                if let Err(save_error) = self.save(name, marked).await {
                    tracing::warn!(provider, error = %save_error, "could not record the refresh failure");
                }
                Err(Error::new(
                    ErrorCode::TokenRefreshFailed,
                    "the server no longer accepts this client (invalid_client); sign in again to register a new one",
                ))
            }
            Err(e) if e.code() == ErrorCode::TokenRefreshFailed => {
                // Terminal: keep the tokens (nothing is deleted silently) but record the refusal so
                // `get_status` reports it and no process retries with a dead refresh token.
                let mut marked = current;
                marked.mark_refresh_failed(SystemTime::now());
                if let Err(save_error) = self.save(name, marked).await {
                    tracing::warn!(provider, error = %save_error, "could not record the refresh failure");
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Signs out: revokes at the server when possible (RFC 7009: the refresh token and the access
    /// token, each attempted even if the other fails; or GitHub's REST call when a client secret is
    /// set), then deletes the stored tokens even if revocation failed. Failures are logged at `info`
    /// only: the caller reports them (one line per token, [`LogoutOutcome::tokens`]).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`] if deleting fails; [`ErrorCode::NotFound`] for an invalid name.
    /// Revocation failures are reported in [`LogoutOutcome::revocation`], not as errors.
    pub async fn logout(&self, provider: &str) -> Result<LogoutOutcome> {
        async {
            let name = provider_name(provider)?;
            // Under the refresh lock, so a refresh in flight elsewhere cannot store a new grant
            // after we revoked and deleted this one.
            let _lock = self.lock(&name).await?;
            let (revocation, tokens) = match self.load(&name).await {
                Ok(Some(tokens)) => match self.revoke(provider, &tokens).await {
                    Ok(per_token) => (summarize(&per_token), per_token),
                    Err(e) => {
                        tracing::info!(provider, error = %e, "revocation failed; deleting local tokens anyway");
                        (Revocation::Failed { message: e.to_string() }, Vec::new())
                    }
                },
                Ok(None) => (
                    Revocation::NotAttempted {
                        reason: "not signed in".to_owned(),
                    },
                    Vec::new(),
                ),
                // Unreadable (e.g. corrupt) tokens cannot be revoked, but signing out still removes them.
                Err(e) if e.code() == ErrorCode::Storage => {
                    tracing::info!(provider, error = %e, "stored tokens are unreadable; deleting them without revocation");
                    (
                        Revocation::NotAttempted {
                            reason: "the stored tokens could not be read".to_owned(),
                        },
                        Vec::new(),
                    )
                }
                Err(e) => return Err(e),
            };
            let store = Arc::clone(&self.store);
            let recovery = self.recovery_path(&name);
            let deleted = blocking(move || {
                let recovered = remove_recovery(&recovery)?;
                Ok(store.delete(&name).map_err(storage_error)? || recovered)
            })
            .await?;
            Ok::<_, Error>(LogoutOutcome {
                revocation,
                tokens,
                deleted,
            })
        }
        .await
        .map_err(|e| e.for_provider(provider))
    }

    /// Revokes `tokens` at the server: one [`TokenRevocation`] per token tried. `Err` only when
    /// nothing could be tried (a bad endpoint); an empty list means "not attempted" (no endpoint, no
    /// configuration), carried as a single entry with [`Revocation::NotAttempted`].
    async fn revoke(&self, provider: &str, tokens: &OAuthTokens) -> Result<Vec<TokenRevocation>> {
        let not_attempted = |reason: String| {
            vec![TokenRevocation {
                token: "tokens",
                result: Revocation::NotAttempted { reason },
            }]
        };
        let config = match self.stored_config(provider, tokens).await {
            Ok(config) => config,
            Err(e) if e.code() == ErrorCode::NotFound => {
                return Ok(not_attempted(
                    "the provider is no longer configured".to_owned(),
                ));
            }
            // No record, or one that disagrees with the tokens: never send them to its endpoint.
            Err(e) if e.code() == ErrorCode::AuthRequired => {
                return Ok(not_attempted(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let Some(revocation_url) = config.provider.revocation_url.clone() else {
            return Ok(not_attempted(format!(
                "{} has no revocation endpoint",
                config.provider.display_name
            )));
        };
        if config.provider.revocation_style == RevocationStyle::GitHub {
            let result = self
                .revoke_github(&config, &revocation_url, tokens)
                .await
                .unwrap_or_else(|e| Revocation::Failed {
                    message: e.to_string(),
                });
            return Ok(match result {
                Revocation::NotAttempted { reason } => not_attempted(reason),
                result => vec![TokenRevocation {
                    token: "access token",
                    result,
                }],
            });
        }
        let url = check_endpoint(
            &revocation_url,
            &format!("providers.{provider}.revocation_url"),
        )?;
        // Refresh token first: revoking it ends the grant at most servers (RFC 7009 §2.1), but
        // nothing promises that it revokes the access token, so that one is revoked too — and
        // tried even if the refresh token's revocation failed.
        let mut pairs = Vec::new();
        if let Some(rt) = &tokens.refresh_token {
            pairs.push((rt.secret(), "refresh_token", "refresh token"));
        }
        pairs.push((tokens.access_token.secret(), "access_token", "access token"));
        let mut outcomes = Vec::new();
        for (token, hint, label) in pairs {
            let result = match self.revoke_one(&config, &url, token, hint).await {
                Ok(true) => Revocation::Revoked,
                Ok(false) => Revocation::NotAttempted {
                    reason: "the server cannot revoke it individually (unsupported_token_type)"
                        .to_owned(),
                },
                Err(e) => {
                    tracing::info!(provider, token = label, error = %e, "revocation failed");
                    Revocation::Failed {
                        message: e.to_string(),
                    }
                }
            };
            outcomes.push(TokenRevocation {
                token: label,
                result,
            });
        }
        Ok(outcomes)
    }

    /// One RFC 7009 revocation request. `Ok(false)`: the server answered `unsupported_token_type`
    /// (RFC 7009 §2.2.1, e.g. for a JWT access token).
    async fn revoke_one(
        &self,
        config: &OAuthConfig,
        url: &Url,
        token: &str,
        hint: &str,
    ) -> Result<bool> {
        let form = vec![("token", token), ("token_type_hint", hint)];
        let (form, basic) = client_auth(config, form);
        let basic_ref = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let raw = self
            .http
            .post_form(
                url,
                &form,
                basic_ref,
                "revocation endpoint",
                config.provider.url_policy,
            )
            .await?;
        let unsupported =
            tokens::parse_response_object(raw.status, raw.content_type.as_deref(), &raw.body)
                .err()
                .is_some_and(|e| e.oauth_error() == Some("unsupported_token_type"));
        if unsupported {
            return Ok(false);
        }
        if !(200..300).contains(&raw.status) {
            return Err(Error::new(
                ErrorCode::NetworkError,
                format!("the revocation endpoint answered HTTP {}", raw.status),
            )
            .with_hint(SERVER_TROUBLE_HINT)
            .with_status(raw.status));
        }
        Ok(true)
    }

    async fn revoke_github(
        &self,
        config: &OAuthConfig,
        template_url: &str,
        tokens: &OAuthTokens,
    ) -> Result<Revocation> {
        let settings = format!(
            "https://github.com/settings/connections/applications/{}",
            config.client_id
        );
        let Some(secret) = &config.client_secret else {
            return Ok(Revocation::NotAttempted {
                reason: format!(
                    "revoking a GitHub token needs {}; revoke it at {settings}",
                    config.provider.client_secret_env()
                ),
            });
        };
        let encoded_id: String =
            form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
        let url = check_endpoint(
            &template_url.replace("{client_id}", &encoded_id),
            "providers.github.revocation_url",
        )?;
        let body = serde_json::json!({ "access_token": tokens.access_token.secret() }).to_string();
        let request = self
            .http
            .request(reqwest::Method::DELETE, &url, config.provider.url_policy)?
            .basic_auth(&config.client_id, Some(secret.secret()))
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let raw = self.http.send(request, &url, "GitHub token API").await?;
        match raw.status {
            200..=299 | 404 => Ok(Revocation::Revoked), // 404: the token is already gone
            status => Err(Error::new(
                ErrorCode::NetworkError,
                format!("GitHub token API answered HTTP {status}; revoke it at {settings}"),
            )
            .with_hint(SERVER_TROUBLE_HINT)
            .with_status(status)),
        }
    }

    /// Sends `Authorization: Bearer` GET to `url` with a valid token (refreshing first if needed)
    /// and returns the status and body. Used by the examples and for `resources_url`.
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token), plus [`ErrorCode::ConfigInvalid`] for a
    /// non-HTTPS URL and [`ErrorCode::NetworkError`]/[`ErrorCode::Timeout`].
    pub async fn get_with_token(&self, provider: &str, url: &str) -> Result<(u16, Vec<u8>)> {
        let url = check_endpoint(url, "url")?;
        let tokens = self.ensure_valid_token(provider).await?;
        let request = self
            .http
            .get(&url, None)?
            .bearer_auth(tokens.access_token.secret());
        let raw = self.http.send(request, &url, "API").await?;
        Ok((raw.status, raw.body))
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers.

    async fn token_request(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: Vec<(&str, &str)>,
        grant: Grant,
    ) -> Result<OAuthTokens> {
        let (form, basic) = client_auth(config, form);
        let basic_ref = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let sent_at = SystemTime::now();
        let raw = self
            .http
            .post_form(
                url,
                &form,
                basic_ref,
                "token endpoint",
                config.provider.url_policy,
            )
            .await?;
        tokens::parse_token_response(raw.status, raw.content_type.as_deref(), &raw.body, sent_at)
            .map_err(|e| classify_response_error(&e, grant))
    }

    /// The newest stored tokens: the recovery file's when one exists (see
    /// [`save_rotation`](Self::save_rotation)), else the store's.
    async fn load(&self, name: &ProviderName) -> Result<Option<OAuthTokens>> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        blocking(move || load_newest(store.as_ref(), &recovery, &name)).await
    }

    /// [`load`](Self::load) under the refresh lock: a recovery file is moved back into the store
    /// when the store accepts it again (it stays, and is used, when not).
    async fn load_locked(&self, name: &ProviderName) -> Result<Option<OAuthTokens>> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        blocking(move || {
            let Some(recovered) = read_recovery(&recovery) else {
                return store.load(&name).map_err(storage_error);
            };
            match store.save(&name, &recovered) {
                Ok(()) => {
                    remove_recovery(&recovery)?;
                    tracing::info!(
                        provider = name.as_str(),
                        "moved the recovered tokens back into the store"
                    );
                }
                Err(e) => tracing::debug!(
                    provider = name.as_str(),
                    error = %e,
                    "the store still fails; keeping the recovery file"
                ),
            }
            Ok(Some(recovered))
        })
        .await
    }

    /// Where tokens go when the store fails right after a refresh: `tokens/<name>.recovery` (0600),
    /// beside the token files.
    fn recovery_path(&self, name: &ProviderName) -> PathBuf {
        storage::tokens_dir(&self.home).join(format!("{}.recovery", name.as_str()))
    }

    /// Saves the tokens of a refresh the server has answered, holding `lock` until done. The server
    /// may have rotated the refresh token, which makes the stored one dead (and, at a server with
    /// reuse detection, dangerous: replaying it revokes the whole grant, RFC 9700 §4.14.2). So:
    ///
    /// - the save runs on its own blocking task, which completes (and only then releases the lock)
    ///   even if the caller's future is dropped;
    /// - when the store fails, it is tried once more; then the tokens go to the 0600 recovery file
    ///   beside the token files (for a keyring store, that is the file fallback), with a warning that
    ///   says where. Every later read prefers that file, and the next refresh under the lock moves
    ///   it back into the store;
    /// - only when nothing can be written is this an error.
    async fn save_rotation(
        &self,
        provider: &str,
        name: &ProviderName,
        tokens: OAuthTokens,
        lock: ProviderLock,
    ) -> Result<()> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        let provider = provider.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            let first = match store.save(&name, &tokens) {
                Ok(()) => return remove_recovery(&recovery).map(drop),
                Err(e) => e,
            };
            tracing::debug!(provider, error = %first, "saving the refreshed tokens failed; retrying once");
            let second = match store.save(&name, &tokens) {
                Ok(()) => return remove_recovery(&recovery).map(drop),
                Err(e) => e,
            };
            let json = tokens.to_json().map_err(|e| {
                Error::new(ErrorCode::Storage, "cannot encode the refreshed tokens").with_source(e)
            })?;
            match storage::write_private_atomic(&recovery, json.as_bytes()) {
                Ok(()) => {
                    tracing::warn!(
                        "could not save the refreshed tokens for {provider} to the {} store ({second}); \
                         they are in {} until the store works again",
                        store.name(),
                        recovery.display()
                    );
                    Ok(())
                }
                Err(third) => Err(Error::new(
                    ErrorCode::Storage,
                    format!(
                        "the refreshed tokens could not be saved ({second}), nor to {} ({third})",
                        recovery.display()
                    ),
                )
                .with_hint(format!(
                    "free space or fix permissions, then run `context-harness mcp auth {provider}`"
                ))
                .with_source(second)),
            }
        });
        task.await.unwrap_or_else(|e| {
            Err(Error::new(ErrorCode::Storage, "saving the refreshed tokens failed").with_source(e))
        })
    }

    /// A refresh request, retrying transient answers (HTTP 429/503, `temporarily_unavailable`)
    /// within the retry budget ([`REFRESH_RETRY_BUDGET`] by default), waiting as `Retry-After` says
    /// or backing off.
    async fn refresh_request(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: Vec<(&str, &str)>,
    ) -> Result<OAuthTokens> {
        let (form, basic) = client_auth(config, form);
        let basic_ref = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let started = Instant::now();
        let mut backoff = retry::Backoff::default();
        loop {
            let sent_at = SystemTime::now();
            let raw = self
                .http
                .post_form(
                    url,
                    &form,
                    basic_ref,
                    "token endpoint",
                    config.provider.url_policy,
                )
                .await?;
            if let Some(transient) = retry::transient(&raw, SystemTime::now()) {
                let wait = backoff.next_wait(transient.retry_after);
                if started.elapsed().saturating_add(wait) > self.refresh_retry_budget {
                    return Err(retry::gave_up("refreshing the token", &transient));
                }
                tracing::info!(
                    status = transient.status,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "the token endpoint asked to try again later; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return tokens::parse_token_response(
                raw.status,
                raw.content_type.as_deref(),
                &raw.body,
                sent_at,
            )
            .map_err(|e| classify_response_error(&e, Grant::Refresh));
        }
    }

    /// Stores the tokens of a fresh sign-in (browser or device flow): clears any refresh-failure
    /// mark and records which client the grant belongs to, so refresh uses the same client.
    ///
    /// For an MCP server, `record` (what discovery found) is bound to the tokens and written beside
    /// them, both under the provider lock: only a sign-in that succeeded changes where the
    /// server's tokens are sent.
    async fn store_sign_in(
        &self,
        name: &ProviderName,
        config: &OAuthConfig,
        record: Option<&McpServerRecord>,
        mut tokens: OAuthTokens,
    ) -> Result<OAuthTokens> {
        tokens.refresh_failed_at = None;
        tokens
            .extra
            .insert(CLIENT_ID_KEY.to_owned(), config.client_id.clone().into());
        if let Some(record) = record {
            mcp::bind_tokens(&mut tokens, record);
        }
        // Under the refresh lock: a refresh running in another process must not write its (older)
        // grant over this sign-in after we store it.
        let _lock = self.lock(name).await?;
        self.save(name, tokens.clone()).await?;
        if let Some(record) = record {
            self.save_record(name.as_str(), record)?;
        }
        // A recovery file from an earlier failed save holds an older grant now.
        let recovery = self.recovery_path(name);
        blocking(move || remove_recovery(&recovery)).await?;
        tracing::info!(
            provider = name.as_str(),
            store = self.store.name(),
            "signed in; tokens stored"
        );
        Ok(tokens)
    }

    async fn save(&self, name: &ProviderName, tokens: OAuthTokens) -> Result<()> {
        let store = Arc::clone(&self.store);
        let name = name.clone();
        blocking(move || store.save(&name, &tokens).map_err(storage_error)).await
    }

    async fn lock(&self, name: &ProviderName) -> Result<ProviderLock> {
        let dir = self.lock_dir.clone();
        let name = name.clone();
        let wait = self.lock_timeout;
        blocking(move || acquire_lock(&dir, &name, wait)).await
    }

    fn lock_blocking(&self, name: &ProviderName) -> Result<ProviderLock> {
        acquire_lock(&self.lock_dir, name, self.lock_timeout)
    }

    fn missing_tokens(&self, provider: &str) -> Error {
        if mcp::is_url(provider) {
            return not_signed_in(provider);
        }
        match self.registry() {
            Ok(registry) if !registry.contains(provider) => match registry.get(provider) {
                Err(e) => e,
                Ok(_) => not_signed_in(provider),
            },
            _ => not_signed_in(provider),
        }
    }
}

/// The URLs in one paste of `lines`: a line that starts like a URL (`http…`, possibly after `<`,
/// `"`, `'` or `` ` ``) begins a new one, and the lines after it, up to the next such line, are its
/// continuation (a terminal wrapped it). Each URL is its lines joined.
fn paste_candidates(lines: &[String]) -> Vec<String> {
    let starts_a_url = |line: &str| {
        let line = line
            .trim_start()
            .trim_start_matches(['<', '"', '\'', '`'])
            .trim_start();
        line.get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    };
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some(current) if !starts_a_url(line) => current.push_str(line),
            _ => out.push(line.clone()),
        }
    }
    out
}

/// Runs blocking store/lock work off the async threads.
/// Takes the per-provider refresh lock, waiting at most `wait`.
fn acquire_lock(dir: &Path, name: &ProviderName, wait: Duration) -> Result<ProviderLock> {
    ProviderLock::acquire(dir, name, wait).map_err(|e| {
        if e.is_lock_timeout() {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "another process held the refresh lock for over {} s",
                    wait.as_secs()
                ),
            )
            .with_source(e)
        } else {
            storage_error(e)
        }
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::new(ErrorCode::Storage, "a storage task failed").with_source(e))
    })
}

/// The storage name of `provider`: a registry name as is, a server URL mapped with
/// [`ProviderName::from_url`] (so `mcp token <url>` finds what `mcp auth <url>` stored).
fn provider_name(provider: &str) -> Result<ProviderName> {
    if mcp::is_url(provider) {
        return ProviderName::from_url(provider).map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("`{provider}` is not a usable server URL"),
            )
            .with_source(e)
        });
    }
    ProviderName::new(provider).map_err(|e| {
        Error::new(
            ErrorCode::NotFound,
            format!("`{provider}` is not a valid provider name"),
        )
        .with_source(e)
    })
}

fn not_signed_in(provider: &str) -> Error {
    Error::new(
        ErrorCode::AuthRequired,
        format!("not signed in to {provider}"),
    )
}

fn expired_without_rt() -> Error {
    Error::new(
        ErrorCode::TokenExpired,
        "the access token has expired and there is no refresh token",
    )
}

/// What to do with tokens that have no refresh token: a forced refresh says so (and until when the
/// access token stays valid); otherwise a still-valid token is used as it is, and an expired one
/// is [`expired_without_rt`].
fn no_refresh_token(tokens: &OAuthTokens, force: bool) -> Result<OAuthTokens> {
    let now = SystemTime::now();
    if tokens.is_expired_at(now, Duration::ZERO) {
        return Err(expired_without_rt());
    }
    if !force {
        return Ok(tokens.clone());
    }
    let validity = match tokens.expires_at() {
        None => "the access token has no known expiry".to_owned(),
        Some(at) => format!(
            "the access token stays valid for another {}",
            human_duration(at.duration_since(now).unwrap_or_default())
        ),
    };
    Err(Error::new(
        ErrorCode::TokenExpired,
        format!("cannot refresh: the server issued no refresh token; {validity}"),
    ))
}

/// `1 h 5 min`, `4 min 10 s`, `12 s`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// The recovery file's tokens, if there is a readable one (see `OAuthService::save_rotation`).
fn read_recovery(path: &Path) -> Option<OAuthTokens> {
    let text = std::fs::read_to_string(path).ok()?;
    match OAuthTokens::from_json(&text) {
        Ok(tokens) => Some(tokens),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable token recovery file");
            None
        }
    }
}

/// Removes the recovery file; `Ok(true)` when there was one.
fn remove_recovery(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::new(
            ErrorCode::Storage,
            format!("cannot remove the token recovery file {}", path.display()),
        )
        .with_source(e)),
    }
}

/// The recovery file's tokens when there are some (they are newer than the store's), else the store's.
fn load_newest(
    store: &dyn TokenStore,
    recovery: &Path,
    name: &ProviderName,
) -> Result<Option<OAuthTokens>> {
    match read_recovery(recovery) {
        Some(tokens) => Ok(Some(tokens)),
        None => store.load(name).map_err(storage_error),
    }
}

/// The overall result of per-token revocations.
fn summarize(per_token: &[TokenRevocation]) -> Revocation {
    if let Some(failed) = per_token
        .iter()
        .find(|t| matches!(t.result, Revocation::Failed { .. }))
    {
        return failed.result.clone();
    }
    if per_token.iter().any(|t| t.result == Revocation::Revoked) {
        return Revocation::Revoked;
    }
    per_token.first().map_or_else(
        || Revocation::NotAttempted {
            reason: "nothing to revoke".to_owned(),
        },
        |t| t.result.clone(),
    )
}

fn refresh_refused_before() -> Error {
    Error::new(
        ErrorCode::TokenRefreshFailed,
        "the server refused the refresh token earlier; sign in again",
    )
}

pub(crate) fn storage_error(e: storage::Error) -> Error {
    // A refused (untrusted) file or directory: the message names it, the hint the exact fix.
    if let Some(fix) = e.fix() {
        return Error::new(ErrorCode::Storage, e.to_string())
            .with_hint(format!(
                "run `{fix}` (after checking who changed it), then try again"
            ))
            .with_source(e);
    }
    Error::new(ErrorCode::Storage, format!("token storage failed: {e}")).with_source(e)
}

fn callback_error(e: callback::Error) -> Error {
    use callback::Error as C;
    let (code, message) = match &e {
        C::AllPortsBusy { .. } => (
            ErrorCode::NetworkError,
            "every loopback port for the redirect is in use".to_owned(),
        ),
        C::Timeout { state_mismatch_seen: true } => (
            ErrorCode::Timeout,
            "no valid authorization callback arrived in time (a callback with a wrong state was rejected)".to_owned(),
        ),
        C::Timeout { .. } => (
            ErrorCode::Timeout,
            "no authorization callback arrived in time".to_owned(),
        ),
        C::Cancelled { .. } => (ErrorCode::AuthCancelled, "the authorization was denied".to_owned()),
        C::Authorization { error, .. } if error == "access_denied" => {
            (ErrorCode::AuthCancelled, "the authorization was denied".to_owned())
        }
        C::Authorization { error, .. } => (
            ErrorCode::AuthFailed,
            format!("the authorization server returned `{}`", sanitize_code(error)),
        ),
        C::InvalidCallback { .. } => (
            ErrorCode::AuthFailed,
            format!("the authorization callback was invalid: {e}"),
        ),
        C::StateMismatch => (
            ErrorCode::AuthFailed,
            "the pasted redirect URL belongs to a different or older sign-in attempt (its state does not match)"
                .to_owned(),
        ),
        _ => (ErrorCode::NetworkError, format!("the loopback listener failed: {e}")),
    };
    let mut err = Error::new(code, message);
    match &e {
        C::AllPortsBusy { .. } => {
            err = err.with_hint("free one of the ports or choose others with --port");
        }
        C::StateMismatch => {
            err =
                err.with_hint("paste the URL the browser shows after the sign-in you just started");
        }
        C::Authorization { error, .. } if error == "invalid_target" => {
            err = err.with_hint(INVALID_TARGET_HINT);
        }
        _ => {}
    }
    err.with_source(e)
}

/// Keeps only characters an OAuth error code may have (RFC 6749 §5.2), so a server cannot put
/// arbitrary text into our messages.
fn sanitize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

/// The next step for an off-spec HTTP 2xx token answer (issue 13 item 1).
const OFF_SPEC_ANSWER_HINT: &str = "the server answered, but not as RFC 6749 §5.1 requires (a server problem, not your network); report it to the server's operator, then sign in again";

/// What to do when a server refuses the RFC 8707 `resource` parameter (`invalid_target`).
const INVALID_TARGET_HINT: &str = "the authorization server refuses the RFC 8707 `resource` parameter; for an MCP server URL, sign in with `mcp auth <url> --no-resource`";

fn classify_response_error(e: &ResponseError, grant: Grant) -> Error {
    let err = classify_response_error_inner(e, grant);
    // The answer arrived, so the network is not the cause: never the default "check your network".
    if err.code() == ErrorCode::NetworkError && err.hint().is_none() {
        err.with_hint(SERVER_TROUBLE_HINT)
    } else {
        err
    }
}

fn classify_response_error_inner(e: &ResponseError, grant: Grant) -> Error {
    let what = match grant {
        Grant::Exchange => "exchanging the authorization code",
        Grant::Refresh => "refreshing the token",
    };
    match e {
        ResponseError::OAuth {
            error,
            description,
            status,
            ..
        } => {
            let code = sanitize_code(error);
            let (kind, message) = match (code.as_str(), grant) {
                ("invalid_grant", Grant::Refresh) => (
                    ErrorCode::TokenRefreshFailed,
                    "the server refused the refresh token (invalid_grant); sign in again"
                        .to_owned(),
                ),
                ("invalid_grant", Grant::Exchange) => (
                    ErrorCode::AuthFailed,
                    "the server refused the authorization code (invalid_grant)".to_owned(),
                ),
                ("access_denied", _) => {
                    (ErrorCode::AuthCancelled, format!("{what}: access denied"))
                }
                ("temporarily_unavailable" | "server_error", _) => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server is unavailable ({code})"),
                ),
                _ if *status >= 500 => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server failed with HTTP {status} ({code})"),
                ),
                // RFC 6585 §4: "too many requests" is "wait and try again", never a refusal.
                _ if *status == 429 => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server is rate-limiting requests (HTTP 429, {code})"),
                ),
                _ => (
                    ErrorCode::AuthFailed,
                    format!("{what}: the server answered `{code}`"),
                ),
            };
            let err =
                Error::new(kind, message).with_oauth(code.clone(), description.clone(), *status);
            if code == "invalid_target" {
                return err.with_hint(INVALID_TARGET_HINT);
            }
            err
        }
        ResponseError::Http { status: 429 } => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint is rate-limiting requests (HTTP 429)"),
        )
        .with_hint("retry later")
        .with_status(429),
        ResponseError::Http { status } if *status >= 500 => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint failed with HTTP {status}"),
        )
        .with_status(*status),
        ResponseError::Http { status } if (300..400).contains(status) => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint redirected (HTTP {status}); redirects are not followed"
            ),
        )
        .with_hint("check the provider's token_url")
        .with_status(*status),
        ResponseError::Http { status } => Error::new(
            ErrorCode::AuthFailed,
            format!("{what}: the token endpoint answered HTTP {status} without an OAuth error"),
        )
        .with_status(*status),
        ResponseError::Html { status } => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint answered with an HTML page (HTTP {status}), not JSON"
            ),
        )
        .with_hint("a proxy, captive portal or wrong token_url is likely; check them and retry")
        .with_status(*status),
        // A 2xx answer that is not a token response: the server's fault, not the network's.
        ResponseError::Empty { status } | ResponseError::Malformed { status, .. }
            if (200..300).contains(status) =>
        {
            let reason = match e {
                ResponseError::Malformed { reason, .. } => reason,
                _ => "the body is empty",
            };
            Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{what}: the authorization server's answer (HTTP {status}) is not a token response as it should be: {reason}"
                ),
            )
            .with_hint(OFF_SPEC_ANSWER_HINT)
            .with_status(*status)
        }
        ResponseError::Empty { status } => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint sent an empty answer (HTTP {status})"),
        )
        .with_status(*status),
        ResponseError::Malformed { status, reason } => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint sent an unreadable answer (HTTP {status}: {reason})"
            ),
        )
        .with_status(*status),
        ResponseError::MissingAccessToken => Error::new(
            ErrorCode::AuthFailed,
            format!("{what}: the answer has no access_token"),
        ),
        other => Error::new(ErrorCode::AuthFailed, format!("{what}: {other}")),
    }
}

/// Form fields of a request.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// The client-authentication parts of a token-endpoint request: `client_id` in the body for a
/// public client, else `client_secret_post` fields or HTTP Basic (id and secret each
/// form-urlencoded first, RFC 6749 §2.3.1).
fn client_auth<'a>(
    config: &'a OAuthConfig,
    mut form: Vec<(&'a str, &'a str)>,
) -> (Form<'a>, Option<(String, String)>) {
    match &config.client_secret {
        None => {
            form.push(("client_id", &config.client_id));
            (form, None)
        }
        Some(secret) => match config.provider.token_auth_method {
            TokenAuthMethod::ClientSecretPost => {
                form.push(("client_id", &config.client_id));
                form.push(("client_secret", secret.secret()));
                (form, None)
            }
            _ => {
                let user = form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
                let password =
                    form_urlencoded::byte_serialize(secret.secret().as_bytes()).collect();
                (form, Some((user, password)))
            }
        },
    }
}

/// The authorization request URL (RFC 6749 §4.1.1 + PKCE + provider extras).
fn authorization_url(
    base: &Url,
    config: &OAuthConfig,
    redirect_uri: &str,
    scopes: &[String],
    state: &pkce::State,
    pkce: Option<&pkce::PkceChallenge>,
) -> Url {
    let p = &config.provider;
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", &config.client_id);
        q.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(" "));
        }
        q.append_pair("state", state.as_str());
        if let Some(pkce) = pkce {
            q.append_pair("code_challenge", pkce.challenge().as_str());
            q.append_pair("code_challenge_method", pkce.challenge().method());
        }
        if let Some(audience) = &p.audience {
            q.append_pair("audience", audience);
        }
        if let Some(resource) = &p.resource {
            q.append_pair("resource", resource);
        }
        for (k, v) in &p.extra_auth_params {
            q.append_pair(k, v);
        }
    }
    url
}

/// The RFC 9207 §2.4 check of the authorization response's `iss` (MCP 2026-07-28 "Authorization
/// Response Validation"): announced and present → equal; announced and absent → refuse; not
/// announced and present → equal; neither → proceed. No issuer configured → nothing to compare.
fn check_callback_issuer(iss: Option<&str>, expected: Option<&str>, announced: bool) -> Result<()> {
    match (iss, expected) {
        (Some(iss), Some(expected)) if !same_issuer(iss, expected) => Err(Error::new(
            ErrorCode::AuthFailed,
            "the authorization response came from a different issuer than expected (possible mix-up attack)",
        )),
        (None, Some(_)) if announced => Err(Error::new(
            ErrorCode::AuthFailed,
            "the authorization response lacks the `iss` parameter the server announces (RFC 9207)",
        )),
        _ => Ok(()),
    }
}

/// Issuer comparison (RFC 9207 §2.4: simple string comparison, no normalisation at all — not
/// even of a trailing slash).
fn same_issuer(a: &str, b: &str) -> bool {
    a == b
}

#[cfg(test)]
mod iss_tests {
    use super::check_callback_issuer as check;

    #[test]
    fn rfc9207_table() {
        let as_ = Some("https://as.example.com");
        assert!(check(Some("https://as.example.com"), as_, true).is_ok());
        assert!(check(Some("https://evil.example.com"), as_, true).is_err());
        assert!(check(None, as_, true).is_err());
        assert!(check(Some("https://as.example.com"), as_, false).is_ok());
        assert!(check(Some("https://evil.example.com"), as_, false).is_err());
        assert!(check(None, as_, false).is_ok());
        // No normalisation: a trailing slash, case or a default port make a different issuer.
        assert!(check(Some("https://as.example.com/"), as_, true).is_err());
        assert!(check(Some("https://AS.example.com"), as_, true).is_err());
        assert!(check(Some("https://as.example.com:443"), as_, true).is_err());
    }
}

#[cfg(test)]
mod paste_tests {
    use super::paste_candidates;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_wrapped_url_is_one_candidate_and_a_new_url_starts_another() {
        assert_eq!(
            paste_candidates(&lines("http://a/cb?code=1&st\nate=2")),
            ["http://a/cb?code=1&state=2"]
        );
        assert_eq!(
            paste_candidates(&lines(
                "<http://a/cb?x\n>\n\"HTTP://b/cb\"\n'http://c\n/cb'"
            )),
            ["<http://a/cb?x>", "\"HTTP://b/cb\"", "'http://c/cb'"]
        );
        // A scrap before any URL stands alone.
        assert_eq!(
            paste_candidates(&lines("oops\nhttp://a/cb")),
            ["oops", "http://a/cb"]
        );
    }
}
