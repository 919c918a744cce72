//! Merging a refresh response, Debug redaction, the stored JSON form and status names.

use serde_json::{Value, json};

use super::*;

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
    // The Python context-harness's six fields are always written; additions only when set.
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
