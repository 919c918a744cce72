//! Discovery for MCP server sign-in and issuer-only providers.
//!
//! - RFC 9728 protected-resource metadata (PRM): from a 401's `WWW-Authenticate: Bearer
//!   resource_metadata="…"`, else `/.well-known/oauth-protected-resource/<path>`, else the root.
//! - RFC 8414 authorization-server metadata, then OpenID Connect discovery, with path insertion for
//!   issuers that have a path (see [`authorization_server_metadata_urls`]).
//! - The canonical resource URI of RFC 8707 / MCP ([`canonical_resource_uri`]).
//! - SSRF hygiene: every URL learnt from a server (the challenge, the PRM, the metadata) must be
//!   `https` (plain `http` only on loopback when the starting URL is loopback itself) and must not
//!   point at link-local, metadata or (unless the starting URL is private too) private addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::http::{Http, RawResponse};

/// The MCP protocol revision announced on discovery requests (`MCP-Protocol-Version`).
pub const MCP_PROTOCOL_VERSION: &str = "2026-07-28";

/// How long discovered authorization-server metadata of a configured provider is reused.
pub const METADATA_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

// -------------------------------------------------------------------------------------------------
// WWW-Authenticate (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).

/// One challenge of a `WWW-Authenticate` header: the scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme as sent (compare case-insensitively, e.g. with [`Challenge::is_bearer`]).
    pub scheme: String,
    /// Parameters in order; names lowercased, quoted values unescaped. A token68 value is kept
    /// under the empty name.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether the scheme is `Bearer` (case-insensitive).
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// The value of parameter `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parses a `WWW-Authenticate` value into its challenges. Never fails: malformed parts are skipped.
///
/// Handles several challenges in one value, quoted strings with commas and escapes, a
/// case-insensitive scheme and token68 credentials.
///
/// ```
/// use context_harness_providers::discovery::parse_www_authenticate;
///
/// let challenges = parse_www_authenticate(
///     r#"Basic realm="a, b", bearer resource_metadata="https://ex.com/.well-known/oauth-protected-resource", scope="read write""#,
/// );
/// assert_eq!(challenges.len(), 2);
/// assert!(challenges[1].is_bearer());
/// assert_eq!(challenges[1].param("scope"), Some("read write"));
/// ```
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let s = value.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && matches!(s[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    let read_token = |i: &mut usize| -> String {
        let start = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        String::from_utf8_lossy(&s[start..*i]).into_owned()
    };
    loop {
        while i < s.len() && matches!(s[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let scheme = read_token(&mut i);
        if scheme.is_empty() {
            i += 1; // garbage byte: skip it
            continue;
        }
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        let mut first = true;
        loop {
            let save = i;
            skip_ws(&mut i);
            if !first {
                // Parameters after the first are separated by commas.
                if i < s.len() && s[i] == b',' {
                    while i < s.len() && matches!(s[i], b' ' | b'\t' | b',') {
                        i += 1;
                    }
                } else {
                    i = save;
                    break;
                }
            }
            let param_start = i;
            let name_start = i;
            while i < s.len() && (is_tchar(s[i]) || s[i] == b'/') {
                i += 1;
            }
            if i == name_start {
                i = save;
                break;
            }
            let name = String::from_utf8_lossy(&s[name_start..i]).into_owned();
            let after_name = i;
            skip_ws(&mut i);
            let is_param = i < s.len()
                && s[i] == b'='
                && !(i + 1 < s.len() && s[i + 1] == b'=')
                && !name.contains('/');
            if is_param {
                i += 1;
                skip_ws(&mut i);
                let value = if i < s.len() && s[i] == b'"' {
                    i += 1;
                    let mut v = Vec::new();
                    while i < s.len() && s[i] != b'"' {
                        if s[i] == b'\\' && i + 1 < s.len() {
                            i += 1;
                        }
                        v.push(s[i]);
                        i += 1;
                    }
                    i += 1; // closing quote (or end)
                    String::from_utf8_lossy(&v).into_owned()
                } else {
                    read_token(&mut i)
                };
                challenge.params.push((name.to_ascii_lowercase(), value));
                first = false;
            } else if first {
                // token68 (`Basic dXNlcjpwYXNz==`), or a bare scheme followed by a new challenge.
                i = after_name;
                let mut end = i;
                while end < s.len() && s[end] == b'=' {
                    end += 1;
                }
                let mut peek = end;
                while peek < s.len() && matches!(s[peek], b' ' | b'\t') {
                    peek += 1;
                }
                if peek >= s.len() || s[peek] == b',' {
                    challenge.params.push((
                        String::new(),
                        String::from_utf8_lossy(&s[param_start..end]).into_owned(),
                    ));
                    i = end;
                    first = false;
                } else {
                    i = save;
                    break;
                }
            } else {
                // A token not followed by `=`: the next challenge's scheme.
                i = save;
                break;
            }
        }
        out.push(challenge);
    }
    out
}

/// The `resource_metadata` URL and `scope` of the first `Bearer` challenge that has them.
pub fn bearer_resource_metadata(challenges: &[Challenge]) -> (Option<String>, Option<String>) {
    let bearer = challenges.iter().filter(|c| c.is_bearer());
    let mut metadata = None;
    let mut scope = None;
    for c in bearer {
        if metadata.is_none() {
            metadata = c.param("resource_metadata").map(str::to_owned);
        }
        if scope.is_none() {
            // Only RFC 6749 §3.3 scope tokens are kept; a challenge with none names no scope.
            scope = c
                .param("scope")
                .map(|s| context_harness_tokens::valid_scope(s).0)
                .filter(|s| !s.is_empty());
        }
    }
    (metadata, scope)
}

/// Deserialises a metadata `scopes_supported` list, dropping every entry that is not an RFC 6749
/// §3.3 scope token (controls, escapes, spaces, non-ASCII), so such text is never requested,
/// stored or printed.
fn de_scopes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Vec<String>>, D::Error> {
    let scopes = Option::<Vec<String>>::deserialize(deserializer)?;
    Ok(scopes.map(|list| {
        list.into_iter()
            .filter(|s| context_harness_tokens::is_scope_token(s))
            .collect()
    }))
}

// -------------------------------------------------------------------------------------------------
// URL construction.

/// The canonical form of an MCP server URI (RFC 8707 `resource`, MCP "Canonical Server URI"):
/// lowercase scheme and host, no default port, dot segments resolved, and no trailing `/` (the root
/// is written without a path). Texts that parsers read differently are refused: a backslash,
/// whitespace or control characters, user info, a fragment. This is the one URL parser of the
/// workspace ([`context_harness_storage::canonical_url`]), so the name tokens are stored under and
/// the server requests reach are derived from the same form.
///
/// ```
/// use context_harness_providers::discovery::canonical_resource_uri;
///
/// assert_eq!(canonical_resource_uri("https://MCP.example.com/mcp/")?, "https://mcp.example.com/mcp");
/// assert_eq!(canonical_resource_uri("https://example.com:443/")?, "https://example.com");
/// assert_eq!(canonical_resource_uri("http://127.0.0.1:8931/mcp")?, "http://127.0.0.1:8931/mcp");
/// assert!(canonical_resource_uri("https://evil.example\\@good.example/mcp").is_err());
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] when the text is not an absolute `http`/`https` URL with a host.
pub fn canonical_resource_uri(url: &str) -> Result<String> {
    crate::provider_ref::canonical_server_url(url)
}

/// The path of `url` without a terminating `/` (`""` for the root).
fn trimmed_path(url: &Url) -> &str {
    let path = url.path();
    path.strip_suffix('/').unwrap_or(path)
}

fn origin_url(url: &Url, path: &str) -> Result<Url> {
    let mut out = url.clone();
    out.set_query(None);
    out.set_fragment(None);
    out.set_path(path);
    if !out.username().is_empty() || out.password().is_some() {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            "credentials in the URL are not allowed",
        ));
    }
    Ok(out)
}

/// The RFC 9728 well-known URLs for a resource, in the order to try: the path-inserted one
/// (`/.well-known/oauth-protected-resource/<path>`) when the URL has a path, then the root.
///
/// ```
/// use context_harness_providers::discovery::protected_resource_metadata_urls;
///
/// let urls = protected_resource_metadata_urls("https://ex.com/public/mcp")?;
/// assert_eq!(urls[0].as_str(), "https://ex.com/.well-known/oauth-protected-resource/public/mcp");
/// assert_eq!(urls[1].as_str(), "https://ex.com/.well-known/oauth-protected-resource");
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] for a URL that cannot be parsed.
pub fn protected_resource_metadata_urls(server_url: &str) -> Result<Vec<Url>> {
    let url = parse_config_url(server_url)?;
    let path = trimmed_path(&url);
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(origin_url(
            &url,
            &format!("/.well-known/oauth-protected-resource{path}"),
        )?);
    }
    urls.push(origin_url(&url, "/.well-known/oauth-protected-resource")?);
    Ok(urls)
}

/// The metadata URLs for an issuer, in the order to try (RFC 8414 §3.1, OIDC Discovery §4,
/// MCP "Authorization Server Metadata Discovery").
///
/// With a path (`https://auth.ex.com/tenant1`, a trailing `/` removed first): the well-known
/// segment is **inserted before** the path for RFC 8414 and OIDC, then appended for OIDC:
///
/// ```
/// use context_harness_providers::discovery::authorization_server_metadata_urls;
///
/// let urls: Vec<String> = authorization_server_metadata_urls("https://auth.ex.com/tenant1/")?
///     .into_iter().map(String::from).collect();
/// assert_eq!(urls, [
///     "https://auth.ex.com/.well-known/oauth-authorization-server/tenant1",
///     "https://auth.ex.com/.well-known/openid-configuration/tenant1",
///     "https://auth.ex.com/tenant1/.well-known/openid-configuration",
/// ]);
/// let urls: Vec<String> = authorization_server_metadata_urls("https://auth.ex.com")?
///     .into_iter().map(String::from).collect();
/// assert_eq!(urls, [
///     "https://auth.ex.com/.well-known/oauth-authorization-server",
///     "https://auth.ex.com/.well-known/openid-configuration",
/// ]);
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] for an issuer that cannot be parsed or has a query or fragment
/// (RFC 8414 §2 forbids both).
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<Url>> {
    let url = parse_config_url(issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "issuer `{}` must not have a query or fragment",
                printable(issuer)
            ),
        ));
    }
    let path = trimmed_path(&url);
    Ok(if path.is_empty() {
        vec![
            origin_url(&url, "/.well-known/oauth-authorization-server")?,
            origin_url(&url, "/.well-known/openid-configuration")?,
        ]
    } else {
        vec![
            origin_url(
                &url,
                &format!("/.well-known/oauth-authorization-server{path}"),
            )?,
            origin_url(&url, &format!("/.well-known/openid-configuration{path}"))?,
            origin_url(&url, &format!("{path}/.well-known/openid-configuration"))?,
        ]
    })
}

fn parse_config_url(value: &str) -> Result<Url> {
    let url = Url::parse(value.trim()).map_err(|e| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!("`{}` is not a valid URL ({e})", printable(value)),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!("`{}` is not an http(s) URL with a host", printable(value)),
        ));
    }
    Ok(url)
}

/// Whether a PRM `resource` is acceptable for the MCP server at `server_url`: identical to it, as
/// RFC 9728 §3.3 requires, once both are in canonical form ([`canonical_resource_uri`]: the case of
/// scheme and host, a default port and a trailing `/` do not count). A prefix is **not** enough:
/// `https://host` published by the server at `https://host/a/mcp` would make its tokens fit every
/// tenant on the host, so it is refused.
///
/// ```
/// use context_harness_providers::discovery::resource_matches;
///
/// assert!(resource_matches("https://HOST.example/a/mcp/", "https://host.example/a/mcp"));
/// assert!(!resource_matches("https://host.example", "https://host.example/a/mcp"));
/// assert!(!resource_matches("https://host.example/a", "https://host.example/a/mcp"));
/// ```
pub fn resource_matches(resource: &str, server_url: &str) -> bool {
    match (
        canonical_resource_uri(resource),
        canonical_resource_uri(server_url),
    ) {
        (Ok(r), Ok(s)) => r == s,
        _ => false,
    }
}

/// Whether two spellings name the same issuer: identical, or differing only in an empty path
/// written as `/` (`https://as.example` and `https://as.example/`, equivalent by RFC 3986
/// §6.2.3; large providers publish both forms). Nothing else is loosened: case, ports, other
/// paths and trailing slashes after a path still count.
///
/// ```
/// use context_harness_providers::discovery::issuers_match;
///
/// assert!(issuers_match("https://as.example/", "https://as.example"));
/// assert!(!issuers_match("https://as.example/t/", "https://as.example/t"));
/// assert!(!issuers_match("https://AS.example", "https://as.example"));
/// ```
pub fn issuers_match(a: &str, b: &str) -> bool {
    fn root_form(issuer: &str) -> &str {
        match issuer.strip_suffix('/') {
            Some(bare)
                if bare.split_once("://").is_some_and(|(_, authority)| {
                    !authority.is_empty() && !authority.contains('/')
                }) =>
            {
                bare
            }
            _ => issuer,
        }
    }
    a == b || root_form(a) == root_form(b)
}

/// A server-supplied string made safe and short for messages: the workspace's one sanitiser,
/// [`terminal_text`](crate::terminal_text).
pub(crate) fn printable(s: &str) -> String {
    crate::terminal_text(s)
}

// -------------------------------------------------------------------------------------------------
// SSRF policy.

/// What kind of network a URL's host is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetworkClass {
    /// A public address or a domain name that resolves to one.
    Public,
    /// A private (RFC 1918, unique-local, CGNAT) address.
    Private,
    /// A loopback address or `localhost`.
    Loopback,
    /// Never contacted for discovered URLs: link-local (cloud metadata at 169.254.169.254),
    /// unspecified, multicast, broadcast and reserved ranges.
    Forbidden,
}

/// The class of one IP address (IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4).
pub fn classify_ip(ip: IpAddr) -> NetworkClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return classify_v4(Ipv4Addr::new(a, b, c, d));
            }
            if v6.is_loopback() {
                NetworkClass::Loopback
            } else if v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0
            // link-local and deprecated site-local
            {
                NetworkClass::Forbidden
            } else if (seg[0] & 0xfe00) == 0xfc00 {
                // Unique-local fc00::/7 (AWS's IMDS v6 fd00:ec2::254 is refused below).
                if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                    NetworkClass::Forbidden
                } else {
                    NetworkClass::Private
                }
            } else {
                NetworkClass::Public
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> NetworkClass {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        NetworkClass::Loopback
    } else if ip.is_unspecified()
        || a == 0
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        NetworkClass::Forbidden
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b & 0xfe) == 18)
    {
        NetworkClass::Private
    } else {
        NetworkClass::Public
    }
}

fn classify_host(host: &url::Host<&str>) -> Option<NetworkClass> {
    match host {
        url::Host::Ipv4(ip) => Some(classify_ip(IpAddr::V4(*ip))),
        url::Host::Ipv6(ip) => Some(classify_ip(IpAddr::V6(*ip))),
        url::Host::Domain(d) => {
            let d = d.to_ascii_lowercase();
            let d = d.trim_end_matches('.');
            if d == "localhost" || d.ends_with(".localhost") {
                Some(NetworkClass::Loopback)
            } else if d == "metadata.google.internal" || d == "metadata" || d == "instance-data" {
                Some(NetworkClass::Forbidden)
            } else {
                None // decided by resolution
            }
        }
    }
}

/// The network class of the starting URL's host: the trust level that URLs learnt from its
/// servers may not exceed.
///
/// A domain name is resolved and judged by its **least-trusted** usable address (public below
/// private below loopback): a name resolving to both a public and a loopback address is `Public`,
/// so a server reached as public can never lead this client to loopback or private addresses.
/// Forbidden addresses (link-local, …) are ignored here; a failed lookup gives `Public` (the most
/// restrictive trust; the request itself then fails in the resolver).
pub(crate) async fn class_of_url(url: &Url) -> NetworkClass {
    let Some(host) = url.host() else {
        return NetworkClass::Public;
    };
    if let Some(class) = classify_host(&host) {
        return class;
    }
    let Some(name) = url.host_str() else {
        return NetworkClass::Public;
    };
    match resolve_classified(name).await {
        Ok(addrs) => addrs
            .into_iter()
            .map(|(_, class)| class)
            .filter(|c| *c != NetworkClass::Forbidden)
            .min()
            .unwrap_or(NetworkClass::Public),
        Err(_) => NetworkClass::Public,
    }
}

/// Test-only host names (see [`register_test_host`]): name → the answers still to give (each an
/// address list with the class each address counts as); the last answer repeats.
/// The flag: whether the first answer has a public address (then plain `http` stands in for
/// `https`).
type TestHosts = Vec<(String, bool, Vec<Vec<(IpAddr, NetworkClass)>>)>;
static TEST_HOSTS: std::sync::RwLock<TestHosts> = std::sync::RwLock::new(Vec::new());

/// **Tests only.** Makes `name` (which must end in `.test`, a TLD reserved by RFC 6761 that never
/// resolves in real DNS) resolve to `addrs`, each judged as the class given with it rather than by
/// its real range; an empty `addrs` makes the lookup fail. A host with an address that counts as
/// [`NetworkClass::Public`] may be reached over plain `http` (a stand-in for `https`: a local stub
/// cannot present a trusted certificate).
///
/// This lets a stub on loopback play a *public* hostile server, so that the SSRF policy can be
/// exercised without ever sending traffic to a non-loopback address. Process-wide; a later
/// registration of the same name replaces the earlier one.
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] when `name` does not end in `.test`.
#[doc(hidden)]
pub fn register_test_host(name: &str, addrs: &[(IpAddr, NetworkClass)]) -> Result<()> {
    register_test_host_answers(name, vec![addrs.to_vec()])
}

/// **Tests only.** Like [`register_test_host`], but the lookups of `name` get `answers` in turn
/// (the last one repeats): a name that answers "public" once and "loopback" afterwards replays DNS
/// rebinding.
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] when `name` does not end in `.test` or `answers` is empty.
#[doc(hidden)]
pub fn register_test_host_answers(
    name: &str,
    answers: Vec<Vec<(IpAddr, NetworkClass)>>,
) -> Result<()> {
    let name = name.to_ascii_lowercase();
    if !name.ends_with(".test") || answers.is_empty() {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            "test host names must end in `.test` and have at least one answer",
        ));
    }
    let mut hosts = TEST_HOSTS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let public = answers
        .first()
        .is_some_and(|first| first.iter().any(|(_, c)| *c == NetworkClass::Public));
    hosts.retain(|(n, _, _)| *n != name);
    hosts.push((name, public, answers));
    Ok(())
}

/// The next answer for test host `name` (moving on to the one after).
fn test_host_answer(name: &str) -> Option<Vec<(IpAddr, NetworkClass)>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !name.ends_with(".test") {
        return None;
    }
    let mut hosts = TEST_HOSTS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_, _, answers) = hosts.iter_mut().find(|(n, _, _)| *n == name)?;
    if answers.len() > 1 {
        Some(answers.remove(0))
    } else {
        answers.first().cloned()
    }
}

/// Whether `host` is a registered test host that stands in for a public `https` server.
pub(crate) fn is_public_test_host(host: &url::Host<&str>) -> bool {
    let url::Host::Domain(name) = host else {
        return false;
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.ends_with(".test")
        && TEST_HOSTS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(n, public, _)| *n == name && *public)
}

/// Resolves `name` (a domain name, not an IP literal) with the system resolver and classes every
/// address. An empty answer is an error.
pub(crate) async fn resolve_classified(name: &str) -> std::io::Result<Vec<(IpAddr, NetworkClass)>> {
    let addrs = match test_host_answer(name) {
        Some(addrs) => addrs,
        None => tokio::net::lookup_host((name, 0))
            .await?
            .map(|a| (a.ip(), classify_ip(a.ip())))
            .collect(),
    };
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name has no addresses",
        ));
    }
    Ok(addrs)
}

/// Why a host was refused by a [`UrlPolicy`] at resolution time. Carried as the source of the
/// connection error so the request's error can say why; it names the host and the address only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The lookup failed or gave no address.
    Lookup { name: String },
    /// The name itself is of a class outside the policy (`localhost`, `metadata.google.internal`).
    Name {
        name: String,
        class: NetworkClass,
        trust: NetworkClass,
    },
    /// An address is outside the policy.
    Address {
        name: String,
        ip: IpAddr,
        class: NetworkClass,
        trust: NetworkClass,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lookup { name } => write!(
                f,
                "cannot resolve {}; a server-supplied host must resolve before it is contacted",
                printable(name)
            ),
            Self::Name { name, class, trust } => write!(
                f,
                "{} names {} host, which a {} server may not lead to",
                printable(name),
                class.article_name(),
                trust.adjective()
            ),
            Self::Address {
                name,
                ip,
                class,
                trust,
            } => write!(
                f,
                "{} resolves to {} address {ip}, which a {} server may not lead to",
                printable(name),
                class.article_name(),
                trust.adjective()
            ),
        }
    }
}

impl std::error::Error for Refused {}

impl NetworkClass {
    fn adjective(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private-network",
            Self::Loopback => "loopback",
            Self::Forbidden => "link-local, metadata or reserved",
        }
    }

    fn article_name(self) -> &'static str {
        match self {
            Self::Public => "a public",
            Self::Private => "a private-network",
            Self::Loopback => "a loopback",
            Self::Forbidden => "a link-local, metadata or reserved",
        }
    }
}

/// Which URLs learnt from servers may be contacted, set from the URL the user gave: the one policy
/// for every server-supplied URL (metadata, registration, token, revocation, device and
/// `registration_client_uri` endpoints).
///
/// It is enforced in three places: [`check`](Self::check) on the URL text (scheme, credentials,
/// IP-literal hosts, fixed names such as `localhost`), the HTTP client's DNS resolver on every
/// connection (so the addresses judged are the addresses connected to: no DNS rebinding), and
/// [`check_resolved`](Self::check_resolved) for an early, clear refusal at discovery time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    /// The class of the starting URL: `Loopback` allows loopback (and plain `http` there),
    /// `Private` allows private addresses, `Public` neither.
    pub trust: NetworkClass,
}

impl UrlPolicy {
    /// A policy for a starting URL of class `trust`.
    pub const fn new(trust: NetworkClass) -> Self {
        Self { trust }
    }

    /// Whether an address of `class` may be contacted: never `Forbidden`; `Loopback` only under a
    /// loopback trust; `Private` under a private or loopback trust.
    pub fn allows(self, class: NetworkClass) -> bool {
        match class {
            NetworkClass::Public => true,
            NetworkClass::Private => {
                matches!(self.trust, NetworkClass::Private | NetworkClass::Loopback)
            }
            NetworkClass::Loopback => self.trust == NetworkClass::Loopback,
            NetworkClass::Forbidden => false,
        }
    }

    /// Judges the resolved addresses of `name`: every address must be allowed (a host is as
    /// dangerous as its least-trusted address), and a failed or empty lookup is refused.
    pub(crate) fn judge(
        self,
        name: &str,
        resolved: std::io::Result<Vec<(IpAddr, NetworkClass)>>,
    ) -> std::result::Result<Vec<IpAddr>, Refused> {
        if let Some(class) = classify_host(&url::Host::Domain(name))
            && !self.allows(class)
        {
            return Err(Refused::Name {
                name: name.to_owned(),
                class,
                trust: self.trust,
            });
        }
        let addrs = match resolved {
            Ok(addrs) if !addrs.is_empty() => addrs,
            _ => {
                return Err(Refused::Lookup {
                    name: name.to_owned(),
                });
            }
        };
        if let Some((ip, class)) = addrs.iter().find(|(_, class)| !self.allows(*class)) {
            return Err(Refused::Address {
                name: name.to_owned(),
                ip: *ip,
                class: *class,
                trust: self.trust,
            });
        }
        Ok(addrs.into_iter().map(|(ip, _)| ip).collect())
    }

    /// Checks a URL learnt from a server (`what` names it in errors): absolute, `https` (or `http`
    /// to loopback under a loopback policy), no credentials, no fragment, and an IP-literal or
    /// fixed host this policy allows (domain names are judged by the resolver).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] naming `what` and the reason.
    pub fn check(self, value: &str, what: &str) -> Result<Url> {
        let refuse = |why: String| {
            Error::new(
                ErrorCode::AuthFailed,
                format!("refusing {what} `{}`: {why}", printable(value)),
            )
            .with_hint(ssrf_hint(self))
        };
        let url = Url::parse(value.trim()).map_err(|e| refuse(format!("not a valid URL ({e})")))?;
        let Some(host) = url.host() else {
            return Err(refuse("no host".to_owned()));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("credentials in the URL".to_owned()));
        }
        if url.fragment().is_some() {
            return Err(refuse("a URL fragment".to_owned()));
        }
        let class = classify_host(&host);
        match url.scheme() {
            "https" => {}
            "http"
                if class == Some(NetworkClass::Loopback) && self.allows(NetworkClass::Loopback) => {
            }
            "http" if is_public_test_host(&host) => {}
            "http" => {
                return Err(refuse(
                    "plain http is only allowed to loopback hosts".to_owned(),
                ));
            }
            other => return Err(refuse(format!("scheme `{other}` is not allowed"))),
        }
        if let Some(class) = class
            && !self.allows(class)
        {
            return Err(refuse(format!(
                "it points to {} address, which a {} server may not lead to",
                class.article_name(),
                self.trust.adjective()
            )));
        }
        Ok(url)
    }

    /// Resolves `url`'s host now and refuses it if the lookup fails or any address is outside this
    /// policy (a domain name pointing at 169.254.169.254 is refused like the literal). Gives an
    /// early, clear error; the HTTP client's resolver applies the same rule again on every
    /// connection, so a name that changes its answer in between (DNS rebinding) is still refused.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`].
    pub async fn check_resolved(self, url: &Url, what: &str) -> Result<()> {
        let Some(host) = url.host() else {
            return Ok(());
        };
        if !matches!(host, url::Host::Domain(_)) || classify_host(&host).is_some() {
            // Literal or fixed name: judged by `check`.
            self.check(url.as_str(), what)?;
            return Ok(());
        }
        let Some(name) = url.host_str() else {
            return Ok(());
        };
        self.judge(name, resolve_classified(name).await)
            .map(drop)
            .map_err(|refused| refused_error(&refused, what))
    }
}

/// The hint of an SSRF refusal.
fn ssrf_hint(policy: UrlPolicy) -> String {
    format!(
        "a URL learnt from a {} server may only lead to hosts of that kind or more public ones; \
         if this server is yours, configure its endpoints in providers.toml \
         (see \"Security model\" in the README)",
        policy.trust.adjective()
    )
}

/// The error for a host refused at resolution time (`what` names the endpoint).
pub(crate) fn refused_error(refused: &Refused, what: &str) -> Error {
    let hint = match refused {
        Refused::Lookup { .. } => {
            "check the host name in the server's metadata, your DNS, or retry later".to_owned()
        }
        Refused::Name { trust, .. } | Refused::Address { trust, .. } => {
            ssrf_hint(UrlPolicy::new(*trust))
        }
    };
    Error::new(ErrorCode::AuthFailed, format!("refusing {what}: {refused}")).with_hint(hint)
}

// -------------------------------------------------------------------------------------------------
// Metadata documents.

/// RFC 9728 protected-resource metadata (fields this client uses; unknown ones are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (REQUIRED by RFC 9728 §2).
    #[serde(default)]
    pub resource: Option<String>,
    /// Issuers of the authorization servers that protect the resource.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource uses (entries that are not RFC 6749 §3.3 scope tokens are dropped).
    #[serde(default, deserialize_with = "de_scopes")]
    pub scopes_supported: Option<Vec<String>>,
    /// How bearer tokens may be sent (`header`, …).
    #[serde(default)]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// A human-readable name.
    #[serde(default)]
    pub resource_name: Option<String>,
}

/// RFC 8414 / OpenID Connect Discovery metadata (all optional except `issuer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier; must equal the issuer the document was fetched for.
    pub issuer: String,
    /// The authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// RFC 7591 dynamic client registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// RFC 7662 introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 8628 device authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// PKCE methods; MCP clients refuse to proceed when this lacks `S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint (absent = `client_secret_basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Scopes the server knows (entries that are not RFC 6749 §3.3 scope tokens are dropped).
    #[serde(
        default,
        deserialize_with = "de_scopes",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes_supported: Option<Vec<String>>,
    /// Grant types the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Response types the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// RFC 9207: the server always sends `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Whether Client ID Metadata Documents are accepted (not used by this client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
}

impl AuthorizationServerMetadata {
    /// Whether `code_challenge_methods_supported` lists `S256`.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    /// Whether the server advertises `offline_access` in `scopes_supported`.
    pub fn offers_offline_access(&self) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "offline_access"))
    }

    /// The MCP PKCE gate: refuses metadata that does not announce S256.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] naming the issuer.
    pub fn require_s256(&self) -> Result<()> {
        if self.supports_s256() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the authorization server {} does not announce PKCE S256 support \
                     (code_challenge_methods_supported); refusing to sign in without PKCE",
                    printable(&self.issuer)
                ),
            )
            .with_hint(
                "ask the server operator to publish code_challenge_methods_supported, or configure \
                 the endpoints by hand in providers.toml",
            ))
        }
    }

    /// Checks every endpoint against `policy` (they are attacker-controllable in MCP discovery).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] for the first refused endpoint.
    pub fn check_endpoints(&self, policy: UrlPolicy) -> Result<()> {
        for (what, value) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("registration_endpoint", &self.registration_endpoint),
            ("revocation_endpoint", &self.revocation_endpoint),
            (
                "device_authorization_endpoint",
                &self.device_authorization_endpoint,
            ),
        ] {
            if let Some(value) = value {
                policy.check(value, what)?;
            }
        }
        // The authorization endpoint is opened in the browser: http(s) only (checked above).
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------------
// Fetching.

/// The result of discovering an MCP server: what it is, who protects it, and that server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpServerInfo {
    /// The canonical server URI (the storage key is derived from it).
    pub server_url: String,
    /// The `resource` to send (RFC 8707): the PRM's `resource`, else the canonical server URI.
    pub resource: String,
    /// Where the PRM was found.
    pub resource_metadata_url: String,
    /// The protected-resource metadata.
    pub resource_metadata: ProtectedResourceMetadata,
    /// The `scope` of the 401 challenge, if there was one.
    pub challenge_scope: Option<String>,
    /// The chosen authorization server's validated metadata.
    pub authorization_server: AuthorizationServerMetadata,
    /// The discovery policy the server URL implies (for later requests).
    pub policy: UrlPolicy,
}

impl McpServerInfo {
    /// The scopes to request (MCP "Scope Selection Strategy"): the challenge's `scope`, else the
    /// PRM's `scopes_supported`, else none; `offline_access` added when the server advertises it.
    pub fn default_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = match (
            &self.challenge_scope,
            &self.resource_metadata.scopes_supported,
        ) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(list)) => list.clone(),
            (None, None) => Vec::new(),
        };
        if self.authorization_server.offers_offline_access()
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".to_owned());
        }
        scopes
    }
}

/// Discovery requests (GET with `Accept: application/json` and `MCP-Protocol-Version`).
pub(crate) struct Discoverer<'a> {
    pub(crate) http: &'a Http,
    pub(crate) policy: UrlPolicy,
}

impl Discoverer<'_> {
    async fn get(&self, url: &Url, what: &str) -> Result<RawResponse> {
        // The policy client's resolver judges the host (the same lookup that is connected to).
        let request = self
            .http
            .get(url, Some(self.policy))?
            .header("MCP-Protocol-Version", MCP_PROTOCOL_VERSION);
        self.http.send(request, url, what).await
    }

    /// Probes the MCP server without a token and returns the `WWW-Authenticate` challenges of a 401.
    async fn probe(&self, server: &Url) -> Result<Vec<Challenge>> {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": MCP_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": self.http.app().client_info().0, "version": self.http.app().client_info().1},
            },
        });
        let request = self
            .http
            .request(reqwest::Method::POST, server, Some(self.policy))?
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("MCP-Protocol-Version", MCP_PROTOCOL_VERSION)
            .body(body.to_string());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                if let Some(refused) = crate::http::refusal_in(&e) {
                    return Err(refused_error(refused, "the MCP server"));
                }
                if let Some(err) = crate::http::tls_trust_failure(&e, "the MCP server") {
                    return Err(err.with_source(e));
                }
                return Err(Error::new(
                    ErrorCode::NetworkError,
                    format!(
                        "cannot reach the MCP server at {}",
                        server.host_str().unwrap_or("?")
                    ),
                )
                .with_source(e));
            }
        };
        let status = response.status().as_u16();
        let challenges = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_www_authenticate)
            .collect();
        tracing::debug!(status, "MCP server probe");
        Ok(if status == 401 {
            challenges
        } else {
            Vec::new()
        })
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<std::result::Result<T, String>> {
        let raw = self.get(url, what).await?;
        if !(200..300).contains(&raw.status) {
            return Ok(Err(format!("HTTP {}", raw.status)));
        }
        // A 200 that is not the document (a single-page app's catch-all HTML, a JSON error) is a
        // miss like a 404: the MCP specification has the client try the next candidate.
        Ok(serde_json::from_slice(&raw.body).map_err(|e| {
            tracing::debug!(url = %url, error = %e, "not {what}");
            format!("HTTP {} with a body that is not {what} JSON", raw.status)
        }))
    }

    /// RFC 9728 discovery: the challenge's `resource_metadata`, else the well-known URLs in order.
    pub(crate) async fn protected_resource(
        &self,
        server_url: &str,
    ) -> Result<(Url, ProtectedResourceMetadata, Option<String>)> {
        let server = parse_config_url(server_url)?;
        let challenges = self.probe(&server).await?;
        let (from_header, scope) = bearer_resource_metadata(&challenges);
        let mut candidates = Vec::new();
        if let Some(url) = &from_header {
            // A value that is not an http(s) URL counts as absent (the well-known URLs derive from
            // the user's own URL, so falling back is safe); a usable URL to a forbidden address is
            // refused.
            let usable = Url::parse(url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            match usable {
                Some(_) => candidates.push(self.policy.check(url, "resource_metadata URL")?),
                None => tracing::debug!(
                    value = %printable(url),
                    "the resource_metadata value is not a URL; trying the well-known URLs"
                ),
            }
        }
        candidates.extend(protected_resource_metadata_urls(server_url)?);
        let mut last_status = None;
        for url in candidates {
            match self
                .fetch_json::<ProtectedResourceMetadata>(&url, "protected-resource metadata")
                .await?
            {
                Ok(prm) => return Ok((url, prm, scope)),
                Err(miss) => {
                    tracing::debug!(url = %url, miss, "no protected-resource metadata here");
                    last_status = Some(miss);
                }
            }
        }
        Err(Error::new(
            ErrorCode::AuthFailed,
            format!(
                "{} publishes no OAuth protected-resource metadata (RFC 9728){}",
                printable(server_url),
                last_status.map_or_else(String::new, |s| format!("; last answer: {s}"))
            ),
        )
        .with_hint("check the server URL; a server without RFC 9728 metadata needs a configured provider in providers.toml"))
    }

    /// RFC 8414 then OIDC discovery for `issuer`, trying the URLs of
    /// [`authorization_server_metadata_urls`] in order. The document's `issuer` must equal
    /// `issuer` exactly.
    pub(crate) async fn authorization_server(
        &self,
        issuer: &str,
    ) -> Result<AuthorizationServerMetadata> {
        self.policy.check(issuer, "authorization server issuer")?;
        let mut last_status = None;
        for url in authorization_server_metadata_urls(issuer)? {
            match self
                .fetch_json::<AuthorizationServerMetadata>(&url, "authorization-server metadata")
                .await?
            {
                Ok(metadata) => {
                    if !issuers_match(&metadata.issuer, issuer) {
                        return Err(Error::new(
                            ErrorCode::AuthFailed,
                            format!(
                                "the metadata at {url} names issuer `{}`, not `{}`; refusing it (RFC 8414 §3.3)",
                                printable(&metadata.issuer),
                                printable(issuer)
                            ),
                        ));
                    }
                    metadata.check_endpoints(self.policy)?;
                    tracing::debug!(url = %url, "authorization-server metadata found");
                    return Ok(metadata);
                }
                Err(miss) => {
                    tracing::debug!(url = %url, miss, "no authorization-server metadata here");
                    last_status = Some(miss);
                }
            }
        }
        Err(Error::new(
            ErrorCode::AuthFailed,
            format!(
                "no authorization-server metadata found for issuer {}{}",
                printable(issuer),
                last_status.map_or_else(String::new, |s| format!(" (last answer: {s})"))
            ),
        ))
    }

    /// The whole MCP discovery: PRM (validated `resource`), then the first authorization server's
    /// metadata (validated issuer, PKCE S256 required).
    pub(crate) async fn mcp_server(&self, server_url: &str) -> Result<McpServerInfo> {
        let canonical = canonical_resource_uri(server_url)?;
        let (prm_url, prm, challenge_scope) = self.protected_resource(server_url).await?;
        let resource = match &prm.resource {
            Some(resource) => {
                if !resource_matches(resource, &canonical) {
                    return Err(Error::new(
                        ErrorCode::AuthFailed,
                        format!(
                            "the protected-resource metadata names resource `{}`, which does not match {canonical}; refusing it (RFC 9728 §3.3)",
                            printable(resource)
                        ),
                    ));
                }
                // The identical match above leaves nothing to choose: the canonical server URL is
                // the `resource` sent (RFC 8707 §2, the MCP "canonical server URI").
                canonical.clone()
            }
            None => canonical.clone(),
        };
        let Some(issuer) = prm.authorization_servers.first().cloned() else {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "the protected-resource metadata at {prm_url} names no authorization server"
                ),
            ));
        };
        if prm.authorization_servers.len() > 1 {
            tracing::debug!(count = prm.authorization_servers.len(), issuer = %issuer, "several authorization servers; using the first");
        }
        let metadata = self.authorization_server(&issuer).await?;
        metadata.require_s256()?;
        for (what, value, required) in [
            (
                "authorization_endpoint",
                &metadata.authorization_endpoint,
                true,
            ),
            ("token_endpoint", &metadata.token_endpoint, true),
            (
                "registration_endpoint",
                &metadata.registration_endpoint,
                false,
            ),
            ("revocation_endpoint", &metadata.revocation_endpoint, false),
            (
                "device_authorization_endpoint",
                &metadata.device_authorization_endpoint,
                false,
            ),
        ] {
            let Some(value) = value else {
                if !required {
                    continue;
                }
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    format!("the metadata of {} has no {what}", printable(&issuer)),
                ));
            };
            // Resolved now for a clear refusal before anything is sent; the policy client's
            // resolver judges every later connection again.
            let url = self.policy.check(value, what)?;
            self.policy.check_resolved(&url, what).await?;
        }
        Ok(McpServerInfo {
            server_url: canonical,
            resource,
            resource_metadata_url: prm_url.to_string(),
            resource_metadata: prm,
            challenge_scope,
            authorization_server: metadata,
            policy: self.policy,
        })
    }
}

// -------------------------------------------------------------------------------------------------
// Cache of discovered metadata for configured providers that give only `issuer`.

#[derive(Serialize, Deserialize)]
struct CachedMetadata {
    fetched_at: f64,
    metadata: AuthorizationServerMetadata,
}

/// `home/cache/discovery`: where issuer metadata is cached (0600 JSON, one file per issuer).
pub fn metadata_cache_dir(home: &Path) -> PathBuf {
    home.join("cache").join("discovery")
}

fn cache_path(home: &Path, issuer: &str) -> Result<PathBuf> {
    let name = context_harness_storage::ProviderName::from_url(issuer).map_err(|e| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!("issuer `{}` cannot name a cache file", printable(issuer)),
        )
        .with_source(e)
    })?;
    Ok(metadata_cache_dir(home).join(format!("{}.json", name.as_str())))
}

/// Cached metadata for `issuer` if present, for that issuer, and younger than `ttl`.
pub(crate) fn load_cached_metadata(
    home: &Path,
    issuer: &str,
    ttl: Duration,
) -> Option<AuthorizationServerMetadata> {
    let path = cache_path(home, issuer).ok()?;
    // A cache file another user could have planted is ignored (the metadata is fetched again).
    let bytes = match context_harness_storage::read_trusted(&path) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the cached metadata");
            return None;
        }
    };
    let cached: CachedMetadata = serde_json::from_slice(&bytes).ok()?;
    let age = context_harness_tokens::unix_seconds(SystemTime::now()) - cached.fetched_at;
    (issuers_match(&cached.metadata.issuer, issuer) && (0.0..ttl.as_secs_f64()).contains(&age))
        .then_some(cached.metadata)
}

/// Writes `metadata` to the cache (0600, atomic). Failures are logged, not fatal.
pub(crate) fn store_cached_metadata(home: &Path, metadata: &AuthorizationServerMetadata) {
    let write = || -> std::result::Result<(), String> {
        let path = cache_path(home, &metadata.issuer).map_err(|e| e.to_string())?;
        let cached = CachedMetadata {
            fetched_at: context_harness_tokens::unix_seconds(SystemTime::now()),
            metadata: metadata.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&cached).map_err(|e| e.to_string())?;
        context_harness_storage::write_private_atomic(&path, &bytes).map_err(|e| e.to_string())
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, "could not cache the discovered metadata");
    }
}

/// Fills the endpoints of a configured provider that gives `issuer` (and perhaps nothing else) from
/// the issuer's metadata: empty `auth_url`/`token_url`, and `device_auth_url`/`revocation_url` when
/// unset; turns on the RFC 9207 requirement when the server announces it.
///
/// # Errors
///
/// [`ErrorCode::AuthFailed`] when the metadata lacks an endpoint the provider needs, or lacks S256
/// while the provider uses PKCE.
pub fn apply_metadata(
    provider: &mut crate::OAuthProvider,
    metadata: &AuthorizationServerMetadata,
) -> Result<()> {
    if provider.pkce {
        metadata.require_s256()?;
    }
    let missing = |what: &str| {
        Error::new(
            ErrorCode::AuthFailed,
            format!(
                "the metadata of {} has no {what}; set it in providers.toml",
                printable(&metadata.issuer)
            ),
        )
    };
    if provider.auth_url.trim().is_empty() {
        provider.auth_url = metadata
            .authorization_endpoint
            .clone()
            .ok_or_else(|| missing("authorization_endpoint"))?;
    }
    if provider.token_url.trim().is_empty() {
        provider.token_url = metadata
            .token_endpoint
            .clone()
            .ok_or_else(|| missing("token_endpoint"))?;
    }
    if provider.device_auth_url.is_none() {
        provider
            .device_auth_url
            .clone_from(&metadata.device_authorization_endpoint);
    }
    if provider.revocation_url.is_none() {
        provider
            .revocation_url
            .clone_from(&metadata.revocation_endpoint);
    }
    if metadata.authorization_response_iss_parameter_supported == Some(true) {
        provider.iss_parameter_supported = true;
    }
    // The configured issuer may be spelt with or without a `/` for an empty path; RFC 9207's `iss`
    // is compared with the metadata's own spelling.
    if provider
        .issuer
        .as_deref()
        .is_some_and(|configured| issuers_match(configured, &metadata.issuer))
    {
        provider.issuer = Some(metadata.issuer.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn www_authenticate_parser() {
        let c = parse_www_authenticate(
            r#"Bearer resource_metadata="https://ex.com/.well-known/oauth-protected-resource/mcp", scope="a b""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].param("resource_metadata"),
            Some("https://ex.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c[0].param("SCOPE"), Some("a b"));

        // Several challenges, commas and escapes in quotes, case-insensitive scheme, token68.
        let c = parse_www_authenticate(
            r#"Basic dXNlcjpwYXNz==, Newauth realm="apps, \"x\"", type=1, title="Login, here", BEARER error="invalid_token", resource_metadata="https://a/b""#,
        );
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].scheme, "Basic");
        assert_eq!(c[0].param(""), Some("dXNlcjpwYXNz=="));
        assert_eq!(c[1].param("realm"), Some("apps, \"x\""));
        assert_eq!(c[1].param("type"), Some("1"));
        assert_eq!(c[1].param("title"), Some("Login, here"));
        assert!(c[2].is_bearer());
        assert_eq!(
            bearer_resource_metadata(&c).0.as_deref(),
            Some("https://a/b")
        );

        // A bare scheme, then another challenge.
        let c = parse_www_authenticate("Negotiate, Bearer realm=\"x\"");
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].param("realm"), Some("x"));

        // Garbage never panics.
        for s in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer =\"",
            "Bearer a=\"unterminated",
            "Bearer a=b,,c=d",
        ] {
            let _ = parse_www_authenticate(s);
        }
        let c = parse_www_authenticate("Bearer a=b,,c=d");
        assert_eq!(c[0].param("c"), Some("d"));
    }

    #[test]
    fn canonical_uris() {
        let cases = [
            (
                "https://MCP.example.com/mcp/",
                "https://mcp.example.com/mcp",
            ),
            ("https://mcp.example.com", "https://mcp.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            (
                "HTTPS://mcp.example.com:443/Mcp",
                "https://mcp.example.com/Mcp",
            ),
            (
                "https://mcp.example.com:8443/mcp",
                "https://mcp.example.com:8443/mcp",
            ),
            ("http://[::1]:9000/mcp", "http://[::1]:9000/mcp"),
            ("https://ex.com/a?x=1", "https://ex.com/a?x=1"),
        ];
        for (input, want) in cases {
            assert_eq!(
                canonical_resource_uri(input).ok().as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert!(canonical_resource_uri("ftp://ex.com/").is_err());
        assert!(canonical_resource_uri("not a url").is_err());
        // What parsers read differently is refused, never guessed at.
        for bad in [
            "https://mcp.example.com:8443/mcp#frag",
            "https://u:p@ex.com/a?x=1",
            "https://evil.example\\@good.example/mcp",
            "https://good.example/mcp ",
        ] {
            let err = canonical_resource_uri(bad).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some(ErrorCode::ConfigInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn prm_url_order() {
        let urls = protected_resource_metadata_urls("https://ex.com/public/mcp").ok();
        assert_eq!(
            urls.map(strs),
            Some(vec![
                "https://ex.com/.well-known/oauth-protected-resource/public/mcp".to_owned(),
                "https://ex.com/.well-known/oauth-protected-resource".to_owned(),
            ])
        );
        let urls = protected_resource_metadata_urls("https://ex.com/mcp/").ok();
        assert_eq!(
            urls.map(strs).and_then(|u| u.first().cloned()).as_deref(),
            Some("https://ex.com/.well-known/oauth-protected-resource/mcp")
        );
        let urls = protected_resource_metadata_urls("https://ex.com/").ok();
        assert_eq!(
            urls.map(strs),
            Some(vec![
                "https://ex.com/.well-known/oauth-protected-resource".to_owned()
            ])
        );
    }

    #[test]
    fn as_metadata_url_order_for_both_issuer_shapes() {
        let with_path = [
            "https://auth.ex.com/.well-known/oauth-authorization-server/tenant1",
            "https://auth.ex.com/.well-known/openid-configuration/tenant1",
            "https://auth.ex.com/tenant1/.well-known/openid-configuration",
        ];
        for issuer in [
            "https://auth.ex.com/tenant1",
            "https://auth.ex.com/tenant1/",
        ] {
            let got = authorization_server_metadata_urls(issuer).ok().map(strs);
            assert_eq!(got, Some(with_path.map(str::to_owned).to_vec()), "{issuer}");
        }
        // GitHub's path-scoped AS: inserted, not replaced (the Gemini CLI bug).
        let got = authorization_server_metadata_urls("https://github.com/login/oauth")
            .ok()
            .map(strs);
        assert_eq!(
            got.and_then(|u| u.first().cloned()).as_deref(),
            Some("https://github.com/.well-known/oauth-authorization-server/login/oauth")
        );
        let without = [
            "https://auth.ex.com/.well-known/oauth-authorization-server",
            "https://auth.ex.com/.well-known/openid-configuration",
        ];
        for issuer in ["https://auth.ex.com", "https://auth.ex.com/"] {
            let got = authorization_server_metadata_urls(issuer).ok().map(strs);
            assert_eq!(got, Some(without.map(str::to_owned).to_vec()), "{issuer}");
        }
        assert!(authorization_server_metadata_urls("https://a.ex.com/?x=1").is_err());
    }

    #[test]
    fn resource_validation() {
        assert!(resource_matches(
            "https://ex.com/mcp",
            "https://EX.com/mcp/"
        ));
        assert!(resource_matches(
            "https://ex.com:443/mcp",
            "https://ex.com/mcp"
        ));
        // RFC 9728 §3.3: identical, not a prefix (audience widening across tenants).
        assert!(!resource_matches("https://ex.com", "https://ex.com/mcp"));
        assert!(!resource_matches("https://ex.com/", "https://ex.com/mcp"));
        assert!(!resource_matches(
            "https://ex.com/a",
            "https://ex.com/a/mcp"
        ));
        assert!(!resource_matches("https://ex.com/m", "https://ex.com/mcp"));
        assert!(!resource_matches(
            "https://ex.com/mcp#x",
            "https://ex.com/mcp"
        ));
        assert!(!resource_matches("https://other.com", "https://ex.com/mcp"));
        assert!(!resource_matches("http://ex.com/mcp", "https://ex.com/mcp"));
        assert!(!resource_matches(
            "https://ex.com:8443/mcp",
            "https://ex.com/mcp"
        ));
        assert!(!resource_matches(
            "https://ex.com/mcp/x",
            "https://ex.com/mcp"
        ));
        assert!(!resource_matches("garbage", "https://ex.com/mcp"));
    }

    #[test]
    fn ssrf_policy() {
        let public = UrlPolicy::new(NetworkClass::Public);
        let loopback = UrlPolicy::new(NetworkClass::Loopback);
        let private = UrlPolicy::new(NetworkClass::Private);
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "https://169.254.169.254/",
            "https://[fe80::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fd00:ec2::254]/",
            "https://0.0.0.0/",
            "https://metadata.google.internal/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://100.64.0.1/",
            "https://127.0.0.1/",
            "https://localhost/",
            "http://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
        ] {
            assert!(public.check(bad, "x").is_err(), "{bad}");
        }
        assert!(public.check("https://as.example.com/tenant", "x").is_ok());
        assert!(loopback.check("http://127.0.0.1:4000/", "x").is_ok());
        assert!(loopback.check("http://localhost:4000/", "x").is_ok());
        assert!(loopback.check("https://10.1.2.3/", "x").is_ok());
        assert!(loopback.check("http://169.254.169.254/", "x").is_err());
        assert!(private.check("https://10.1.2.3/", "x").is_ok());
        assert!(private.check("http://10.1.2.3/", "x").is_err());
        assert!(private.check("https://127.0.0.1/", "x").is_err());
        let err = public
            .check("http://169.254.169.254/latest", "resource_metadata URL")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("resource_metadata URL"), "{err}");
    }

    #[test]
    fn a_host_is_judged_by_its_least_trusted_address_and_a_failed_lookup_is_refused() {
        use NetworkClass::*;
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        let public = UrlPolicy::new(Public);
        let loopback = UrlPolicy::new(Loopback);
        let mixed = || {
            Ok(vec![
                (ip("93.184.215.14"), Public),
                (ip("127.0.0.1"), Loopback),
            ])
        };
        // Public + loopback: refused from a public server, naming the loopback address.
        let refused = public.judge("mixed.example", mixed()).err();
        assert!(
            matches!(
                refused,
                Some(Refused::Address {
                    class: Loopback,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(loopback.judge("mixed.example", mixed()).is_ok());
        // Public + private, public + link-local.
        for other in [("10.0.0.5", Private), ("169.254.169.254", Forbidden)] {
            let addrs = vec![(ip("93.184.215.14"), Public), (ip(other.0), other.1)];
            assert!(public.judge("x.example", Ok(addrs)).is_err(), "{other:?}");
        }
        // Link-local stays refused under the loosest policy.
        assert!(
            loopback
                .judge("x.example", Ok(vec![(ip("169.254.169.254"), Forbidden)]))
                .is_err()
        );
        // A failed or empty lookup is refused, not waved through.
        let failed = std::io::Error::new(std::io::ErrorKind::NotFound, "no such host");
        assert_eq!(
            public.judge("gone.example", Err(failed)).err(),
            Some(Refused::Lookup {
                name: "gone.example".to_owned()
            })
        );
        assert!(public.judge("empty.example", Ok(Vec::new())).is_err());
        // Fixed names are judged without a lookup.
        assert!(matches!(
            public.judge("localhost", mixed()),
            Err(Refused::Name { .. })
        ));
        assert!(
            public
                .judge("pub.example", Ok(vec![(ip("8.8.8.8"), Public)]))
                .is_ok()
        );
        let text = public
            .judge("mixed.example", mixed())
            .err()
            .map(|refused| refused_error(&refused, "token_endpoint").to_string())
            .unwrap_or_default();
        assert!(
            text.contains("127.0.0.1") && text.contains("token_endpoint"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_starting_url_gets_the_trust_of_its_least_trusted_address() {
        use NetworkClass::*;
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let pubip = IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14));
        register_test_host("mixed-start.test", &[(pubip, Public), (lo, Loopback)]).ok();
        register_test_host("loop-start.test", &[(lo, Loopback)]).ok();
        register_test_host("gone-start.test", &[]).ok();
        let class = |u: &str| {
            let url = Url::parse(u).ok();
            async move {
                match url {
                    Some(url) => Some(class_of_url(&url).await),
                    None => None,
                }
            }
        };
        assert_eq!(class("https://mixed-start.test/mcp").await, Some(Public));
        assert_eq!(class("https://loop-start.test/mcp").await, Some(Loopback));
        assert_eq!(class("https://gone-start.test/mcp").await, Some(Public));
        assert_eq!(class("http://127.0.0.1:9/mcp").await, Some(Loopback));
        assert_eq!(class("https://10.1.2.3/mcp").await, Some(Private));
        assert!(register_test_host("real.example", &[(lo, Public)]).is_err());
    }

    #[test]
    fn ip_classes() {
        use NetworkClass::*;
        let c = |s: &str| s.parse::<IpAddr>().map(classify_ip).ok();
        assert_eq!(c("8.8.8.8"), Some(Public));
        assert_eq!(c("127.0.0.2"), Some(Loopback));
        assert_eq!(c("::1"), Some(Loopback));
        assert_eq!(c("169.254.1.1"), Some(Forbidden));
        assert_eq!(c("::ffff:10.0.0.1"), Some(Private));
        assert_eq!(c("64:ff9b::a9fe:a9fe"), Some(Forbidden));
        assert_eq!(c("fc00::1"), Some(Private));
        assert_eq!(c("2001:db8::1"), Some(Public));
        assert_eq!(c("224.0.0.1"), Some(Forbidden));
        assert_eq!(c("255.255.255.255"), Some(Forbidden));
    }

    #[test]
    fn metadata_deserializes_with_only_issuer_and_gates_pkce() {
        let m: AuthorizationServerMetadata =
            serde_json::from_str(r#"{"issuer":"https://as.ex.com","unknown":1}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(!m.supports_s256());
        let err = m
            .require_s256()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("https://as.ex.com") && err.contains("S256"),
            "{err}"
        );
        assert!(serde_json::from_str::<AuthorizationServerMetadata>("{}").is_err());
        let m: AuthorizationServerMetadata = serde_json::from_str(
            r#"{"issuer":"https://as.ex.com","code_challenge_methods_supported":["plain","S256"],
                "scopes_supported":["offline_access"],"authorization_response_iss_parameter_supported":true}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(m.supports_s256() && m.offers_offline_access());
    }

    #[test]
    fn scope_selection() {
        let metadata: AuthorizationServerMetadata = serde_json::from_str(
            r#"{"issuer":"https://as","scopes_supported":["openid","offline_access"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut info = McpServerInfo {
            server_url: "https://ex.com/mcp".into(),
            resource: "https://ex.com/mcp".into(),
            resource_metadata_url: String::new(),
            resource_metadata: ProtectedResourceMetadata {
                scopes_supported: Some(vec!["mcp:tools".into()]),
                ..Default::default()
            },
            challenge_scope: Some("read write".into()),
            authorization_server: metadata,
            policy: UrlPolicy::new(NetworkClass::Public),
        };
        assert_eq!(info.default_scopes(), ["read", "write", "offline_access"]);
        info.challenge_scope = None;
        assert_eq!(info.default_scopes(), ["mcp:tools", "offline_access"]);
        info.resource_metadata.scopes_supported = None;
        info.authorization_server.scopes_supported = None;
        assert!(info.default_scopes().is_empty());
    }
}
