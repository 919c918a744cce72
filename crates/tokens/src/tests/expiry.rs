//! Expiry, the refresh margin, scopes and token types.

use super::*;

/// An expiry table row: name, expires_in, issued_at, now, buffer, expired.
type ExpiryCase = (&'static str, Option<u64>, f64, SystemTime, Duration, bool);

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
