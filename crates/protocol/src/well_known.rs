//! Well-known URL construction (RFC 9728 §3.1, RFC 8414 §3.1, OpenID Connect Discovery §4) and
//! the comparisons of server-supplied identifiers: the RFC 8707 `resource` (RFC 9728 §3.3) and the
//! issuer (RFC 8414 §3.3).

use url::Url;

use crate::error::{ErrorKind, ProtocolError, Result, printable};
use crate::server_url::ServerUrl;

/// The canonical form of an MCP server URI (RFC 8707 `resource`, MCP "Canonical Server URI"):
/// lowercase scheme and host, no default port, dot segments resolved, and no trailing `/` (the root
/// is written without a path). Texts that parsers read differently are refused: a backslash,
/// whitespace or control characters, user info, a fragment. This is the one URL parser of the
/// workspace ([`ServerUrl`]), so the name tokens are stored under and the server requests reach are
/// derived from the same form.
///
/// ```
/// use context_harness_protocol::canonical_resource_uri;
///
/// assert_eq!(canonical_resource_uri("https://MCP.example.com/mcp/")?, "https://mcp.example.com/mcp");
/// assert_eq!(canonical_resource_uri("https://example.com:443/")?, "https://example.com");
/// assert_eq!(canonical_resource_uri("http://127.0.0.1:8931/mcp")?, "http://127.0.0.1:8931/mcp");
/// assert!(canonical_resource_uri("https://evil.example\\@good.example/mcp").is_err());
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] when the text is not an absolute `http`/`https` URL with a host; its
/// source is the [`ServerUrlError`](crate::ServerUrlError) naming the reason.
pub fn canonical_resource_uri(url: &str) -> Result<String> {
    ServerUrl::parse(url)
        .map(|parsed| parsed.canonical())
        .map_err(|e| {
            ProtocolError::new(
                ErrorKind::InvalidUrl,
                format!("`{}` is not a usable server URL", printable(url)),
            )
            .with_source(e)
        })
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
        return Err(ProtocolError::new(
            ErrorKind::InvalidUrl,
            "credentials in the URL are not allowed",
        ));
    }
    Ok(out)
}

/// The RFC 9728 well-known URLs for a resource, in the order to try: the path-inserted one
/// (`/.well-known/oauth-protected-resource/<path>`) when the URL has a path, then the root.
///
/// ```
/// use context_harness_protocol::protected_resource_metadata_urls;
///
/// let urls = protected_resource_metadata_urls("https://ex.com/public/mcp")?;
/// assert_eq!(urls[0].as_str(), "https://ex.com/.well-known/oauth-protected-resource/public/mcp");
/// assert_eq!(urls[1].as_str(), "https://ex.com/.well-known/oauth-protected-resource");
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] for a URL that cannot be parsed.
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
/// use context_harness_protocol::authorization_server_metadata_urls;
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
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] for an issuer that cannot be parsed or has a query or fragment
/// (RFC 8414 §2 forbids both).
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<Url>> {
    let url = parse_config_url(issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ProtocolError::new(
            ErrorKind::InvalidUrl,
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

/// Parses a URL the caller gave (a configured server or issuer, surrounding whitespace ignored): an
/// absolute `http`/`https` URL with a host. Looser than [`ServerUrl`]: it only picks the well-known
/// URLs to try, while the canonical form names what is stored.
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] naming the text (made printable).
pub fn parse_config_url(value: &str) -> Result<Url> {
    let url = Url::parse(value.trim()).map_err(|e| {
        ProtocolError::new(
            ErrorKind::InvalidUrl,
            format!("`{}` is not a valid URL ({e})", printable(value)),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ProtocolError::new(
            ErrorKind::InvalidUrl,
            format!("`{}` is not an http(s) URL with a host", printable(value)),
        ));
    }
    Ok(url)
}

/// Whether a PRM `resource` is acceptable for the MCP server at `server_url`: identical to it, as
/// RFC 9728 §3.3 requires, once both are in canonical form ([`canonical_resource_uri`]: the case of
/// scheme and host, a default port and a trailing `/` do not count). A prefix is **not** enough
/// here: `https://host` published by the server at `https://host/a/mcp` would make its tokens fit
/// every tenant on the host. Only the document that speaks for the parent may name it
/// ([`accepted_resource`]).
///
/// ```
/// use context_harness_protocol::resource_matches;
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

/// The well-known path segment of RFC 9728 protected-resource metadata (§3).
const PRM_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The resource identifier a protected-resource metadata URL stands for (RFC 9728 §3.1, §3.3), in
/// canonical form ([`canonical_resource_uri`]), for the MCP endpoint `server_url`:
///
/// - the root well-known URL (`https://host/.well-known/oauth-protected-resource`) stands for the
///   origin `https://host`;
/// - a path-inserted one (`…/oauth-protected-resource/a/mcp`) for the URL it was built from,
///   `https://host/a/mcp`;
/// - any other URL (a `resource_metadata` of a `WWW-Authenticate` challenge naming its own
///   location, RFC 9728 §5) for the endpoint `server_url` the request went to.
///
/// `None` when a URL cannot be parsed. A well-known URL with a query stands for the endpoint too (RFC
/// 9728 builds none).
///
/// ```
/// use context_harness_protocol::metadata_url_resource;
///
/// let endpoint = "https://host.example/a/mcp";
/// let stands_for = |url| metadata_url_resource(url, endpoint);
/// assert_eq!(stands_for("https://host.example/.well-known/oauth-protected-resource").as_deref(), Some("https://host.example"));
/// assert_eq!(stands_for("https://host.example/.well-known/oauth-protected-resource/a/mcp").as_deref(), Some(endpoint));
/// assert_eq!(stands_for("https://host.example/custom/prm.json").as_deref(), Some(endpoint));
/// ```
pub fn metadata_url_resource(metadata_url: &str, server_url: &str) -> Option<String> {
    let endpoint = ServerUrl::parse(server_url).ok()?.canonical();
    let url = ServerUrl::parse(metadata_url).ok()?;
    if url.query().is_some() {
        return Some(endpoint);
    }
    let Some(rest) = url.path().strip_prefix(PRM_WELL_KNOWN) else {
        return Some(endpoint);
    };
    if !rest.is_empty() && !rest.starts_with('/') {
        // `/.well-known/oauth-protected-resourceX` is not a well-known URL.
        return Some(endpoint);
    }
    let origin = origin_of(&url);
    canonical_resource_uri(&format!("{origin}{rest}")).ok()
}

/// `scheme://host[:port]` of a parsed URL (canonical: no default port).
fn origin_of(url: &ServerUrl) -> String {
    match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host()),
        None => format!("{}://{}", url.scheme(), url.host()),
    }
}

/// Whether `resource` covers the MCP endpoint `server_url`: the same scheme, host and port, no
/// query, and a path that is a segment-wise prefix of the endpoint's (`https://host/a` covers
/// `https://host/a/mcp` but not `https://host/ab`; the origin covers every path). Both are compared
/// in canonical form ([`canonical_resource_uri`]). An identical resource covers its endpoint.
///
/// ```
/// use context_harness_protocol::resource_covers;
///
/// assert!(resource_covers("https://host.example", "https://host.example/a/mcp"));
/// assert!(resource_covers("https://HOST.example/a/", "https://host.example/a/mcp"));
/// assert!(!resource_covers("https://host.example/a", "https://host.example/ab/mcp"));
/// assert!(!resource_covers("https://host.example:8443", "https://host.example/mcp"));
/// assert!(!resource_covers("http://host.example", "https://host.example/mcp"));
/// ```
pub fn resource_covers(resource: &str, server_url: &str) -> bool {
    let (Ok(resource), Ok(endpoint)) = (ServerUrl::parse(resource), ServerUrl::parse(server_url))
    else {
        return false;
    };
    if resource.canonical() == endpoint.canonical() {
        return true;
    }
    let same_origin = resource.scheme() == endpoint.scheme()
        && resource.host() == endpoint.host()
        && resource.port() == endpoint.port();
    let prefix = resource.path();
    let path = endpoint.path();
    let segment_prefix = prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    same_origin && resource.query().is_none() && segment_prefix
}

/// The RFC 8707 `resource` (the audience) to use when the protected-resource metadata found at
/// `metadata_url` names `resource` for the MCP endpoint `server_url`, in canonical form; `None` when
/// the document must not be used (RFC 9728 §3.3).
///
/// Accepted when `resource` is identical to the endpoint (as before), or when it is identical to the
/// resource identifier its metadata URL stands for ([`metadata_url_resource`]) **and** covers the
/// endpoint ([`resource_covers`]). So the root well-known document of `https://host` may name
/// `https://host` for the endpoint `https://host/mcp` (the official SDKs accept it), while the
/// path-inserted document of `https://host/a/mcp`, or one a challenge points to, naming a parent
/// such as `https://host` is refused: the tokens of a parent fit every endpoint below it, and only
/// the document that speaks for the parent may say the endpoint is one of them.
///
/// Tokens for a parent resource are shared by every endpoint it covers, on purpose: the audience
/// is the parent, so any server under it can present a token issued for another.
///
/// ```
/// use context_harness_protocol::accepted_resource;
///
/// let (endpoint, root, inserted) = (
///     "https://host.example/mcp",
///     "https://host.example/.well-known/oauth-protected-resource",
///     "https://host.example/.well-known/oauth-protected-resource/mcp",
/// );
/// assert_eq!(accepted_resource("https://host.example", root, endpoint).as_deref(), Some("https://host.example"));
/// assert_eq!(accepted_resource("https://host.example/mcp/", inserted, endpoint).as_deref(), Some(endpoint));
/// assert_eq!(accepted_resource("https://host.example", inserted, endpoint), None);
/// assert_eq!(accepted_resource("https://other.example", "https://other.example/.well-known/oauth-protected-resource", endpoint), None);
/// ```
pub fn accepted_resource(resource: &str, metadata_url: &str, server_url: &str) -> Option<String> {
    let canonical = canonical_resource_uri(resource).ok()?;
    if resource_matches(&canonical, server_url) {
        return Some(canonical);
    }
    let stands_for = metadata_url_resource(metadata_url, server_url)?;
    (canonical == stands_for && resource_covers(&canonical, server_url)).then_some(canonical)
}

/// Whether two spellings name the same issuer: identical, or differing only in an empty path
/// written as `/` (`https://as.example` and `https://as.example/`, equivalent by RFC 3986
/// §6.2.3; large providers publish both forms). Nothing else is loosened: case, ports, other
/// paths and trailing slashes after a path still count.
///
/// ```
/// use context_harness_protocol::issuers_match;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    /// The issuer spellings servers publish: only an empty path written as `/` is the same issuer.
    #[test]
    fn issuer_spellings() {
        for (a, b, same) in [
            ("https://as.example", "https://as.example", true),
            ("https://as.example/", "https://as.example", true),
            ("https://as.example", "https://as.example/", true),
            ("https://as.example:8443/", "https://as.example:8443", true),
            // Microsoft's and Okta's tenant issuers: the path counts, a trailing `/` after it too.
            ("https://as.example/t/", "https://as.example/t", false),
            (
                "https://login.microsoftonline.com/tid/v2.0",
                "https://login.microsoftonline.com/tid/v2.0/",
                false,
            ),
            ("https://AS.example", "https://as.example", false),
            ("https://as.example:443", "https://as.example", false),
            ("http://as.example", "https://as.example", false),
            ("https://as.example//", "https://as.example", false),
            ("https:///", "https://", false),
            ("", "/", false),
        ] {
            assert_eq!(issuers_match(a, b), same, "{a:?} vs {b:?}");
            assert_eq!(issuers_match(b, a), same, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn config_urls() {
        assert!(parse_config_url(" https://ex.com/mcp ").is_ok());
        for bad in ["ftp://ex.com", "mailto:a@b", "not a url", "https://"] {
            let err = parse_config_url(bad).err();
            assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidUrl), "{bad}");
        }
        // Credentials are refused when the well-known URLs are built.
        assert!(protected_resource_metadata_urls("https://u:p@ex.com/mcp").is_err());
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
            assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::InvalidUrl), "{bad}");
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

    /// RFC 9728 §3.3 as MCP clients read it: (resource, where the document was found, endpoint,
    /// accepted audience).
    #[test]
    fn accepted_resources() {
        let root = "https://ex.com/.well-known/oauth-protected-resource";
        let inserted = "https://ex.com/.well-known/oauth-protected-resource/a/mcp";
        let endpoint = "https://ex.com/a/mcp";
        let custom = "https://ex.com/custom/prm.json";
        let table: &[(&str, &str, Option<&str>)] = &[
            // Identical to the endpoint: accepted wherever the document was found.
            ("https://ex.com/a/mcp", inserted, Some(endpoint)),
            ("https://EX.com:443/a/mcp/", root, Some(endpoint)),
            ("https://ex.com/a/mcp", custom, Some(endpoint)),
            // The root document speaks for the origin, which covers the endpoint.
            ("https://ex.com", root, Some("https://ex.com")),
            ("https://ex.com/", root, Some("https://ex.com")),
            (
                "https://ex.com/",
                "https://ex.com/.well-known/oauth-protected-resource/",
                Some("https://ex.com"),
            ),
            // The path-inserted document of a parent speaks for that parent.
            (
                "https://ex.com/a",
                "https://ex.com/.well-known/oauth-protected-resource/a",
                Some("https://ex.com/a"),
            ),
            // A parent named by the endpoint's own document or a custom location: refused.
            ("https://ex.com", inserted, None),
            ("https://ex.com/a", inserted, None),
            ("https://ex.com", custom, None),
            // The root document naming something else than the origin.
            ("https://ex.com/a", root, None),
            ("https://ex.com/a/mcp/x", root, None),
            // A document that speaks for a sibling, or for a longer path.
            (
                "https://ex.com/b",
                "https://ex.com/.well-known/oauth-protected-resource/b",
                None,
            ),
            (
                "https://ex.com/a/m",
                "https://ex.com/.well-known/oauth-protected-resource/a/m",
                None,
            ),
            // Another origin's root document: identical to what it stands for, covers nothing here.
            (
                "https://other.com",
                "https://other.com/.well-known/oauth-protected-resource",
                None,
            ),
            (
                "http://ex.com",
                "http://ex.com/.well-known/oauth-protected-resource",
                None,
            ),
            (
                "https://ex.com:8443",
                "https://ex.com:8443/.well-known/oauth-protected-resource",
                None,
            ),
            // Not a well-known URL, a query, garbage.
            (
                "https://ex.com",
                "https://ex.com/.well-known/oauth-protected-resourcex",
                None,
            ),
            (
                "https://ex.com",
                "https://ex.com/.well-known/oauth-protected-resource?x=1",
                None,
            ),
            (
                "https://ex.com?x=1",
                "https://ex.com/.well-known/oauth-protected-resource",
                None,
            ),
            ("https://ex.com#f", root, None),
            ("garbage", root, None),
            ("https://ex.com", "garbage", None),
        ];
        for (resource, found_at, want) in table {
            assert_eq!(
                accepted_resource(resource, found_at, endpoint).as_deref(),
                *want,
                "{resource} at {found_at}"
            );
        }
        // The origin as the endpoint: its root document names it.
        assert_eq!(
            accepted_resource("https://ex.com", root, "https://ex.com/").as_deref(),
            Some("https://ex.com")
        );
    }

    #[test]
    fn covering() {
        for (resource, endpoint, covers) in [
            ("https://ex.com", "https://ex.com/a/mcp", true),
            ("https://ex.com/a", "https://ex.com/a/mcp", true),
            ("https://ex.com/a/", "https://ex.com/a/mcp", true),
            ("https://ex.com/a/mcp", "https://ex.com/a/mcp", true),
            ("https://ex.com", "https://ex.com/mcp?tenant=1", true),
            ("https://ex.com/a", "https://ex.com/ab/mcp", false),
            ("https://ex.com/a/mcp/x", "https://ex.com/a/mcp", false),
            ("https://ex.com/A", "https://ex.com/a/mcp", false),
            ("https://ex.com?x=1", "https://ex.com/mcp", false),
            ("https://ex.com", "http://ex.com/mcp", false),
            ("https://ex.com:8443", "https://ex.com/mcp", false),
            ("https://sub.ex.com", "https://ex.com/mcp", false),
            ("https://ex.com", "https://sub.ex.com/mcp", false),
            ("garbage", "https://ex.com/mcp", false),
        ] {
            assert_eq!(
                resource_covers(resource, endpoint),
                covers,
                "{resource} / {endpoint}"
            );
        }
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
}
