//! Validated provider names.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest accepted provider name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;

/// Hex digits of SHA-256 appended to URL-derived names that are not in the plain readable form
/// (64 bits: a hostile URL cannot be searched for that collides with another server's name).
const HASH_HEX_LEN: usize = 16;

/// A provider name that is safe to use as a file name and as a keyring user name.
///
/// Only lowercase ASCII letters, digits, `-`, `_` and `.`; no leading dot (so `.`/`..` and hidden or
/// temporary files are impossible); 1 to [`MAX_NAME_LEN`] bytes. Every path and keyring entry in this
/// crate is built from a `ProviderName`, so a name like `../../etc/passwd` is refused before it gets
/// near the file system.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderName(String);

impl ProviderName {
    /// Validates `name` (exactly as given: no case folding, no trimming).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when the name is empty, longer than [`MAX_NAME_LEN`], starts with a dot,
    /// or contains anything but `a-z`, `0-9`, `-`, `_`, `.`.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid_name(name, "name is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::invalid_name(
                name,
                "name is longer than 64 characters",
            ));
        }
        if name.starts_with('.') {
            return Err(Error::invalid_name(name, "name starts with a dot"));
        }
        if !name.bytes().all(is_name_byte) {
            return Err(Error::invalid_name(
                name,
                "only lowercase letters, digits, '-', '_' and '.' are allowed",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Maps a server URL (e.g. an MCP server's) to a deterministic, readable, safe provider name.
    ///
    /// A plain `https` URL with a dotted host, no port, user info or query, and lowercase path segments
    /// made of `a-z`, `0-9`, `_` becomes `host-seg1-seg2`, e.g. `https://mcp.example.com/mcp` →
    /// `mcp.example.com-mcp`. Distinct plain URLs always give distinct names. Any other URL (another
    /// scheme or port, uppercase or punctuation in the path, a query, a name that would be too long)
    /// becomes a readable prefix, `--`, and 16 hex digits of the SHA-256 of the normalised URL, e.g.
    /// `http://localhost:8080/mcp` → `localhost-8080-mcp--<hash>`. Plain names never contain `--`
    /// after the host, so the two forms cannot collide. Normalisation lowercases the scheme and host,
    /// drops user info, the fragment, a default port and a trailing `/`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when the text is not an absolute `scheme://host...` URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = ParsedUrl::parse(url.trim())?;
        if let Some(plain) = parsed.plain_name() {
            return Self::new(&plain);
        }
        let canonical = parsed.canonical();
        let digest = Sha256::digest(canonical.as_bytes());
        let mut hash = String::with_capacity(HASH_HEX_LEN);
        for byte in digest.iter().take(HASH_HEX_LEN / 2) {
            hash.push(hex_digit(byte >> 4));
            hash.push(hex_digit(byte & 0x0f));
        }
        let mut prefix = sanitize(&parsed.readable_source());
        prefix.truncate(MAX_NAME_LEN - 2 - HASH_HEX_LEN);
        let prefix = prefix.trim_matches(|c| c == '-' || c == '.');
        let prefix = if prefix.is_empty() { "url" } else { prefix };
        Self::new(&format!("{prefix}--{hash}"))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for ProviderName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ProviderName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for ProviderName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

/// Lowercases, maps every byte outside the name alphabet to `-`, collapses runs of `-`.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let mapped = if c.is_ascii() && is_name_byte(c as u8) {
            c
        } else {
            '-'
        };
        if mapped == '-' && out.ends_with('-') {
            continue;
        }
        out.push(mapped);
    }
    out
}

/// Just enough URL parsing for naming (no dependency on a URL crate).
struct ParsedUrl<'a> {
    scheme: String,
    host: String,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> ParsedUrl<'a> {
    fn parse(url: &'a str) -> Result<Self> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::invalid_name(
                url,
                "not an absolute url (scheme://host)",
            ));
        };
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(Error::invalid_name(url, "url has an invalid scheme"));
        }
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (rest, query) = match rest.split_once('?') {
            Some((before, q)) => (before, Some(q).filter(|q| !q.is_empty())),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = split_host_port(authority);
        if host.is_empty() {
            return Err(Error::invalid_name(url, "url has no host"));
        }
        let default_port = match scheme.as_str() {
            "https" => Some("443"),
            "http" => Some("80"),
            _ => None,
        };
        let port = port.filter(|p| !p.is_empty() && Some(*p) != default_port);
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: path.trim_end_matches('/'),
            query,
        })
    }

    /// The readable name when the URL is in the plain (injective) form, else `None`.
    fn plain_name(&self) -> Option<String> {
        if self.scheme != "https" || self.port.is_some() || self.query.is_some() {
            return None;
        }
        let host = self.host.as_str();
        let host_ok = host.contains('.')
            && !host.contains("--")
            && !host.starts_with(['.', '-'])
            && !host.ends_with(['.', '-'])
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            // The last label has no '-', so the host ends at the first '-' after the last '.'.
            && host.rsplit('.').next().is_some_and(|tld| !tld.contains('-'));
        if !host_ok {
            return None;
        }
        let mut name = host.to_owned();
        if !self.path.is_empty() {
            for segment in self.path.trim_start_matches('/').split('/') {
                // Segments hold no '-' or '.', so splitting the name back is unambiguous.
                if segment.is_empty()
                    || !segment
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return None;
                }
                name.push('-');
                name.push_str(segment);
            }
        }
        (name.len() <= MAX_NAME_LEN).then_some(name)
    }

    /// The normalised URL that the hash suffix is computed from.
    fn canonical(&self) -> String {
        let mut out = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(port);
        }
        out.push_str(self.path);
        if let Some(query) = self.query {
            out.push('?');
            out.push_str(query);
        }
        out
    }

    /// The text that the readable prefix of a hashed name is made from.
    fn readable_source(&self) -> String {
        let mut out = self.host.clone();
        if let Some(port) = self.port {
            out.push('-');
            out.push_str(port);
        }
        out.push_str(self.path);
        if let Some(query) = self.query {
            out.push('-');
            out.push_str(query);
        }
        out
    }
}

fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in [
            "github",
            "google",
            "a",
            "mcp.example.com-mcp",
            "x_y-z.1",
            &"a".repeat(64),
        ] {
            assert_eq!(
                ProviderName::new(name).map(|n| n.0).ok().as_deref(),
                Some(name)
            );
        }
    }

    #[test]
    fn refuses_traversal_and_junk() {
        for name in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "..\\x",
            "/etc/passwd",
            "a/b",
            ".hidden",
            "GitHub",
            "a b",
            "a\0b",
            "é",
            &"a".repeat(65),
        ] {
            let err = ProviderName::new(name).err();
            assert!(err.as_ref().is_some_and(Error::is_invalid_name), "{name:?}");
        }
    }

    #[test]
    fn invalid_name_message_is_lowercase_and_escaped() {
        let Err(err) = ProviderName::new("a\nb") else {
            panic!("accepted a newline");
        };
        let msg = err.to_string();
        assert!(msg.starts_with("invalid provider name"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    fn from_url(url: &str) -> String {
        match ProviderName::from_url(url) {
            Ok(name) => name.0,
            Err(err) => panic!("{url}: {err}"),
        }
    }

    #[test]
    fn plain_urls_map_to_readable_names() {
        assert_eq!(
            from_url("https://mcp.example.com/mcp"),
            "mcp.example.com-mcp"
        );
        assert_eq!(
            from_url("https://mcp.example.com/mcp/"),
            "mcp.example.com-mcp"
        );
        assert_eq!(from_url("HTTPS://MCP.Example.com"), "mcp.example.com");
        assert_eq!(
            from_url("https://api.example.com:443/v1/sse"),
            "api.example.com-v1-sse"
        );
        assert_eq!(
            from_url("https://user:pw@my-host.example.com/x#frag"),
            "my-host.example.com-x"
        );
    }

    #[test]
    fn other_urls_get_a_hash_suffix() {
        let local = from_url("http://localhost:8080/mcp");
        assert!(local.starts_with("localhost-8080-mcp--"), "{local}");
        assert_eq!(local.len(), "localhost-8080-mcp--".len() + HASH_HEX_LEN);
        // Deterministic.
        assert_eq!(local, from_url("http://localhost:8080/mcp"));
        // Lossy mappings stay distinct.
        let a = from_url("https://example.com/a-b");
        let b = from_url("https://example.com/a/b");
        let c = from_url("https://example.com/A/b");
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(
            from_url("http://example.com"),
            from_url("https://example.com")
        );
        assert_ne!(
            from_url("https://example.com/x?q=1"),
            from_url("https://example.com/x")
        );
        // Too long for the plain form.
        let long = from_url(&format!("https://example.com/{}", "s".repeat(80)));
        assert!(long.len() <= MAX_NAME_LEN && long.contains("--"), "{long}");
        // IPv6 and odd characters stay in the alphabet.
        let v6 = from_url("http://[::1]:3000/callback");
        assert!(ProviderName::new(&v6).is_ok(), "{v6}");
        let traversal = from_url("https://evil.example.com/../../etc/passwd");
        assert!(
            !traversal.contains('/') && !traversal.starts_with('.'),
            "{traversal}"
        );
    }

    #[test]
    fn plain_names_never_collide_with_each_other() {
        // A dashed host vs a host plus path: the last host label has no '-', segments have no '.'.
        let a = from_url("https://a-b.example.com/c");
        let b = from_url("https://a.example.com-b/c");
        assert_ne!(a, b);
        assert_ne!(
            from_url("https://a.com/b.com/c"),
            from_url("https://a.com-b.com/c")
        );
    }

    #[test]
    fn refuses_non_urls() {
        for url in [
            "",
            "example.com",
            "://x",
            "https://",
            "1http://x",
            "https:///path",
        ] {
            assert!(ProviderName::from_url(url).is_err(), "{url:?}");
        }
    }
}
