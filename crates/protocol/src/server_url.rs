//! The canonical form of a server URL (an MCP server, an issuer): the one URL parser every stored
//! name, record, `resource` and comparison in the workspace is derived from.

use std::fmt;

/// Why a text is not a usable server URL (see [`ServerUrl::parse`]). Its text is a short
/// lowercase reason that never repeats the refused input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerUrlError(&'static str);

impl ServerUrlError {
    /// The reason, e.g. `"url contains a fragment (#…)"`.
    pub fn reason(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ServerUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ServerUrlError {}

/// A server URL parsed with the `url` crate (the WHATWG parser that HTTP requests use too, so the
/// canonical form names the server a request would reach) and checked.
///
/// Refused outright, because parsers disagree on them or they carry nothing a server URL needs: a
/// `\` anywhere (a path separator to WHATWG parsers, part of the user info to others), whitespace
/// or control characters anywhere, user info (`user@`), a fragment (`#…`, even empty), a scheme
/// other than `http`/`https`, no host.
///
/// The canonical form ([`canonical`](Self::canonical)) has a lowercase scheme and host (IDNA hosts
/// in their ASCII form), no default port, dot segments resolved, no trailing `/` (the root is
/// written without a path), and the query when it is not empty:
/// `https://MCP.example.com:443/a/../mcp/` → `https://mcp.example.com/mcp`. This is the "canonical
/// server URI" of the MCP authorization specification and the RFC 8707 `resource` value.
///
/// ```
/// use context_harness_protocol::ServerUrl;
///
/// let url = ServerUrl::parse("HTTPS://MCP.example.com:443/a/../mcp/")?;
/// assert_eq!(url.canonical(), "https://mcp.example.com/mcp");
/// assert_eq!((url.host(), url.port(), url.path()), ("mcp.example.com", None, "/mcp"));
/// assert!(ServerUrl::parse("https://a.example/mcp#x").is_err());
/// # Ok::<(), context_harness_protocol::ServerUrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    scheme: String,
    /// Lowercase; IPv6 literals in brackets.
    host: String,
    /// `None` for the scheme's default port.
    port: Option<u16>,
    /// Without a trailing `/` (`""` for the root).
    path: String,
    /// `None` when absent or empty.
    query: Option<String>,
}

impl ServerUrl {
    /// Parses and checks `text` (see the type's documentation).
    ///
    /// # Errors
    ///
    /// [`ServerUrlError`] naming the reason.
    pub fn parse(text: &str) -> Result<Self, ServerUrlError> {
        if text.contains('\\') {
            return Err(ServerUrlError("url contains a backslash"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ServerUrlError(
                "url contains whitespace or control characters",
            ));
        }
        // `scheme://` then the host: the parser would quietly repair `https:/x` and `https:///x`.
        let written_scheme = match text.split_once("://") {
            Some((scheme, rest)) if !rest.starts_with('/') => scheme,
            _ => return Err(ServerUrlError("not an absolute url (scheme://host)")),
        };
        let Ok(url) = url::Url::parse(text) else {
            return Err(ServerUrlError("not a valid url"));
        };
        if !written_scheme.eq_ignore_ascii_case(url.scheme()) {
            return Err(ServerUrlError("not a valid url"));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ServerUrlError("url scheme is not http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ServerUrlError("url contains user info (user@host)"));
        }
        if url.fragment().is_some() {
            return Err(ServerUrlError("url contains a fragment (#…)"));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_ascii_lowercase(),
            _ => return Err(ServerUrlError("url has no host")),
        };
        let path = url.path();
        let path = path.strip_suffix('/').unwrap_or(path).to_owned();
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
            path,
            query: url.query().filter(|q| !q.is_empty()).map(str::to_owned),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lowercase (IDNA hosts in their ASCII form, IPv6 literals in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, `None` for the scheme's default one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path without a trailing `/` (`""` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, `None` when absent or empty.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The canonical text: `scheme://host[:port][path][?query]`.
    pub fn canonical(&self) -> String {
        let mut out = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(&self.path);
        if let Some(query) = &self.query {
            out.push('?');
            out.push_str(query);
        }
        out
    }
}

/// The canonical form of a server URL: [`ServerUrl::parse`] then [`ServerUrl::canonical`].
///
/// ```
/// use context_harness_protocol::canonical_url;
///
/// assert_eq!(canonical_url("HTTPS://MCP.example.com:443/mcp/")?, "https://mcp.example.com/mcp");
/// assert_eq!(canonical_url("http://127.0.0.1:8931")?, "http://127.0.0.1:8931");
/// assert!(canonical_url("https://user@a.example/mcp").is_err());
/// # Ok::<(), context_harness_protocol::ServerUrlError>(())
/// ```
///
/// # Errors
///
/// [`ServerUrlError`] naming the reason.
pub fn canonical_url(url: &str) -> Result<String, ServerUrlError> {
    Ok(ServerUrl::parse(url)?.canonical())
}

/// `text` with the user info of a URL (`user:password@` before the host) replaced by `***@`, for
/// messages and logs: a password typed into a server URL never reaches a terminal, a log or an
/// error (server URLs with user info are refused, and the refusal must not repeat it). Text with
/// no `@` in what could be its authority is returned as it is.
///
/// Read the way the most lenient parser would: after an optional scheme (`https:`, `ftp:`, or
/// anything else before the first `:`) and any number of `/` or `\`, everything up to the last
/// `@` before the first `/`, `?` or `#` is user info. So `https:bob:pw@h`, `//bob:pw@h`,
/// `bob:pw@h` and `https://a@b@h` are all masked.
///
/// ```
/// use context_harness_protocol::without_user_info;
///
/// assert_eq!(without_user_info("https://u:s3cret@mcp.example/mcp"), "https://***@mcp.example/mcp");
/// assert_eq!(without_user_info("https://a@b@mcp.example"), "https://***@mcp.example");
/// assert_eq!(without_user_info("https:bob:s3cret@mcp.example"), "https:***@mcp.example");
/// assert_eq!(without_user_info("//bob:s3cret@mcp.example"), "//***@mcp.example");
/// assert_eq!(without_user_info("https://mcp.example/a@b"), "https://mcp.example/a@b");
/// assert_eq!(without_user_info("github"), "github");
/// ```
pub fn without_user_info(text: &str) -> std::borrow::Cow<'_, str> {
    // The scheme, when the text starts with one (letters, digits, `+`, `-`, `.` up to a `:`).
    let scheme_end = text
        .find(':')
        .filter(|&i| {
            text[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        })
        .map_or(0, |i| i + 1);
    let after_scheme = &text[scheme_end..];
    let start =
        scheme_end + (after_scheme.len() - after_scheme.trim_start_matches(['/', '\\']).len());
    let rest = &text[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &rest[at..]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            (
                "https://MCP.example.com/mcp/",
                "https://mcp.example.com/mcp",
            ),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            (
                "HTTPS://mcp.example.com:443/Mcp",
                "https://mcp.example.com/Mcp",
            ),
            ("https://ex.com:8443/a/../mcp", "https://ex.com:8443/mcp"),
            ("http://[::1]:9000/mcp", "http://[::1]:9000/mcp"),
            ("https://ex.com/a?x=1", "https://ex.com/a?x=1"),
            ("https://ex.com/a?", "https://ex.com/a"),
            ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ] {
            assert_eq!(canonical_url(input).as_deref(), Ok(want), "{input}");
            assert_eq!(canonical_url(want).as_deref(), Ok(want), "{want}");
        }
    }

    #[test]
    fn refusals_name_their_reason() {
        for (input, reason) in [
            ("https://evil.example\\@good.example/mcp", "backslash"),
            ("https://good.example/mcp ", "whitespace"),
            ("https://good.example/\u{7}", "control"),
            ("https:/good.example", "absolute"),
            ("https:///good.example", "absolute"),
            ("ftp://good.example/", "scheme"),
            ("https://u:p@ex.com/", "user info"),
            ("https://u@ex.com/", "user info"),
            ("https://ex.com/mcp#", "fragment"),
            ("https://ex.com/mcp#x", "fragment"),
            ("not a url", "whitespace"),
            ("https://[::1/", "not a valid url"),
        ] {
            let reason_given = canonical_url(input).err().map(ServerUrlError::reason);
            assert!(
                reason_given.is_some_and(|r| r.contains(reason)),
                "{input}: {reason_given:?}"
            );
        }
    }
}
