//! `WWW-Authenticate` (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1): challenges, and the
//! `resource_metadata` / `scope` of a Bearer challenge.

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

    /// Whether the scheme is `DPoP` (case-insensitive; RFC 9449 §7.1).
    pub fn is_dpop(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("dpop")
    }

    /// Whether this is a challenge of an OAuth access-token scheme: `Bearer` (RFC 6750 §3) or
    /// `DPoP` (RFC 9449 §7.1), whose parameters (`error`, `scope`, `resource_metadata`) mean the
    /// same.
    pub fn is_oauth(&self) -> bool {
        self.is_bearer() || self.is_dpop()
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
/// use context_harness_protocol::parse_www_authenticate;
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

/// The `resource_metadata` URL and `scope` of the first `Bearer` (or `DPoP`, RFC 9449 §7.1)
/// challenge that has them.
pub fn bearer_resource_metadata(challenges: &[Challenge]) -> (Option<String>, Option<String>) {
    let bearer = challenges.iter().filter(|c| c.is_oauth());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
