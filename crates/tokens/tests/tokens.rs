//! Integration tests: token files in the Python original's format, and a serialisation round-trip property.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use context_harness_tokens::{
    AccessToken, AuthStatus, DEFAULT_EXPIRY_BUFFER, IdToken, OAuthTokens, RefreshToken,
    parse_token_response,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SEED_TOKEN: &str = include_str!("fixtures/seed_token.json");
const SEED_TOKEN_NO_EXPIRY: &str = include_str!("fixtures/seed_token_no_expiry.json");

#[test]
fn seed_token_file_loads_unchanged() {
    let tokens = OAuthTokens::from_json(SEED_TOKEN).unwrap();
    assert_eq!(
        tokens.access_token.secret(),
        "eyJhbGciOiJSUzI1NiJ9.seed-access-token.sig"
    );
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, Some(3600));
    assert_eq!(
        tokens.refresh_token.as_ref().map(RefreshToken::secret),
        Some("dGhpcyBpcyBhIHJlZnJlc2ggdG9rZW4")
    );
    assert_eq!(
        tokens.scope.as_deref(),
        Some("read:jira-work offline_access")
    );
    assert_eq!(tokens.issued_at, 1_713_012_345.678_901_2);
    assert!(tokens.extra.is_empty());
    assert_eq!(tokens.id_token, None);
    assert_eq!(tokens.refresh_token_expires_in, None);
    assert_eq!(tokens.refresh_failed_at, None);

    // Expiry as the Python original computes it: issued_at + expires_in - 60 s.
    let issued = UNIX_EPOCH + Duration::from_secs_f64(1_713_012_345.678_901_2);
    assert!(!tokens.is_expired_at(issued + Duration::from_secs(3539), DEFAULT_EXPIRY_BUFFER));
    assert!(tokens.is_expired_at(issued + Duration::from_secs(3541), DEFAULT_EXPIRY_BUFFER));
    assert!(tokens.is_expired(DEFAULT_EXPIRY_BUFFER), "issued in 2024");

    // Writing it back gives the same JSON value, field for field (the Python original can read it).
    let written: Value = serde_json::from_str(&tokens.to_json().unwrap()).unwrap();
    let original: Value = serde_json::from_str(SEED_TOKEN).unwrap();
    assert_eq!(written, original);
    // And the same text as Python's `json.dumps(..., indent=2)`, float repr included.
    assert_eq!(format!("{}\n", tokens.to_json().unwrap()), SEED_TOKEN);
}

#[test]
fn seed_token_without_expiry_is_valid_until_the_server_says_otherwise() {
    let tokens = OAuthTokens::from_json(SEED_TOKEN_NO_EXPIRY).unwrap();
    assert_eq!(tokens.expires_in, None);
    assert_eq!(tokens.refresh_token, None);
    assert_eq!(tokens.scopes(), ["repo", "gist"]);
    assert!(tokens.is_bearer());
    assert_eq!(tokens.expires_at(), None);
    let far_future = SystemTime::now() + Duration::from_secs(50 * 365 * 86_400);
    assert!(!tokens.is_expired_at(far_future, DEFAULT_EXPIRY_BUFFER));
    assert!(!tokens.is_expired(DEFAULT_EXPIRY_BUFFER));
    assert_eq!(
        tokens.status_at(far_future, DEFAULT_EXPIRY_BUFFER),
        AuthStatus::Authenticated
    );
    let written: Value = serde_json::from_str(&tokens.to_json().unwrap()).unwrap();
    let original: Value = serde_json::from_str(SEED_TOKEN_NO_EXPIRY).unwrap();
    assert_eq!(written, original);
}

#[test]
fn debug_of_loaded_tokens_never_contains_the_secrets() {
    let tokens = OAuthTokens::from_json(SEED_TOKEN).unwrap();
    let debug = format!("{tokens:?} {tokens:#?}");
    assert!(!debug.contains(tokens.access_token.secret()));
    assert!(!debug.contains(tokens.refresh_token.as_ref().unwrap().secret()));
    assert!(!debug.contains("seed-access"));
}

#[test]
fn response_to_file_to_response_cycle() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let tokens = parse_token_response(
        200,
        Some("application/x-www-form-urlencoded"),
        b"access_token=gho_x&token_type=bearer&scope=repo%2Cgist&expires_in=28800&refresh_token=ghr_y&refresh_token_expires_in=15897600&extra_field=kept",
        now,
    )
    .unwrap();
    let reloaded = OAuthTokens::from_json(&tokens.to_json().unwrap()).unwrap();
    assert_eq!(reloaded, tokens);
    assert_eq!(reloaded.extra["extra_field"], "kept");
    assert_eq!(
        reloaded.refresh_token_expires_at(),
        Some(now + Duration::from_secs(15_897_600))
    );
}

fn secret() -> impl Strategy<Value = String> {
    // Printable ASCII plus some non-ASCII, quotes and backslashes to stress escaping.
    "[ -~é€\u{1F600}\"\\\\]{1,64}"
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KNOWN: [&str; 9] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "issued_at",
    "id_token",
    "refresh_token_expires_in",
    "refresh_failed_at",
];

fn extra() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..5).prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .collect()
    })
}

fn tokens() -> impl Strategy<Value = OAuthTokens> {
    (
        (
            secret(),
            "[A-Za-z]{0,10}",
            any::<Option<u64>>(),
            prop::option::of(secret()),
            prop::option::of("[a-z:_, ]{0,40}"),
        ),
        (
            0.0f64..4.0e9,
            prop::option::of(secret()),
            any::<Option<u64>>(),
            prop::option::of(0.0f64..4.0e9),
            extra(),
        ),
    )
        .prop_map(
            |(
                (access, token_type, expires_in, refresh, scope),
                (issued_at, id, refresh_expires_in, failed_at, extra),
            )| {
                OAuthTokens {
                    access_token: AccessToken::new(access),
                    token_type,
                    expires_in,
                    refresh_token: refresh.map(RefreshToken::new),
                    scope,
                    issued_at,
                    id_token: id.map(IdToken::new),
                    refresh_token_expires_in: refresh_expires_in,
                    refresh_failed_at: failed_at,
                    extra,
                }
            },
        )
}

proptest! {
    #[test]
    fn json_round_trips(tokens in tokens()) {
        let json = tokens.to_json().unwrap();
        let parsed = OAuthTokens::from_json(&json).unwrap();
        prop_assert_eq!(&parsed, &tokens);
        // Serialising again is stable.
        prop_assert_eq!(parsed.to_json().unwrap(), json);
    }

    #[test]
    fn debug_never_contains_secrets(tokens in tokens()) {
        let debug = format!("{tokens:?}");
        // Secrets are at least 1 char; only check ones long enough not to collide with field names.
        let access = tokens.access_token.secret();
        if access.len() >= 8 {
            prop_assert!(!debug.contains(access));
        }
        if let Some(refresh) = tokens.refresh_token.as_ref().map(RefreshToken::secret).filter(|s| s.len() >= 8) {
            prop_assert!(!debug.contains(refresh));
        }
    }

    #[test]
    fn parsing_arbitrary_bodies_never_panics_or_leaks(body in prop::collection::vec(any::<u8>(), 0..256), status in 100u16..600) {
        let marker = b"SECRETSECRET";
        let mut body = body;
        body.extend_from_slice(marker);
        for content_type in [None, Some("application/json"), Some("application/x-www-form-urlencoded"), Some("text/html")] {
            if let Err(err) = parse_token_response(status, content_type, &body, SystemTime::now()) {
                // Only the OAuth error fields may repeat server text; nothing else from the body.
                let text = format!("{err} {err:?}");
                prop_assert!(!text.contains("SECRETSECRET") || err.oauth_error().is_some());
            }
        }
    }

    #[test]
    fn token_responses_round_trip_through_json_bodies(
        access in "[!-~]{1,40}",
        expires_in in any::<Option<u32>>(),
        as_string in any::<bool>(),
        scope in prop::option::of("[a-z]{1,5}([ ,][a-z]{1,5}){0,3}"),
    ) {
        let mut body = json!({ "access_token": access, "token_type": "bearer" });
        if let Some(secs) = expires_in {
            body["expires_in"] = if as_string { json!(secs.to_string()) } else { json!(secs) };
        }
        if let Some(scope) = &scope {
            body["scope"] = json!(scope);
        }
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tokens = parse_token_response(200, Some("application/json"), body.to_string().as_bytes(), now).unwrap();
        prop_assert_eq!(tokens.access_token.secret(), access.as_str());
        // Lifetimes above a year are clamped (see the `hostile` tests).
        prop_assert_eq!(tokens.expires_in, expires_in.map(|s| u64::from(s).min(context_harness_tokens::MAX_LIFETIME_SECS)));
        prop_assert_eq!(tokens.scope.as_deref(), scope.as_deref());
        let reloaded = OAuthTokens::from_json(&tokens.to_json().unwrap()).unwrap();
        prop_assert_eq!(reloaded, tokens);
    }
}
