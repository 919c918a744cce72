//! SSRF hygiene for URLs learnt from servers: the network class of an address, the [`UrlPolicy`]
//! set from the URL the user gave, and the resolver-side refusals ([`Refused`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

use context_harness_protocol::AuthorizationServerMetadata;

use crate::error::{Error, ErrorCode, Result};
use crate::terminal_text as printable;

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

/// The class of one IP address (IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4; the
/// local-use NAT64 prefix 64:ff9b:1::/48 of RFC 8215 is at best private).
pub(crate) fn classify_ip(ip: IpAddr) -> NetworkClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            let [a, b] = seg[6].to_be_bytes();
            let [c, d] = seg[7].to_be_bytes();
            let embedded = Ipv4Addr::new(a, b, c, d);
            if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
                return classify_v4(embedded);
            }
            if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
                // The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215; not globally reachable):
                // at best private, and judged by the IPv4 address a /96 translator would reach
                // (the usual layout), so 64:ff9b:1::a9fe:a9fe is the metadata address it is.
                return match classify_v4(embedded) {
                    NetworkClass::Public => NetworkClass::Private,
                    other => other,
                };
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
    start_class(url).await.unwrap_or(NetworkClass::Public)
}

/// [`class_of_url`] for a URL the user gave that is contacted right away (an MCP server URL, a
/// configured issuer, `--idp-issuer`): a host name that does not resolve is reported now, as the
/// user's host (`whom` names the server in the message), instead of failing later in a resolver
/// that cannot tell whose host it is.
///
/// # Errors
///
/// [`ErrorCode::NetworkError`] naming the host when its name does not resolve.
pub(crate) async fn class_of_user_url(url: &Url, whom: &str) -> Result<NetworkClass> {
    start_class(url)
        .await
        .map_err(|name| unresolved_error(&name, whom, HostOrigin::User))
}

/// The class of `url`'s host (see [`class_of_url`]), or the name that did not resolve.
async fn start_class(url: &Url) -> std::result::Result<NetworkClass, String> {
    let Some(host) = url.host() else {
        return Ok(NetworkClass::Public);
    };
    if let Some(class) = classify_host(&host) {
        return Ok(class);
    }
    let Some(name) = url.host_str() else {
        return Ok(NetworkClass::Public);
    };
    match resolve_classified(name).await {
        Ok(addrs) => Ok(addrs
            .into_iter()
            .map(|(_, class)| class)
            .filter(|c| *c != NetworkClass::Forbidden)
            .min()
            .unwrap_or(NetworkClass::Public)),
        Err(_) => Err(name.to_owned()),
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
    /// The lookup failed or gave no address (also raised by the resolver of the client for
    /// user-configured URLs, which judges nothing else).
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
            Self::Lookup { name } => write!(f, "{} does not resolve", printable(name)),
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
/// [`check_resolved`](Self::check_resolved) for an early, clear refusal at discovery time. A
/// request that goes through a configured proxy is judged the same way by its target's own host,
/// resolved just before it is handed to the proxy; only the connection to the proxy itself is
/// exempt (see the `http` module).
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
    /// [`ErrorCode::AuthFailed`] for a refused host; [`ErrorCode::NetworkError`] when the name
    /// does not resolve.
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

impl UrlPolicy {
    /// Checks every endpoint of `metadata` against this policy (they are attacker-controllable in
    /// MCP discovery). The authorization endpoint is opened in the browser: http(s) only.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] for the first refused endpoint.
    pub fn check_endpoints(self, metadata: &AuthorizationServerMetadata) -> Result<()> {
        for (what, value) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            ("registration_endpoint", &metadata.registration_endpoint),
            ("revocation_endpoint", &metadata.revocation_endpoint),
            (
                "device_authorization_endpoint",
                &metadata.device_authorization_endpoint,
            ),
        ] {
            if let Some(value) = value {
                self.check(value, what)?;
            }
        }
        Ok(())
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

/// The error for a host refused at resolution time (`what` names the endpoint), learnt from a
/// server: a name that does not resolve is [`unresolved_error`] (exit 11 like any unreachable
/// host), an address outside the policy is [`ErrorCode::AuthFailed`].
pub(crate) fn refused_error(refused: &Refused, what: &str) -> Error {
    match refused {
        Refused::Lookup { name } => unresolved_error(name, what, HostOrigin::Server),
        Refused::Name { trust, .. } | Refused::Address { trust, .. } => {
            Error::new(ErrorCode::AuthFailed, format!("refusing {what}: {refused}"))
                .with_hint(ssrf_hint(UrlPolicy::new(*trust)))
        }
    }
}

/// Who chose a host, which decides the advice when its name does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostOrigin {
    /// The user: a server URL on the command line, a `providers.toml` endpoint or issuer, a
    /// built-in provider's endpoint, a configured proxy.
    User,
    /// A server: metadata endpoints, a registration answer's `registration_client_uri`, the
    /// endpoints of a stored MCP server record (learnt by discovery).
    Server,
}

/// The error for a host name `name` that does not resolve, on the way to `whom` (e.g. "the MCP
/// server at mcp.example.com"): [`ErrorCode::NetworkError`] (exit 11: the server cannot be reached,
/// whoever named it), with advice that fits `origin`. The name goes through the terminal sanitiser.
pub(crate) fn unresolved_error(name: &str, whom: &str, origin: HostOrigin) -> Error {
    let hint = match origin {
        HostOrigin::User => {
            "check the spelling of the host name, your network connection and DNS (or VPN), then retry"
        }
        HostOrigin::Server => {
            "check your network connection and DNS (or VPN), then retry; the server's metadata \
             named this host, so if it keeps failing the server may be misconfigured or gone"
        }
    };
    Error::new(
        ErrorCode::NetworkError,
        format!(
            "cannot reach {whom}: the host name {} does not resolve",
            printable(name)
        ),
    )
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A URL the user gave whose name does not resolve: reported as theirs (exit 11), naming it.
        let gone = Url::parse("https://gone-start.test/mcp").ok();
        let err = match gone {
            Some(url) => class_of_user_url(&url, "the MCP server at gone-start.test").await,
            None => Ok(Public),
        };
        let err = err.err();
        assert_eq!(err.as_ref().map(Error::code), Some(ErrorCode::NetworkError));
        let text = err.as_ref().map(Error::to_string).unwrap_or_default();
        assert!(
            text.contains("the MCP server at gone-start.test")
                && text.contains("gone-start.test does not resolve"),
            "{text}"
        );
        let hint = err.as_ref().and_then(Error::hint).unwrap_or_default();
        assert!(hint.contains("spelling"), "{hint}");
        let loopback = Url::parse("https://loop-start.test/mcp").ok();
        if let Some(url) = loopback {
            assert_eq!(class_of_user_url(&url, "x").await.ok(), Some(Loopback));
        }
    }

    /// A server-supplied name that does not resolve is an unreachable host (exit 11) like the
    /// user's, with advice naming the server's metadata; the name goes through the terminal
    /// sanitiser. An address outside the policy stays a refusal (`AuthFailed`).
    #[test]
    fn a_name_that_does_not_resolve_is_unreachable_whoever_named_it() {
        let refused = Refused::Lookup {
            name: "as\u{1b}]0;x\u{7}.example".to_owned(),
        };
        let err = refused_error(&refused, "token_endpoint at as.example");
        assert_eq!(err.code(), ErrorCode::NetworkError);
        let text = err.to_string();
        assert!(
            text.contains("does not resolve") && !text.contains('\u{1b}'),
            "{text}"
        );
        assert!(!text.contains("server-supplied host must"), "{text}");
        assert!(
            err.hint().unwrap_or_default().contains("metadata"),
            "{err:?}"
        );
        let user = unresolved_error("as.example", "the token endpoint", HostOrigin::User);
        assert_eq!(user.code(), ErrorCode::NetworkError);
        assert!(user.hint().unwrap_or_default().contains("spelling"));
        let address = Refused::Address {
            name: "in.example".to_owned(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            class: NetworkClass::Loopback,
            trust: NetworkClass::Public,
        };
        assert_eq!(refused_error(&address, "x").code(), ErrorCode::AuthFailed);
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
        assert_eq!(c("64:ff9b::808:808"), Some(Public));
        // Local-use NAT64 (RFC 8215): never public; the /96 layout's IPv4 judged.
        assert_eq!(c("64:ff9b:1::808:808"), Some(Private));
        assert_eq!(c("64:ff9b:1::a9fe:a9fe"), Some(Forbidden));
        assert_eq!(c("64:ff9b:1::7f00:1"), Some(Loopback));
        assert_eq!(c("64:ff9b:1:ab::808:808"), Some(Private));
        assert_eq!(c("fc00::1"), Some(Private));
        assert_eq!(c("2001:db8::1"), Some(Public));
        assert_eq!(c("224.0.0.1"), Some(Forbidden));
        assert_eq!(c("255.255.255.255"), Some(Forbidden));
    }
}
