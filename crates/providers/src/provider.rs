//! Provider templates ([`OAuthProvider`]) and runtime configuration with credentials ([`OAuthConfig`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use url::Url;

use crate::error::{Error, ErrorCode, Result};

pub(crate) mod git_hosts;

/// The loopback ports tried in order for the redirect listener when a provider names none
/// (re-exported from the callback server, which owns the listener).
pub use context_harness_callback_server::DEFAULT_PORTS;

/// The host written into the loopback `redirect_uri` (re-exported from the callback server). A
/// `providers.toml` may choose `"localhost"` (the default) or `"127.0.0.1"`.
pub use context_harness_callback_server::RedirectHost;

/// Parses the `redirect_host` value of `providers.toml`: `"localhost"` or `"127.0.0.1"`.
pub(crate) fn parse_redirect_host(value: &str) -> Option<RedirectHost> {
    match value {
        "localhost" => Some(RedirectHost::Localhost),
        "127.0.0.1" => Some(RedirectHost::Ipv4),
        _ => None,
    }
}

/// How the client authenticates at the token endpoint when it has a secret (RFC 6749 §2.3.1).
///
/// A client without a secret is public and sends only `client_id` in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749's default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (GitHub, Atlassian, Google).
    ClientSecretPost,
}

impl TokenAuthMethod {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    /// The method's name in RFC 7591 §2 `token_endpoint_auth_method` (`client_secret_basic`,
    /// `client_secret_post`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    /// The method a client with a secret uses at an authorization server whose RFC 8414 metadata
    /// lists `supported` (`token_endpoint_auth_methods_supported`): `client_secret_basic`, unless
    /// the list names `client_secret_post` and not `client_secret_basic`. An absent list means
    /// `client_secret_basic` (RFC 8414 §2 default); a list naming neither (only `private_key_jwt`,
    /// say) gets `client_secret_basic` too, and the server's refusal then says why.
    ///
    /// ```
    /// use context_harness_providers::TokenAuthMethod;
    ///
    /// let post_only = vec!["none".to_owned(), "client_secret_post".to_owned()];
    /// assert_eq!(TokenAuthMethod::preferred(Some(&post_only)), TokenAuthMethod::ClientSecretPost);
    /// assert_eq!(TokenAuthMethod::preferred(None), TokenAuthMethod::ClientSecretBasic);
    /// ```
    pub fn preferred(supported: Option<&[String]>) -> Self {
        let lists =
            |method: Self| supported.is_some_and(|s| s.iter().any(|m| m == method.as_str()));
        if lists(Self::ClientSecretPost) && !lists(Self::ClientSecretBasic) {
            Self::ClientSecretPost
        } else {
            Self::ClientSecretBasic
        }
    }
}

/// Whether `path` is a [`token_path`](OAuthProvider::token_path): one or more keys of ASCII
/// letters, digits, `_` and `-`, joined with `.`.
fn is_token_path(path: &str) -> bool {
    path.split('.').all(|key| {
        !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// The body of a token endpoint answer with the tokens where [`OAuthProvider::token_path`] says
/// they are: when `path` is given and the answer is a JSON object that holds an object there (and
/// reports no `error` at its top level), that object alone, as JSON; otherwise `body` unchanged, to
/// be read at its top level (an error report, a refresh answer that is not nested).
pub(crate) fn nested_token_answer<'a>(
    body: &'a [u8],
    path: Option<&str>,
) -> std::borrow::Cow<'a, [u8]> {
    use serde_json::Value;
    let Some(path) = path else {
        return body.into();
    };
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(body) else {
        return body.into();
    };
    if top
        .get("error")
        .is_some_and(|e| e.as_str().is_some_and(|e| !e.is_empty()))
    {
        return body.into();
    }
    let mut at = &top;
    for key in path.split('.') {
        match at.get(key) {
            Some(Value::Object(inner)) => at = inner,
            _ => return body.into(),
        }
    }
    serde_json::to_vec(at).map_or_else(|_| body.into(), Into::into)
}

/// How tokens are revoked on logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevocationStyle {
    /// RFC 7009: `POST revocation_url` with `token=…&token_type_hint=…`.
    #[default]
    Rfc7009,
    /// GitHub's REST call `DELETE {revocation_url}` with Basic `client_id:client_secret` and JSON
    /// `{"access_token": …}`; `{client_id}` in the URL is replaced. Needs the client secret.
    GitHub,
}

/// Authorization-request parameters the client sets itself, refused in a configured `auth_url` or
/// `device_auth_url` query and in `extra_auth_params` ([`OAuthProvider::validate`]): sending them
/// twice is an error (RFC 6749 §3.1), and a fixed value would defeat their purpose.
///
/// - `response_type`, `client_id`, `redirect_uri`, `scope`, `state`: RFC 6749 §4.1.1.
/// - `code_challenge`, `code_challenge_method`: RFC 7636 §4.3 (a fixed challenge defeats PKCE).
/// - `code_verifier`: RFC 7636 §4.5, a secret for the token endpoint only.
/// - `resource`: RFC 8707 §2, sent from the configured resource (a second one widens the audience).
/// - `nonce`: OpenID Connect, a per-request value (a fixed one defeats replay protection).
/// - `request`, `request_uri`: RFC 9101, a request object could replace every parameter above.
/// - `client_secret`: never part of a URL.
pub const RESERVED_AUTH_PARAMS: [&str; 13] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "resource",
    "nonce",
    "request",
    "request_uri",
    "client_secret",
];

/// A provider template: endpoints, scopes and quirks, without credentials (the Python original's
/// `OAuthProvider`).
///
/// Built-ins come from [`OAuthProvider::github`] and [`OAuthProvider::atlassian`]; custom ones from
/// `providers.toml` (see [`ProviderRegistry`](crate::ProviderRegistry)) or [`OAuthProvider::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthProvider {
    /// The registry name, e.g. `github` (also the storage key and the env-var prefix source).
    pub name: String,
    /// A human-readable name, e.g. `GitHub`.
    pub display_name: String,
    /// The authorization endpoint.
    pub auth_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The device authorization endpoint (RFC 8628), if the provider has one.
    pub device_auth_url: Option<String>,
    /// Where tokens are revoked on logout, if anywhere.
    pub revocation_url: Option<String>,
    /// How [`revocation_url`](Self::revocation_url) is called.
    pub revocation_style: RevocationStyle,
    /// An API URL listing what the token can reach (Atlassian's accessible-resources).
    pub resources_url: Option<String>,
    /// The `audience` authorize parameter (Atlassian: `api.atlassian.com`).
    pub audience: Option<String>,
    /// Scopes requested by default.
    pub scopes: Vec<String>,
    /// Extra authorize parameters, e.g. `prompt=consent`.
    pub extra_auth_params: BTreeMap<String, String>,
    /// A client id from configuration (the call argument and `{SERVICE}_CLIENT_ID` win over it).
    pub client_id: Option<String>,
    /// The host of the loopback redirect URI.
    pub redirect_host: RedirectHost,
    /// The loopback ports to try, in order.
    pub ports: Vec<u16>,
    /// The path of the loopback redirect URI: `/callback`, or for a dynamically registered client
    /// a path of its own per authorization server (RFC 9700 §4.4.2, mix-up defence: a callback is
    /// accepted only on the path of the issuer the flow started with).
    pub redirect_path: String,
    /// Where a developer registers an OAuth app for this provider.
    pub setup_url: Option<String>,
    /// Whether to send PKCE (S256). On by default; OAuth 2.1 requires it.
    pub pkce: bool,
    /// The authorization server's issuer identifier (RFC 8414), used for the RFC 9207 `iss` check
    /// and, later, discovery.
    pub issuer: Option<String>,
    /// Whether the server always sends `iss` in the authorization response (RFC 9207
    /// `authorization_response_iss_parameter_supported`); then a response without it is refused.
    pub iss_parameter_supported: bool,
    /// The RFC 8707 `resource` to send on authorize, token and refresh requests, if any.
    pub resource: Option<String>,
    /// How a confidential client authenticates at the token endpoint.
    pub token_auth_method: TokenAuthMethod,
    /// Where the token endpoint's JSON answer holds the tokens, for a provider that documents them
    /// nested: a key, or keys joined with `.`, of the answer's object (Slack puts a user's tokens
    /// under `authed_user`). An answer without an object there (an error, or Slack's refresh
    /// answers) is read at its top level as usual. `None` (the default): the top level.
    pub token_path: Option<String>,
    /// The SSRF policy of the endpoints: `None` when the user configured them (built-ins,
    /// providers.toml), `Some` when they were learnt from a server (an MCP server's record, an
    /// issuer's metadata); then every request to them runs under that policy (see
    /// [`UrlPolicy`](crate::ssrf::UrlPolicy)).
    pub url_policy: Option<crate::ssrf::UrlPolicy>,
    /// Whether new token sets are DPoP-bound (RFC 9449): a sign-in makes a key pair and sends a
    /// proof with every token request. Set from an MCP server's metadata; off for built-ins and
    /// `providers.toml` entries.
    pub dpop: bool,
    /// The git hosts (`host` or `host:port`) whose HTTPS credentials are this provider's access
    /// tokens, for git credential helpers (see
    /// [`serves_git_host`](Self::serves_git_host)):
    /// `github.com` for `github`, `gitlab.com` for a provider named `gitlab`, else none unless
    /// configured (`git_hosts` in `providers.toml`, which replaces these).
    pub git_hosts: Vec<String>,
}

impl OAuthProvider {
    /// A provider with the given endpoints and defaults for everything else (no scopes, PKCE on,
    /// `localhost` redirect, the default ports).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] if either URL is not absolute `https` (or `http` to a loopback
    /// host).
    pub fn new(
        name: impl Into<String>,
        auth_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        let provider = Self {
            display_name: name.clone(),
            git_hosts: git_hosts::well_known(&name),
            name,
            auth_url: auth_url.into(),
            token_url: token_url.into(),
            token_auth_method: TokenAuthMethod::ClientSecretBasic,
            ..Self::defaults()
        };
        provider.validate()?;
        Ok(provider)
    }

    /// A provider known only by its issuer: the endpoints (and the device and revocation endpoints)
    /// come from RFC 8414 / OpenID Connect discovery when it is first used (see
    /// [`needs_discovery`](Self::needs_discovery)).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] if the issuer is not absolute `https` (or `http` to loopback).
    pub fn from_issuer(name: impl Into<String>, issuer: impl Into<String>) -> Result<Self> {
        let mut provider = Self::new(
            name,
            "https://discovery.invalid/",
            "https://discovery.invalid/",
        )?;
        provider.auth_url = String::new();
        provider.token_url = String::new();
        provider.issuer = Some(issuer.into());
        provider.validate()?;
        Ok(provider)
    }

    /// Whether the authorization or token endpoint is still to be discovered from
    /// [`issuer`](Self::issuer).
    pub fn needs_discovery(&self) -> bool {
        self.issuer.is_some()
            && (self.auth_url.trim().is_empty() || self.token_url.trim().is_empty())
    }

    /// What every provider starts from: PKCE, client authentication by `client_secret_post`, the
    /// default loopback redirect, no issuer (no RFC 8414 metadata, no RFC 9207 `iss`), no resource
    /// indicator and no SSRF policy. The name and endpoints are left empty for the caller to set.
    fn defaults() -> Self {
        Self {
            name: String::new(),
            display_name: String::new(),
            auth_url: String::new(),
            token_url: String::new(),
            device_auth_url: None,
            revocation_url: None,
            revocation_style: RevocationStyle::Rfc7009,
            resources_url: None,
            audience: None,
            scopes: Vec::new(),
            extra_auth_params: BTreeMap::new(),
            client_id: None,
            redirect_host: RedirectHost::Localhost,
            ports: DEFAULT_PORTS.to_vec(),
            redirect_path: context_harness_callback_server::DEFAULT_PATH.to_owned(),
            setup_url: None,
            pkce: true,
            issuer: None,
            iss_parameter_supported: false,
            resource: None,
            token_auth_method: TokenAuthMethod::ClientSecretPost,
            url_policy: None,
            token_path: None,
            dpop: false,
            git_hosts: Vec::new(),
        }
    }

    /// The built-in GitHub OAuth-app provider.
    ///
    /// Tokens do not expire unless the app opts in; there is no RFC 7009 endpoint, so logout uses the
    /// REST call `DELETE /applications/{client_id}/token` when a client secret is set.
    pub fn github() -> Self {
        Self {
            name: "github".to_owned(),
            display_name: "GitHub".to_owned(),
            auth_url: "https://github.com/login/oauth/authorize".to_owned(),
            token_url: "https://github.com/login/oauth/access_token".to_owned(),
            device_auth_url: Some("https://github.com/login/device/code".to_owned()),
            revocation_url: Some(
                "https://api.github.com/applications/{client_id}/token".to_owned(),
            ),
            revocation_style: RevocationStyle::GitHub,
            resources_url: Some("https://api.github.com/user".to_owned()),
            audience: None,
            scopes: vec!["repo".to_owned(), "read:user".to_owned()],
            extra_auth_params: BTreeMap::new(),
            setup_url: Some("https://github.com/settings/developers".to_owned()),
            git_hosts: git_hosts::well_known("github"),
            // GitHub publishes no RFC 8414 metadata and sends no `iss`.
            ..Self::defaults()
        }
    }

    /// The built-in Atlassian Cloud (3LO) provider.
    ///
    /// Sends `audience=api.atlassian.com` and `prompt=consent`, and asks for `offline_access` so a
    /// refresh token is issued (Atlassian rotates it on every refresh).
    pub fn atlassian() -> Self {
        let mut extra = BTreeMap::new();
        extra.insert("prompt".to_owned(), "consent".to_owned());
        Self {
            name: "atlassian".to_owned(),
            display_name: "Atlassian".to_owned(),
            auth_url: "https://auth.atlassian.com/authorize".to_owned(),
            token_url: "https://auth.atlassian.com/oauth/token".to_owned(),
            device_auth_url: None,
            revocation_url: None,
            revocation_style: RevocationStyle::Rfc7009,
            resources_url: Some(
                "https://api.atlassian.com/oauth/token/accessible-resources".to_owned(),
            ),
            audience: Some("api.atlassian.com".to_owned()),
            scopes: vec![
                "read:jira-work".to_owned(),
                "read:jira-user".to_owned(),
                "read:confluence-content.all".to_owned(),
                "offline_access".to_owned(),
            ],
            extra_auth_params: extra,
            setup_url: Some("https://developer.atlassian.com/console/myapps/".to_owned()),
            ..Self::defaults()
        }
    }

    /// The built-in GitLab.com provider (an OAuth application of gitlab.com; self-managed GitLab is
    /// a `providers.toml` entry with its own URLs and `git_hosts`).
    ///
    /// PKCE with the authorization code, or the device grant (RFC 8628); access tokens live two
    /// hours and come with a refresh token; RFC 7009 revocation. The scopes are those git over
    /// HTTPS needs (`read_repository`, `write_repository`) and the API's `read_user`.
    pub fn gitlab() -> Self {
        Self {
            name: "gitlab".to_owned(),
            display_name: "GitLab".to_owned(),
            auth_url: "https://gitlab.com/oauth/authorize".to_owned(),
            token_url: "https://gitlab.com/oauth/token".to_owned(),
            device_auth_url: Some("https://gitlab.com/oauth/authorize_device".to_owned()),
            revocation_url: Some("https://gitlab.com/oauth/revoke".to_owned()),
            revocation_style: RevocationStyle::Rfc7009,
            resources_url: Some("https://gitlab.com/api/v4/user".to_owned()),
            audience: None,
            scopes: vec![
                "read_repository".to_owned(),
                "write_repository".to_owned(),
                "read_user".to_owned(),
            ],
            extra_auth_params: BTreeMap::new(),
            setup_url: Some("https://gitlab.com/-/user_settings/applications".to_owned()),
            git_hosts: git_hosts::well_known("gitlab"),
            ..Self::defaults()
        }
    }

    /// All built-in providers.
    pub fn builtins() -> Vec<Self> {
        vec![Self::github(), Self::atlassian(), Self::gitlab()]
    }

    /// Whether this provider's name is one of the built-ins (it may still have been overridden).
    pub fn is_builtin_name(name: &str) -> bool {
        matches!(name, "github" | "atlassian" | "gitlab")
    }

    /// The environment variable holding the client id, e.g. `GITHUB_CLIENT_ID`.
    pub fn client_id_env(&self) -> String {
        format!("{}_CLIENT_ID", crate::env::env_prefix(&self.name))
    }

    /// The environment variable holding the client secret, e.g. `GITHUB_CLIENT_SECRET`.
    pub fn client_secret_env(&self) -> String {
        format!("{}_CLIENT_SECRET", crate::env::env_prefix(&self.name))
    }

    /// Checks every URL (absolute; `https`, or `http` only to a loopback host), the ports, and that
    /// no [reserved parameter](RESERVED_AUTH_PARAMS) is configured: in `extra_auth_params`, or in
    /// the query of `auth_url` or `device_auth_url`.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] naming the offending field (and parameter).
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        self.check_reserved_params()?;
        // Endpoints left empty are discovered from `issuer` (checked below) before use.
        let discover = self.issuer.is_some();
        if !(discover && self.auth_url.trim().is_empty()) {
            check_endpoint(&self.auth_url, &format!("providers.{name}.auth_url"))?;
        }
        if !(discover && self.token_url.trim().is_empty()) {
            check_endpoint(&self.token_url, &format!("providers.{name}.token_url"))?;
        }
        for (field, value) in [
            ("device_auth_url", &self.device_auth_url),
            ("resources_url", &self.resources_url),
            ("issuer", &self.issuer),
        ] {
            if let Some(value) = value {
                check_endpoint(value, &format!("providers.{name}.{field}"))?;
            }
        }
        if let Some(revocation) = &self.revocation_url {
            // `{client_id}` is a template slot (GitHub); check the URL with a harmless stand-in.
            check_endpoint(
                &revocation.replace("{client_id}", "client"),
                &format!("providers.{name}.revocation_url"),
            )?;
        }
        git_hosts::check(&self.git_hosts, name)?;
        if self.ports.is_empty() {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!("providers.{name}.ports: at least one port is needed"),
            ));
        }
        if let Some(path) = &self.token_path
            && !is_token_path(path)
        {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "providers.{name}.token_path: `{}` is not a key of the token answer (letters, digits, `_` and `-`; nested keys joined with `.`)",
                    crate::terminal_text(path)
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a reserved parameter in `extra_auth_params` or in the query of a configured
    /// authorization or device endpoint (compared without regard to ASCII case, since some servers
    /// read parameter names that way).
    fn check_reserved_params(&self) -> Result<()> {
        let name = &self.name;
        let refuse = |field: &str, param: &str| {
            Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "providers.{name}.{field}: parameter `{}` is set by the client for every request and cannot be configured (RFC 6749 §3.1: parameters must not repeat)",
                    crate::terminal_text(param)
                ),
            )
            .with_hint(format!(
                "remove `{}` from providers.{name}.{field}",
                crate::terminal_text(param)
            )))
        };
        let reserved = |param: &str| {
            RESERVED_AUTH_PARAMS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(param.trim()))
        };
        if let Some(bad) = self.extra_auth_params.keys().find(|k| reserved(k)) {
            return refuse("extra_auth_params", bad);
        }
        // `response_mode`: `query` (the default) and `form_post` (the loopback listener accepts a
        // form POST) reach the listener; `fragment` (or a JWT mode, JARM) would not: the browser
        // keeps a fragment to itself, and the sign-in would time out after the user approved.
        for (field, value) in [
            (
                "extra_auth_params",
                self.extra_auth_params
                    .iter()
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("response_mode"))
                    .map(|(_, v)| v.clone()),
            ),
            (
                "auth_url",
                Url::parse(self.auth_url.trim()).ok().and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("response_mode"))
                        .map(|(_, v)| v.into_owned())
                }),
            ),
        ] {
            if let Some(mode) = value
                && !matches!(mode.trim(), "query" | "form_post")
            {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "providers.{name}.{field}: response_mode `{}` is not supported: the authorization response would never reach the loopback listener",
                        crate::terminal_text(&mode)
                    ),
                )
                .with_hint(format!(
                    "use response_mode \"query\" (the default) or \"form_post\" in providers.{name}.{field}, or remove it"
                )));
            }
        }
        for (field, value) in [
            ("auth_url", Some(&self.auth_url)),
            ("device_auth_url", self.device_auth_url.as_ref()),
        ] {
            let Some(Ok(url)) = value.map(|v| Url::parse(v.trim())) else {
                continue;
            };
            if let Some((bad, _)) = url.query_pairs().find(|(k, _)| reserved(k)) {
                return refuse(field, &bad);
            }
        }
        Ok(())
    }

    /// Combines this template with credentials into an [`OAuthConfig`].
    pub fn to_config(
        &self,
        client_id: impl Into<String>,
        client_secret: Option<ClientSecret>,
    ) -> OAuthConfig {
        OAuthConfig {
            provider: self.clone(),
            client_id: client_id.into(),
            client_secret,
            dpop_key: None,
        }
    }
}

/// A client secret: no `Display`, redacted `Debug`, never written to disk by this crate (the
/// tokens crate's one secret type).
pub use context_harness_tokens::ClientSecret;

/// A provider plus the credentials to use it (the Python original's `OAuthConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// The provider template.
    pub provider: OAuthProvider,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret, for confidential clients: from `{SERVICE}_CLIENT_SECRET`, else the
    /// application's `{APP}_CLIENT_SECRET` or `{APP}_CLIENT_SECRET_FILE` (see
    /// [`App::client_secret`](crate::App::client_secret)); never from a command line or a file of
    /// this crate's.
    pub client_secret: Option<ClientSecret>,
    /// The DPoP key of the token set this configuration obtains or renews (RFC 9449): when set,
    /// every token request carries a proof signed by it.
    pub dpop_key: Option<crate::DpopKey>,
}

impl OAuthConfig {
    /// The provider's registry name.
    pub fn name(&self) -> &str {
        &self.provider.name
    }

    /// Whether the client is public (no secret).
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
    }
}

/// Whether `host` is a loopback host: `localhost`, `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(domain) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Parses an endpoint URL and requires `https`, or `http` to a loopback host.
///
/// `what` names the setting in the error (`providers.acme.token_url`).
pub(crate) fn check_endpoint(value: &str, what: &str) -> Result<Url> {
    let invalid = |why: String| Error::new(ErrorCode::ConfigInvalid, format!("{what}: {why}"));
    let url = Url::parse(value.trim()).map_err(|e| invalid(format!("not a valid URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = url.host().is_some_and(|host| {
                is_loopback_host(&host) || crate::ssrf::is_public_test_host(&host)
            });
            if !loopback {
                return Err(invalid(
                    "plain http is allowed only for loopback hosts; use https".into(),
                ));
            }
        }
        other => {
            return Err(invalid(format!(
                "scheme `{other}` is not allowed; use https"
            )));
        }
    }
    let refusal = if url.host().is_none() {
        Some("the URL has no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("credentials in the URL are not allowed")
    } else if url.fragment().is_some() {
        Some("a URL fragment is not allowed")
    } else {
        None
    };
    match refusal {
        Some(why) => Err(invalid(why.into())),
        None => Ok(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid() {
        for provider in OAuthProvider::builtins() {
            provider
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", provider.name));
            assert!(OAuthProvider::is_builtin_name(&provider.name));
        }
        assert_eq!(OAuthProvider::github().client_id_env(), "GITHUB_CLIENT_ID");
        assert!(
            OAuthProvider::atlassian()
                .scopes
                .iter()
                .any(|s| s == "offline_access")
        );
    }

    #[test]
    fn endpoint_rules() {
        for ok in [
            "https://example.com/token",
            "http://127.0.0.1:9/token",
            "http://127.8.9.10/token",
            "http://localhost:8/x",
            "http://[::1]:8/x",
        ] {
            assert!(check_endpoint(ok, "x").is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/token",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "ftp://example.com/",
            "/relative",
            "https://user:pw@example.com/",
            "http://128.0.0.1/",
        ] {
            let err = check_endpoint(bad, "providers.x.auth_url").err();
            assert_eq!(
                err.map(|e| e.code()),
                Some(ErrorCode::ConfigInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn basic_unless_the_metadata_allows_only_post() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for (supported, want) in [
            (None, TokenAuthMethod::ClientSecretBasic),
            (Some(list(&[])), TokenAuthMethod::ClientSecretBasic),
            (
                Some(list(&["client_secret_basic", "client_secret_post"])),
                TokenAuthMethod::ClientSecretBasic,
            ),
            (
                Some(list(&["client_secret_post", "none"])),
                TokenAuthMethod::ClientSecretPost,
            ),
            (
                Some(list(&["private_key_jwt"])),
                TokenAuthMethod::ClientSecretBasic,
            ),
        ] {
            assert_eq!(
                TokenAuthMethod::preferred(supported.as_deref()),
                want,
                "{supported:?}"
            );
        }
        for method in [
            TokenAuthMethod::ClientSecretBasic,
            TokenAuthMethod::ClientSecretPost,
        ] {
            assert_eq!(TokenAuthMethod::parse(method.as_str()), Some(method));
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert!(!format!("{:?}", ClientSecret::new("hunter2")).contains("hunter2"));
    }

    /// Slack's `oauth.v2.access` answer for a user token (its documented shape), errors, and
    /// answers without the nested object.
    #[test]
    fn token_path_reads_the_documented_nested_object_only() {
        let slack = br#"{"ok":true,"app_id":"A1","access_token":"xoxb-bot","token_type":"bot",
            "authed_user":{"id":"U1","scope":"chat:write","access_token":"xoxp-user","token_type":"user",
            "refresh_token":"xoxe-1","expires_in":43200},"team":{"id":"T1"}}"#;
        let nested = nested_token_answer(slack, Some("authed_user"));
        let nested: serde_json::Value = serde_json::from_slice(&nested).unwrap_or_default();
        assert_eq!(nested["access_token"], "xoxp-user");
        assert_eq!(nested["refresh_token"], "xoxe-1");
        assert!(nested.get("team").is_none(), "{nested}");
        // No path: the top level, unchanged.
        assert_eq!(&*nested_token_answer(slack, None), slack.as_slice());
        // An error report, a top-level answer (a refresh), a path that is not an object, a form body:
        // unchanged, read at the top level.
        for body in [
            br#"{"ok":false,"error":"invalid_code","authed_user":{"access_token":"x"}}"#.as_slice(),
            br#"{"ok":true,"access_token":"xoxe.xoxp-new","refresh_token":"xoxe-2"}"#,
            br#"{"authed_user":"U1","access_token":"t"}"#,
            b"access_token=t&authed_user=U1",
        ] {
            assert_eq!(&*nested_token_answer(body, Some("authed_user")), body);
        }
        let deep = br#"{"data":{"user":{"access_token":"deep"}}}"#;
        let deep: serde_json::Value =
            serde_json::from_slice(&nested_token_answer(deep, Some("data.user")))
                .unwrap_or_default();
        assert_eq!(deep["access_token"], "deep");
        for good in ["authed_user", "data.user", "a-b_c.d1"] {
            assert!(is_token_path(good), "{good}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a b", "a/b", "a[0]", "ä"] {
            assert!(!is_token_path(bad), "{bad}");
        }
    }
}
