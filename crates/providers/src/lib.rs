//! Provider registry and [`OAuthService`]: OAuth 2.1 + PKCE sign-in for command-line programs.
//!
//! This is the facade of the context-harness auth workspace. It composes the member crates, which
//! it re-exports as [`pkce`], [`tokens`], [`storage`] and [`callback`]:
//!
//! - [`ProviderRegistry`]: the built-in providers (`github`, `atlassian`) plus custom ones from
//!   `$CONTEXT_HARNESS_HOME/providers.toml`, as data ([`OAuthProvider`]); credentials are resolved
//!   into an [`OAuthConfig`] from the call, `{SERVICE}_CLIENT_ID` / `{SERVICE}_CLIENT_SECRET`, or the
//!   file.
//! - [`OAuthService`]: the browser sign-in (PKCE S256, `state`, loopback redirect, RFC 9207 `iss`
//!   check), token storage, refresh within a margin of `min(60 s, half the token's lifetime)` that
//!   is single-flight across processes (429/503 waited out, a rotated refresh token never lost),
//!   and logout with revocation of both tokens. A sync fast path, [`OAuthService::cached_valid_token`], reads the
//!   store only.
//! - [`Error`] with [`ErrorCode`], a [`hint`](Error::hint) saying what to do next, the same as data
//!   ([`next_step`](Error::next_step)) and predicates ([`needs_sign_in`](Error::needs_sign_in)).
//! - [`App`]: a program that embeds the library signs in under its own name
//!   ([`OAuthServiceBuilder::app`]): its keyring service, home, `User-Agent` and client name; see
//!   `examples/my_tool.rs`. [`OAuthService::token`] returns a valid token, signing in only when
//!   needed, and one [`SignInUi`] shows what the user must do.
//!
//! # Example
//!
//! Resolve a provider's configuration without touching the network:
//!
//! ```
//! use context_harness_providers::{Environment, ErrorCode, ProviderRegistry};
//!
//! let registry = ProviderRegistry::builtin();
//! let env = Environment::from_pairs([("GITHUB_CLIENT_ID", "Iv1.0123456789abcdef")]);
//! let config = registry.resolve("github", None, &env)?;
//! assert_eq!(config.client_id, "Iv1.0123456789abcdef");
//! assert!(config.is_public());
//!
//! // Without a client id, the error says which variable to set and where to create an app.
//! let err = registry.resolve("atlassian", None, &Environment::empty()).unwrap_err();
//! assert_eq!(err.code(), ErrorCode::ConfigMissing);
//! assert!(err.hint().unwrap_or_default().contains("ATLASSIAN_CLIENT_ID"));
//! # Ok::<(), context_harness_providers::Error>(())
//! ```
//!
//! Sign in, then call an API (see `examples/call_api.rs` for a complete program):
//!
//! ```no_run
//! use context_harness_providers::{AuthenticateOptions, OAuthService};
//!
//! # async fn run() -> Result<(), context_harness_providers::Error> {
//! let service = OAuthService::new()?;
//! let outcome = service.authenticate("github", AuthenticateOptions::new()).await?;
//! eprintln!("signed in; tokens stored in {}", outcome.location);
//! let (status, body) = service.get_with_token("github", "https://api.github.com/user").await?;
//! # let _ = (status, body);
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! Tokens, authorization codes, verifiers and client secrets are never logged, never part of an
//! error message, and the client secret is never written to disk. Endpoints must be `https`
//! (plain `http` only to loopback hosts). The HTTP client follows no redirects, uses rustls, and is
//! only built when a request is actually needed.

mod app;
mod browser;
mod device;
mod discovery;
mod dpop;
mod env;
mod error;
mod http;
mod provider;
mod provider_ref;
mod registration;
mod registry;
mod service;
mod signing;
mod ssrf;

pub use context_harness_callback_server as callback;
pub use context_harness_pkce as pkce;
pub use context_harness_protocol as protocol;
pub use context_harness_storage as storage;
pub use context_harness_tokens as tokens;

pub use app::App;
pub use browser::{
    BROWSER_ENV_NAMES, BROWSER_ENV_PREFIXES, BrowserOpener, SystemBrowser, browser_env,
    browser_needs_terminal, is_browser_env_name, is_secret_env_name,
};
pub use dpop::{
    DPOP_ALG, DpopKey, USE_DPOP_NONCE, access_token_hash, check_key_kept as check_dpop_key_kept,
    is_dpop_bound, nonce_demand,
};
pub use env::{Environment, HOME_ENV, MAX_SECRET_FILE_BYTES, env_prefix, read_secret_file};
pub use error::{Error, ErrorCode, NextStep, Result};
pub use http::{HttpSettings, tls_trust_failure, unresolved_host};
pub use provider::{
    ClientSecret, DEFAULT_PORTS, OAuthConfig, OAuthProvider, RESERVED_AUTH_PARAMS, RedirectHost,
    RevocationStyle, TokenAuthMethod,
};
pub use provider_ref::ProviderRef;
pub use registration::{client_metadata_document, client_metadata_redirect_uris};
pub use registry::{PROVIDERS_FILE, ProviderRegistry, ProviderSource};
pub use service::{
    AuthOutcome, AuthenticateOptions, EXPIRY_BUFFER, GrantOptions, GrantType, LogoutOutcome,
    McpServerRecord, OAuthService, OAuthServiceBuilder, PastedRedirects, REFRESH_RETRY_BUDGET,
    Revocation, SignInFlow, SignInUi, TokenRevocation,
};
pub use ssrf::UrlPolicy;
/// Tests only: let a loopback stub play a public host under a reserved `.test` name (RFC 6761).
#[doc(hidden)]
pub use ssrf::{NetworkClass, register_test_host, register_test_host_answers};
pub use tokens::{AccessToken, AuthStatus, OAuthTokens, RefreshToken};
/// The one sanitiser for outside text printed to a terminal (from the tokens crate).
pub use tokens::{MAX_TERMINAL_CHARS, TerminalText, terminal_text, terminal_text_max};
