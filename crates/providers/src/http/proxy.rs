//! The proxy settings of an [`Environment`](crate::Environment) and the one decision of which
//! requests go through a proxy ([`ProxyEnv::proxy_for`]): `reqwest` asks it for every connection
//! (`reqwest_proxy` in the parent module, the one place that names the HTTP library), and the
//! policy clients ask it to choose between their direct and their proxied client, so the two can
//! never disagree.

use url::Url;

/// The destinations that never go through a proxy, in `NO_PROXY` syntax: `localhost` (which also
/// covers `*.localhost`, RFC 6761 §6.3), 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8.
pub(crate) const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1,::ffff:127.0.0.0/104";

/// The proxy settings of an [`Environment`](crate::Environment): the first set of `X_PROXY` /
/// `x_proxy` for `ALL`, `HTTP`, `HTTPS` and `NO`, as curl and `reqwest` read them. Under CGI
/// (`REQUEST_METHOD` set) `HTTP_PROXY` is ignored, since a request header can set it ("httpoxy").
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyEnv {
    all: Option<String>,
    http: Option<String>,
    https: Option<String>,
    no: Option<String>,
}

impl ProxyEnv {
    /// Reads the proxy variables from `env`.
    pub(crate) fn from_env(env: &crate::Environment) -> Self {
        let first = |names: [&str; 2]| names.iter().find_map(|n| env.get(n)).map(str::to_owned);
        let cgi = env.get("REQUEST_METHOD").is_some();
        Self {
            all: first(["ALL_PROXY", "all_proxy"]),
            http: first(["HTTP_PROXY", "http_proxy"]).filter(|_| !cgi),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            no: first(["NO_PROXY", "no_proxy"]),
        }
    }

    /// `NO_PROXY` with the loopback destinations added ([`LOOPBACK_NO_PROXY`]).
    pub(crate) fn no_proxy(&self) -> String {
        match self.no.as_deref().map(str::trim) {
            Some(no) if !no.is_empty() => format!("{no},{LOOPBACK_NO_PROXY}"),
            _ => LOOPBACK_NO_PROXY.to_owned(),
        }
    }

    /// The proxy (its value as configured) a request to `url` goes through, or `None` for a direct
    /// connection: `HTTP_PROXY` for `http` URLs, `HTTPS_PROXY` for `https` URLs, `ALL_PROXY` for
    /// either when the specific one is unset, unless [`no_proxy`](Self::no_proxy) names the host.
    /// The `NO_PROXY` matching and the proxy value's parsing are hyper-util's, the ones `reqwest`
    /// uses for its own environment proxies; a value they cannot parse means no proxy.
    pub(crate) fn proxy_for(&self, url: &Url) -> Option<&str> {
        let proxy = match url.scheme() {
            "http" => self.http.as_deref().or(self.all.as_deref()),
            "https" => self.https.as_deref().or(self.all.as_deref()),
            _ => None,
        }?;
        // Scheme, host and port only, as `reqwest` hands a destination to a proxy matcher.
        let host = url.host_str()?;
        let destination = match url.port() {
            Some(port) => format!("{}://{host}:{port}/", url.scheme()),
            None => format!("{}://{host}/", url.scheme()),
        };
        let destination: hyper::Uri = destination.parse().ok()?;
        hyper_util::client::proxy::matcher::Matcher::builder()
            .all(proxy.to_owned())
            .no(self.no_proxy())
            .build()
            .intercept(&destination)
            .map(|_| proxy)
    }

    /// The host names of the configured proxies, lower case and without a trailing dot (see
    /// [`same_host`]); resolved without judging by the proxied clients: the user chose them.
    pub(crate) fn hosts(&self) -> Vec<String> {
        [&self.all, &self.http, &self.https]
            .into_iter()
            .flatten()
            .filter_map(|value| {
                let value = value.trim();
                let url = if value.contains("://") {
                    Url::parse(value)
                } else {
                    Url::parse(&format!("http://{value}"))
                };
                url.ok()?.host_str().map(normal_host)
            })
            .collect()
    }
}

/// A host name as compared with the proxies' names: lower case, without a trailing dot.
fn normal_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` (as handed to a resolver) is the proxy host `proxy` (from [`ProxyEnv::hosts`]).
pub(crate) fn same_host(name: &str, proxy: &str) -> bool {
    normal_host(name) == proxy
}

impl std::fmt::Debug for ProxyEnv {
    // A proxy URL may carry a password: show only which variables are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("all", &self.all.is_some())
            .field("http", &self.http.is_some())
            .field("https", &self.https.is_some())
            .field("no", &self.no.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Environment;

    fn proxied(env: &ProxyEnv, url: &str) -> bool {
        env.proxy_for(&Url::parse(url).unwrap()).is_some()
    }

    #[test]
    fn loopback_bypasses_the_proxy_everything_else_keeps_it() {
        let env = ProxyEnv::from_env(&Environment::from_pairs([
            ("HTTP_PROXY", "http://proxy.corp:3128"),
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
        ]));
        for direct in [
            "http://127.0.0.1:8080/token",
            "http://127.9.8.7/token",
            "https://127.0.0.1/token",
            "http://[::1]:9000/token",
            "http://localhost:3000/token",
            "http://LOCALHOST/token",
            "https://auth.localhost/token",
            "http://[::ffff:127.0.0.1]/token",
        ] {
            assert!(!proxied(&env, direct), "{direct} must not be proxied");
        }
        for via_proxy in [
            "https://as.example.com/token",
            "http://10.0.0.5/token",
            "https://128.0.0.1/token",
            "https://localhost.example.com/token",
            "https://notlocalhost/token",
            // The proxy's own name is a destination like any other.
            "https://proxy.corp:8443/token",
        ] {
            assert!(proxied(&env, via_proxy), "{via_proxy} must be proxied");
        }
    }

    #[test]
    fn each_scheme_has_its_variable_and_no_proxy_names_direct_hosts() {
        let http_only = ProxyEnv::from_env(&Environment::from_pairs([(
            "http_proxy",
            "proxy.corp:3128",
        )]));
        assert_eq!(
            http_only.proxy_for(&Url::parse("http://as.example.com/").unwrap()),
            Some("proxy.corp:3128")
        );
        assert!(!proxied(&http_only, "https://as.example.com/token"));
        let https_no = ProxyEnv::from_env(&Environment::from_pairs([
            ("HTTPS_PROXY", "http://Proxy.Corp.:3128"),
            ("NO_PROXY", "proxy.corp"),
        ]));
        assert!(!proxied(&https_no, "https://proxy.corp:3128/x"));
        assert!(!proxied(&https_no, "https://a.proxy.corp/x"));
        assert!(!proxied(&https_no, "http://as.example.com/x"));
        assert!(proxied(&https_no, "https://as.example.com/x"));
        assert_eq!(https_no.hosts(), vec!["proxy.corp".to_owned()]);
        assert!(same_host("PROXY.corp.", "proxy.corp"));
        assert!(!same_host("proxy.corp.example", "proxy.corp"));
        let everything = ProxyEnv::from_env(&Environment::from_pairs([
            ("ALL_PROXY", "http://proxy.corp"),
            ("NO_PROXY", "*"),
        ]));
        assert!(!proxied(&everything, "https://as.example.com/x"));
        // A value no parser accepts means no proxy (`reqwest` skips it the same way).
        let broken = ProxyEnv::from_env(&Environment::from_pairs([("ALL_PROXY", "ftp://x y")]));
        assert!(!proxied(&broken, "https://as.example.com/x"));
    }

    #[test]
    fn no_proxy_all_proxy_lower_case_and_cgi_are_honoured() {
        let env = ProxyEnv::from_env(&Environment::from_pairs([
            ("all_proxy", "socks5h://proxy.corp:1080"),
            ("no_proxy", "corp.example, 10.0.0.0/8"),
        ]));
        assert!(proxied(&env, "https://as.example.com/token"));
        assert!(proxied(&env, "http://as.example.com/token"));
        assert!(!proxied(&env, "https://sso.corp.example/token"));
        assert!(!proxied(&env, "https://10.1.2.3/token"));
        assert!(!proxied(&env, "http://127.0.0.1/token"));
        assert_eq!(env.hosts(), vec!["proxy.corp".to_owned()]);

        // Nothing set: nothing proxied, whatever the process environment says.
        let none = ProxyEnv::from_env(&Environment::empty());
        assert!(!proxied(&none, "https://as.example.com/token"));

        // CGI: HTTP_PROXY may come from a request header ("httpoxy"), so it is ignored.
        let cgi = ProxyEnv::from_env(&Environment::from_pairs([
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://evil:8080"),
        ]));
        assert!(!proxied(&cgi, "http://as.example.com/token"));
        // The Debug form never shows a proxy URL (it may hold a password).
        let secret = ProxyEnv::from_env(&Environment::from_pairs([(
            "HTTPS_PROXY",
            "http://user:SECRET@proxy:1",
        )]));
        assert!(!format!("{secret:?}").contains("SECRET"));
    }
}
