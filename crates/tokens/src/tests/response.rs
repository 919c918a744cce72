//! Parsing token-endpoint responses (RFC 6749 §5.1 and §5.2): successes, errors and unusable bodies.

use super::*;

/// A table row: name, HTTP status, content type, body, expected outcome.
type Case<'a, T> = (&'a str, u16, Option<&'a str>, &'a [u8], T);

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
        // Zero or negative: already expired, kept as such (the sign-in is not thrown away).
        (
            "expires_in 0 is already expired",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","expires_in":0}"#,
            Expect { expires_in: Some(0), ..BASE },
        ),
        (
            "expires_in negative is already expired",
            200,
            JSON,
            br#"{"access_token":"SECRET-at","expires_in":-1}"#,
            Expect { expires_in: Some(0), ..BASE },
        ),
        (
            "expires_in negative float or string is already expired",
            200,
            FORM,
            b"access_token=SECRET-at&expires_in=-3600.5&refresh_token=SECRET-rt&refresh_token_expires_in=-2",
            Expect { expires_in: Some(0), refresh: Some("SECRET-rt"), refresh_expires_in: Some(0), ..BASE },
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
        // Off-spec but unambiguous answers. Twitch's, verbatim in shape.
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

/// The reason of an access token that is not RFC 6749 `VSCHAR`.
const AT_NOT_VSCHAR: &str =
    "access_token holds characters other than printable ASCII (RFC 6749 Appendix A)";

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
        // A `scope` array is accepted only when every element is a string.
        ("scope array with a number", 200, JSON, br#"{"access_token":"SECRET-at","scope":["a",1]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope array of objects", 200, JSON, br#"{"access_token":"SECRET-at","scope":[{"name":"a"}]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope array with null", 200, JSON, br#"{"access_token":"SECRET-at","scope":["a",null]}"#, malformed(200, "scope array has an element that is not a string")),
        ("scope object", 200, JSON, br#"{"access_token":"SECRET-at","scope":{"a":true}}"#, malformed(200, "scope is neither a string nor an array of strings")),
        ("scope number", 200, JSON, br#"{"access_token":"SECRET-at","scope":7}"#, malformed(200, "scope is neither a string nor an array of strings")),
        ("expires_in beyond u64", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":1e30}"#, malformed(200, "expires_in is not a whole number of seconds")),
        ("expires_in NaN string", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":"NaN"}"#, malformed(200, "expires_in is not a whole number of seconds")),
        // RFC 6749 Appendix A: access and refresh tokens are VSCHAR (printable ASCII), so none can
        // carry a terminal control or a header-splitting line break to `mcp token`'s output.
        ("access_token with an escape", 200, JSON, b"{\"access_token\":\"SECRET-at\\u001b]52;c;eA==\\u0007\"}", malformed(200, AT_NOT_VSCHAR)),
        ("access_token with a line break", 200, JSON, br#"{"access_token":"SECRET-at\r\nX-Injected: 1"}"#, malformed(200, AT_NOT_VSCHAR)),
        ("access_token with a bidi override", 200, JSON, b"{\"access_token\":\"SECRET-at\xe2\x80\xae\"}", malformed(200, AT_NOT_VSCHAR)),
        ("access_token with DEL in a form", 200, FORM, b"access_token=SECRET-at%7F", malformed(200, AT_NOT_VSCHAR)),
        ("refresh_token with an escape", 200, JSON, br#"{"access_token":"SECRET-at","refresh_token":"SECRET-rt\u001b[2J"}"#, malformed(200, "refresh_token holds characters other than printable ASCII (RFC 6749 Appendix A)")),
        ("refresh_token not a string", 200, JSON, br#"{"access_token":"SECRET-at","refresh_token":{"v":"SECRET-rt"}}"#, malformed(200, "refresh_token is not a string")),
        ("expires_in garbage string", 200, JSON, br#"{"access_token":"SECRET-at","expires_in":"soon"}"#, malformed(200, "expires_in is not a whole number of seconds")),
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
