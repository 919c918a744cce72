//! Validated provider names.

use std::fmt;

use sha2::{Digest, Sha256};

use context_harness_protocol::ServerUrl;

use crate::error::{Error, Result};

/// The longest accepted provider name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;

/// Hex digits of SHA-256 appended to URL-derived names that are not in the plain readable form
/// (64 bits: a hostile URL cannot be searched for that collides with another server's name).
const HASH_HEX_LEN: usize = 16;

/// The first character of every server's storage name ([`ProviderName::for_server`]), and of no
/// configured provider's.
pub const SERVER_NAME_PREFIX: &str = "_";

/// A provider name that is safe to use as a file name and as a keyring user name.
///
/// Only lowercase ASCII letters, digits, `-`, `_` and `.`; no leading dot (so `.`/`..` and hidden or
/// temporary files are impossible); 1 to [`MAX_NAME_LEN`] bytes. Every path and keyring entry in this
/// crate is built from a `ProviderName`, so a name like `../../etc/passwd` is refused before it gets
/// near the file system.
///
/// The storage key of an account other than the default one is a `ProviderName` too, made only by
/// [`with_account`](Self::with_account): the provider name, `@`, and a validated
/// [`AccountName`](crate::AccountName) (so at most `2 * 64 + 1` bytes of `a-z 0-9 - _ . @ +`).
/// [`new`](Self::new) never accepts `@`, so no provider name is ever an account's key.
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
    /// The URL is first brought to its canonical form by [`canonical_url`] (which refuses
    /// backslashes, whitespace, control characters, user info and fragments), and the name is derived
    /// from that form only, so two texts that reach different servers never share a name.
    ///
    /// A plain `https` URL with a dotted host, no port or query, and lowercase path segments made of
    /// `a-z`, `0-9`, `_` becomes `host-seg1-seg2`, e.g. `https://mcp.example.com/mcp` →
    /// `mcp.example.com-mcp`. Distinct plain URLs always give distinct names. Any other URL (another
    /// scheme or port, uppercase or punctuation in the path, a query, a name that would be too long)
    /// becomes a readable prefix, `--`, and 16 hex digits of the SHA-256 of the canonical URL, e.g.
    /// `http://localhost:8080/mcp` → `localhost-8080-mcp--<hash>`. Plain names never contain `--`
    /// after the host, so the two forms cannot collide.
    ///
    /// ```
    /// use context_harness_storage::ProviderName;
    ///
    /// let name = ProviderName::from_url("https://MCP.example.com:443/mcp/")?;
    /// assert_eq!(name.as_str(), "mcp.example.com-mcp");
    /// // `\` is a path separator to URL parsers: refused rather than guessed at.
    /// assert!(ProviderName::from_url("https://evil.example\\@good.example/mcp").is_err());
    /// # Ok::<(), context_harness_storage::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when [`canonical_url`] refuses the text.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(&derive_name(url, MAX_NAME_LEN)?)
    }

    /// The storage name of an MCP server (or any server addressed by URL): [`SERVER_NAME_PREFIX`]
    /// followed by the [`from_url`](Self::from_url) derivation, kept within [`MAX_NAME_LEN`].
    ///
    /// Server names live in a namespace of their own: no configured provider may have a name that
    /// starts with [`SERVER_NAME_PREFIX`] (the provider registry's naming rule refuses it), so the
    /// tokens of a server and the tokens of a provider can never share a token file or a keyring
    /// entry, whatever a `providers.toml` says.
    ///
    /// ```
    /// use context_harness_storage::ProviderName;
    ///
    /// let name = ProviderName::for_server("https://MCP.example.com/mcp/")?;
    /// assert_eq!(name.as_str(), "_mcp.example.com-mcp");
    /// assert!(name.is_server_name());
    /// assert!(!ProviderName::new("github")?.is_server_name());
    /// # Ok::<(), context_harness_storage::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when [`canonical_url`] refuses the text.
    pub fn for_server(url: &str) -> Result<Self> {
        let derived = derive_name(url, MAX_NAME_LEN - SERVER_NAME_PREFIX.len())?;
        Self::new(&format!("{SERVER_NAME_PREFIX}{derived}"))
    }

    /// Whether this name is in the servers' namespace (it starts with [`SERVER_NAME_PREFIX`]; see
    /// [`for_server`](Self::for_server)).
    pub fn is_server_name(&self) -> bool {
        self.0.starts_with(SERVER_NAME_PREFIX)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name made by this crate from validated parts (a storage key with an account,
    /// [`with_account`](Self::with_account)), taken as it is.
    pub(crate) fn from_checked(name: String) -> Self {
        Self(name)
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

/// The name [`ProviderName::from_url`] derives from `url`, at most `max_len` bytes long (a plain
/// name that would be longer takes the hashed form).
fn derive_name(url: &str, max_len: usize) -> Result<String> {
    let parsed = parse_url(url)?;
    if let Some(plain) = parsed.plain_name().filter(|p| p.len() <= max_len) {
        return Ok(plain);
    }
    let canonical = parsed.canonical();
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hash = String::with_capacity(HASH_HEX_LEN);
    for byte in digest.iter().take(HASH_HEX_LEN / 2) {
        hash.push(hex_digit(byte >> 4));
        hash.push(hex_digit(byte & 0x0f));
    }
    let mut prefix = sanitize(&parsed.readable_source());
    prefix.truncate(max_len.saturating_sub(2 + HASH_HEX_LEN));
    let prefix = prefix.trim_matches(|c| c == '-' || c == '.');
    let prefix = if prefix.is_empty() { "url" } else { prefix };
    Ok(format!("{prefix}--{hash}"))
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

/// The canonical form of a server URL (an MCP server, an issuer): the one text every name, record
/// and comparison in this workspace is derived from.
///
/// The text is parsed with the `url` crate, the WHATWG parser that HTTP requests use too, so the
/// canonical form names the server that a request would reach. Refused outright, because parsers
/// disagree on them or they carry nothing a server URL needs: a `\` anywhere (a path separator to
/// WHATWG parsers, part of the user info to others), whitespace or control characters anywhere, user
/// info (`user@`), a fragment (`#…`, even empty), a scheme other than `http`/`https`, no host.
///
/// The canonical form has a lowercase scheme and host (IDNA hosts in their ASCII form), no default
/// port, dot segments resolved, no trailing `/` (the root is written without a path), and the query
/// when it is not empty: `https://MCP.example.com:443/a/../mcp/` → `https://mcp.example.com/mcp`.
/// This is the "canonical server URI" of the MCP authorization specification and the RFC 8707
/// `resource` value.
///
/// ```
/// use context_harness_storage::canonical_url;
///
/// assert_eq!(canonical_url("HTTPS://MCP.example.com:443/mcp/")?, "https://mcp.example.com/mcp");
/// assert_eq!(canonical_url("http://127.0.0.1:8931")?, "http://127.0.0.1:8931");
/// assert!(canonical_url("https://a.example/mcp#x").is_err());
/// assert!(canonical_url("https://user@a.example/mcp").is_err());
/// # Ok::<(), context_harness_storage::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidName`] naming the reason, for any of the refusals above or a text that does not
/// parse as an absolute URL.
pub fn canonical_url(url: &str) -> Result<String> {
    Ok(parse_url(url)?.canonical())
}

/// A server URL parsed and checked by the workspace's one URL parser,
/// [`context_harness_protocol::ServerUrl`] (see [`canonical_url`]).
fn parse_url(text: &str) -> Result<ServerUrl> {
    ServerUrl::parse(text).map_err(|e| Error::invalid_name(text, e.reason()))
}

/// The parts of a provider name derived from a [`ServerUrl`].
trait NameParts {
    /// The readable name when the URL is in the plain (injective) form, else `None`.
    fn plain_name(&self) -> Option<String>;
    /// The text that the readable prefix of a hashed name is made from.
    fn readable_source(&self) -> String;
}

impl NameParts for ServerUrl {
    fn plain_name(&self) -> Option<String> {
        if self.scheme() != "https" || self.port().is_some() || self.query().is_some() {
            return None;
        }
        let host = self.host();
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
        if !self.path().is_empty() {
            for segment in self.path().trim_start_matches('/').split('/') {
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

    fn readable_source(&self) -> String {
        let mut out = self.host().to_owned();
        if let Some(port) = self.port() {
            out.push('-');
            out.push_str(&port.to_string());
        }
        out.push_str(self.path());
        if let Some(query) = self.query() {
            out.push('-');
            out.push_str(query);
        }
        out
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
            from_url("https://my-host.example.com/x"),
            "my-host.example.com-x"
        );
        // Dot segments are resolved as a request would resolve them.
        assert_eq!(
            from_url("https://mcp.example.com/a/../mcp"),
            "mcp.example.com-mcp"
        );
    }

    /// The token-theft class: texts that different parsers read as different hosts must never be
    /// named after the host a request would not reach. Each is refused outright.
    #[test]
    fn refuses_ambiguous_urls() {
        for url in [
            "https://evil.example\\@good.example/mcp",
            "https://evil.example\\good.example/mcp",
            "https://good.example\\mcp",
            "https://evil.example@good.example/mcp",
            "https://user:pw@good.example/mcp",
            "https://:pw@good.example/mcp",
            "https://good.example/mcp#frag",
            "https://good.example/mcp#",
            "https://good.example/ mcp",
            " https://good.example/mcp",
            "https://good.example/mcp\n",
            "https://good.example/mcp\t",
            "https://good.example\u{0}/mcp",
            "https://good.example/\u{85}mcp",
            "https://good.example/\u{a0}mcp",
            "ftp://good.example/mcp",
            "file:///etc/passwd",
            "javascript://good.example/%0aalert(1)",
        ] {
            let err = ProviderName::from_url(url).err();
            assert!(err.as_ref().is_some_and(Error::is_invalid_name), "{url:?}");
            assert!(canonical_url(url).is_err(), "{url:?}");
        }
    }

    #[test]
    fn canonical_form_is_what_a_request_reaches() {
        for (input, canonical) in [
            (
                "HTTPS://MCP.Example.COM:443/mcp/",
                "https://mcp.example.com/mcp",
            ),
            ("https://mcp.example.com", "https://mcp.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
            ("http://[::1]:3000/mcp", "http://[::1]:3000/mcp"),
            ("https://good%2eexample/mcp", "https://good.example/mcp"),
            ("https://a.example/x?", "https://a.example/x"),
            ("https://a.example/x?b=1", "https://a.example/x?b=1"),
            (
                "https://a.example/%7euser/./x/",
                "https://a.example/%7euser/x",
            ),
        ] {
            assert_eq!(
                canonical_url(input).ok().as_deref(),
                Some(canonical),
                "{input}"
            );
            // Idempotent.
            assert_eq!(canonical_url(canonical).ok().as_deref(), Some(canonical));
        }
        // The name of a URL is the name of its canonical form.
        assert_eq!(
            from_url("https://good%2eexample/mcp"),
            from_url("https://good.example/mcp")
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
            "http://",
            "https:/good.example/mcp",
            "https:good.example/mcp",
        ] {
            assert!(ProviderName::from_url(url).is_err(), "{url:?}");
        }
    }

    #[test]
    fn server_names_have_a_namespace_of_their_own() -> Result<()> {
        for url in [
            "https://mcp.example.com/mcp",
            "http://127.0.0.1:8080/mcp",
            "https://example.com",
            &format!("https://example.com/{}", "s".repeat(62)),
            &format!("https://{}.example.com/x", "h".repeat(50)),
            "http://[::1]:3000/mcp?x=1",
        ] {
            let server = ProviderName::for_server(url)?;
            assert!(server.is_server_name(), "{url}");
            assert!(server.as_str().len() <= MAX_NAME_LEN, "{url}");
            assert_ne!(server, ProviderName::from_url(url)?, "{url}");
            // Distinct URLs keep distinct names, as with `from_url`.
            assert_ne!(server, ProviderName::for_server(&format!("{url}/other"))?);
            assert!(!ProviderName::from_url(url)?.is_server_name(), "{url}");
        }
        assert_eq!(
            ProviderName::for_server("https://mcp.example.com/mcp")?.as_str(),
            "_mcp.example.com-mcp"
        );
        // A plain name that fits only without the prefix takes the hashed form.
        let long = format!("https://example.com/{}", "s".repeat(52));
        assert_eq!(ProviderName::from_url(&long)?.as_str().len(), 64);
        assert!(ProviderName::for_server(&long)?.as_str().contains("--"));
        Ok(())
    }
}
