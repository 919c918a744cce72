//! Property tests: a hostile token endpoint cannot make the parser panic, push an expiry past what
//! time arithmetic holds, or smuggle terminal escapes through `scope` or an error's `Display`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use context_harness_tokens::{
    DEFAULT_EXPIRY_BUFFER, MAX_LIFETIME_SECS, OAuthTokens, is_scope_token, is_unsafe_for_terminal,
    parse_response_object, parse_token_response, terminal_text,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON numbers at and beyond every edge the parser could trip on.
fn extreme_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1.0e308)),
        Just(json!(-1.0e308)),
        Just(json!(18_446_744_073_709_551_615.5)),
        Just(json!(0.5)),
        Just(json!("9223372036854775807")),
        Just(json!("99999999999999999999999")),
        Just(json!("1e400")),
        Just(json!("NaN")),
        Just(json!("-0")),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Any JSON value a server could put in a field.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        extreme_number(),
        any::<String>().prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!([1, "a"])),
        Just(json!({"nested": {"deep": [null]}})),
    ]
}

/// Text full of terminal attacks.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("\x1b]52;c;ZXZpbA==\x07".to_owned()),
        Just("\x1b]8;;https://evil.example\x1b\\ok\x1b]8;;\x1b\\".to_owned()),
        Just("\x1b[2J\u{202E}abc\u{2066}".to_owned()),
        "[a-z\\x1b\\x07\\x9b\\u{200b}\\u{202a}-\\u{202e} ]{0,40}",
    ]
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes with any status and content type: an answer or an error, never a panic, and
    /// the error's text is terminal-safe.
    #[test]
    fn arbitrary_bodies_never_panic(
        status in any::<u16>(),
        content_type in proptest::option::of("[a-z/+;= -]{0,30}"),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        match parse_token_response(status, content_type.as_deref(), &body, SystemTime::now()) {
            Ok(t) => prop_assert!(!t.access_token.secret().is_empty()),
            Err(e) => prop_assert!(!e.to_string().chars().any(is_unsafe_for_terminal)),
        }
    }

    /// Token responses of the right shape with extreme numbers and hostile strings: no panic, the
    /// lifetimes are clamped, expiry arithmetic works, and every kept scope token is valid.
    #[test]
    fn right_shape_with_extreme_values(
        expires_in in any_value(),
        refresh_expires_in in any_value(),
        scope in hostile_text(),
        issued in prop_oneof![Just(0u64), Just(1_700_000_000u64), Just(u64::from(u32::MAX) * 4)],
        error_description in hostile_text(),
        with_error in any::<bool>(),
    ) {
        let mut body = json!({
            "access_token": "at", "token_type": "Bearer", "refresh_token": "rt",
            "expires_in": expires_in, "refresh_token_expires_in": refresh_expires_in,
            "scope": scope,
        });
        if with_error {
            body["error"] = json!("invalid_grant");
            body["error_description"] = json!(error_description);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        match parse_token_response(200, Some("application/json"), &bytes, at(issued)) {
            Ok(t) => {
                prop_assert!(t.expires_in.is_none_or(|s| s <= MAX_LIFETIME_SECS));
                prop_assert!(t.refresh_token_expires_in.is_none_or(|s| s <= MAX_LIFETIME_SECS));
                if t.expires_in.is_some() {
                    prop_assert!(t.expires_at().is_some());
                }
                let _ = t.is_expired_at(SystemTime::now(), DEFAULT_EXPIRY_BUFFER);
                let _ = t.is_refresh_token_expired_at(SystemTime::now());
                let _ = t.merge_refresh(t.clone());
                for s in t.scopes() {
                    prop_assert!(is_scope_token(s), "{s:?}");
                }
                prop_assert!(!t.scope.unwrap_or_default().chars().any(is_unsafe_for_terminal));
            }
            Err(e) => prop_assert!(!e.to_string().chars().any(is_unsafe_for_terminal), "{e}"),
        }
    }

    /// Form-encoded answers (GitHub without `Accept: application/json`): no panic.
    #[test]
    fn arbitrary_form_bodies_never_panic(body in "[a-z_=&%0-9A-F+.\\x1b-]{0,200}") {
        let _ = parse_response_object(200, Some("application/x-www-form-urlencoded"), body.as_bytes());
        let _ = parse_token_response(400, None, body.as_bytes(), SystemTime::now());
    }

    /// The sanitiser's output never holds a control, format or bidi character, for any input.
    #[test]
    fn terminal_text_is_always_safe(text in any::<String>()) {
        let out = terminal_text(&text);
        prop_assert!(!out.chars().any(is_unsafe_for_terminal));
        prop_assert!(out.chars().count() <= context_harness_tokens::MAX_TERMINAL_CHARS + 1);
    }
}

#[test]
fn huge_lifetimes_are_clamped_to_a_year() {
    let body = br#"{"access_token":"at","expires_in":9223372036854775807,"refresh_token_expires_in":"18446744073709551615"}"#;
    let t = parse_token_response(200, None, body, at(1_700_000_000)).unwrap();
    assert_eq!(t.expires_in, Some(MAX_LIFETIME_SECS));
    assert_eq!(t.refresh_token_expires_in, Some(MAX_LIFETIME_SECS));
    assert_eq!(t.expires_at(), Some(at(1_700_000_000 + MAX_LIFETIME_SECS)));
    // A year and a day later the token counts as expired (before the clamp it never did).
    assert!(t.is_expired_at(
        at(1_700_000_000 + MAX_LIFETIME_SECS + 86_400),
        DEFAULT_EXPIRY_BUFFER
    ));
    // Ordinary lifetimes are untouched.
    let t = parse_token_response(
        200,
        None,
        br#"{"access_token":"at","expires_in":3600}"#,
        at(0),
    )
    .unwrap();
    assert_eq!(t.expires_in, Some(3600));
}

#[test]
fn hostile_scope_tokens_are_dropped() {
    let body = json!({
        "access_token": "at",
        "scope": "repo \u{1b}]52;c;ZXZpbA==\u{7} read:org \u{202E}nimda \u{1b}[2J gist",
    });
    let t = OAuthTokens::from_response_object(body.as_object().unwrap().clone(), at(0)).unwrap();
    assert_eq!(t.scope.as_deref(), Some("repo read:org gist"));
    assert_eq!(t.scopes(), ["repo", "read:org", "gist"]);
}

#[test]
fn error_display_is_terminal_safe() {
    let body = json!({
        "error": "invalid\u{1b}[2J_grant",
        "error_description": "\u{1b}]8;;https://evil.example\u{1b}\\click\u{1b}]8;;\u{1b}\\ \u{202E}txet",
        "error_uri": "https://x.example/\u{9b}2J",
    });
    let e = parse_token_response(400, None, body.to_string().as_bytes(), at(0)).unwrap_err();
    let shown = e.to_string();
    assert!(!shown.chars().any(is_unsafe_for_terminal), "{shown:?}");
    assert!(shown.contains("click"));
}
