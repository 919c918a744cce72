#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;

const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");
const JSON: Option<&str> = Some("application/json");

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_700_000_000;

/// A table row: name, HTTP status, content type, body, expected outcome.
type Case<'a, T> = (&'a str, u16, Option<&'a str>, &'a [u8], T);
/// An expiry table row: name, expires_in, issued_at, now, buffer, expired.
type ExpiryCase = (&'static str, Option<u64>, f64, SystemTime, Duration, bool);

/// What a successful parse must produce.
struct Expect {
    access: &'static str,
    token_type: &'static str,
    expires_in: Option<u64>,
    refresh: Option<&'static str>,
    scope: Option<&'static str>,
    refresh_expires_in: Option<u64>,
    id_token: Option<&'static str>,
    extra_keys: &'static [&'static str],
}

const BASE: Expect = Expect {
    access: "SECRET-at",
    token_type: "Bearer",
    expires_in: None,
    refresh: None,
    scope: None,
    refresh_expires_in: None,
    id_token: None,
    extra_keys: &[],
};

#[test]
fn parses_successful_responses() -> Result<(), Box<dyn std::error::Error>> {
    let cases: Vec<Case<'_, Expect>> = vec![
        (
            "rfc 6749 json",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":3600,"refresh_token":"SECRET-rt","scope":"a b"}"#,
            Expect { expires_in: Some(3600), refresh: Some("SECRET-rt"), scope: Some("a b"), ..BASE },
        ),
        (
            "github lowercase bearer, comma scopes",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"bearer","scope":"repo,gist"}"#,
            Expect { token_type: "bearer", scope: Some("repo,gist"), ..BASE },
        ),
        (
            "uppercase BEARER kept as sent",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"BEARER"}"#,
            Expect { token_type: "BEARER", ..BASE },
        ),
        (
            "azure v1 expires_in as string",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":"3599"}"#,
            Expect { expires_in: Some(3599), ..BASE },
        ),
        (
            "azure v2 expires_in plus ext_expires_in",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":3599,"ext_expires_in":3599}"#,
            Expect { expires_in: Some(3599), extra_keys: &["ext_expires_in"], ..BASE },
        ),
        (
            "expires_in as float rounds down",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":3599.9}"#,
            Expect { expires_in: Some(3599), ..BASE },
        ),
        (
            "expires_in null means unknown",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":null}"#,
            BASE,
        ),
        (
            "expires_in absent means unknown",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer"}"#,
            BASE,
        ),
        (
            "token_type absent defaults to Bearer",
            200,
            JSON,
            br#"{"access_token":"SECRET-at"}"#,
            BASE,
        ),
        (
            "json with charset and 201",
            201,
            Some("application/json; charset=UTF-8"),
            br#"{"access_token":"SECRET-at","token_type":"Bearer"}"#,
            BASE,
        ),
        (
            "BOM and whitespace around json",
            200,
            JSON,
            b"\xEF\xBB\xBF \r\n {\"access_token\":\"SECRET-at\",\"token_type\":\"Bearer\"} \n",
            BASE,
        ),
        (
            "json sniffed despite a wrong content type",
            200,
            Some("text/html"),
            br#"{"access_token":"SECRET-at","token_type":"Bearer"}"#,
            BASE,
        ),
        (
            "github form body",
            200,
            FORM,
            b"access_token=SECRET-at&scope=repo%2Cgist&token_type=bearer",
            Expect { token_type: "bearer", scope: Some("repo,gist"), ..BASE },
        ),
        (
            "form body without content type",
            200,
            None,
            b"access_token=SECRET-at&token_type=Bearer&expires_in=28800",
            Expect { expires_in: Some(28800), ..BASE },
        ),
        (
            "form body labelled text/plain",
            200,
            Some("text/plain"),
            b"access_token=SECRET-at&token_type=Bearer&scope=a+b",
            Expect { scope: Some("a b"), ..BASE },
        ),
        (
            "github expiring token with refresh expiry (form)",
            200,
            FORM,
            b"access_token=SECRET-at&expires_in=28800&refresh_token=SECRET-rt&refresh_token_expires_in=15897600&scope=&token_type=bearer",
            Expect {
                token_type: "bearer",
                expires_in: Some(28800),
                refresh: Some("SECRET-rt"),
                refresh_expires_in: Some(15_897_600),
                scope: Some(""),
                ..BASE
            },
        ),
        (
            "github expiring token with refresh expiry (json)",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","expires_in":28800,"refresh_token":"SECRET-rt","refresh_token_expires_in":15897600,"scope":"","token_type":"bearer"}"#,
            Expect {
                token_type: "bearer",
                expires_in: Some(28800),
                refresh: Some("SECRET-rt"),
                refresh_expires_in: Some(15_897_600),
                scope: Some(""),
                ..BASE
            },
        ),
        (
            "empty refresh token counts as absent",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","refresh_token":"","id_token":""}"#,
            BASE,
        ),
        (
            "id token and unknown fields preserved",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","id_token":"SECRET-id","x_nested":{"a":[1,2]},"resource":"https://mcp.example"}"#,
            Expect { id_token: Some("SECRET-id"), extra_keys: &["resource", "x_nested"], ..BASE },
        ),
        (
            "server issued_at is dropped, not confused with ours",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","issued_at":"1278448832702","instance_url":"https://x"}"#,
            Expect { extra_keys: &["instance_url"], ..BASE },
        ),
        // Issue 13 item 1: off-spec but unambiguous answers. Twitch's, verbatim in shape.
        (
            "twitch: scope as a json array, lower-case bearer",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"bearer","expires_in":14487,"refresh_token":"SECRET-rt","scope":["openid","user:read:email"]}"#,
            Expect { token_type: "bearer", expires_in: Some(14487), refresh: Some("SECRET-rt"), scope: Some("openid user:read:email"), ..BASE },
        ),
        (
            "scope array: empty",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","scope":[]}"#,
            Expect { scope: Some(""), ..BASE },
        ),
        (
            "scope array: elements that are not one valid token are dropped",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","scope":["a","b c","","\u001b[2J","d"]}"#,
            Expect { scope: Some("a d"), ..BASE },
        ),
        (
            "scope null is absent",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","scope":null}"#,
            BASE,
        ),
        (
            "token_type upper case",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"BEARER"}"#,
            Expect { token_type: "BEARER", ..BASE },
        ),
        (
            "expires_in as an integral float",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","expires_in":3600.0}"#,
            Expect { expires_in: Some(3600), ..BASE },
        ),
        (
            "refresh_token null is absent",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","refresh_token":null}"#,
            BASE,
        ),
        (
            "error null is not an error",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","token_type":"Bearer","error":null}"#,
            BASE,
        ),
        (
            "empty error string is not an error",
            200,
            FORM,
            b"access_token=SECRET-at&token_type=Bearer&error=",
            BASE,
        ),
    ];
    let now = at(T0);
    for (name, status, content_type, body, expect) in cases {
        let tokens = parse_token_response(status, content_type, body, now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tokens.access_token.secret(), expect.access, "{name}");
        assert_eq!(tokens.token_type, expect.token_type, "{name}");
        assert!(tokens.is_bearer(), "{name}");
        assert_eq!(tokens.expires_in, expect.expires_in, "{name}");
        assert_eq!(
            tokens.refresh_token.as_ref().map(RefreshToken::secret),
            expect.refresh,
            "{name}"
        );
        assert_eq!(tokens.scope.as_deref(), expect.scope, "{name}");
        assert_eq!(
            tokens.refresh_token_expires_in, expect.refresh_expires_in,
            "{name}"
        );
        assert_eq!(
            tokens.id_token.as_ref().map(IdToken::secret),
            expect.id_token,
            "{name}"
        );
        let keys: Vec<&str> = tokens.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, expect.extra_keys, "{name}");
        assert_eq!(tokens.issued_at, unix_seconds(now), "{name}");
        assert_eq!(tokens.refresh_failed_at, None, "{name}");
        assert!(!format!("{tokens:?}").contains("SECRET"), "{name}");
        // Everything parsed also survives the stored format.
        let reloaded = OAuthTokens::from_json(&tokens.to_json()?)?;
        assert_eq!(reloaded, tokens, "{name}");
    }
    Ok(())
}

fn oauth(error: &str, description: Option<&str>, uri: Option<&str>, status: u16) -> ResponseError {
    ResponseError::OAuth {
        error: error.to_owned(),
        description: description.map(str::to_owned),
        uri: uri.map(str::to_owned),
        status,
    }
}

fn malformed(status: u16, reason: &'static str) -> ResponseError {
    ResponseError::Malformed { status, reason }
}

#[test]
fn rejects_error_and_unusable_responses() {
    let too_large = {
        let mut body = br#"{"access_token":"SECRET-at","pad":""#.to_vec();
        body.resize(MAX_BODY_LEN, b'x');
        body.extend_from_slice(br#""}"#);
        body
    };
    let cases: Vec<Case<'_, ResponseError>> = vec![
        (
            "error wins over access_token with HTTP 200 (json)",
            200,
            JSON,
            br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/x","access_token":"SECRET-at"}"#,
            oauth(
                "bad_verification_code",
                Some("The code passed is incorrect or expired."),
                Some("https://docs.github.com/x"),
                200,
            ),
        ),
        (
            "github form error with HTTP 200",
            200,
            FORM,
            b"error=bad_verification_code&error_description=The+code+passed+is+incorrect.&error_uri=https%3A%2F%2Fdocs.github.com",
            oauth(
                "bad_verification_code",
                Some("The code passed is incorrect."),
                Some("https://docs.github.com"),
                200,
            ),
        ),
        (
            "invalid_grant 400",
            400,
            JSON,
            br#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
            oauth("invalid_grant", Some("refresh token revoked"), None, 400),
        ),
        (
            "invalid_client 401 without description",
            401,
            Some("application/json;charset=utf-8"),
            br#"{"error":"invalid_client","error_description":null}"#,
            oauth("invalid_client", None, None, 401),
        ),
        (
            "device flow authorization_pending",
            400,
            JSON,
            br#"{"error":"authorization_pending"}"#,
            oauth("authorization_pending", None, None, 400),
        ),
        ("html error page", 500, Some("text/html"), b"<!DOCTYPE html><html>SECRET-at</html>", ResponseError::Html { status: 500 }),
        ("html with 200 and json label", 200, JSON, b"  <html><body>login</body></html>", ResponseError::Html { status: 200 }),
        ("html label on non-json body", 200, Some("text/html; charset=utf-8"), b"Sign in SECRET-at", ResponseError::Html { status: 200 }),
        ("empty body", 200, JSON, b"", ResponseError::Empty { status: 200 }),
        ("whitespace body", 204, None, b" \r\n\t", ResponseError::Empty { status: 204 }),
        ("empty body 503", 503, None, b"", ResponseError::Empty { status: 503 }),
        ("plain text garbage", 200, Some("text/plain"), b"SECRET-at is not a token", malformed(200, "body is neither json nor form data")),
        ("plain text gateway error", 502, None, b"Bad Gateway", malformed(502, "body is neither json nor form data")),
        ("form piece without =", 200, FORM, b"access_token=SECRET-at&garbage", malformed(200, "body is neither json nor form data")),
        ("form with odd key", 200, FORM, b"access token=SECRET-at", malformed(200, "body is neither json nor form data")),
        ("non utf-8 form", 200, FORM, b"access_token=\xff\xfe", malformed(200, "body is not utf-8")),
        ("truncated json", 200, JSON, br#"{"access_token":"SECRET-at","#, malformed(200, "body is not valid json")),
        ("json labelled but not json", 200, JSON, b"access_token=SECRET-at", malformed(200, "body is not valid json")),
        ("json array", 200, JSON, br#"["SECRET-at"]"#, malformed(200, "json body is not an object")),
        ("json string", 200, JSON, br#""SECRET-at""#, malformed(200, "json body is not an object")),
        ("too large", 200, JSON, &too_large, malformed(200, "body is too large")),
        ("no access_token", 200, JSON, br#"{"token_type":"Bearer","refresh_token":"SECRET-rt"}"#, ResponseError::MissingAccessToken),
        ("empty access_token", 200, FORM, b"access_token=&token_type=bearer", ResponseError::MissingAccessToken),
        ("null access_token", 200, JSON, br#"{"access_token":null}"#, ResponseError::MissingAccessToken),
        ("access_token not a string", 200, JSON, br#"{"access_token":12345}"#, malformed(200, "access_token is not a string")),
        ("token_type not a string", 200, JSON, br#"{"access_token":"SECRET-at","token_type":1}"#, malformed(200, "token_type is not a string")),
        // Issue 13 item 1: an array is accepted only when every element is a string.
        ("scope array with a number", 200, JSON, br#"{"access_token":"SECRET-at","scope":["a",1]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope array of objects", 200, JSON, br#"{"access_token":"SECRET-at","scope":[{"name":"a"}]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope array with null", 200, JSON, br#"{"access_token":"SECRET-at","scope":["a",null]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope object", 200, JSON, br#"{"access_token":"SECRET-at","scope":{"a":true}}"#, malformed(200, "scope is neither a string nor an array of strings")),
        ("scope number", 200, JSON, br#"{"access_token":"SECRET-at","scope":7}"#, malformed(200, "scope is neither a string nor an array of strings")),
        ("expires_in negative float", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":-1.0}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("expires_in beyond u64", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":1e30}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("expires_in NaN string", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":"NaN"}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("refresh_token not a string", 200, JSON, br#"{"access_token":"SECRET-at","refresh_token":{"v":"SECRET-rt"}}"#, malformed(200, "refresh_token is not a string")),
        ("expires_in garbage string", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":"soon"}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("expires_in negative", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":-1}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("expires_in bool", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":true}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("refresh_token_expires_in garbage", 200, FORM, b"access_token=SECRET-at&refresh_token_expires_in=x", malformed(200, "refresh_token_expires_in is not a whole number of seconds")),
        ("non-2xx without error", 400, JSON, br#"{"message":"Bad credentials","access_token":"SECRET-at"}"#, ResponseError::Http { status: 400 }),
        ("3xx with form body", 302, FORM, b"access_token=SECRET-at", ResponseError::Http { status: 302 }),
        ("error object with 200", 200, JSON, br#"{"error":{"code":401,"message":"SECRET-at"}}"#, malformed(200, "error field is not a string")),
        ("error object with 401", 401, JSON, br#"{"error":{"code":401,"message":"SECRET-at"}}"#, ResponseError::Http { status: 401 }),
    ];
    let now = at(T0);
    for (name, status, content_type, body, expected) in cases {
        let err = parse_token_response(status, content_type, body, now).unwrap_err();
        assert_eq!(err, expected, "{name}");
        let display = err.to_string();
        let debug = format!("{err:?}");
        assert!(!display.contains("SECRET"), "{name}: {display}");
        assert!(!debug.contains("SECRET"), "{name}: {debug}");
        assert!(
            display.starts_with(|c: char| c.is_lowercase()),
            "{name}: {display}"
        );
        assert!(!display.ends_with('.'), "{name}: {display}");
    }
}

#[test]
fn response_error_display_and_accessors() {
    let cases = [
        (
            oauth("invalid_grant", Some("expired"), Some("https://e/x"), 400),
            "authorization server returned error `invalid_grant` (HTTP 400): expired (see https://e/x)",
            Some(400),
            Some("invalid_grant"),
        ),
        (
            oauth("bad\u{1b}[31mcode", Some("line1\nline2"), None, 200),
            "authorization server returned error `bad\u{FFFD}[31mcode` (HTTP 200): line1 line2",
            Some(200),
            Some("bad\u{1b}[31mcode"),
        ),
        (
            ResponseError::Http { status: 503 },
            "authorization server answered HTTP 503 without an OAuth error",
            Some(503),
            None,
        ),
        (
            ResponseError::Empty { status: 200 },
            "authorization server sent an empty body (HTTP 200)",
            Some(200),
            None,
        ),
        (
            ResponseError::Html { status: 404 },
            "authorization server sent an HTML page instead of JSON or form data (HTTP 404)",
            Some(404),
            None,
        ),
        (
            malformed(200, "body is not valid json"),
            "authorization server sent an unusable body (HTTP 200): body is not valid json",
            Some(200),
            None,
        ),
        (
            ResponseError::MissingAccessToken,
            "token response has no access_token",
            None,
            None,
        ),
    ];
    for (err, display, status, code) in cases {
        assert_eq!(err.to_string(), display);
        assert_eq!(err.status(), status);
        assert_eq!(err.oauth_error(), code);
    }
    // Long server text is capped.
    let long = oauth("x", Some(&"d".repeat(5000)), None, 400).to_string();
    assert!(long.len() < 400, "{}", long.len());
    assert!(long.ends_with('…'));
}

#[test]
fn parse_response_object_for_other_endpoints() -> Result<(), Box<dyn std::error::Error>> {
    let device = parse_response_object(
        200,
        JSON,
        br#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://github.com/login/device","expires_in":"900","interval":5}"#,
    )
    ?;
    assert_eq!(device["user_code"], "WDJB-MJHT");
    assert_eq!(device["expires_in"], "900");
    let form = parse_response_object(200, None, b"a=1&b=x%20y&a=2")?;
    assert_eq!(form["a"], "1", "first occurrence wins");
    assert_eq!(form["b"], "x y");
    let slow_down = parse_response_object(200, FORM, b"error=slow_down&interval=10").unwrap_err();
    assert_eq!(slow_down.oauth_error(), Some("slow_down"));
    Ok(())
}

#[test]
fn expiry_table() {
    let hour = Some(3600);
    let buffer = DEFAULT_EXPIRY_BUFFER;
    let zero = Duration::ZERO;
    let cases: [ExpiryCase; 14] = [
        ("fresh", hour, T0 as f64, at(T0), buffer, false),
        (
            "just before the buffer",
            hour,
            T0 as f64,
            at(T0 + 3539),
            buffer,
            false,
        ),
        (
            "at the buffer",
            hour,
            T0 as f64,
            at(T0 + 3540),
            buffer,
            true,
        ),
        (
            "inside the buffer",
            hour,
            T0 as f64,
            at(T0 + 3570),
            buffer,
            true,
        ),
        (
            "no buffer, just before",
            hour,
            T0 as f64,
            at(T0 + 3599),
            zero,
            false,
        ),
        (
            "no buffer, at expiry",
            hour,
            T0 as f64,
            at(T0 + 3600),
            zero,
            true,
        ),
        (
            "fractional issued_at",
            hour,
            T0 as f64 + 0.75,
            at(T0 + 3540),
            buffer,
            false,
        ),
        (
            "clock went backwards",
            hour,
            T0 as f64,
            at(T0 - 86_400),
            buffer,
            false,
        ),
        (
            "unknown lifetime now",
            None,
            T0 as f64,
            at(T0),
            buffer,
            false,
        ),
        (
            "unknown lifetime in ten years",
            None,
            T0 as f64,
            at(T0 + 315_360_000),
            buffer,
            false,
        ),
        (
            "unknown lifetime, huge buffer",
            None,
            T0 as f64,
            at(T0),
            Duration::MAX,
            false,
        ),
        ("zero lifetime", Some(0), T0 as f64, at(T0), zero, true),
        (
            "invalid issued_at counts as epoch",
            hour,
            f64::NAN,
            at(T0),
            buffer,
            true,
        ),
        (
            "unrepresentable expiry is unknown",
            Some(u64::MAX),
            T0 as f64,
            at(T0),
            buffer,
            false,
        ),
    ];
    for (name, expires_in, issued_at, now, buffer, expired) in cases {
        let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(0));
        tokens.expires_in = expires_in;
        tokens.issued_at = issued_at;
        assert_eq!(tokens.is_expired_at(now, buffer), expired, "{name}");
        let status = tokens.status_at(now, buffer);
        let expected = if expired {
            AuthStatus::TokenExpired
        } else {
            AuthStatus::Authenticated
        };
        assert_eq!(status, expected, "{name}");
    }
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(T0));
    tokens.expires_in = hour;
    assert_eq!(tokens.expires_at(), Some(at(T0 + 3600)));
    assert!(tokens.is_expired_at(at(T0), Duration::MAX), "huge buffer");
    tokens.expires_in = None;
    assert_eq!(tokens.expires_at(), None);
}

#[test]
fn is_expired_reads_the_clock() {
    let now = SystemTime::now();
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", now);
    tokens.expires_in = Some(3600);
    assert!(!tokens.is_expired(DEFAULT_EXPIRY_BUFFER));
    assert!(tokens.is_expired(Duration::from_secs(3600)));
    tokens.issued_at -= 7200.0;
    assert!(tokens.is_expired(DEFAULT_EXPIRY_BUFFER));
    assert!(tokens.is_expired(Duration::ZERO));
    // Unknown lifetime: valid until the server says otherwise (a 401 or `invalid_grant`).
    tokens.expires_in = None;
    assert!(!tokens.is_expired(DEFAULT_EXPIRY_BUFFER));
    assert_eq!(OAuthTokens::DEFAULT_EXPIRY_BUFFER, Duration::from_secs(60));
}

#[test]
fn refresh_margin_is_half_the_lifetime_capped_at_60_s() {
    let cap = DEFAULT_EXPIRY_BUFFER;
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(T0));
    let cases: [(Option<u64>, u64); 8] = [
        (None, 60),
        (Some(0), 0),
        (Some(1), 0), // 0.5 s, whole seconds compared below
        (Some(5), 2),
        (Some(30), 15),
        (Some(120), 60),
        (Some(3600), 60),
        (Some(u64::MAX), 60),
    ];
    for (expires_in, secs) in cases {
        tokens.expires_in = expires_in;
        assert_eq!(tokens.refresh_margin(cap).as_secs(), secs, "{expires_in:?}");
    }
    tokens.expires_in = Some(5);
    assert_eq!(tokens.refresh_margin(cap), Duration::from_millis(2500));

    // 30 s token: used for its first 15 s, refreshed from then on.
    tokens.expires_in = Some(30);
    assert!(!tokens.needs_refresh_at(at(T0), cap));
    assert!(!tokens.needs_refresh_at(at(T0 + 14), cap));
    assert!(tokens.needs_refresh_at(at(T0 + 15), cap));
    assert!(tokens.needs_refresh_at(at(T0 + 31), cap));
    // The old fixed rule, kept for compatibility, calls it expired on arrival.
    assert!(tokens.is_expired_at(at(T0), cap));
    // Long-lived tokens keep the 60 s cap.
    tokens.expires_in = Some(3600);
    assert!(!tokens.needs_refresh_at(at(T0 + 3539), cap));
    assert!(tokens.needs_refresh_at(at(T0 + 3540), cap));
    // Unknown lifetime: never.
    tokens.expires_in = None;
    assert!(!tokens.needs_refresh_at(at(u64::from(u32::MAX)), cap));
    // A smaller cap wins over half the lifetime.
    tokens.expires_in = Some(30);
    assert_eq!(
        tokens.refresh_margin(Duration::from_secs(5)),
        Duration::from_secs(5)
    );
}

#[test]
fn refresh_token_expiry() {
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "bearer", at(T0));
    assert_eq!(tokens.refresh_token_expires_at(), None);
    assert!(!tokens.is_refresh_token_expired_at(at(u64::from(u32::MAX))));
    tokens.refresh_token_expires_in = Some(15_897_600);
    assert_eq!(tokens.refresh_token_expires_at(), Some(at(T0 + 15_897_600)));
    assert!(!tokens.is_refresh_token_expired_at(at(T0 + 15_897_599)));
    assert!(tokens.is_refresh_token_expired_at(at(T0 + 15_897_600)));
}

#[test]
fn status_after_refresh_failure() {
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(T0));
    assert_eq!(
        tokens.status_at(at(T0), DEFAULT_EXPIRY_BUFFER),
        AuthStatus::Authenticated
    );
    tokens.mark_refresh_failed(at(T0 + 5));
    assert_eq!(tokens.refresh_failed_at, Some((T0 + 5) as f64));
    assert_eq!(
        tokens.status_at(at(T0), DEFAULT_EXPIRY_BUFFER),
        AuthStatus::TokenRefreshFailed
    );
}

#[test]
fn scopes_table() {
    let cases: [(Option<&str>, &[&str]); 9] = [
        (None, &[]),
        (Some(""), &[]),
        (Some("   "), &[]),
        (Some("repo,gist"), &["repo", "gist"]),
        (Some("repo gist"), &["repo", "gist"]),
        (Some("repo, gist"), &["repo", "gist"]),
        (Some(" a  b,,c "), &["a", "b", "c"]),
        (
            Some("read:jira-work offline_access"),
            &["read:jira-work", "offline_access"],
        ),
        (Some("openid\tprofile"), &["openid", "profile"]),
    ];
    for (scope, expected) in cases {
        let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(T0));
        tokens.scope = scope.map(str::to_owned);
        assert_eq!(tokens.scopes(), expected, "{scope:?}");
        for s in expected {
            assert!(tokens.has_scope(s));
        }
        assert!(!tokens.has_scope("admin"));
    }
}

#[test]
fn token_type_is_case_insensitive() {
    for (token_type, bearer) in [
        ("Bearer", true),
        ("bearer", true),
        ("BEARER", true),
        (" bearer ", true),
        ("DPoP", false),
        ("mac", false),
        ("", false),
    ] {
        let tokens = OAuthTokens::new(AccessToken::new("a"), token_type, at(T0));
        assert_eq!(tokens.is_bearer(), bearer, "{token_type:?}");
        assert_eq!(tokens.token_type, token_type, "kept as sent");
    }
}

fn stored() -> OAuthTokens {
    let mut old = OAuthTokens::new(AccessToken::new("SECRET-old-at"), "Bearer", at(T0));
    old.expires_in = Some(3600);
    old.refresh_token = Some(RefreshToken::new("SECRET-old-rt"));
    old.refresh_token_expires_in = Some(10_000);
    old.scope = Some("repo gist".to_owned());
    old.id_token = Some(IdToken::new("SECRET-old-id"));
    old.extra.insert("kept".to_owned(), json!("old"));
    old.extra.insert("replaced".to_owned(), json!("old"));
    old.mark_refresh_failed(at(T0 + 1));
    old
}

#[test]
fn merge_refresh_keeps_the_old_refresh_token_when_none_is_sent()
-> Result<(), Box<dyn std::error::Error>> {
    let old = stored();
    let fresh = parse_token_response(
        200,
        JSON,
        br#"{"access_token":"SECRET-new-at","token_type":"bearer","expires_in":28800,"replaced":"new"}"#,
        at(T0 + 4000),
    )
    ?;
    let merged = old.merge_refresh(fresh);
    assert_eq!(merged.access_token.secret(), "SECRET-new-at");
    assert_eq!(merged.token_type, "bearer");
    assert_eq!(merged.expires_in, Some(28800));
    assert_eq!(merged.issued_at, (T0 + 4000) as f64);
    assert_eq!(
        merged.refresh_token.as_ref().map(RefreshToken::secret),
        Some("SECRET-old-rt")
    );
    // The old refresh token still expires at T0 + 10 000, now measured from the new issued_at.
    assert_eq!(merged.refresh_token_expires_in, Some(6000));
    assert_eq!(merged.refresh_token_expires_at(), Some(at(T0 + 10_000)));
    assert_eq!(merged.scope.as_deref(), Some("repo gist"));
    assert_eq!(
        merged.id_token.as_ref().map(IdToken::secret),
        Some("SECRET-old-id")
    );
    assert_eq!(merged.extra["kept"], "old");
    assert_eq!(merged.extra["replaced"], "new");
    assert_eq!(merged.refresh_failed_at, None);
    assert_eq!(
        merged.status_at(at(T0 + 4000), DEFAULT_EXPIRY_BUFFER),
        AuthStatus::Authenticated
    );
    Ok(())
}

#[test]
fn merge_refresh_replaces_a_rotated_refresh_token() -> Result<(), Box<dyn std::error::Error>> {
    let old = stored();
    let fresh = parse_token_response(
        200,
        FORM,
        b"access_token=SECRET-new-at&refresh_token=SECRET-new-rt&refresh_token_expires_in=15897600&scope=repo&token_type=bearer",
        at(T0 + 4000),
    )
    ?;
    let merged = old.merge_refresh(fresh);
    assert_eq!(
        merged.refresh_token.as_ref().map(RefreshToken::secret),
        Some("SECRET-new-rt")
    );
    assert_eq!(merged.refresh_token_expires_in, Some(15_897_600));
    assert_eq!(merged.scope.as_deref(), Some("repo"));
    Ok(())
}

#[test]
fn merge_refresh_edge_cases() {
    // Old refresh token already past its expiry: remaining lifetime saturates at zero.
    let old = stored();
    let fresh = OAuthTokens::new(AccessToken::new("n"), "Bearer", at(T0 + 20_000));
    let merged = old.merge_refresh(fresh);
    assert_eq!(merged.refresh_token_expires_in, Some(0));
    assert!(merged.is_refresh_token_expired_at(at(T0 + 20_000)));
    // Old refresh token without an expiry keeps having none.
    let mut old = stored();
    old.refresh_token_expires_in = None;
    let merged = old.merge_refresh(OAuthTokens::new(
        AccessToken::new("n"),
        "Bearer",
        at(T0 + 1),
    ));
    assert_eq!(merged.refresh_token_expires_in, None);
    // No old refresh token at all.
    let bare = OAuthTokens::new(AccessToken::new("o"), "Bearer", at(T0));
    let merged = bare.merge_refresh(OAuthTokens::new(
        AccessToken::new("n"),
        "Bearer",
        at(T0 + 1),
    ));
    assert_eq!(merged.refresh_token, None);
    assert_eq!(merged.access_token.secret(), "n");
}

#[test]
fn debug_never_shows_secrets() {
    let mut tokens = stored();
    tokens
        .extra
        .insert("other_token".to_owned(), json!("SECRET-extra"));
    for text in [format!("{tokens:?}"), format!("{tokens:#?}")] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("AccessToken([redacted])"));
        assert!(text.contains("RefreshToken([redacted])"));
        assert!(text.contains("IdToken([redacted])"));
        assert!(text.contains("other_token"), "keys are shown");
    }
    assert_eq!(
        format!("{:?}", AccessToken::new("SECRET")),
        "AccessToken([redacted])"
    );
    assert_eq!(
        format!("{:?}", RefreshToken::new("SECRET")),
        "RefreshToken([redacted])"
    );
    assert_eq!(
        format!("{:?}", IdToken::new("SECRET")),
        "IdToken([redacted])"
    );
    assert_eq!(AccessToken::new("s").into_secret(), "s");
}

#[test]
fn stored_json_shape() -> Result<(), Box<dyn std::error::Error>> {
    let mut tokens = OAuthTokens::new(AccessToken::new("at"), "Bearer", at(T0));
    let value: Value = serde_json::from_str(&tokens.to_json()?)?;
    // The seed's six fields are always written; additions only when set.
    assert_eq!(
        value,
        json!({
            "access_token": "at",
            "token_type": "Bearer",
            "expires_in": null,
            "refresh_token": null,
            "scope": null,
            "issued_at": 1_700_000_000.0,
        })
    );
    tokens.id_token = Some(IdToken::new("id"));
    tokens.refresh_token_expires_in = Some(5);
    tokens.refresh_failed_at = Some(1.5);
    // An extra entry named like a typed field is not written twice; the typed field wins.
    tokens
        .extra
        .insert("access_token".to_owned(), json!("shadow"));
    tokens
        .extra
        .insert("custom".to_owned(), json!({"k": [1, true, null]}));
    let json = tokens.to_json()?;
    assert_eq!(json.matches("\"access_token\"").count(), 1);
    let value: Value = serde_json::from_str(&json)?;
    assert_eq!(value["access_token"], "at");
    assert_eq!(value["id_token"], "id");
    assert_eq!(value["refresh_token_expires_in"], 5);
    assert_eq!(value["refresh_failed_at"], 1.5);
    assert_eq!(value["custom"], json!({"k": [1, true, null]}));
    Ok(())
}

#[test]
fn from_json_is_lenient_where_the_seed_may_differ() -> Result<(), Box<dyn std::error::Error>> {
    let tokens = OAuthTokens::from_json(
        r#"{"access_token":"a","token_type":"bearer","expires_in":"3600","refresh_token":null,
            "scope":null,"issued_at":1700000000,"refresh_token_expires_in":"15897600","x":1}"#,
    )?;
    assert_eq!(tokens.expires_in, Some(3600));
    assert_eq!(tokens.refresh_token_expires_in, Some(15_897_600));
    assert_eq!(tokens.issued_at, 1_700_000_000.0, "integer issued_at");
    assert_eq!(tokens.extra["x"], 1);
    // token_type missing: Bearer.
    let tokens = OAuthTokens::from_json(r#"{"access_token":"a","issued_at":1.5}"#)?;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, None);
    Ok(())
}

#[test]
fn json_errors_are_typed_and_never_quote_the_file() {
    let cases: [(&str, ErrorKind, Option<&str>); 7] = [
        (
            r#"{"token_type":"Bearer","issued_at":1}"#,
            ErrorKind::Data,
            Some("access_token"),
        ),
        (
            r#"{"access_token":"SECRET"}"#,
            ErrorKind::Data,
            Some("issued_at"),
        ),
        (
            r#"{"access_token":"SECRET","issued_at":"SECRET"}"#,
            ErrorKind::Data,
            None,
        ),
        (
            r#"{"access_token":"SECRET","issued_at":1,"expires_in":"SECRET"}"#,
            ErrorKind::Data,
            None,
        ),
        (r#"{"access_token":SECRET}"#, ErrorKind::Syntax, None),
        (r#"{"access_token":"SECRET","#, ErrorKind::Eof, None),
        (r#"["SECRET"]"#, ErrorKind::Data, None),
    ];
    for (json, kind, missing) in cases {
        let err = OAuthTokens::from_json(json).unwrap_err();
        assert_eq!(err.kind(), kind, "{json}");
        assert_eq!(err.missing_field(), missing, "{json}");
        assert!(err.line() >= 1, "{json}");
        let display = err.to_string();
        assert!(!display.contains("SECRET"), "{display}");
        assert!(!format!("{err:?}").contains("SECRET"));
        assert!(display.starts_with("token json"), "{display}");
        assert!(!display.ends_with('.'));
    }
    let err = OAuthTokens::from_json("{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "token json is missing the field `access_token` at line 1 column 2"
    );
}

#[test]
fn non_finite_times_are_not_saved() {
    let mut tokens = OAuthTokens::new(AccessToken::new("a"), "Bearer", at(T0));
    tokens.issued_at = f64::INFINITY;
    let err = tokens.to_json().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NonFiniteTime);
    assert_eq!(
        err.to_string(),
        "token times must be finite numbers to be saved"
    );
    tokens.issued_at = 1.0;
    tokens.refresh_failed_at = Some(f64::NAN);
    assert_eq!(
        tokens.to_json().unwrap_err().kind(),
        ErrorKind::NonFiniteTime
    );
}

#[test]
fn unix_seconds_conversions() {
    assert_eq!(unix_seconds(at(T0)), T0 as f64);
    assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0.0);
    assert_eq!(from_unix_seconds(T0 as f64), at(T0));
    assert_eq!(
        from_unix_seconds(1.5),
        UNIX_EPOCH + Duration::from_millis(1500)
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, f64::MAX] {
        assert_eq!(from_unix_seconds(bad), UNIX_EPOCH, "{bad}");
    }
}

#[test]
fn auth_status_names() -> Result<(), Box<dyn std::error::Error>> {
    let cases = [
        (AuthStatus::NotAuthenticated, "not_authenticated"),
        (AuthStatus::Authenticated, "authenticated"),
        (AuthStatus::TokenExpired, "token_expired"),
        (AuthStatus::TokenRefreshFailed, "token_refresh_failed"),
    ];
    assert_eq!(AuthStatus::ALL.len(), cases.len());
    for (status, name) in cases {
        assert_eq!(status.as_str(), name);
        assert_eq!(status.to_string(), name);
        assert_eq!(name.parse::<AuthStatus>(), Ok(status));
        assert_eq!(serde_json::to_value(status)?, json!(name));
        assert_eq!(serde_json::from_value::<AuthStatus>(json!(name))?, status);
    }
    assert_eq!(
        "Authenticated".parse::<AuthStatus>(),
        Err(UnknownAuthStatus)
    );
    assert_eq!(UnknownAuthStatus.to_string(), "unknown auth status");
    Ok(())
}
