//! The outbound HTTP client: built lazily, rustls with the `ring` provider, timeouts, no redirects.
//!
//! # Server-supplied URLs (SSRF)
//!
//! Every request names the [`UrlPolicy`] it runs under: `None` for URLs the user configured
//! (providers.toml, built-ins, `get_with_token`), `Some` for URLs learnt from a server (discovery,
//! registration, and the token, revocation and device endpoints of an MCP server or issuer-only
//! provider). Each policy has its own `reqwest` client (and so its own connection pool, so a
//! connection opened under a looser policy is never reused under a stricter one) whose DNS
//! resolver is [`PolicyResolver`]: it resolves the name, refuses the host unless **every** address
//! is allowed, and refuses a failed lookup. The addresses judged are exactly the addresses
//! connected to, so a name that answers differently on a second lookup (DNS rebinding) gains
//! nothing. IP-literal hosts never reach a resolver; [`UrlPolicy::check`] judges them when the
//! request is built.
//!
//! **Proxies.** The proxy exemption covers the connection to the configured proxy only; a
//! server-supplied URL is judged by its own host whatever the proxy variables say (also when that
//! host has the proxy's name). One function, [`ProxyEnv::proxy_for`], decides whether a request
//! goes through a proxy, for `reqwest` and for the choice of client, and each policy has two
//! clients:
//! - a **direct** client with no proxy at all, whose resolver judges every name it is asked for
//!   (exempting none: a URL that `NO_PROXY` or the loopback rule sends direct is an ordinary
//!   target even if its host is named like a proxy);
//! - a **proxied** client, used only for URLs that `proxy_for` sends to a proxy, whose resolver
//!   resolves the configured proxies' host names without judging (the user chose them, and they may
//!   be on loopback) and judges any other name. Before such a request is sent, the target's host is
//!   resolved here and judged like a direct one ([`Http::client_for`]): a name the policy refuses
//!   is never handed to the proxy. The proxy then makes its own lookup, so this check cannot be
//!   pinned to the addresses the proxy connects to (a name that rebinds between the two lookups
//!   reaches what the proxy's lookup gives); list hosts in `NO_PROXY` to have them connected to
//!   directly, on the judged addresses.
//!
//! **Loopback is never proxied.** The proxy variables come from the service's
//! [`Environment`](crate::Environment) ([`ProxyEnv`]), and the loopback destinations
//! ([`LOOPBACK_NO_PROXY`](proxy::LOOPBACK_NO_PROXY): `localhost` and its subdomains, 127.0.0.0/8,
//! `::1`) are always added to `NO_PROXY`: a local authorization or MCP server is reached directly,
//! so an authorization code and its PKCE verifier never travel in clear text to a proxy.
//!
//! **TLS trust.** A certificate the trust store does not accept is reported as such
//! ([`tls_trust_failure`]), naming `SSL_CERT_FILE` / `SSL_CERT_DIR`, instead of as a network failure.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::ssrf::{
    HostOrigin, NetworkClass, Refused, UrlPolicy, refused_error, resolve_classified,
    unresolved_error,
};

mod proxy;

pub(crate) use proxy::ProxyEnv;

/// Bodies larger than this are refused (a token response is a few kilobytes).
const MAX_BODY: usize = 1024 * 1024;

/// HTTP settings for [`OAuthService`](crate::OAuthService).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to establish a connection (TCP + TLS). Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from sending to the last body byte. Default 30 s.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// An answer read in full.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    /// The `Retry-After` header as sent (RFC 9110 §10.2.3), read by the transient-answer retries.
    pub(crate) retry_after: Option<String>,
    /// Every `WWW-Authenticate` value (RFC 9110 §11.6.1), each cut to [`MAX_HEADER_VALUE`] bytes.
    pub(crate) www_authenticate: Vec<String>,
    /// The `DPoP-Nonce` header (RFC 9449 §8), cut to 1 KiB.
    pub(crate) dpop_nonce: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The longest header value kept from an answer, in bytes.
const MAX_HEADER_VALUE: usize = 8 * 1024;

/// An HTTP method, so that no code outside this module names the HTTP library's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

/// How a request authenticates, if at all.
#[derive(Clone, Copy)]
pub(crate) enum Credentials<'a> {
    /// RFC 6750 §2.1 `Authorization: Bearer`.
    Bearer(&'a str),
    /// RFC 7617 HTTP Basic with `(user, password)` as given (not form-encoded).
    Basic(&'a str, &'a str),
    /// RFC 9449 §7.1: `Authorization: DPoP <token>` and the `DPoP` header carrying `proof`.
    Dpop {
        /// The DPoP-bound access token.
        token: &'a str,
        /// A fresh proof for this request, with `ath`.
        proof: &'a str,
    },
}

/// One request, described without the HTTP library's types: `accept` is the `Accept` header, a
/// `json` body is sent as `application/json`, `headers` are added as given.
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) url: &'a Url,
    pub(crate) accept: &'a str,
    pub(crate) json: Option<String>,
    pub(crate) headers: &'a [(&'static str, &'a str)],
    pub(crate) credentials: Option<Credentials<'a>>,
    /// Read the body (up to 1 MiB); `false` keeps the status and headers only (a probe whose
    /// answer may be an endless event stream).
    pub(crate) read_body: bool,
}

impl<'a> Request<'a> {
    /// A request of `method` to `url` accepting JSON, with nothing else set.
    pub(crate) fn new(method: Method, url: &'a Url) -> Self {
        Self {
            method,
            url,
            accept: "application/json",
            json: None,
            headers: &[],
            credentials: None,
            read_body: true,
        }
    }
}

/// The DNS resolver of a policy client: the addresses it returns are the only ones connected to,
/// and it returns them only when the policy allows every one (see the module documentation).
struct PolicyResolver {
    policy: UrlPolicy,
    /// Host names of the configured proxies, resolved without judging: set for the proxied
    /// clients only (every request of theirs goes through a proxy, so these names are only ever
    /// looked up for the connection to the proxy); empty for the direct clients.
    proxy_hosts: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let name = name.as_str().to_owned();
        let is_proxy = self.proxy_hosts.iter().any(|p| proxy::same_host(&name, p));
        Box::pin(async move {
            let resolved = resolve_classified(&name).await;
            let ips: Vec<IpAddr> = if is_proxy {
                resolved
                    .map_err(|_| -> Box<dyn std::error::Error + Send + Sync> {
                        Box::new(Refused::Lookup { name: name.clone() })
                    })?
                    .into_iter()
                    .map(|(ip, _)| ip)
                    .collect()
            } else {
                policy.judge(&name, resolved).map_err(
                    |refused| -> Box<dyn std::error::Error + Send + Sync> {
                        tracing::debug!(%refused, "refused a server-supplied host");
                        // Boxed as itself (not `Box<Refused>` inside a box) so `refusal_in` finds it.
                        Box::new(refused)
                    },
                )?
            };
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The DNS resolver of the clients without a policy (user-configured URLs, and the program's own
/// traffic such as the MCP bridge's): the system resolver, judging nothing, but a failed lookup is
/// reported as [`Refused::Lookup`] so the error can say that the name does not resolve.
struct UserResolver;

impl reqwest::dns::Resolve for UserResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match resolve_classified(&name).await {
                // Port 0: reqwest puts the URL's port in.
                Ok(addrs) => addrs
                    .into_iter()
                    .map(|(ip, _)| SocketAddr::new(ip, 0))
                    .collect(),
                Err(e) => {
                    tracing::debug!(name = %crate::terminal_text(&name), error = %e, "lookup failed");
                    return Err(Box::new(Refused::Lookup { name }) as _);
                }
            };
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The `reqwest` proxy of `settings`: [`ProxyEnv::proxy_for`] decides, for every connection.
fn reqwest_proxy(settings: &ProxyEnv) -> reqwest::Proxy {
    let settings = settings.clone();
    reqwest::Proxy::custom(move |url| settings.proxy_for(url).map(str::to_owned))
}

/// Which client slot serves `policy`: 0 for user-configured URLs, then a direct and a proxied one
/// per trust level.
fn slot(policy: Option<UrlPolicy>, proxied: bool) -> usize {
    let trust = match policy.map(|p| p.trust) {
        None => return 0,
        Some(NetworkClass::Public | NetworkClass::Forbidden) => 1,
        Some(NetworkClass::Private) => 3,
        Some(NetworkClass::Loopback) => 5,
    };
    trust + usize::from(proxied)
}

/// Lazily built `reqwest` clients, a direct and a proxied one per [`UrlPolicy`] trust level plus
/// one for user-configured URLs. Constructing one costs milliseconds (TLS roots), so paths that need no network (a valid
/// cached token) never touch them.
pub(crate) struct Http {
    settings: HttpSettings,
    proxy: ProxyEnv,
    clients: [OnceLock<reqwest::Client>; 7],
    /// Whose `User-Agent` and MCP `clientInfo` requests carry.
    app: crate::App,
}

impl Http {
    pub(crate) fn new(settings: HttpSettings, proxy: ProxyEnv) -> Self {
        Self {
            settings,
            proxy,
            clients: Default::default(),
            app: crate::App::default(),
        }
    }

    /// Sends requests as `app` (`User-Agent`, MCP `clientInfo`).
    pub(crate) fn with_app(mut self, app: crate::App) -> Self {
        self.app = app;
        self
    }

    /// The application requests are sent for.
    pub(crate) fn app(&self) -> &crate::App {
        &self.app
    }

    /// Whether a client has been built (tests assert the fast path leaves them unbuilt).
    pub(crate) fn is_built(&self) -> bool {
        self.clients.iter().any(|c| c.get().is_some())
    }

    /// Builds the user-configured client now if it is not built yet (for a blocking thread while
    /// the user signs in; it also loads the TLS roots the others reuse from the OS cache).
    pub(crate) fn prewarm(&self) {
        let _ = self.client(None, false);
    }

    /// The client for `policy`, after judging `url` under it: its text (scheme, credentials and
    /// IP-literal hosts, which no resolver sees; `what` names it in errors) and, when it goes
    /// through a proxy, its host's addresses, resolved here since the proxy resolves the name
    /// (`whom` names the endpoint and host in errors). A direct URL's host is judged by the direct
    /// client's resolver, on the addresses connected to.
    async fn client_for(
        &self,
        url: &Url,
        policy: Option<UrlPolicy>,
        what: &str,
        whom: &str,
    ) -> Result<&reqwest::Client> {
        let Some(policy) = policy else {
            return self.client(None, false);
        };
        policy.check(url.as_str(), what)?;
        let proxied = self.proxy.proxy_for(url).is_some();
        if proxied && let Some(url::Host::Domain(name)) = url.host() {
            policy
                .judge(name, resolve_classified(name).await)
                .map_err(|refused| {
                    tracing::debug!(%refused, "refused a server-supplied host before the proxy");
                    refused_error(&refused, whom)
                })?;
        }
        self.client(Some(policy), proxied)
    }

    /// A `reqwest` client builder with the shared setup: `ring` installed as the rustls provider,
    /// the proxies of the service's environment (loopback always direct), the connect timeout, no
    /// redirects and the user agent. No overall request timeout (a caller may stream).
    pub(crate) fn builder(&self) -> reqwest::ClientBuilder {
        // reqwest is built with `rustls-no-provider`: install `ring` as the process default. An
        // `Err` only means some other code installed a provider first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The proxies come from the service's environment, with loopback always direct (see the
        // module documentation); `no_proxy()` turns off reqwest's own reading of the process's.
        reqwest::Client::builder()
            .no_proxy()
            .proxy(reqwest_proxy(&self.proxy))
            // Replaced by a policy client's own resolver (see `client`).
            .dns_resolver(UserResolver)
            .connect_timeout(self.settings.connect_timeout)
            // Never follow redirects: a token endpoint that redirects is misconfigured, and following
            // would re-send credentials to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.app.user_agent())
    }

    /// The client of `policy` (`None`: user-configured URLs, with the proxies) for URLs that go
    /// through a proxy (`proxied`) or not; built on first use.
    fn client(&self, policy: Option<UrlPolicy>, proxied: bool) -> Result<&reqwest::Client> {
        let cell = &self.clients[slot(policy, proxied)];
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let mut builder = self.builder();
        if let Some(policy) = policy {
            let proxy_hosts = if proxied {
                self.proxy.hosts()
            } else {
                // No proxy at all: every name looked up is a target, judged without exemption.
                builder = builder.no_proxy();
                Vec::new()
            };
            builder = builder.dns_resolver(PolicyResolver {
                policy,
                proxy_hosts: Arc::new(proxy_hosts),
            });
        }
        let client = builder
            .timeout(self.settings.request_timeout)
            // Loopback http is allowed; every URL is checked by `check_endpoint` or `UrlPolicy::check`.
            .https_only(false)
            .build()
            .map_err(|e| {
                Error::new(ErrorCode::NetworkError, "cannot initialise the HTTP client")
                    .with_source(e.without_url())
            })?;
        Ok(cell.get_or_init(|| client))
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`, `Accept: application/json`) under
    /// `policy` (`None` for a user-configured URL).
    ///
    /// `basic` is `(user, password)` for HTTP Basic, each already form-urlencoded by the caller.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        what: &str,
        policy: Option<UrlPolicy>,
        dpop_proof: Option<&str>,
    ) -> Result<RawResponse> {
        // Scoped: the serializer is not `Sync`, and must not live across the `.await` below (that
        // would make every service future non-`Send`, so it could not be `tokio::spawn`ed).
        let body = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            body.finish()
        };
        let whom = format!("{what} at {}", url.host_str().unwrap_or("server"));
        let mut request = self
            .client_for(url, policy, what, &whom)
            .await?
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some((user, password)) = basic {
            // reqwest marks the Authorization header value sensitive.
            request = request.basic_auth(user, Some(password));
        }
        if let Some(proof) = dpop_proof {
            request = request.header("DPoP", proof);
        }
        self.send(request, url, what, true, origin(policy)).await
    }

    /// Sends `request` under `policy` (`None` for a user-configured URL) and reads the answer.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] when `policy` refuses the URL; [`ErrorCode::NetworkError`] or
    /// [`ErrorCode::Timeout`] when the exchange fails or the body is over 1 MiB.
    pub(crate) async fn fetch(
        &self,
        request: Request<'_>,
        what: &str,
        policy: Option<UrlPolicy>,
    ) -> Result<RawResponse> {
        let url = request.url;
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let whom = format!("{what} at {}", url.host_str().unwrap_or("server"));
        let mut builder = self
            .client_for(url, policy, "server-supplied URL", &whom)
            .await?
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, request.accept);
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        builder = match request.credentials {
            // reqwest marks the Authorization header value sensitive.
            Some(Credentials::Bearer(token)) => builder.bearer_auth(token),
            Some(Credentials::Basic(user, password)) => builder.basic_auth(user, Some(password)),
            Some(Credentials::Dpop { token, proof }) => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("DPoP {token}"))
                    .map_err(|_| {
                        Error::new(
                            ErrorCode::AuthFailed,
                            "the stored access token cannot be sent in an HTTP header",
                        )
                    })?;
                // Like `bearer_auth`: never shown by the HTTP library's logging.
                value.set_sensitive(true);
                builder
                    .header(reqwest::header::AUTHORIZATION, value)
                    .header("DPoP", proof)
            }
            None => builder,
        };
        if let Some(json) = request.json {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json);
        }
        self.send(builder, url, what, request.read_body, origin(policy))
            .await
    }

    /// Sends a prepared request and reads the whole answer (up to 1 MiB) when `read_body`;
    /// `origin` says who chose `url`'s host (for the advice when it does not resolve).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
        read_body: bool,
        origin: HostOrigin,
    ) -> Result<RawResponse> {
        let host = url.host_str().unwrap_or("server").to_owned();
        // With "http answer" below, brackets the network time (`cargo xtask bench` subtracts it).
        tracing::debug!(what, host = %host, "http request");
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(e, what, &host, origin))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(64).collect());
        let www_authenticate = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            // `to_str` keeps visible ASCII only, so the cut is on a character boundary.
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.get(..MAX_HEADER_VALUE).unwrap_or(v).to_owned())
            .collect();
        let dpop_nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(1024).collect());
        let mut body = Vec::new();
        loop {
            if !read_body {
                break;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(Error::new(
                            ErrorCode::NetworkError,
                            format!("{what} at {host} sent an oversized answer (over 1 MiB)"),
                        )
                        .with_hint(crate::error::SERVER_TROUBLE_HINT)
                        .with_status(status));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(e, what, &host, origin)),
            }
        }
        tracing::debug!(what, host = %host, status, bytes = body.len(), "http answer");
        Ok(RawResponse {
            status,
            content_type,
            retry_after,
            www_authenticate,
            dpop_nonce,
            body,
        })
    }

    fn transport_error(
        &self,
        e: reqwest::Error,
        what: &str,
        host: &str,
        origin: HostOrigin,
    ) -> Error {
        let e = e.without_url();
        let whom = format!("{what} at {host}");
        match refusal_in(&e) {
            Some(Refused::Lookup { name }) => return unresolved_error(name, &whom, origin),
            Some(refused) => return refused_error(refused, &whom),
            None => {}
        }
        if let Some(err) = tls_trust_failure(&e, &whom) {
            return err.with_source(e);
        }
        if e.is_connect() && e.is_timeout() {
            // No connection within the connect timeout: the host is unreachable (exit 11), not a
            // slow server (`Timeout` is for an answer that does not come).
            Error::new(
                ErrorCode::NetworkError,
                format!(
                    "cannot connect to {whom}: no connection within {} s",
                    self.settings.connect_timeout.as_secs_f32()
                ),
            )
            .with_source(e)
        } else if e.is_timeout() {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "{what} at {host} did not answer within {} s",
                    self.settings.request_timeout.as_secs_f32()
                ),
            )
            .with_hint("retry later; if it persists, check the server or your proxy")
            .with_source(e)
        } else if e.is_connect() {
            Error::new(
                ErrorCode::NetworkError,
                format!("cannot connect to {what} at {host}"),
            )
            .with_source(e)
        } else {
            Error::new(
                ErrorCode::NetworkError,
                format!(
                    "{what} at {host} failed: the connection broke or the answer was unreadable"
                ),
            )
            .with_source(e)
        }
    }
}

/// The error for a TLS handshake that failed because the server's certificate is not trusted
/// (rustls' `InvalidCertificate`, e.g. an unknown issuer, an expired certificate or another
/// name), found anywhere in `e`'s source chain (such as a `reqwest::Error`); `None` for any other
/// failure.
///
/// [`ErrorCode::NetworkError`] (the server cannot be used from here), with a message saying the
/// certificate of `whom` (e.g. "the MCP server at mcp.example.com") is not trusted and a hint naming
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`, which add a corporate or private CA to the trust store. The
/// message holds only `whom` and fixed words, never the certificate's text.
pub fn tls_trust_failure(e: &(dyn std::error::Error + 'static), whom: &str) -> Option<Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        // `io::Error::source` skips the error it wraps; rustls' error sits right there.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(why)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(
                    Error::new(
                        ErrorCode::NetworkError,
                        format!(
                            "the TLS certificate of {whom} is not trusted ({})",
                            certificate_problem(why)
                        ),
                    )
                    .with_hint(TLS_TRUST_HINT),
                );
            }
        }
        source = inner.or_else(|| err.source());
    }
    None
}

/// The hint of an untrusted server certificate.
pub(crate) const TLS_TRUST_HINT: &str = "if the server uses a private or corporate CA, point SSL_CERT_FILE at a PEM file (or SSL_CERT_DIR at a directory) holding that CA's certificate, then retry; otherwise the connection may be intercepted";

/// A few fixed words for a certificate problem (never the certificate's own text).
fn certificate_problem(why: &rustls::CertificateError) -> &'static str {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer => "issued by an unknown certificate authority",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet",
        C::NotValidForName | C::NotValidForNameContext { .. } => "issued for another host name",
        C::Revoked => "revoked",
        C::BadSignature => "bad signature",
        _ => "rejected by the trust store",
    }
}

/// Who chose the host of a request made under `policy`: `None` is a user-configured URL.
fn origin(policy: Option<UrlPolicy>) -> HostOrigin {
    if policy.is_some() {
        HostOrigin::Server
    } else {
        HostOrigin::User
    }
}

/// The error for a request that failed because a host name did not resolve (the
/// [`http_client_builder`](crate::OAuthService::http_client_builder) clients report that in their
/// errors' source chain), found anywhere in `e`'s source chain; `None` for any other failure.
///
/// [`ErrorCode::NetworkError`] (exit 11 in the command-line program), saying "cannot reach `whom`:
/// the host name … does not resolve" (the name through the terminal sanitiser) with a hint to check
/// its spelling, the network and DNS: the clients of that builder reach URLs the user gave.
pub fn unresolved_host(e: &(dyn std::error::Error + 'static), whom: &str) -> Option<Error> {
    match refusal_in(e)? {
        Refused::Lookup { name } => Some(unresolved_error(name, whom, HostOrigin::User)),
        _ => None,
    }
}

/// The policy refusal somewhere in `e`'s source chain, if the resolver refused the host.
pub(crate) fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut source: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = err.source();
    }
    None
}

/// The HTTP client set-up shared with the program (the only place outside the service's own requests
/// that hands out the HTTP library's types).
impl crate::OAuthService {
    /// A `reqwest` client builder for other HTTP traffic of the program (e.g. an MCP proxy), set up
    /// as this service's own clients: rustls with the `ring` provider, the proxies of the service's
    /// [`Environment`](crate::Environment) (`HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`, never the process
    /// environment read behind its back) with loopback destinations always direct, the
    /// [`HttpSettings::connect_timeout`], no redirects and the context-harness user agent.
    ///
    /// It sets no overall request timeout (the caller may stream answers) and no SSRF policy.
    /// Report a transport failure with [`tls_trust_failure`](crate::tls_trust_failure) and
    /// [`unresolved_host`](crate::unresolved_host) first, so an untrusted certificate and a host
    /// name that does not resolve are named as such.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        self.http().builder()
    }
}

#[cfg(test)]
mod tests;
