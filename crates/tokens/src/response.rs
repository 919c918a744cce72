//! Parsing token endpoint (and other authorization server) responses.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::terminal::{TerminalText as Sanitized, valid_scope};
use crate::tokens::{KNOWN_FIELDS, MAX_LIFETIME_SECS, lenient_u64, unix_seconds};
use crate::{AccessToken, IdToken, OAuthTokens, RefreshToken};

/// Bodies larger than this are refused unread (1 MiB; token responses are a few KiB at most).
pub const MAX_BODY_LEN: usize = 1024 * 1024;

/// A response from an authorization server endpoint that is not a usable success.
///
/// `Display` shows only the status, the OAuth `error` code and the server's `error_description` and
/// `error_uri` (through [`terminal_text`](crate::terminal_text)); never any other part of the body, which
/// may hold tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body carries an OAuth `error` field (RFC 6749 §5.2). This wins over everything else, even
    /// with HTTP 200 and even when an `access_token` is present too (GitHub answers errors with 200).
    OAuth {
        /// The error code, e.g. `invalid_grant` or GitHub's `bad_verification_code`.
        error: String,
        /// The server's `error_description`, if any.
        description: Option<String>,
        /// The server's `error_uri`, if any.
        uri: Option<String>,
        /// The HTTP status.
        status: u16,
    },
    /// A non-2xx status whose body parsed but has no OAuth `error` field.
    Http {
        /// The HTTP status.
        status: u16,
    },
    /// The body is empty or only whitespace.
    Empty {
        /// The HTTP status.
        status: u16,
    },
    /// The body is an HTML page (a login page, a proxy or gateway error page), not JSON or form data.
    Html {
        /// The HTTP status.
        status: u16,
    },
    /// The body is neither a JSON object nor form data, or a field has the wrong type.
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is wrong, in a few fixed words (never the body's text).
        reason: &'static str,
    },
    /// A successful response without a non-empty `access_token`.
    MissingAccessToken,
}

impl ResponseError {
    /// The HTTP status, when the error carries one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::OAuth { status, .. }
            | Self::Http { status }
            | Self::Empty { status }
            | Self::Html { status }
            | Self::Malformed { status, .. } => Some(*status),
            Self::MissingAccessToken => None,
        }
    }

    /// The OAuth error code (e.g. `"invalid_grant"`), when the server sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth {
                error,
                description,
                uri,
                status,
            } => {
                write!(
                    f,
                    "authorization server returned error `{}` (HTTP {status})",
                    Sanitized(error)
                )?;
                if let Some(description) = description {
                    write!(f, ": {}", Sanitized(description))?;
                }
                if let Some(uri) = uri {
                    write!(f, " (see {})", Sanitized(uri))?;
                }
                Ok(())
            }
            Self::Http { status } => write!(
                f,
                "authorization server answered HTTP {status} without an OAuth error"
            ),
            Self::Empty { status } => {
                write!(f, "authorization server sent an empty body (HTTP {status})")
            }
            Self::Html { status } => write!(
                f,
                "authorization server sent an HTML page instead of JSON or form data (HTTP {status})"
            ),
            Self::Malformed { status, reason } => write!(
                f,
                "authorization server sent an unusable body (HTTP {status}): {reason}"
            ),
            Self::MissingAccessToken => f.write_str("token response has no access_token"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// The body format, decided from the body's first byte and the declared media type.
enum Format {
    Json,
    Form,
}

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|mt| mt.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Parses an authorization server response body into a JSON object.
///
/// Accepts JSON (`application/json`, `*+json`) and `application/x-www-form-urlencoded` bodies; the
/// format is taken from the body itself when the content type is missing or generic (`text/plain`),
/// so a GitHub form body without `Accept: application/json` still parses. Form values become JSON
/// strings. Used for token, device-authorization, registration and similar endpoints.
///
/// # Errors
///
/// In this order: [`ResponseError::Empty`] for an empty body, [`ResponseError::Html`] for an HTML
/// page, [`ResponseError::Malformed`] for a body that is neither a JSON object nor form data (or is
/// larger than [`MAX_BODY_LEN`]), [`ResponseError::OAuth`] when the object has a string `error` field
/// (whatever the status, including 200), and [`ResponseError::Http`] for any other non-2xx status.
pub fn parse_response_object(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, ResponseError> {
    if body.len() > MAX_BODY_LEN {
        return Err(ResponseError::Malformed {
            status,
            reason: "body is too large",
        });
    }
    let trimmed = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body)
        .trim_ascii();
    let Some(&first) = trimmed.first() else {
        return Err(ResponseError::Empty { status });
    };
    let media = media_type(content_type);
    let format = match first {
        b'<' => return Err(ResponseError::Html { status }),
        b'{' | b'[' => Format::Json,
        _ if media == "application/json" || media.ends_with("+json") => Format::Json,
        _ if media == "text/html" || media == "application/xhtml+xml" => {
            return Err(ResponseError::Html { status });
        }
        _ => Format::Form,
    };
    let object = match format {
        Format::Json => parse_json_object(status, trimmed)?,
        Format::Form => parse_form(status, trimmed)?,
    };
    if let Some(err) = oauth_error(&object, status) {
        return Err(err);
    }
    match object.get("error") {
        // `"error": null` or `""` is not an error report.
        None | Some(Value::Null | Value::String(_)) => {}
        // e.g. Google API style `{"error": {"code": 401, ...}}`: not OAuth, but certainly not success.
        Some(_) if (200..300).contains(&status) => {
            return Err(ResponseError::Malformed {
                status,
                reason: "error field is not a string",
            });
        }
        Some(_) => return Err(ResponseError::Http { status }),
    }
    if !(200..300).contains(&status) {
        return Err(ResponseError::Http { status });
    }
    Ok(object)
}

/// The OAuth error the object reports, if it has a non-empty string `error` field.
fn oauth_error(object: &Map<String, Value>, status: u16) -> Option<ResponseError> {
    let text = |key: &str| match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Some(ResponseError::OAuth {
        error: text("error")?,
        description: text("error_description"),
        uri: text("error_uri"),
        status,
    })
}

fn parse_json_object(status: u16, body: &[u8]) -> Result<Map<String, Value>, ResponseError> {
    // The serde_json error is dropped on purpose: its message can quote the body.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ResponseError::Malformed {
            status,
            reason: "json body is not an object",
        }),
        Err(_) => Err(ResponseError::Malformed {
            status,
            reason: "body is not valid json",
        }),
    }
}

fn parse_form(status: u16, body: &[u8]) -> Result<Map<String, Value>, ResponseError> {
    let malformed = |reason| ResponseError::Malformed { status, reason };
    let text = std::str::from_utf8(body).map_err(|_| malformed("body is not utf-8"))?;
    // Every `&`-separated piece must be `key=value` with a plain key; anything else is not form data
    // (a plain-text error page, garbage).
    for piece in text.split('&') {
        let Some((key, _)) = piece.split_once('=') else {
            return Err(malformed("body is neither json nor form data"));
        };
        let plain_key = !key.is_empty()
            && key.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%' | b'+')
            });
        if !plain_key {
            return Err(malformed("body is neither json nor form data"));
        }
    }
    let mut object = Map::new();
    for (key, value) in form_urlencoded::parse(text.as_bytes()) {
        // The first occurrence wins; repeated parameters are a server bug (RFC 6749 §3.1).
        object
            .entry(key.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    Ok(object)
}

/// The `scope` field of a token response: a space-separated string (RFC 6749 §3.3), or, off-spec but
/// unambiguous, a JSON array of scope tokens (Twitch sends `["openid","user:read:email"]`), joined with
/// single spaces. Either way, tokens outside the §3.3 grammar are dropped ([`valid_scope`]); an array
/// element that is not one token (empty, or holding whitespace) is dropped likewise.
///
/// # Errors
///
/// [`ResponseError::Malformed`] (status 200) for any other JSON type, or an array with a non-string
/// element (its meaning is unclear).
fn scope(value: Option<Value>) -> Result<Option<String>, ResponseError> {
    let malformed = |reason| ResponseError::Malformed {
        status: 200,
        reason,
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(scope)) => Ok(Some(valid_scope(&scope).0)),
        Some(Value::Array(items)) => {
            let mut kept = Vec::with_capacity(items.len());
            for item in &items {
                let Value::String(token) = item else {
                    return Err(malformed("scope array has an element that is not a string"));
                };
                // One element is one scope token: `"a b"` is not split into two.
                let single =
                    !token.is_empty() && !token.contains(|c: char| c.is_ascii_whitespace());
                if single {
                    let (valid, _) = valid_scope(token);
                    if !valid.is_empty() {
                        kept.push(valid);
                    }
                }
            }
            Ok(Some(kept.join(" ")))
        }
        Some(_) => Err(malformed(
            "scope is neither a string nor an array of strings",
        )),
    }
}

/// A lifetime field (`expires_in`, `refresh_token_expires_in`): [`lenient_u64`], except that a
/// negative number (or numeric string) is `0`: the server says the token has already expired, and
/// the tokens are kept as such rather than the whole answer refused (the sign-in that produced it
/// is done; a refresh or a new sign-in follows when the token is used).
fn lifetime(value: &Value) -> Result<Option<u64>, &'static str> {
    lenient_u64(value).or_else(|e| {
        let negative = match value {
            Value::Number(n) => n.as_f64().is_some_and(|f| f < 0.0),
            Value::String(s) => s.trim().parse::<f64>().is_ok_and(|f| f < 0.0),
            _ => false,
        };
        if negative { Ok(Some(0)) } else { Err(e) }
    })
}

/// Parses a token endpoint response (RFC 6749 §5.1/§5.2) received at `now` into tokens.
///
/// Runs [`parse_response_object`] (so an `error` field wins even with HTTP 200), then
/// [`OAuthTokens::from_response_object`].
///
/// # Errors
///
/// Every [`ResponseError`] variant; see the two functions above.
pub fn parse_token_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<OAuthTokens, ResponseError> {
    let object = parse_response_object(status, content_type, body)?;
    OAuthTokens::from_response_object(object, now)
}

impl OAuthTokens {
    /// Builds tokens from a successful token response object received at `now`.
    ///
    /// - `access_token`: required, a non-empty string of printable ASCII (RFC 6749 Appendix A
    ///   `VSCHAR`; anything else is [`ResponseError::Malformed`]).
    /// - `token_type`: kept as sent (compare with [`is_bearer`](Self::is_bearer), which ignores case);
    ///   `"Bearer"` when absent, as most clients assume.
    /// - `expires_in`, `refresh_token_expires_in`: a number or a numeric string; absent, `null` or
    ///   `""` means unknown. A lifetime above [`MAX_LIFETIME_SECS`] (one year) is clamped to it, so a
    ///   hostile or broken server cannot push an expiry past what time arithmetic can hold. Zero or
    ///   negative means the token has already expired: it is kept with a lifetime of `0` (so
    ///   [`is_expired_at`](Self::is_expired_at) says so at once), not refused.
    /// - `token_type`'s case does not matter (`bearer`, `Bearer`, `BEARER`).
    /// - `refresh_token`, `id_token`, `scope`: strings; an empty refresh or ID token counts as absent,
    ///   a refresh token must be printable ASCII like the access token,
    ///   an empty scope is kept (GitHub Apps send one). Scope tokens outside the RFC 6749 §3.3 grammar
    ///   (controls, escapes, non-ASCII, `"`, `\`) are dropped ([`valid_scope`](crate::valid_scope)).
    ///   `scope` may also be a JSON array of strings (off-spec, sent by Twitch): it is joined with
    ///   single spaces; an array holding anything but strings is refused.
    /// - A `null` or empty `error` field is dropped.
    /// - `issued_at` is `now`; a server's own `issued_at` or `refresh_failed_at` field is dropped
    ///   rather than confused with ours. Every other field goes to [`extra`](Self::extra).
    ///
    /// # Errors
    ///
    /// [`ResponseError::OAuth`] (with status 200) if the object has a string `error` field,
    /// [`ResponseError::MissingAccessToken`], or [`ResponseError::Malformed`] (with status 200) when a
    /// known field has the wrong type.
    pub fn from_response_object(
        mut object: Map<String, Value>,
        now: SystemTime,
    ) -> Result<Self, ResponseError> {
        fn malformed(reason: &'static str) -> ResponseError {
            ResponseError::Malformed {
                status: 200,
                reason,
            }
        }
        fn string(
            object: &mut Map<String, Value>,
            key: &str,
            reason: &'static str,
        ) -> Result<Option<String>, ResponseError> {
            match object.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(malformed(reason)),
            }
        }
        // Checked again for callers that did not come through `parse_response_object`.
        if let Some(err) = oauth_error(&object, 200) {
            return Err(err);
        }
        // An empty or null `error` (already known not to be a report) is not kept either.
        object.remove("error");
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());

        let access_token = nonempty(string(
            &mut object,
            "access_token",
            "access_token is not a string",
        )?)
        .ok_or(ResponseError::MissingAccessToken)?;
        // RFC 6749 Appendix A: `access-token = 1*VSCHAR`. A token is printed by `mcp token` and
        // put into `Authorization` headers: an escape sequence or a line break in it would reach a
        // terminal or split a header, so such an answer is refused.
        if !crate::terminal::is_vschar(&access_token) {
            return Err(malformed(
                "access_token holds characters other than printable ASCII (RFC 6749 Appendix A)",
            ));
        }
        let token_type = string(&mut object, "token_type", "token_type is not a string")?
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "Bearer".to_owned());
        let seconds = |object: &mut Map<String, Value>, key: &str, reason: &'static str| {
            object
                .remove(key)
                .map_or(Ok(None), |v| lifetime(&v))
                .map(|secs| secs.map(|s| s.min(MAX_LIFETIME_SECS)))
                .map_err(|_| malformed(reason))
        };
        let expires_in = seconds(
            &mut object,
            "expires_in",
            "expires_in is not a whole number of seconds",
        )?;
        let refresh_token_expires_in = seconds(
            &mut object,
            "refresh_token_expires_in",
            "refresh_token_expires_in is not a whole number of seconds",
        )?;
        let refresh_token = nonempty(string(
            &mut object,
            "refresh_token",
            "refresh_token is not a string",
        )?);
        // `refresh-token = 1*VSCHAR` as well.
        if refresh_token
            .as_deref()
            .is_some_and(|t| !crate::terminal::is_vschar(t))
        {
            return Err(malformed(
                "refresh_token holds characters other than printable ASCII (RFC 6749 Appendix A)",
            ));
        }
        let id_token = nonempty(string(&mut object, "id_token", "id_token is not a string")?);
        let scope = scope(object.remove("scope"))?;
        for key in KNOWN_FIELDS {
            object.remove(key);
        }
        Ok(Self {
            access_token: AccessToken::new(access_token),
            token_type,
            expires_in,
            refresh_token: refresh_token.map(RefreshToken::new),
            scope,
            issued_at: unix_seconds(now),
            id_token: id_token.map(IdToken::new),
            refresh_token_expires_in,
            refresh_failed_at: None,
            extra: object,
        })
    }
}
