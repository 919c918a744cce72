//! What is specific to an MCP server URL as the provider: discovery (RFC 9728 then RFC 8414),
//! dynamic client registration (RFC 7591), the stored per-server record, and the binding of tokens
//! to the server they were issued for.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use context_harness_callback_server as callback;
use context_harness_storage::ProviderName;
use serde::{Deserialize, Serialize};

use super::{AuthenticateOptions, OAuthService};
use crate::discovery::{Discoverer, McpServerInfo, printable};
use crate::error::{Error, ErrorCode, Result, storage_error};
use crate::provider::{
    ClientSecret, DEFAULT_PORTS, OAuthConfig, OAuthProvider, RedirectHost, check_endpoint,
};
use crate::provider_ref::ProviderRef;
use crate::registration::{ClientRegistration, RegistrationAuth as _, RegistrationStore};
use crate::ssrf::UrlPolicy;
use crate::tokens::OAuthTokens;

/// What was learnt about an MCP server at sign-in, kept so refresh, logout and status need no
/// discovery (`home/mcp/<provider-name>.json`, 0600). Holds no secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct McpServerRecord {
    /// The canonical server URL (the provider name is derived from it).
    pub server_url: String,
    /// The RFC 8707 `resource` sent on every request.
    pub resource: String,
    /// Where the protected-resource metadata was found.
    pub resource_metadata_url: String,
    /// The authorization server's issuer.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The revocation endpoint, if any.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The device authorization endpoint, if any.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// The registration endpoint, if any.
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// RFC 9207: the server always sends `iss`.
    #[serde(default)]
    pub iss_parameter_supported: bool,
    /// The scopes requested by default.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Whether the client was registered dynamically (then it is re-registered on `invalid_client`).
    #[serde(default)]
    pub dynamic_client: bool,
    /// When discovery ran (unix seconds).
    #[serde(default)]
    pub discovered_at: f64,
    /// Signed in with `--no-resource`: the RFC 8707 `resource` parameter is left out of every
    /// request (for authorization servers that answer `invalid_target` to it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_resource: bool,
    /// How a pre-registered confidential client (`--client-id` with `CONTEXT_HARNESS_CLIENT_SECRET`)
    /// authenticates at the token endpoint: `client_secret_post` when the metadata's
    /// `token_endpoint_auth_methods_supported` allows only that, else `client_secret_basic`
    /// ([`TokenAuthMethod::preferred`](crate::TokenAuthMethod::preferred)); absent in records of
    /// older versions, which means `client_secret_basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// The Client ID Metadata Document URL the sign-in used as its `client_id` (a public client
    /// portable across authorization servers; never given a secret), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata_url: Option<String>,
    /// Whether token requests carry DPoP proofs (RFC 9449): the authorization server listed
    /// `dpop_signing_alg_values_supported` (with `ES256`), or the protected-resource metadata set
    /// `dpop_bound_access_tokens_required`. A sign-in with `--no-dpop` stores no key either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop: bool,
}

impl McpServerRecord {
    pub(super) fn from_info(info: &McpServerInfo, dynamic_client: bool) -> Result<Self> {
        let m = &info.authorization_server;
        let (Some(auth), Some(token)) = (&m.authorization_endpoint, &m.token_endpoint) else {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                "the authorization server metadata lacks its endpoints",
            ));
        };
        Ok(Self {
            server_url: info.server_url.clone(),
            resource: info.resource.clone(),
            resource_metadata_url: info.resource_metadata_url.clone(),
            issuer: m.issuer.clone(),
            authorization_endpoint: auth.clone(),
            token_endpoint: token.clone(),
            revocation_endpoint: m.revocation_endpoint.clone(),
            device_authorization_endpoint: m.device_authorization_endpoint.clone(),
            registration_endpoint: m.registration_endpoint.clone(),
            iss_parameter_supported: m.authorization_response_iss_parameter_supported == Some(true),
            scopes: info.default_scopes(),
            dynamic_client,
            discovered_at: crate::tokens::unix_seconds(SystemTime::now()),
            no_resource: false,
            token_endpoint_auth_method: Some(
                crate::TokenAuthMethod::preferred(
                    m.token_endpoint_auth_methods_supported.as_deref(),
                )
                .as_str()
                .to_owned(),
            ),
            client_metadata_url: None,
            dpop: m
                .dpop_signing_alg_values_supported
                .as_ref()
                .is_some_and(|algs| algs.iter().any(|a| a == "ES256"))
                || info.resource_metadata.dpop_bound_access_tokens_required == Some(true),
        })
    }

    /// The provider template this record stands for, named `name`.
    pub fn to_provider(&self, name: &str) -> OAuthProvider {
        let mut p = OAuthProvider::github(); // every field is overwritten below
        p.name = name.to_owned();
        p.display_name = self.server_url.clone();
        p.auth_url = self.authorization_endpoint.clone();
        p.token_url = self.token_endpoint.clone();
        p.device_auth_url = self.device_authorization_endpoint.clone();
        p.revocation_url = self.revocation_endpoint.clone();
        p.revocation_style = crate::RevocationStyle::Rfc7009;
        p.resources_url = None;
        p.audience = None;
        p.scopes = self.scopes.clone();
        p.extra_auth_params = Default::default();
        if self.scopes.iter().any(|s| s == "offline_access") {
            // OIDC Core §11: offline access needs `prompt=consent` (the MCP TypeScript SDK does the
            // same); without it OpenID providers drop `offline_access` and issue no refresh token.
            p.extra_auth_params
                .insert("prompt".to_owned(), "consent".to_owned());
        }
        p.client_id = None;
        p.redirect_host = RedirectHost::Ipv4;
        p.ports = DEFAULT_PORTS.to_vec();
        p.redirect_path = callback::DEFAULT_PATH.to_owned();
        p.setup_url = None;
        p.pkce = true;
        p.issuer = Some(self.issuer.clone());
        p.iss_parameter_supported = self.iss_parameter_supported;
        p.resource = (!self.no_resource).then(|| self.resource.clone());
        p.token_auth_method = self
            .token_endpoint_auth_method
            .as_deref()
            .and_then(crate::TokenAuthMethod::parse)
            .unwrap_or(crate::TokenAuthMethod::ClientSecretBasic);
        p.token_path = None;
        p.dpop = self.dpop;
        p
    }
}

/// The SSRF policy for the endpoints of a stored record: from the class of the server URL the user
/// gave (resolved again now; an unparsable URL gets the strictest policy).
pub(super) async fn server_policy(server_url: &str) -> UrlPolicy {
    let class = match url::Url::parse(server_url) {
        Ok(url) => crate::ssrf::class_of_url(&url).await,
        Err(_) => crate::ssrf::NetworkClass::Public,
    };
    UrlPolicy::new(class)
}

/// `home/mcp`: one record per signed-in MCP server.
fn records_dir(home: &Path) -> PathBuf {
    context_harness_storage::HomeLayout::new(home).mcp_dir()
}

/// `home/mcp/<name>.json`: the record of the MCP server stored under `name`.
pub(super) fn record_path(home: &Path, name: &str) -> PathBuf {
    records_dir(home).join(format!("{name}.json"))
}

/// The record stored under `name`: `Ok(None)` when there is none or it cannot be parsed (a record
/// holds no secret; an unreadable one means "discover again").
///
/// # Errors
///
/// [`ErrorCode::Storage`] when the file is untrusted or cannot be read.
pub(super) fn read_record(home: &Path, name: &str) -> Result<Option<McpServerRecord>> {
    let path = record_path(home, name);
    let Some(bytes) = context_harness_storage::read_trusted(&path).map_err(storage_error)? else {
        return Ok(None);
    };
    Ok(context_harness_storage::decode_text(&bytes)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok()))
}

/// Writes `record` under `name` (0600, atomically).
///
/// # Errors
///
/// [`ErrorCode::Storage`].
pub(super) fn write_record(home: &Path, name: &str, record: &McpServerRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| {
        Error::new(ErrorCode::Storage, "cannot serialise the MCP server record").with_source(e)
    })?;
    context_harness_storage::write_private_atomic(&record_path(home, name), &bytes)
        .map_err(storage_error)
}

/// A sign-in's resolved configuration and, for a dynamically registered client, its issuer.
pub(super) struct Prepared {
    pub(super) config: OAuthConfig,
    /// `Some(issuer)` when the client came from dynamic registration (re-register on
    /// `invalid_client`).
    pub(super) dynamic_issuer: Option<String>,
    pub(super) info: Option<McpServerInfo>,
    /// For an MCP server: the record to store with the tokens once the sign-in has succeeded
    /// (never before: an abandoned sign-in must not change where stored tokens are sent).
    pub(super) record: Option<McpServerRecord>,
    /// The loopback listener bound before a dynamic registration with `--port 0` (see `dcr`),
    /// for the browser sign-in to wait on.
    pub(super) listener: Option<callback::CallbackServer>,
}

/// The key, among the tokens' extra fields, of what an MCP server's tokens are bound to.
const BINDING_KEY: &str = "mcp_server";

/// What an MCP server's tokens were issued for, stored with the tokens (under [`BINDING_KEY`]) and
/// compared with the server record before a refresh token or a revocation request is sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Binding {
    server_url: String,
    issuer: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

impl Binding {
    fn of(record: &McpServerRecord) -> Self {
        Self {
            server_url: record.server_url.clone(),
            issuer: record.issuer.clone(),
            token_endpoint: record.token_endpoint.clone(),
            revocation_endpoint: record.revocation_endpoint.clone(),
        }
    }

    fn read(tokens: &OAuthTokens) -> Option<Self> {
        serde_json::from_value(tokens.extra.get(BINDING_KEY)?.clone()).ok()
    }
}

/// Binds `tokens` to the server and endpoints of `record` (at sign-in).
pub(super) fn bind_tokens(tokens: &mut OAuthTokens, record: &McpServerRecord) {
    if let Ok(value) = serde_json::to_value(Binding::of(record)) {
        tokens.extra.insert(BINDING_KEY.to_owned(), value);
    }
}

/// Keeps the binding of `old` on `new` (after a refresh: the token endpoint's answer cannot rebind
/// the tokens by sending a field of the same name).
pub(super) fn carry_binding(old: &OAuthTokens, new: &mut OAuthTokens) {
    match old.extra.get(BINDING_KEY) {
        Some(value) => {
            new.extra.insert(BINDING_KEY.to_owned(), value.clone());
        }
        None => {
            new.extra.remove(BINDING_KEY);
        }
    }
}

/// The server URL `tokens` are bound to (written at an MCP server's sign-in), if any.
pub(super) fn bound_server(tokens: &OAuthTokens) -> Option<String> {
    Binding::read(tokens).map(|b| b.server_url)
}

/// For an MCP server: refuses tokens that its own sign-in did not write — bound to another server
/// URL than `target`'s canonical form, or bound to none (a server is never sent tokens that nothing
/// says were issued for it). For a registry provider: refuses tokens bound to an MCP server
/// ([`check_not_mcp_tokens`]).
pub(super) fn check_tokens_server(target: &ProviderRef, tokens: &OAuthTokens) -> Result<()> {
    let Some(canonical) = target.server_url() else {
        return check_not_mcp_tokens(target.as_str(), tokens);
    };
    let refuse = |why: String| {
        Err(
            Error::new(ErrorCode::AuthRequired, why).with_step(crate::NextStep::SignIn {
                provider: canonical.to_owned(),
            }),
        )
    };
    match Binding::read(tokens) {
        Some(bound) if bound.server_url == canonical => Ok(()),
        Some(bound) => refuse(format!(
            "the tokens stored under this name were issued for {}, not {canonical}; refusing to use them",
            printable(&bound.server_url)
        )),
        None => refuse(format!(
            "the tokens stored for {canonical} do not say which server issued them; refusing to send them"
        )),
    }
}

/// Refuses to send `tokens` on the word of a registry provider when they were issued to an MCP
/// server: a `providers.toml` entry may carry the server's derived name (`https://api.example.com`
/// is stored as `api.example.com`), and its endpoints must never receive that server's tokens.
/// [`ErrorCode::ConfigInvalid`], not `AuthRequired`: a sign-in under that name would overwrite the
/// server's tokens.
pub(super) fn check_not_mcp_tokens(provider: &str, tokens: &OAuthTokens) -> Result<()> {
    match Binding::read(tokens) {
        Some(bound) => Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "the tokens stored under `{}` were issued to the MCP server {}; refusing to send them to the provider of that name in providers.toml",
                printable(provider),
                printable(&bound.server_url)
            ),
        )
        .with_hint("rename the provider in providers.toml, or name the MCP server by its URL")),
        None => Ok(()),
    }
}

impl OAuthService {
    /// Discovers an MCP server (RFC 9728 then RFC 8414/OIDC) without signing in.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for a bad URL; [`ErrorCode::AuthFailed`] when metadata is
    /// missing or refused (resource or issuer mismatch, no S256, a forbidden address);
    /// [`ErrorCode::NetworkError`]/[`ErrorCode::Timeout`].
    pub async fn discover_mcp_server(&self, server_url: &str) -> Result<McpServerInfo> {
        self.discover_server(&ProviderRef::parse_server_url(server_url)?)
            .await
    }

    /// [`discover_mcp_server`](Self::discover_mcp_server) for a parsed server URL.
    async fn discover_server(&self, target: &ProviderRef) -> Result<McpServerInfo> {
        let server_url = target.as_str();
        let url = check_endpoint(server_url, "server URL")?;
        // The user's own host: a name that does not resolve is said to be theirs, before the
        // discovery requests (whose resolver cannot tell the user's host from a server's).
        let whom = format!("the MCP server at {}", url.host_str().unwrap_or("server"));
        let policy = UrlPolicy::new(crate::ssrf::class_of_user_url(&url, &whom).await?);
        Discoverer {
            http: &self.http,
            policy,
        }
        .mcp_server(server_url)
        .await
    }

    /// The stored record of MCP server `provider` (a URL or its derived name), if signed in before.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for something that is neither.
    pub fn mcp_server_record(&self, provider: &str) -> Result<Option<McpServerRecord>> {
        self.stored_record(&ProviderRef::parse(provider)?)
    }

    /// [`mcp_server_record`](Self::mcp_server_record) for a parsed provider.
    pub(super) fn stored_record(&self, target: &ProviderRef) -> Result<Option<McpServerRecord>> {
        read_record(&self.home, target.name().as_str())
    }

    /// Every MCP server signed in to before, as `(storage name, record)`, sorted by name. Records
    /// (and tokens bound to them) that an older version kept under a name outside the servers'
    /// namespace are moved to the server's own name first.
    pub fn mcp_servers(&self) -> Vec<(String, McpServerRecord)> {
        let mut out = self.read_records();
        let legacy: Vec<(ProviderName, String)> = out
            .iter()
            .filter_map(|(name, record)| {
                let name = ProviderName::new(name).ok()?;
                (!name.is_server_name()).then(|| (name, record.server_url.clone()))
            })
            .collect();
        if !legacy.is_empty() {
            let names = self.names();
            for (name, server_url) in legacy {
                if let Err(e) = names.move_legacy(&name, &server_url) {
                    tracing::warn!(error = %e, "could not move an MCP server's sign-in to its own name");
                }
            }
            out = self.read_records();
        }
        out.retain(|(name, _)| name.starts_with(context_harness_storage::SERVER_NAME_PREFIX));
        out
    }

    /// The readable records under `home/mcp`, by file stem, sorted.
    fn read_records(&self) -> Vec<(String, McpServerRecord)> {
        let Ok(entries) = std::fs::read_dir(records_dir(&self.home)) else {
            return Vec::new();
        };
        let mut out: Vec<(String, McpServerRecord)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
                match read_record(&self.home, &name) {
                    Ok(record) => Some((name, record?)),
                    Err(err) => {
                        tracing::warn!(error = %err, "skipping an MCP server record");
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The registration store, keeping secrets in the tokens' backend.
    pub(super) fn registrations(&self) -> RegistrationStore {
        RegistrationStore::with_secrets(&self.home, self.store.secrets())
    }

    /// Writes the record of a successful sign-in (the caller holds the provider lock and has
    /// stored the tokens bound to this record).
    pub(super) fn save_record(&self, name: &str, record: &McpServerRecord) -> Result<()> {
        write_record(&self.home, name, record)
    }

    /// [`OAuthService::prepare_sign_in`] for an MCP server URL: discovery, then a configured client
    /// id or dynamic registration.
    pub(super) async fn prepare_mcp(
        &self,
        target: &ProviderRef,
        options: &AuthenticateOptions,
    ) -> Result<Prepared> {
        let client_id = options.client_id.as_deref();
        let mut listener = None;
        let no_resource = options.no_resource;
        let name = target.name();
        let info = self.discover_server(target).await?;
        let issuer = info.authorization_server.issuer.clone();
        let preconfigured = client_id.map(str::trim).filter(|s| !s.is_empty());
        let mut record = McpServerRecord::from_info(&info, preconfigured.is_none())?;
        record.no_resource = no_resource;
        let mut provider = record.to_provider(name.as_str());
        provider.url_policy = Some(info.policy);
        provider.validate()?;

        // MCP 2026-07-28 "Client Registration": pre-registered, else a Client ID Metadata
        // Document, else dynamic registration, else an error asking for a client id.
        let (config, dynamic_issuer) = match preconfigured {
            // A pre-registered client: confidential when the application's client-secret
            // variable (or its file) gives a secret.
            Some(id) => (
                provider.to_config(id, self.app.client_secret(&self.env, None)?),
                None,
            ),
            None => match self.client_metadata_url_for(&info, options)? {
                Some(url) => {
                    record.dynamic_client = false;
                    record.client_metadata_url = Some(url.clone());
                    // The document lists no device grant; the redirect path is the fixed one.
                    let mut provider = provider.clone();
                    provider.device_auth_url = None;
                    (provider.to_config(url, None), None)
                }
                None => {
                    let scopes = super::dcr::registration_scopes(options, Some(&record));
                    let (registration, bound) = self
                        .registration_for(&info, options, &scopes, false)
                        .await?;
                    listener = bound;
                    (
                        config_from_registration(&provider, &registration),
                        Some(issuer),
                    )
                }
            },
        };
        tracing::info!(server = %printable(&info.server_url), issuer = %printable(&record.issuer), "MCP server discovered");
        Ok(Prepared {
            config,
            dynamic_issuer,
            info: Some(info),
            record: Some(record),
            listener,
        })
    }

    /// The application's Client ID Metadata Document URL, to be the `client_id` at this server
    /// (MCP 2026-07-28 "Client ID Metadata Documents"): when one is configured
    /// ([`App::client_metadata_url`](crate::App::client_metadata_url)), the authorization server
    /// announces `client_id_metadata_document_supported`, and the sign-in is not a device flow
    /// (the document lists no device grant).
    ///
    /// The server must also announce RFC 9207 `iss` (`authorization_response_iss_parameter_supported`):
    /// a document lists one redirect URI per port for every server, so the per-issuer callback path
    /// that keeps a dynamically registered client's sign-in from accepting another server's answer
    /// (a mix-up, RFC 9700 §4.4) cannot be used; the required `iss` does that job instead. Without
    /// it the client registers dynamically.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when the configured URL is unusable.
    fn client_metadata_url_for(
        &self,
        info: &McpServerInfo,
        options: &AuthenticateOptions,
    ) -> Result<Option<String>> {
        let Some(url) = self.app.client_metadata_url(&self.env)? else {
            return Ok(None);
        };
        let metadata = &info.authorization_server;
        let issuer = printable(&metadata.issuer);
        if metadata.client_id_metadata_document_supported != Some(true) {
            tracing::debug!(issuer = %issuer, "no client_id_metadata_document_supported; not using the client metadata document");
            return Ok(None);
        }
        if metadata.authorization_response_iss_parameter_supported != Some(true) {
            tracing::warn!(issuer = %issuer, "the authorization server accepts client metadata documents but does not announce RFC 9207 `iss`, which a document's shared redirect URIs need against mix-up; registering dynamically instead");
            return Ok(None);
        }
        if options.flow == crate::SignInFlow::Device {
            tracing::info!(issuer = %issuer, "the device flow: not using the client metadata document (it lists no device grant)");
            return Ok(None);
        }
        let listed = DEFAULT_PORTS;
        for port in options.ports.as_deref().unwrap_or_default() {
            if !listed.contains(port) {
                tracing::warn!(
                    port,
                    "this port is not in the client metadata document's redirect_uris (8080, 3000, 57548); servers that compare redirect URIs exactly will refuse it"
                );
            }
        }
        tracing::info!(issuer = %issuer, client_id = %printable(&url), "using the client metadata document as the client id");
        Ok(Some(url))
    }

    /// The configuration for refreshing or revoking stored `tokens` of MCP server `provider`: its
    /// record (checked against what the tokens are bound to) and its registration, else the client
    /// id stored with the tokens.
    pub(super) async fn mcp_stored_config(
        &self,
        target: &ProviderRef,
        tokens: &OAuthTokens,
        stored_id: Option<String>,
    ) -> Result<OAuthConfig> {
        let (provider, name) = (target.as_str(), target.name());
        let Some(record) = self.stored_record(target)? else {
            return Err(Error::new(
                ErrorCode::AuthRequired,
                format!("no sign-in record for {provider}"),
            ));
        };
        check_record_binding(target, &record, tokens)?;
        let mut template = record.to_provider(name.as_str());
        template.url_policy = Some(server_policy(&record.server_url).await);
        if let (Some(url), Some(id)) = (&record.client_metadata_url, &stored_id)
            && url == id
        {
            // A client metadata document's client: public, whatever secret the environment has.
            return Ok(template.to_config(id.clone(), None));
        }
        let registration = self.registrations().load(&record.issuer)?;
        Ok(match registration {
            Some(r) if stored_id.as_deref().is_none_or(|id| id == r.client_id) => {
                config_from_registration(&template, &r)
            }
            _ => {
                let Some(id) = stored_id else {
                    return Err(Error::new(
                        ErrorCode::AuthRequired,
                        format!("no client registration for {provider}"),
                    ));
                };
                // The pre-registered client of the sign-in: its secret, if any, as then.
                template.to_config(id, self.app.client_secret(&self.env, None)?)
            }
        })
    }

    /// After a refresh refused with `invalid_client`: drop the dynamic registration so the next
    /// sign-in registers again.
    pub(super) fn forget_registration(&self, target: &ProviderRef) {
        if let Ok(Some(record)) = self.stored_record(target)
            && record.dynamic_client
            && let Err(e) = self.registrations().delete(&record.issuer)
        {
            tracing::warn!(error = %e, "could not delete the refused client registration");
        }
    }
}

/// Refuses to send `tokens` anywhere on the strength of `record` unless the record is the one they
/// were issued with: the same canonical server URL, issuer, token and revocation endpoints.
pub(super) fn check_record_binding(
    target: &ProviderRef,
    record: &McpServerRecord,
    tokens: &OAuthTokens,
) -> Result<()> {
    let Some(canonical) = target.server_url() else {
        return Err(Error::new(
            ErrorCode::AuthRequired,
            format!("{target} is not an MCP server URL"),
        ));
    };
    let refuse = |why: String| {
        Err(
            Error::new(ErrorCode::AuthRequired, why).with_step(crate::NextStep::SignIn {
                provider: canonical.to_owned(),
            }),
        )
    };
    if record.server_url != canonical {
        return refuse(format!(
            "the stored server record is for {}, not {canonical}; refusing to send its tokens",
            printable(&record.server_url)
        ));
    }
    match Binding::read(tokens) {
        None => refuse(
            "the stored tokens do not say which server issued them (stored by an older version); refusing to send the refresh token"
                .to_owned(),
        ),
        Some(bound) if bound != Binding::of(record) => refuse(format!(
            "the stored server record (issuer {}, token endpoint {}) disagrees with the one the tokens were issued with; refusing to send them",
            printable(&record.issuer),
            printable(&record.token_endpoint)
        )),
        Some(_) => Ok(()),
    }
}

/// The redirect path of a client registered at `issuer`: `/callback/<name of the issuer>`, one per
/// authorization server (RFC 9700 §4.4.2.2). The listener answers only on the path of the issuer a
/// sign-in started with, so an authorization response that an attacker's metadata routed through
/// another server's authorization endpoint arrives on the wrong path and is not accepted.
pub(crate) fn issuer_redirect_path(issuer: &str) -> Result<String> {
    let name =
        crate::provider_ref::issuer_name(issuer, ErrorCode::AuthFailed, "is not a usable URL")?;
    Ok(format!("{}/{name}", callback::DEFAULT_PATH))
}

/// The configuration of a sign-in with the registered client `r` (its per-issuer redirect path and
/// its token-endpoint authentication).
pub(super) fn config_from_registration(
    provider: &OAuthProvider,
    r: &ClientRegistration,
) -> OAuthConfig {
    let mut provider = provider.clone();
    if let Ok(path) = issuer_redirect_path(&r.issuer) {
        provider.redirect_path = path;
    }
    if let Some(method) = r.auth_method() {
        provider.token_auth_method = method;
    }
    provider.to_config(
        r.client_id.clone(),
        r.client_secret.clone().map(ClientSecret::new),
    )
}

/// Whether an error is the server refusing the client itself (`invalid_client`,
/// `unauthorized_client`, or a provider's documented name of one of them).
pub(super) fn is_invalid_client(e: &Error) -> bool {
    e.oauth_error().is_some_and(|code| {
        context_harness_protocol::TokenError::parse(code)
            .standard()
            .is_client_problem()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_issuer_has_its_own_redirect_path() -> Result<()> {
        let honest = issuer_redirect_path("https://as.example.com")?;
        let other = issuer_redirect_path("https://evil.example.com")?;
        let local = issuer_redirect_path("http://127.0.0.1:9000")?;
        assert_ne!(honest, other);
        assert!(local.starts_with("/callback/127.0.0.1-9000--"), "{local}");
        for path in [honest, other, local] {
            // Only characters the listener compares byte for byte.
            assert!(
                path.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/._-".contains(&b)),
                "{path}"
            );
        }
        Ok(())
    }
}
