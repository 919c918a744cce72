//! The provider registry: built-ins plus `$CONTEXT_HARNESS_HOME/providers.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::env::Environment;
use crate::error::{Error, ErrorCode, Result};
use crate::provider::{ClientSecret, OAuthConfig, OAuthProvider, RevocationStyle, TokenAuthMethod};

/// The configuration file name inside the context-harness home.
pub const PROVIDERS_FILE: &str = context_harness_storage::PROVIDERS_FILE;

/// Where a registry entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderSource {
    /// A built-in provider, unchanged.
    Builtin,
    /// A built-in provider with settings from `providers.toml` laid over it.
    Overridden,
    /// Defined in `providers.toml` only.
    Configured,
}

impl ProviderSource {
    /// `"builtin"`, `"overridden"` or `"configured"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Overridden => "overridden",
            Self::Configured => "configured",
        }
    }
}

/// Built-in providers plus those configured in `providers.toml`, looked up by name.
///
/// # File format
///
/// ```toml
/// [providers.acme]
/// display_name = "Acme SSO"
/// auth_url = "https://sso.acme.example/oauth2/authorize"
/// token_url = "https://sso.acme.example/oauth2/token"
/// revocation_url = "https://sso.acme.example/oauth2/revoke"   # optional (RFC 7009)
/// device_auth_url = "https://sso.acme.example/oauth2/device"  # optional (RFC 8628)
/// resources_url = "https://api.acme.example/me"               # optional
/// issuer = "https://sso.acme.example"                         # optional: RFC 9207 iss check; alone, discovery
/// audience = "api.acme.example"                               # optional
/// scopes = ["openid", "offline_access"]
/// extra_auth_params = { prompt = "consent" }
/// client_id = "acme-cli"                                      # ACME_CLIENT_ID wins over it
/// redirect_host = "127.0.0.1"                                 # or "localhost" (default)
/// ports = [8080, 3000, 57548]                                 # 0 = any free port (RFC 8252 servers)
/// setup_url = "https://sso.acme.example/apps"
/// pkce = true                                                 # default
///
/// [providers.github]    # a built-in name: only the keys given replace the built-in values
/// client_id = "Iv1.0123456789abcdef"
/// ```
///
/// Other optional keys: `token_auth_method` (`"client_secret_basic"` | `"client_secret_post"`, for
/// a secret from `{SERVICE}_CLIENT_SECRET`), `revocation_style` (`"rfc7009"` | `"github"`),
/// `iss_parameter_supported` (bool; refuse a callback without `iss`), `resource` (RFC 8707),
/// `token_path` (where the token answer nests the tokens, as the provider documents it: Slack's
/// user tokens are under `"authed_user"`; see [`OAuthProvider::token_path`]).
/// A client secret is never read from this file.
///
/// A provider may give only `issuer` (plus `client_id`, scopes, …): its authorization, token,
/// device and revocation endpoints then come from RFC 8414 / OpenID Connect discovery on first use,
/// cached in `$CONTEXT_HARNESS_HOME/cache/discovery/` for a day.
///
/// ```
/// use context_harness_providers::{Environment, ProviderRegistry};
///
/// let registry = ProviderRegistry::from_toml_str(
///     r#"
///     [providers.acme]
///     auth_url = "https://sso.acme.example/authorize"
///     token_url = "https://sso.acme.example/token"
///     scopes = ["read"]
///     "#,
///     "providers.toml",
/// )?;
/// let env = Environment::from_pairs([("ACME_CLIENT_ID", "cli-123")]);
/// let config = registry.resolve("acme", None, &env)?;
/// assert_eq!(config.client_id, "cli-123");
/// assert!(registry.get("github").is_ok());
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProviderRegistry {
    entries: BTreeMap<String, (OAuthProvider, ProviderSource)>,
    file: Option<PathBuf>,
    /// The `providers.toml` of the home this registry was loaded for, read or not: hints name it
    /// (the real path, never a variable that may not be set).
    home_file: Option<PathBuf>,
}

impl Default for ProviderRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ProviderRegistry {
    /// The built-in providers only.
    pub fn builtin() -> Self {
        Self {
            entries: OAuthProvider::builtins()
                .into_iter()
                .map(|p| (p.name.clone(), (p, ProviderSource::Builtin)))
                .collect(),
            file: None,
            home_file: None,
        }
    }

    /// A registry without any provider, for a program that adds its own with
    /// [`insert`](Self::insert) (MCP server URLs need no entry).
    ///
    /// ```
    /// use context_harness_providers::ProviderRegistry;
    ///
    /// let registry = ProviderRegistry::empty();
    /// assert!(!registry.contains("github"));
    /// assert_eq!(registry.iter().count(), 0);
    /// ```
    pub fn empty() -> Self {
        Self {
            entries: BTreeMap::new(),
            file: None,
            home_file: None,
        }
    }

    /// What [`load`](Self::load) gives without the built-in providers: only those configured in
    /// `home/providers.toml` (a configured entry named like a built-in is kept).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_without_builtins(home: &Path) -> Result<Self> {
        let mut registry = Self::load(home)?;
        registry
            .entries
            .retain(|_, (_, source)| *source != ProviderSource::Builtin);
        Ok(registry)
    }

    /// The built-ins plus `home/providers.toml` when that file exists.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] with the file, line and field for a malformed file;
    /// [`ErrorCode::Storage`] if it exists but cannot be read, is a symbolic link, is owned by another
    /// user or is writable by group or others.
    pub fn load(home: &Path) -> Result<Self> {
        let path = context_harness_storage::HomeLayout::new(home).providers_toml();
        // No symbolic link, owned by this user, not writable by others (storage's StrictModes).
        let bytes =
            context_harness_storage::read_trusted(&path).map_err(crate::error::storage_error)?;
        let Some(bytes) = bytes else {
            return Ok(Self {
                home_file: Some(path),
                ..Self::builtin()
            });
        };
        // UTF-8 with or without a BOM, or UTF-16 with one (files saved by other platforms' tools).
        let text = context_harness_storage::decode_text(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("{} cannot be read as text: {e}", path.display()),
            )
            .with_hint("save the file as UTF-8")
            .with_source(e)
        })?;
        let mut registry = Self::from_toml_str(&text, &path.display().to_string())?;
        registry.home_file = Some(path.clone());
        registry.file = Some(path);
        Ok(registry)
    }

    /// The built-ins plus the providers in `text` (a `providers.toml`); `origin` names the file in
    /// error messages.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] naming `origin`, the line and the field.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let file: RawFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| format!(":{}", line_col(text, span.start)))
                .unwrap_or_default();
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("{origin}{at}: {}", e.message().trim()),
            )
            .with_hint(format!("fix {origin}; see the README for the format"))
        })?;
        let mut registry = Self::builtin();
        for (name, raw) in file.providers {
            let at = line_col(text, raw.span().start);
            // One naming rule, checked here so a name that would fail at sign-in never loads.
            check_name(&name).map_err(|m| {
                Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "{origin}:{at}: table [providers.{}]: {m}",
                        context_harness_tokens::terminal_text(&name)
                    ),
                )
                .with_hint(format!("rename the table in {origin}: {NAME_RULE}"))
            })?;
            let raw = raw.into_inner();
            let provider = raw
                .build(&name, registry.entries.get(&name).map(|(p, _)| p))
                .map_err(|e| {
                    Error::new(ErrorCode::ConfigInvalid, format!("{origin}:{at}: {e}"))
                        .with_hint(format!("fix {origin}; see the README for the format"))
                })?;
            let source = if OAuthProvider::is_builtin_name(&name) {
                ProviderSource::Overridden
            } else {
                ProviderSource::Configured
            };
            registry.entries.insert(name, (provider, source));
        }
        Ok(registry)
    }

    /// Adds or replaces a provider (for programs that define providers in code).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] if the provider's URLs or name are invalid.
    pub fn insert(&mut self, provider: OAuthProvider) -> Result<()> {
        provider.validate()?;
        check_name(&provider.name)
            .map_err(|m| Error::new(ErrorCode::ConfigInvalid, m).with_hint(NAME_RULE.to_owned()))?;
        let source = if OAuthProvider::is_builtin_name(&provider.name) {
            ProviderSource::Overridden
        } else {
            ProviderSource::Configured
        };
        self.entries
            .insert(provider.name.clone(), (provider, source));
        Ok(())
    }

    /// The `providers.toml` this registry was loaded from, if one was.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The provider called `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] naming the known providers; [`ErrorCode::ConfigInvalid`] for a name
    /// of the MCP servers' namespace (`_…`, see [`ProviderRef::parse`](crate::ProviderRef::parse)),
    /// which no provider can have.
    pub fn get(&self, name: &str) -> Result<&OAuthProvider> {
        // A name no provider can have (the servers' namespace, a URL, characters outside the
        // naming rule) is refused as such, before it could be echoed or suggested as a table.
        if !self.entries.contains_key(name) {
            crate::ProviderRef::parse(name)?;
        }
        self.entries.get(name).map(|(p, _)| p).ok_or_else(|| {
            let known: Vec<&str> = self.entries.keys().map(String::as_str).collect();
            Error::new(
                ErrorCode::NotFound,
                format!("unknown provider `{name}` (known: {})", known.join(", ")),
            )
            .with_provider(name)
            .with_hint(format!(
                "use one of {}, or add [providers.{name}] to {}",
                known.join(", "),
                self.home_file.as_deref().map_or_else(
                    || format!("{PROVIDERS_FILE} in the home directory"),
                    |p| p.display().to_string()
                )
            ))
        })
    }

    /// Whether `name` is known.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Every provider with where it came from, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&OAuthProvider, ProviderSource)> {
        self.entries.values().map(|(p, s)| (p, *s))
    }

    /// The provider with credentials: client id from `client_id`, else `{SERVICE}_CLIENT_ID`, else
    /// the configured one; secret from `{SERVICE}_CLIENT_SECRET` only.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for an unknown name; [`ErrorCode::ConfigMissing`] without a client id,
    /// naming the variable and the provider's setup URL.
    pub fn resolve(
        &self,
        name: &str,
        client_id: Option<&str>,
        env: &Environment,
    ) -> Result<OAuthConfig> {
        let provider = self.get(name)?;
        let client_id = resolve_client_id(provider, client_id, env)?;
        let secret = env
            .get(&provider.client_secret_env())
            .map(ClientSecret::new);
        Ok(provider.to_config(client_id, secret))
    }
}

/// Client id: argument, else `{SERVICE}_CLIENT_ID`, else the configured id.
pub(crate) fn resolve_client_id(
    provider: &OAuthProvider,
    client_id: Option<&str>,
    env: &Environment,
) -> Result<String> {
    let from_arg = client_id.map(str::trim).filter(|s| !s.is_empty());
    let var = provider.client_id_env();
    if let Some(id) = from_arg
        .or_else(|| env.get(&var))
        .or(provider.client_id.as_deref())
    {
        return Ok(id.trim().to_owned());
    }
    let step = crate::NextStep::SetClientId {
        env_var: var,
        provider: provider.name.clone(),
        setup_url: provider.setup_url.clone(),
    };
    Err(Error::new(
        ErrorCode::ConfigMissing,
        format!("no client id configured for {}", provider.display_name),
    )
    .with_provider(&provider.name)
    .with_step(step))
}

/// `line:column` (both 1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

/// The naming rule, in words (error hints and the README say the same).
const NAME_RULE: &str = "provider names are 1-64 characters of a-z, 0-9, `-`, `_`, `.`, not starting with a dot or `_`, and not a Windows device name";

/// The one naming rule for configured providers: [`ProviderName`](context_harness_storage::ProviderName)'s
/// (the name becomes a token file name and a keyring entry), plus no Windows device name
/// (`con`, `nul`, `aux`, `prn`, `com1`-`com9`, `lpt1`-`lpt9`) before the first dot, since
/// `tokens/{name}.json` could not be created there. Checked when `providers.toml` is read, so a
/// name that would fail at sign-in never loads.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let shown = context_harness_tokens::terminal_text(name);
    if let Err(e) = context_harness_storage::ProviderName::new(name) {
        let reason = match e {
            context_harness_storage::Error::InvalidName { reason, .. } => reason,
            _ => "not a valid name",
        };
        let lower = name.to_ascii_lowercase();
        let suggestion =
            if lower != name && context_harness_storage::ProviderName::new(&lower).is_ok() {
                format!(" (e.g. `{lower}`)")
            } else {
                String::new()
            };
        return Err(format!(
            "provider name `{shown}` is not allowed: {reason}{suggestion}"
        ));
    }
    if name.starts_with(context_harness_storage::SERVER_NAME_PREFIX) {
        return Err(format!(
            "provider name `{shown}` is not allowed: names starting with `_` belong to MCP servers' tokens"
        ));
    }
    let stem = name.split('.').next().unwrap_or(name);
    let device = matches!(stem, "con" | "prn" | "aux" | "nul")
        || ((stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.len() == 4
            && stem
                .as_bytes()
                .get(3)
                .is_some_and(|b| (b'1'..=b'9').contains(b)));
    if device {
        return Err(format!(
            "provider name `{shown}` is not allowed: `{stem}` is a reserved device name on Windows"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    providers: BTreeMap<String, Spanned<RawProvider>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    auth_url: Option<String>,
    token_url: Option<String>,
    device_auth_url: Option<String>,
    revocation_url: Option<String>,
    revocation_style: Option<String>,
    resources_url: Option<String>,
    audience: Option<String>,
    scopes: Option<Vec<String>>,
    extra_auth_params: Option<BTreeMap<String, String>>,
    client_id: Option<String>,
    redirect_host: Option<String>,
    ports: Option<Vec<u16>>,
    display_name: Option<String>,
    setup_url: Option<String>,
    pkce: Option<bool>,
    issuer: Option<String>,
    iss_parameter_supported: Option<bool>,
    resource: Option<String>,
    /// Also accepted under its RFC 7591 / RFC 8414 name.
    #[serde(alias = "token_endpoint_auth_method")]
    token_auth_method: Option<String>,
    token_path: Option<String>,
    git_hosts: Option<Vec<String>>,
}

impl RawProvider {
    fn build(
        self,
        name: &str,
        base: Option<&OAuthProvider>,
    ) -> std::result::Result<OAuthProvider, String> {
        check_name(name)?;
        let field = |f: &str| format!("providers.{name}.{f}");
        let mut provider = match base {
            Some(base) => base.clone(),
            None => {
                match (&self.auth_url, &self.token_url, &self.issuer) {
                    (Some(auth_url), Some(token_url), _) => {
                        OAuthProvider::new(name, auth_url.clone(), token_url.clone())
                            .map_err(|e| e.to_string())?
                    }
                    // Only `issuer`: the endpoints come from discovery when first used.
                    (_, _, Some(issuer)) => OAuthProvider::from_issuer(name, issuer.clone())
                        .map_err(|e| e.to_string())?,
                    (auth_url, _, None) => {
                        let missing = if auth_url.is_none() {
                            "auth_url"
                        } else {
                            "token_url"
                        };
                        return Err(format!(
                            "{}: required (or set `issuer` to discover the endpoints)",
                            field(missing)
                        ));
                    }
                }
            }
        };
        // A field the file gives replaces the base's; the others keep the base's value.
        provider.auth_url = self.auth_url.unwrap_or(provider.auth_url);
        provider.token_url = self.token_url.unwrap_or(provider.token_url);
        provider.device_auth_url = self.device_auth_url.or(provider.device_auth_url);
        provider.revocation_url = self.revocation_url.or(provider.revocation_url);
        if let Some(style) = self.revocation_style {
            provider.revocation_style = match style.as_str() {
                "rfc7009" => RevocationStyle::Rfc7009,
                "github" => RevocationStyle::GitHub,
                other => {
                    return Err(format!(
                        "{}: `{other}` is not one of \"rfc7009\", \"github\"",
                        field("revocation_style")
                    ));
                }
            };
        }
        provider.resources_url = self.resources_url.or(provider.resources_url);
        provider.audience = self.audience.or(provider.audience);
        if let Some(scopes) = self.scopes {
            if let Some(bad) = scopes
                .iter()
                .find(|s| s.is_empty() || s.contains([' ', ',']))
            {
                return Err(format!(
                    "{}: `{bad}` is not a single scope",
                    field("scopes")
                ));
            }
            provider.scopes = scopes;
        }
        if let Some(params) = self.extra_auth_params {
            // Reserved parameters are refused by `validate` below (RESERVED_AUTH_PARAMS).
            provider.extra_auth_params = params;
        }
        if self.client_id.is_some() {
            provider.client_id = self.client_id.filter(|c| !c.trim().is_empty());
        }
        if let Some(host) = self.redirect_host {
            provider.redirect_host =
                crate::provider::parse_redirect_host(&host).ok_or_else(|| {
                    format!(
                        "{}: `{host}` is not \"localhost\" or \"127.0.0.1\"",
                        field("redirect_host")
                    )
                })?;
        }
        if let Some(ports) = self.ports {
            if ports.is_empty() {
                return Err(format!(
                    "{}: give one or more ports (0 = any free port)",
                    field("ports")
                ));
            }
            provider.ports = ports;
        }
        provider.display_name = self.display_name.unwrap_or(provider.display_name);
        provider.setup_url = self.setup_url.or(provider.setup_url);
        provider.pkce = self.pkce.unwrap_or(provider.pkce);
        provider.issuer = self.issuer.or(provider.issuer);
        provider.iss_parameter_supported = self
            .iss_parameter_supported
            .unwrap_or(provider.iss_parameter_supported);
        provider.resource = self.resource.or(provider.resource);
        provider.token_path = self.token_path.or(provider.token_path);
        provider.git_hosts = self.git_hosts.unwrap_or(provider.git_hosts);
        if let Some(method) = self.token_auth_method {
            provider.token_auth_method = TokenAuthMethod::parse(&method).ok_or_else(|| {
                format!(
                    "{}: `{method}` is not \"client_secret_basic\" or \"client_secret_post\"",
                    field("token_auth_method")
                )
            })?;
        }
        provider.name = name.to_owned();
        provider.validate().map_err(|e| e.to_string())?;
        Ok(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProviderRegistry> {
        ProviderRegistry::from_toml_str(text, "providers.toml")
    }

    #[test]
    fn builtins_are_present() {
        let registry = ProviderRegistry::builtin();
        assert!(registry.get("github").is_ok());
        assert!(registry.get("atlassian").is_ok());
        let err = registry.get("nope").err().map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::NotFound));
    }

    #[test]
    fn custom_provider_parses_every_key() {
        let registry = parse(
            r#"
[providers.acme]
display_name = "Acme"
auth_url = "https://sso.acme.example/authorize"
token_url = "https://sso.acme.example/token"
device_auth_url = "https://sso.acme.example/device"
revocation_url = "https://sso.acme.example/revoke"
resources_url = "https://api.acme.example/me"
issuer = "https://sso.acme.example"
audience = "api"
scopes = ["a", "b"]
extra_auth_params = { prompt = "consent" }
client_id = "cid"
redirect_host = "127.0.0.1"
ports = [9000]
setup_url = "https://sso.acme.example/apps"
pkce = true
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let acme = registry.get("acme").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(acme.display_name, "Acme");
        assert_eq!(acme.ports, vec![9000]);
        assert_eq!(acme.redirect_host, crate::RedirectHost::Ipv4);
        assert_eq!(
            acme.extra_auth_params.get("prompt").map(String::as_str),
            Some("consent")
        );
        assert_eq!(acme.issuer.as_deref(), Some("https://sso.acme.example"));
        assert_eq!(acme.client_id.as_deref(), Some("cid"));
    }

    #[test]
    fn token_auth_method_accepts_its_rfc_name() {
        let registry = parse(
            "[providers.acme]\nauth_url = \"https://a.example/authorize\"\n\
             token_url = \"https://a.example/token\"\n\
             token_endpoint_auth_method = \"client_secret_post\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let acme = registry.get("acme").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(acme.token_auth_method, TokenAuthMethod::ClientSecretPost);
    }

    #[test]
    fn builtin_override_keeps_unset_fields() {
        let registry =
            parse("[providers.github]\nclient_id = \"Iv1.x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let gh = registry.get("github").unwrap_or_else(|e| panic!("{e}"));
        // Every field but the one given is the built-in's (required and optional ones alike).
        let mut want = OAuthProvider::github();
        want.client_id = Some("Iv1.x".to_owned());
        assert_eq!(*gh, want);
        assert!(
            registry
                .iter()
                .any(|(p, s)| p.name == "github" && s == ProviderSource::Overridden)
        );
    }

    #[test]
    fn builtin_override_replaces_the_fields_given() {
        let registry = parse(
            "[providers.github]\ndisplay_name = \"GH\"\npkce = false\nsetup_url = \"https://example.com/setup\"\nrevocation_url = \"https://example.com/revoke\"\nauth_url = \"https://example.com/authorize\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let gh = registry.get("github").unwrap_or_else(|e| panic!("{e}"));
        let mut want = OAuthProvider::github();
        want.display_name = "GH".to_owned();
        want.pkce = false;
        want.setup_url = Some("https://example.com/setup".to_owned());
        want.revocation_url = Some("https://example.com/revoke".to_owned());
        want.auth_url = "https://example.com/authorize".to_owned();
        assert_eq!(*gh, want);
    }

    #[test]
    fn harmless_authorization_parameters_are_kept() {
        let registry = parse(
            "[providers.x]\nauth_url = \"https://a.example/authorize?prompt=consent&audience=api\"\ntoken_url = \"https://a.example/t\"\nextra_auth_params = { access_type = \"offline\", login_hint = \"me\" }\n",
        );
        let x = registry.and_then(|r| r.get("x").cloned());
        assert!(x.is_ok_and(|p| p.extra_auth_params.len() == 2));
        // Code-defined providers get the same check (`new` validates).
        let err = OAuthProvider::new(
            "y",
            "https://a.example/authorize?state=fixed",
            "https://a.example/t",
        )
        .err()
        .map(|e| (e.code(), e.to_string()));
        assert!(
            err.as_ref()
                .is_some_and(|(c, m)| *c == ErrorCode::ConfigInvalid && m.contains("`state`")),
            "{err:?}"
        );
    }

    #[test]
    fn bad_files_name_line_and_field() {
        let cases = [
            (
                "[providers.x]\nauth_url = \"https://a/\"\ntoken_url = \"http://evil.example/t\"\n",
                "providers.x.token_url",
            ),
            (
                "[providers.x]\nauth_url = \"https://a/\"\n",
                "providers.x.token_url",
            ),
            ("\n\n[providers.x]\nauth_url = 5\n", ":4:"),
            ("[providers.x]\nbogus = 1\n", "bogus"),
            (
                "[providers.x]\nauth_url = \"javascript:alert(1)\"\ntoken_url = \"https://a/\"\n",
                "providers.x.auth_url",
            ),
            (
                "[providers.github]\nredirect_host = \"0.0.0.0\"\n",
                "providers.github.redirect_host",
            ),
            ("[providers.github]\nports = []\n", "providers.github.ports"),
            (
                "[providers.github]\nextra_auth_params = { state = \"x\" }\n",
                "providers.github.extra_auth_params: parameter `state`",
            ),
            // Reserved parameters (`state`, `code_challenge`, `resource`, …), wherever they are configured.
            (
                "[providers.github]\nextra_auth_params = { prompt = \"consent\", resource = \"https://other\" }\n",
                "providers.github.extra_auth_params: parameter `resource`",
            ),
            (
                "[providers.github]\nextra_auth_params = { Nonce = \"fixed\" }\n",
                "parameter `Nonce`",
            ),
            (
                "[providers.x]\nauth_url = \"https://a.example/authorize?prompt=login&redirect_uri=https://evil.example/\"\ntoken_url = \"https://a.example/t\"\n",
                "providers.x.auth_url: parameter `redirect_uri`",
            ),
            (
                "[providers.x]\nauth_url = \"https://a.example/authorize?code_challenge_method=plain\"\ntoken_url = \"https://a.example/t\"\n",
                "parameter `code_challenge_method`",
            ),
            (
                "[providers.github]\nauth_url = \"https://github.com/login/oauth/authorize?client_id=other\"\n",
                "providers.github.auth_url: parameter `client_id`",
            ),
            (
                "[providers.x]\nauth_url = \"https://a.example/authorize\"\ntoken_url = \"https://a.example/t\"\ndevice_auth_url = \"https://a.example/device?scope=admin\"\n",
                "providers.x.device_auth_url: parameter `scope`",
            ),
            (
                "[providers.x]\nauth_url = \"https://a.example/authorize?request_uri=urn:x\"\ntoken_url = \"https://a.example/t\"\n",
                "parameter `request_uri`",
            ),
            (
                "[providers.\"a b\"]\nauth_url = \"https://a/\"\ntoken_url = \"https://a/\"\n",
                "provider name",
            ),
            ("not toml at all =", "providers.toml:1:"),
        ];
        for (text, needle) in cases {
            match parse(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{text}");
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
                    assert!(msg.starts_with("providers.toml:"), "{msg}");
                }
            }
        }
    }

    #[test]
    fn client_id_precedence() {
        let registry = parse("[providers.github]\nclient_id = \"from-config\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let env = Environment::from_pairs([
            ("GITHUB_CLIENT_ID", "from-env"),
            ("GITHUB_CLIENT_SECRET", "s3"),
        ]);
        let id = |arg, env: &Environment| {
            registry
                .resolve("github", arg, env)
                .map(|c| c.client_id)
                .ok()
        };
        assert_eq!(id(Some("from-arg"), &env).as_deref(), Some("from-arg"));
        assert_eq!(id(None, &env).as_deref(), Some("from-env"));
        assert_eq!(
            id(None, &Environment::empty()).as_deref(),
            Some("from-config")
        );
        let secret = registry
            .resolve("github", None, &env)
            .ok()
            .and_then(|c| c.client_secret);
        assert_eq!(secret.as_ref().map(ClientSecret::secret), Some("s3"));
    }

    #[test]
    fn missing_client_id_names_variable_and_setup_url() {
        let err = ProviderRegistry::builtin()
            .resolve("atlassian", None, &Environment::empty())
            .err()
            .unwrap_or_else(|| panic!("resolved without a client id"));
        assert_eq!(err.code(), ErrorCode::ConfigMissing);
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("ATLASSIAN_CLIENT_ID"), "{hint}");
        assert!(hint.contains("https://developer.atlassian.com/"), "{hint}");
    }
}
