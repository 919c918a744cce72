//! Property tests: the parsers of server answers (device authorization, token polls, discovery
//! metadata per RFC 8414 / RFC 9728, dynamic registration, `WWW-Authenticate`) never panic on
//! arbitrary input, and clamp extreme numbers instead of overflowing. Pure parsing: no server.

use std::time::{Duration, SystemTime};

use context_harness_providers::protocol::{
    AuthorizationServerMetadata, ClientRegistration, DeviceAuthorization, MAX_EXPIRES_IN,
    MAX_INTERVAL, MIN_INTERVAL, ProtectedResourceMetadata, bearer_resource_metadata,
    parse_registration_response, parse_www_authenticate, registration_request,
};

/// A poll outcome as the protocol crate classifies it.
type PollOutcome = context_harness_providers::protocol::PollOutcome;
use context_harness_providers::tokens::{is_scope_token, is_unsafe_for_terminal};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn extreme_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(9_223_372_036_854_775_807_i64)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1.0e308)),
        Just(json!(-0.5)),
        Just(json!("9223372036854775807")),
        Just(json!("18446744073709551616")),
        Just(json!(" 5 ")),
        Just(json!("-1")),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        extreme_number(),
        any::<String>().prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!(["a", 1])),
        Just(json!({"a": {"b": null}})),
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("https://as.example/device\u{1b}]52;c;ZXZpbA==\u{7}".to_owned()),
        Just("\u{1b}]8;;https://evil.example\u{1b}\\ok\u{1b}]8;;\u{1b}\\".to_owned()),
        Just("ABCD\u{202E}HGFE\u{1b}[2J".to_owned()),
        "(https?://)?[a-z.\\x1b\\x07\\u{9b}\\u{200b}\\u{202e} /]{0,40}",
    ]
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Device authorization answers of the right shape with extreme numbers and hostile strings:
    /// no panic; a parsed answer's durations are within the documented bounds.
    #[test]
    fn device_authorization_never_panics(
        expires_in in any_value(),
        interval in any_value(),
        user_code in hostile_text(),
        uri in hostile_text(),
        complete in proptest::option::of(hostile_text()),
    ) {
        let mut answer = json!({
            "device_code": "dc", "user_code": user_code, "verification_uri": uri,
            "expires_in": expires_in, "interval": interval,
        });
        if let Some(c) = complete {
            answer["verification_uri_complete"] = json!(c);
        }
        match DeviceAuthorization::from_object(&object(answer)) {
            Ok(a) => {
                prop_assert!(a.expires_in <= MAX_EXPIRES_IN);
                prop_assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&a.interval));
            }
            Err(e) => prop_assert!(!e.to_string().chars().any(is_unsafe_for_terminal), "{e}"),
        }
    }

    /// Any object at all as a device authorization answer: no panic.
    #[test]
    fn device_authorization_any_object(entries in proptest::collection::btree_map("[a-z_]{1,12}", any_value(), 0..8)) {
        let map: Map<String, Value> = entries.into_iter().collect();
        let _ = DeviceAuthorization::from_object(&map);
    }

    /// Token-endpoint polls: arbitrary bodies and `slow_down` with extreme intervals.
    #[test]
    fn poll_answers_never_panic(
        status in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        interval in extreme_number(),
    ) {
        let _ = PollOutcome::from_response(status, None, &body, SystemTime::now());
        let slow = json!({"error": "slow_down", "interval": interval}).to_string();
        if let PollOutcome::OAuthError { interval: Some(i), .. } =
            PollOutcome::from_response(400, Some("application/json"), slow.as_bytes(), SystemTime::now())
        {
            prop_assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&i));
        }
    }

    /// RFC 8414 and RFC 9728 metadata: arbitrary bytes, and the right shape with hostile values.
    #[test]
    fn metadata_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        scopes in proptest::collection::vec(hostile_text(), 0..5),
        endpoint in hostile_text(),
        name in hostile_text(),
    ) {
        let _ = serde_json::from_slice::<AuthorizationServerMetadata>(&body);
        let _ = serde_json::from_slice::<ProtectedResourceMetadata>(&body);
        let as_doc = json!({
            "issuer": "https://as.example", "authorization_endpoint": endpoint,
            "token_endpoint": endpoint, "scopes_supported": scopes,
            "code_challenge_methods_supported": ["S256"],
        });
        if let Ok(m) = serde_json::from_value::<AuthorizationServerMetadata>(as_doc) {
            for s in m.scopes_supported.iter().flatten() {
                prop_assert!(is_scope_token(s), "{s:?}");
            }
            let _ = m.supports_s256();
            let _ = m.offers_offline_access();
        }
        let prm = json!({
            "resource": endpoint, "authorization_servers": [endpoint],
            "scopes_supported": scopes, "resource_name": name,
        });
        if let Ok(m) = serde_json::from_value::<ProtectedResourceMetadata>(prm) {
            for s in m.scopes_supported.iter().flatten() {
                prop_assert!(is_scope_token(s), "{s:?}");
            }
        }
    }

    /// RFC 7591 registration answers: arbitrary bytes and statuses, and the right shape with
    /// extreme numbers: no panic, and `fits` works for any expiry.
    #[test]
    fn registration_never_panics(
        status in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        expires_at in any_value(),
        issued_at in any_value(),
        client_id in any_value(),
    ) {
        let uris = vec!["http://127.0.0.1:8080/callback".to_owned()];
        let request = registration_request("context-harness", &uris, &[], None);
        let _ = parse_registration_response(status, None, &body, "https://as.example", &request);
        let answer = json!({
            "client_id": client_id, "client_secret": "s",
            "client_secret_expires_at": expires_at, "client_id_issued_at": issued_at,
        })
        .to_string();
        let parsed: Result<ClientRegistration, _> = parse_registration_response(
            201, Some("application/json"), answer.as_bytes(), "https://as.example", &request,
        );
        match parsed {
            Ok(reg) => {
                let _ = reg.fits(&uris, "authorization_code", SystemTime::now());
                let debug = format!("{reg:?}");
                prop_assert!(!debug.contains("\"s\""), "{}", debug);
            }
            Err(e) => prop_assert!(!e.to_string().chars().any(is_unsafe_for_terminal), "{e}"),
        }
    }

    /// `WWW-Authenticate`: any text, and text built from its own syntax: no panic, no endless loop,
    /// and a scope taken from it holds only valid scope tokens.
    #[test]
    fn www_authenticate_never_panics(
        text in any::<String>(),
        pieces in proptest::collection::vec(
            prop_oneof![
                Just("Bearer".to_owned()), Just(" ".to_owned()), Just(",".to_owned()),
                Just("=".to_owned()), Just("\"".to_owned()), Just("\\".to_owned()),
                Just("scope".to_owned()), Just("resource_metadata".to_owned()),
                Just("\u{1b}[2J".to_owned()), Just("==".to_owned()), Just("/".to_owned()),
                "[a-z\\x00-\\x1f\\u{80}-\\u{10ffff}]{0,3}",
            ],
            0..30,
        ),
    ) {
        for value in [text, pieces.concat()] {
            let challenges = parse_www_authenticate(&value);
            let (_, scope) = bearer_resource_metadata(&challenges);
            if let Some(scope) = scope {
                prop_assert!(scope.split(' ').all(is_scope_token), "{scope:?}");
            }
        }
    }
}

/// The reported crash: `"interval": 9223372036854775807` (and friends) are clamped at parse time.
#[test]
fn huge_device_durations_are_clamped() {
    let answer = json!({
        "device_code": "dc", "user_code": "ABCD-EFGH",
        "verification_uri": "https://as.example/device",
        "expires_in": 9_223_372_036_854_775_807_i64, "interval": 9_223_372_036_854_775_807_i64,
    });
    let a = DeviceAuthorization::from_object(&object(answer)).unwrap();
    assert_eq!(a.interval, MAX_INTERVAL);
    assert_eq!(a.expires_in, MAX_EXPIRES_IN);
    assert_eq!(MAX_INTERVAL, Duration::from_secs(300));
}
