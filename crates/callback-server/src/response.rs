//! The authorization response: its types and the one set of rules that validates it, shared by
//! the listener and by [`parse_redirect_url`].

use std::fmt;

use context_harness_pkce::State;
use context_harness_tokens::REDACTED;

use crate::error::{Error, Result};

/// An authorization code (RFC 6749 §4.1.2): a short-lived secret.
///
/// `Debug` is redacted and there is no `Display`, so the code cannot reach a log or an error by
/// accident; read it with [`secret`](Self::secret) where it is sent to the token endpoint.
/// Deliberately not `Clone`: the code is single-use, so one copy is all a flow needs.
#[derive(PartialEq, Eq)]
pub struct AuthorizationCode(String);

impl AuthorizationCode {
    /// Wraps a code.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The code itself, for the token request. Do not log it.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Unwraps the code.
    pub fn into_secret(self) -> String {
        self.0
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorizationCode({REDACTED})")
    }
}

/// A successful authorization response whose `state` matched the expected one.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackResponse {
    /// The authorization code, to exchange at the token endpoint together with the PKCE
    /// verifier.
    pub code: AuthorizationCode,
    /// The `state` as received (it equals the expected state). Redacted in `Debug`.
    pub state: String,
    /// The `iss` parameter (RFC 9207), if the server sent one. This crate does not know the
    /// expected issuer: the caller compares it by simple string equality before using `code`.
    pub iss: Option<String>,
}

impl CallbackResponse {
    /// Builds a response (useful for tests of code that consumes one).
    pub fn new(code: AuthorizationCode, state: impl Into<String>, iss: Option<String>) -> Self {
        Self {
            code,
            state: state.into(),
            iss,
        }
    }
}

impl fmt::Debug for CallbackResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackResponse")
            .field("code", &self.code)
            .field("state", &format_args!("{REDACTED}"))
            .field("iss", &self.iss)
            .finish()
    }
}

/// Why a request to the redirect path was rejected while the listener keeps waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// `state` missing or different from the expected one.
    StateMismatch,
    /// The query cannot be read: a fixed phrase saying why.
    Malformed(&'static str),
}

/// What one authorization response means for the flow.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The flow is over: a code, or a definitive error from the authorization server.
    Complete(Result<CallbackResponse>),
    /// Not for this flow, or unreadable: answer 400 and keep waiting.
    Reject(Rejection),
}

/// The parameters this crate reads; all others are ignored.
#[derive(Default)]
struct Params {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
}

/// Applies the callback rules to a raw (still percent-encoded) query string.
///
/// Order matters: the query must be readable (strict percent-decoding, UTF-8, no control
/// characters, no repeated parameter) before `state` is looked at, and `state` must match
/// before anything else in the response (including `error`) is believed.
pub(crate) fn evaluate(query: Option<&str>, expected: &State) -> Verdict {
    let params = match query.map(parse_query) {
        None => return Verdict::Reject(Rejection::Malformed("the request has no query string")),
        Some(Err(reason)) => return Verdict::Reject(Rejection::Malformed(reason)),
        Some(Ok(params)) => params,
    };
    let Some(state) = params.state else {
        return Verdict::Reject(Rejection::StateMismatch);
    };
    // Constant time: how long the comparison takes says nothing about how much of a guessed
    // state was right.
    if !expected.matches(&state) {
        return Verdict::Reject(Rejection::StateMismatch);
    }
    let outcome = if let Some(error) = params.error {
        if error == "access_denied" {
            Err(Error::Cancelled {
                description: params.error_description,
                iss: params.iss,
            })
        } else {
            Err(Error::Authorization {
                error,
                description: params.error_description,
                uri: params.error_uri,
                iss: params.iss,
            })
        }
    } else if let Some(code) = params.code {
        Ok(CallbackResponse {
            code: AuthorizationCode(code),
            state,
            iss: params.iss,
        })
    } else {
        Err(Error::InvalidCallback {
            reason: "the response has neither a code nor an error",
        })
    };
    Verdict::Complete(outcome)
}

/// Reads the parameters of an `application/x-www-form-urlencoded` query strictly.
///
/// Unlike lenient parsers, a `%` not followed by two hex digits, or bytes that are not UTF-8
/// once decoded, are errors rather than being passed through or replaced. A repeated known
/// parameter is an error (RFC 6749 §3.1: parameters "MUST NOT be included more than once");
/// an empty value counts as absent (same section). Unknown parameters are ignored.
fn parse_query(query: &str) -> Result<Params, &'static str> {
    let mut params = Params::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        let slot = match name.as_str() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "iss" => &mut params.iss,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            "error_uri" => &mut params.error_uri,
            _ => continue,
        };
        if slot.is_some() {
            return Err("a parameter appears more than once");
        }
        let value = decode(value)?;
        if value.chars().any(char::is_control) {
            return Err("a parameter contains control characters");
        }
        *slot = Some(value);
    }
    for slot in [
        &mut params.code,
        &mut params.state,
        &mut params.iss,
        &mut params.error,
        &mut params.error_description,
        &mut params.error_uri,
    ] {
        if slot.as_deref() == Some("") {
            *slot = None;
        }
    }
    Ok(params)
}

/// Strict form-urlencoded decoding of one name or value.
fn decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err("invalid percent-encoding");
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "a parameter is not valid utf-8")
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Validates a redirect URL pasted by the user (paste-back, for when the browser runs on
/// another machine than the CLI) with exactly the listener's rules.
///
/// The URL must be `http`, and its host, port and path must equal those of `redirect_uri`
/// (scheme and host compared without regard to ASCII case, as URIs define; an absent port means
/// 80). Its query then goes through the same checks as a request to the listener. A `#fragment`
/// is ignored.
///
/// The text is first taken as people paste it (RFC 3986 Appendix C, "Delimiting a URI in
/// Context"): surrounding whitespace and one pair of surrounding `<…>`, `"…"`, `'…'` or `` `…` ``
/// are removed, and so is whitespace inside the URL (a terminal that wrapped a long line inserts
/// line breaks and spaces; a URL never contains a literal space). See [`normalize_pasted_url`].
///
/// ```
/// use context_harness_callback_server::{Error, parse_redirect_url};
/// use context_harness_pkce::State;
///
/// let state = State::generate()?;
/// let pasted = format!(
///     "http://localhost:8080/callback?code=abc&state={}",
///     state.as_str()
/// );
/// let response = parse_redirect_url(&pasted, "http://localhost:8080/callback", &state)?;
/// assert_eq!(response.code.secret(), "abc");
///
/// let stale = "http://localhost:8080/callback?code=abc&state=from-an-old-tab";
/// assert!(matches!(
///     parse_redirect_url(stale, "http://localhost:8080/callback", &state),
///     Err(Error::StateMismatch)
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// - [`Error::InvalidCallback`] if the URL cannot be read, does not point at `redirect_uri`,
///   has an unreadable or repeated parameter, or has neither `code` nor `error`;
/// - [`Error::StateMismatch`] if `state` is missing or is not `expected_state`;
/// - [`Error::Cancelled`] / [`Error::Authorization`] for an error response with the right
///   `state`.
pub fn parse_redirect_url(
    pasted: &str,
    redirect_uri: &str,
    expected_state: &State,
) -> Result<CallbackResponse> {
    let invalid = |reason| Error::InvalidCallback { reason };
    let expected = UrlParts::parse(redirect_uri)
        .map_err(|_| invalid("the redirect uri is not a valid url"))?;
    if expected.query.is_some() {
        return Err(invalid("the redirect uri must not have a query"));
    }
    let pasted = normalize_pasted_url(pasted);
    let got = UrlParts::parse(&pasted).map_err(invalid)?;
    if !got.scheme.eq_ignore_ascii_case("http") || !expected.scheme.eq_ignore_ascii_case("http") {
        return Err(invalid("the url is not an http loopback redirect"));
    }
    if !got.host.eq_ignore_ascii_case(expected.host) || got.port != expected.port {
        return Err(invalid(
            "the url's host or port differs from the redirect uri",
        ));
    }
    if got.path != expected.path {
        return Err(invalid("the url's path differs from the redirect uri"));
    }
    match evaluate(got.query, expected_state) {
        Verdict::Complete(outcome) => outcome,
        Verdict::Reject(Rejection::StateMismatch) => Err(Error::StateMismatch),
        Verdict::Reject(Rejection::Malformed(reason)) => Err(invalid(reason)),
    }
}

/// A URL as pasted from a terminal or a document, made whole again (RFC 3986 Appendix C): trims
/// whitespace, removes one pair of surrounding delimiters (`<…>`, `"…"`, `'…'`, `` `…` ``, also
/// with whitespace between them and the URL), then every whitespace character inside.
///
/// ```
/// use context_harness_callback_server::normalize_pasted_url;
///
/// assert_eq!(
///     normalize_pasted_url(" <http://localhost:8080/callback?code=a\n  bc&state=x> "),
///     "http://localhost:8080/callback?code=abc&state=x"
/// );
/// assert_eq!(normalize_pasted_url("\"http://h/p?a=1\""), "http://h/p?a=1");
/// ```
pub fn normalize_pasted_url(pasted: &str) -> String {
    let mut text = pasted.trim();
    for (open, close) in [('<', '>'), ('"', '"'), ('\'', '\''), ('`', '`')] {
        if let Some(inner) = text
            .strip_prefix(open)
            .and_then(|rest| rest.strip_suffix(close))
        {
            text = inner.trim();
            break;
        }
    }
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The pieces of an absolute `scheme://host[:port]/path[?query][#fragment]` URL, unnormalised.
struct UrlParts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    fn parse(url: &'a str) -> Result<Self, &'static str> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (scheme, rest) = url.split_once("://").ok_or("the text is not a url")?;
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("the text is not a url");
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err("the url must not contain user information");
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inner, after) = bracketed
                .split_once(']')
                .ok_or("the url's host is invalid")?;
            (&authority[..inner.len() + 2], after)
        } else {
            let colon = authority.find(':').unwrap_or(authority.len());
            authority.split_at(colon)
        };
        if host.is_empty() {
            return Err("the url has no host");
        }
        let port = match port {
            "" => 80,
            p => {
                let digits = p.strip_prefix(':').ok_or("the url's host is invalid")?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("the url's port is invalid");
                }
                digits.parse().map_err(|_| "the url's port is invalid")?
            }
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            scheme,
            host,
            port,
            path,
            query,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        assert_eq!(decode("a+b%20c%2B").as_deref(), Ok("a b c+"));
        assert_eq!(decode("%C3%A9").as_deref(), Ok("é"));
        for bad in ["%", "%2", "%zz", "%G0", "a%2", "%C3", "%FF", "%C3%28"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_parts() -> Result<(), Box<dyn std::error::Error>> {
        let u = UrlParts::parse("HTTP://[::1]:57548/callback?x=1#frag")?;
        assert_eq!(
            (u.scheme, u.host, u.port, u.path, u.query),
            ("HTTP", "[::1]", 57548, "/callback", Some("x=1"))
        );
        let u = UrlParts::parse("http://localhost?x")?;
        assert_eq!(
            (u.host, u.port, u.path, u.query),
            ("localhost", 80, "/", Some("x"))
        );
        for bad in [
            "localhost:8080/callback",
            "http://",
            "http://:8080/",
            "http://a:/",
            "http://a:99999/",
            "http://a:+1/",
            "http://u@a:1/",
            "http://[::1/",
            "http://[::1]x/",
            "1http://a/",
        ] {
            assert!(UrlParts::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn empty_values_count_as_absent_and_unknown_names_are_ignored()
    -> Result<(), Box<dyn std::error::Error>> {
        let p = parse_query("code=&state=s&session_state=1&session_state=2&&x")?;
        assert_eq!(p.code, None);
        assert_eq!(p.state.as_deref(), Some("s"));
        assert!(parse_query("code=&code=x").is_err());
        assert!(parse_query("sta%74e=a&state=b").is_err());
        assert!(parse_query("error_description=a%0Ab").is_err());
        Ok(())
    }
}
