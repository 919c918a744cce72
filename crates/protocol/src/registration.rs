//! RFC 7591 dynamic client registration: the request body of a native public client, and the
//! server's answer read into a [`ClientRegistration`].

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ErrorKind, ProtocolError, Result, printable};

/// A client registered at one authorization server (RFC 7591 §3.2.1 response, plus the issuer).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// The issuer this client belongs to (the key).
    pub issuer: String,
    /// The issued client id.
    pub client_id: String,
    /// The issued secret, if the server made the client confidential anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the secret expires (unix seconds; 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// When the client id was issued (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<u64>,
    /// The redirect URIs the server registered (it may change what was asked for).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The grant types the server registered.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// How the client authenticates at the token endpoint (`none` for a public client).
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: String,
    /// RFC 7592 management URL, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    /// RFC 7592 management token, if given (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    /// The scope values the client was registered for (RFC 7591 §2 `scope`, space-separated): the
    /// server's answer, else what was asked for. `None` when neither said (registrations stored by
    /// older versions): no restriction is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn default_auth_method() -> String {
    "none".to_owned()
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish_non_exhaustive()
    }
}

impl ClientRegistration {
    /// Whether every one of `scopes` is among the registered [`scope`](Self::scope) values (a
    /// server may refuse to issue a client other scopes than it registered): `true` when the
    /// registration names none.
    pub fn covers_scopes(&self, scopes: &[String]) -> bool {
        self.scope.as_deref().is_none_or(|registered| {
            let registered: Vec<&str> = registered.split_ascii_whitespace().collect();
            scopes.iter().all(|s| registered.contains(&s.as_str()))
        })
    }

    /// Whether this registration can be used for a sign-in with `redirect_uris` (all of them
    /// registered) and `grant_type` (registered, or the server did not say), and its secret (if any)
    /// has not expired.
    pub fn fits(&self, redirect_uris: &[String], grant_type: &str, now: SystemTime) -> bool {
        let uris_ok = redirect_uris.iter().all(|u| self.redirect_uris.contains(u));
        let grant_ok =
            self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == grant_type);
        let secret_ok = match (self.client_secret.as_ref(), self.client_secret_expires_at) {
            (Some(_), Some(at)) if at > 0 => {
                (at as f64) > context_harness_tokens::unix_seconds(now) + 60.0
            }
            _ => true,
        };
        uris_ok && grant_ok && secret_ok
    }

    /// Refuses a registration whose `client_id` or `client_secret` is not RFC 6749 Appendix
    /// A.1/A.2 `*VSCHAR` (printable ASCII, `%x20-7E`): such a value breaks the grammar, and a
    /// `client_id` is logged and shown, so an escape sequence in it would reach the user's terminal.
    /// [`parse_registration_response`] applies it to every answer; apply it to a stored registration
    /// too.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RegistrationRefused`], naming the field but not its value (a `client_id` that
    /// is not printable cannot be shown; a secret is never shown).
    pub fn check_vschar(&self) -> Result<()> {
        let field = if !context_harness_tokens::is_vschar(&self.client_id) {
            "client_id"
        } else if self
            .client_secret
            .as_deref()
            .is_some_and(|s| !context_harness_tokens::is_vschar(s))
        {
            "client_secret"
        } else {
            return Ok(());
        };
        Err(ProtocolError::new(
            ErrorKind::RegistrationRefused,
            format!(
                "dynamic client registration at {} issued a {field} that is not printable ASCII \
                 (RFC 6749 Appendix A allows only the characters 0x20-0x7E); it was not used",
                printable(&self.issuer)
            ),
        ))
    }
}

/// The RFC 7591 §2 registration request body for a native public client named `client_name`:
/// `authorization_code` and `refresh_token` plus `extra_grant_types`, `none` as the token-endpoint
/// authentication method, and `scope` when not empty.
///
/// ```
/// use context_harness_protocol::registration_request;
///
/// let body = registration_request("my-tool", &["http://127.0.0.1:8080/callback".to_owned()], &[], None);
/// assert_eq!(body["client_name"], "my-tool");
/// assert_eq!(body["application_type"], "native");
/// assert_eq!(body["token_endpoint_auth_method"], "none");
/// ```
pub fn registration_request(
    client_name: &str,
    redirect_uris: &[String],
    extra_grant_types: &[&str],
    scope: Option<&str>,
) -> Value {
    let mut grant_types = vec!["authorization_code", "refresh_token"];
    grant_types.extend_from_slice(extra_grant_types);
    let mut body = json!({
        "client_name": client_name,
        "application_type": "native",
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let (Some(scope), Some(map)) = (scope.filter(|s| !s.is_empty()), body.as_object_mut()) {
        map.insert("scope".to_owned(), Value::String(scope.to_owned()));
    }
    body
}

/// The longest accepted Client ID Metadata Document URL, in bytes.
pub const MAX_CLIENT_METADATA_URL_LEN: usize = 2048;

/// Checks a Client ID Metadata Document URL, the `client_id` of a client that publishes its
/// metadata (draft-ietf-oauth-client-id-metadata-document-00 §3, MCP 2026-07-28 "Client ID Metadata
/// Documents"): an `https` URL with a host and a path component other than `/`, without user info,
/// a fragment, single-dot or double-dot path segments (also percent-encoded), whitespace or control
/// characters, at most [`MAX_CLIENT_METADATA_URL_LEN`] bytes. The URL is sent as written (the
/// authorization server compares the document's `client_id` with it exactly), so nothing is
/// normalised here.
///
/// ```
/// use context_harness_protocol::check_client_metadata_url;
///
/// assert!(check_client_metadata_url("https://app.example/oauth/client.json").is_ok());
/// assert!(check_client_metadata_url("http://app.example/oauth/client.json").is_err());
/// assert!(check_client_metadata_url("https://app.example/").is_err());
/// assert!(check_client_metadata_url("https://app.example/a/../client.json").is_err());
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] naming the rule broken.
pub fn check_client_metadata_url(url: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(ProtocolError::new(
            ErrorKind::InvalidUrl,
            format!(
                "`{}` is not a usable client metadata document URL: {why}",
                printable(url)
            ),
        ))
    };
    if url.len() > MAX_CLIENT_METADATA_URL_LEN {
        return refuse("it is longer than 2048 bytes");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return refuse("it contains whitespace, a control character or a backslash");
    }
    let Some(rest) = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
    else {
        return refuse("it must be an https URL");
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if authority.is_empty() {
        return refuse("it has no host");
    }
    if authority.contains('@') {
        return refuse("it must not contain a user name or password");
    }
    if after.contains('#') {
        return refuse("it must not contain a fragment");
    }
    let path = after.split('?').next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return refuse("it must have a path, e.g. https://app.example/oauth/client.json");
    }
    let dot_segment = path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    });
    if dot_segment {
        return refuse("it must not contain `.` or `..` path segments");
    }
    if url::Url::parse(url).is_err() {
        return refuse("it is not a valid URL");
    }
    Ok(())
}

/// The Client ID Metadata Document of a native public client (draft-ietf-oauth-client-id-metadata-
/// document-00 §4, MCP 2026-07-28 "Client ID Metadata Documents"): the body of
/// [`registration_request`] (`client_name`, `application_type: native`, `redirect_uris`, the
/// `authorization_code` and `refresh_token` grants, `response_types: [code]`,
/// `token_endpoint_auth_method: none`) with `client_id` set to the URL it is published at.
///
/// ```
/// use context_harness_protocol::client_metadata_document;
///
/// let url = "https://app.example/oauth/client.json";
/// let document = client_metadata_document(url, "my-tool", &["http://127.0.0.1:8080/callback".to_owned()])?;
/// assert_eq!(document["client_id"], url);
/// assert_eq!(document["client_name"], "my-tool");
/// assert_eq!(document["token_endpoint_auth_method"], "none");
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`] when `url` is not a usable document URL
/// ([`check_client_metadata_url`]).
pub fn client_metadata_document(
    url: &str,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<Value> {
    check_client_metadata_url(url)?;
    let mut document = json!({ "client_id": url });
    if let (Some(out), Value::Object(fields)) = (
        document.as_object_mut(),
        registration_request(client_name, redirect_uris, &[], None),
    ) {
        out.extend(fields);
    }
    Ok(document)
}

/// Reads an RFC 7591 §3.2 answer: a 2xx JSON object with `client_id` (fields the server left out
/// are taken from `request`), or an error (`invalid_redirect_uri`, `invalid_client_metadata`, …).
///
/// # Errors
///
/// [`ErrorKind::RegistrationRefused`] when the server answered with an OAuth error (its code,
/// description and status attached) or an answer that is not a JSON object;
/// [`ErrorKind::InvalidResponse`] for another non-2xx status, or a 2xx answer without a usable
/// `client_id`.
pub fn parse_registration_response(
    status: u16,
    content_type: Option<&str>,
    raw_body: &[u8],
    issuer: &str,
    request: &Value,
) -> Result<ClientRegistration> {
    let body = request;
    let object = context_harness_tokens::parse_response_object(status, content_type, raw_body)
        .map_err(|e| match &e {
            // The server's own reason is part of the message (sanitised and capped): without
            // it "refused" leaves the user nothing to act on.
            context_harness_tokens::ResponseError::OAuth {
                error,
                description,
                status,
                ..
            } => ProtocolError::new(
                ErrorKind::RegistrationRefused,
                format!(
                    "dynamic client registration at {} was refused (`{}`{})",
                    printable(issuer),
                    printable(error),
                    description
                        .as_deref()
                        .map(|d| format!(": {}", printable(d)))
                        .unwrap_or_default()
                ),
            )
            .with_oauth(printable(error), description.clone(), *status),
            other => ProtocolError::new(
                ErrorKind::RegistrationRefused,
                format!(
                    "dynamic client registration at {} failed: {other}",
                    printable(issuer)
                ),
            ),
        })?;
    if !(200..300).contains(&status) {
        return Err(ProtocolError::new(
            ErrorKind::InvalidResponse,
            format!("dynamic client registration answered HTTP {}", status),
        )
        .with_status(status));
    }
    let mut value = Value::Object(object);
    if let Some(map) = value.as_object_mut() {
        map.insert("issuer".to_owned(), Value::String(issuer.to_owned()));
        // Servers may omit what they accepted unchanged: keep what was asked for.
        for key in [
            "redirect_uris",
            "grant_types",
            "token_endpoint_auth_method",
            "scope",
        ] {
            if !map.contains_key(key)
                && let Some(v) = body.get(key)
            {
                map.insert(key.to_owned(), v.clone());
            }
        }
    }
    let registration: ClientRegistration = serde_json::from_value(value).map_err(|e| {
        ProtocolError::new(
            ErrorKind::InvalidResponse,
            format!("the registration response is unusable ({e})"),
        )
    })?;
    if registration.client_id.trim().is_empty() {
        return Err(ProtocolError::new(
            ErrorKind::InvalidResponse,
            "the registration response has no client_id",
        ));
    }
    registration.check_vschar()?;
    Ok(registration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_metadata_urls() {
        for good in [
            "https://app.example/client.json",
            "HTTPS://app.example/oauth/client-metadata.json",
            "https://app.example:8443/c",
            "https://app.example/c?v=1",
            "https://conformance-test.local/client-metadata.json",
            "https://app.example/a.b/..c/client.json",
        ] {
            assert!(check_client_metadata_url(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("http://app.example/client.json", "https"),
            ("https://app.example", "path"),
            ("https://app.example/", "path"),
            ("https://app.example?x=1", "path"),
            ("https:///client.json", "host"),
            ("https://user@app.example/client.json", "user name"),
            ("https://u:p@app.example/client.json", "user name"),
            ("https://app.example/client.json#x", "fragment"),
            ("https://app.example/a/../client.json", "segments"),
            ("https://app.example/./client.json", "segments"),
            ("https://app.example/%2E%2e/client.json", "segments"),
            ("https://app.example/a/..", "segments"),
            ("https://app.example/client .json", "whitespace"),
            ("https://app.example/client.json\n", "whitespace"),
            ("https://app.example\\@evil.example/c", "backslash"),
            ("ftp://app.example/c", "https"),
            ("app.example/c", "https"),
            ("", "https"),
        ] {
            let err = check_client_metadata_url(bad).err();
            assert_eq!(
                err.as_ref().map(ProtocolError::kind),
                Some(ErrorKind::InvalidUrl),
                "{bad:?}"
            );
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(says), "{bad:?}: {text}");
        }
        let long = format!(
            "https://app.example/{}",
            "a".repeat(MAX_CLIENT_METADATA_URL_LEN)
        );
        assert!(check_client_metadata_url(&long).is_err());
    }

    #[test]
    fn client_metadata_document_is_the_registration_body_with_its_url() -> Result<()> {
        let uris = ["http://127.0.0.1:8080/callback".to_owned()];
        let url = "https://app.example/oauth/client.json";
        let document = client_metadata_document(url, "my-tool", &uris)?;
        let mut expected = registration_request("my-tool", &uris, &[], None);
        if let Some(map) = expected.as_object_mut() {
            map.insert("client_id".to_owned(), Value::String(url.to_owned()));
        }
        assert_eq!(document, expected);
        assert!(document.get("client_secret").is_none());
        assert!(client_metadata_document("http://app.example/c", "my-tool", &uris).is_err());
        Ok(())
    }
    use crate::DEVICE_CODE_GRANT;

    fn uris() -> Vec<String> {
        [8080, 3000, 57548]
            .map(|p| format!("http://127.0.0.1:{p}/callback"))
            .to_vec()
    }

    #[test]
    fn golden_registration_body() {
        let body = registration_request(
            "context-harness",
            &uris(),
            &[DEVICE_CODE_GRANT],
            Some("mcp:tools offline_access"),
        );
        let want = json!({
            "client_name": "context-harness",
            "application_type": "native",
            "redirect_uris": [
                "http://127.0.0.1:8080/callback",
                "http://127.0.0.1:3000/callback",
                "http://127.0.0.1:57548/callback"
            ],
            "grant_types": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:tools offline_access",
        });
        assert_eq!(body, want);
        let body = registration_request("my-tool", &uris(), &[], Some(""));
        assert!(body.get("scope").is_none());
        assert_eq!(body["client_name"], "my-tool");
    }

    /// Answers servers give: (status, content type, body, what is expected).
    #[test]
    fn registration_response_table() {
        let request = registration_request("context-harness", &uris(), &[], None);
        let issuer = "https://as.example.com";
        enum Want {
            Client(&'static str, &'static str),
            Refused(Option<&'static str>),
            Invalid,
            Unprintable(&'static str),
        }
        let table: &[(u16, Option<&str>, &str, Want)] = &[
            // Only the required field: the rest is taken from the request.
            (
                201,
                Some("application/json"),
                r#"{"client_id":"c1","client_id_issued_at":1700000000}"#,
                Want::Client("c1", "none"),
            ),
            // The server made the client confidential: its answer is honoured.
            (
                201,
                Some("application/json"),
                r#"{"client_id":"c2","client_secret":"s","client_secret_expires_at":0,"token_endpoint_auth_method":"client_secret_post"}"#,
                Want::Client("c2", "client_secret_post"),
            ),
            // 200 instead of 201, no content type: still a registration.
            (
                200,
                None,
                r#"{"client_id":"c3"}"#,
                Want::Client("c3", "none"),
            ),
            (
                400,
                Some("application/json"),
                r#"{"error":"invalid_redirect_uri","error_description":"no"}"#,
                Want::Refused(Some("invalid_redirect_uri")),
            ),
            (
                400,
                Some("application/json"),
                r#"{"error":"invalid_client_metadata"}"#,
                Want::Refused(Some("invalid_client_metadata")),
            ),
            (
                404,
                Some("text/html"),
                "<html>no</html>",
                Want::Refused(None),
            ),
            (500, None, "", Want::Refused(None)),
            (201, Some("application/json"), "{}", Want::Invalid),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"  "}"#,
                Want::Invalid,
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":7}"#,
                Want::Invalid,
            ),
            // RFC 6749 Appendix A.1: a client_id is printable ASCII. Escape sequences (OSC 52
            // clipboard write, clear screen, window title), C1 controls, bidi overrides, a newline
            // and non-ASCII are refused, as is a client_secret outside A.2.
            (
                201,
                Some("application/json"),
                r#"{"client_id":"id\u001b]52;c;ZXZpbA==\u0007"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"\u001b[2J\u001b]0;title\u0007"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"abc\u009b2Jdef"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"user\u202Eedoc"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"two\nlines"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"caf\u00e9"}"#,
                Want::Unprintable("client_id"),
            ),
            (
                201,
                Some("application/json"),
                r#"{"client_id":"ok","client_secret":"s\u001b[2J"}"#,
                Want::Unprintable("client_secret"),
            ),
            // Space and every other printable ASCII character is allowed.
            (
                201,
                Some("application/json"),
                r##"{"client_id":"a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"}"##,
                Want::Client("a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "none"),
            ),
        ];
        for (status, content_type, body, want) in table {
            let got = parse_registration_response(
                *status,
                *content_type,
                body.as_bytes(),
                issuer,
                &request,
            );
            match (want, got) {
                (Want::Client(id, method), Ok(reg)) => {
                    assert_eq!((reg.client_id.as_str(), reg.issuer.as_str()), (*id, issuer));
                    assert_eq!(reg.token_endpoint_auth_method, *method, "{body}");
                    assert_eq!(reg.redirect_uris, uris(), "{body}");
                }
                (Want::Refused(code), Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::RegistrationRefused, "{body}: {e}");
                    assert_eq!(e.oauth_error(), *code, "{body}");
                    assert!(!e.to_string().contains("no\""), "description kept out: {e}");
                }
                (Want::Invalid, Err(e)) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::InvalidResponse | ErrorKind::RegistrationRefused
                        ),
                        "{body}: {e}"
                    );
                }
                (Want::Unprintable(field), Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::RegistrationRefused, "{body}: {e}");
                    let message = e.to_string();
                    assert!(
                        message.contains(&format!("issued a {field} that is not printable ASCII")),
                        "{message}"
                    );
                    assert!(message.contains("RFC 6749 Appendix A"), "{message}");
                    assert!(
                        !message
                            .chars()
                            .any(context_harness_tokens::is_unsafe_for_terminal),
                        "{message:?}"
                    );
                    assert!(!message.contains("[2J") && !message.contains("edoc"));
                }
                (_, got) => panic!("{status} {body}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn fits_redirects_grants_and_secret_expiry() {
        let now = SystemTime::now();
        let reg = ClientRegistration {
            issuer: "https://as.example.com/tenant".into(),
            client_id: "abc".into(),
            client_secret: Some("s3cret".into()),
            client_secret_expires_at: Some(0),
            client_id_issued_at: Some(1),
            redirect_uris: uris(),
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            registration_client_uri: None,
            registration_access_token: Some("rat".into()),
            scope: None,
        };
        assert!(!format!("{reg:?}").contains("s3cret"));
        assert!(!format!("{reg:?}").contains("rat\""));
        assert!(reg.fits(&uris(), "authorization_code", now));
        assert!(!reg.fits(&uris(), DEVICE_CODE_GRANT, now));
        assert!(!reg.fits(
            &["http://127.0.0.1:9/callback".to_owned()],
            "authorization_code",
            now
        ));
        let mut expired = reg.clone();
        expired.client_secret_expires_at = Some(10);
        assert!(!expired.fits(&uris(), "authorization_code", now));
        let mut any_grant = reg.clone();
        any_grant.grant_types.clear();
        assert!(any_grant.fits(&uris(), DEVICE_CODE_GRANT, now));
        // Scopes: no registered scope restricts nothing; a registered one must cover the request.
        let wanted = ["mcp:read".to_owned(), "mcp:write".to_owned()];
        assert!(reg.covers_scopes(&wanted));
        let mut scoped = reg;
        scoped.scope = Some("mcp:read  openid".into());
        assert!(scoped.covers_scopes(&wanted[..1]));
        assert!(!scoped.covers_scopes(&wanted));
        assert!(scoped.covers_scopes(&[]));
    }
}
