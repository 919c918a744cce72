//! `parse_redirect_url`: the paste-back path, with the listener's rules.

use context_harness_callback_server::{Error, parse_redirect_url};
use context_harness_pkce::State;

const REDIRECT: &str = "http://localhost:8080/callback";

#[test]
fn accepts_the_redirect_with_the_right_state() {
    let state = State::generate().unwrap();
    let s = state.as_str();
    for pasted in [
        format!("http://localhost:8080/callback?code=abc&state={s}"),
        format!("  HTTP://LocalHost:8080/callback?state={s}&code=abc&scope=x#_=_ \n"),
    ] {
        let r = parse_redirect_url(&pasted, REDIRECT, &state).unwrap();
        assert_eq!(r.code.secret(), "abc");
        assert_eq!(r.state, s);
        assert_eq!(r.iss, None);
    }
    let r = parse_redirect_url(
        &format!("http://[::1]:57548/cb?code=a%2Bb+c&state={s}&iss=https%3A%2F%2Fas"),
        "http://[::1]:57548/cb",
        &state,
    )
    .unwrap();
    assert_eq!(r.code.secret(), "a+b c");
    assert_eq!(r.iss.as_deref(), Some("https://as"));
    let r = parse_redirect_url(
        &format!("http://127.0.0.1/callback?code=x&state={s}"),
        "http://127.0.0.1:80/callback",
        &state,
    )
    .unwrap();
    assert_eq!(r.code.secret(), "x");
}

#[test]
fn rejects_urls_that_are_not_this_redirect() {
    let state = State::generate().unwrap();
    let s = state.as_str();
    let q = format!("?code=abc&state={s}");
    for pasted in [
        format!("https://localhost:8080/callback{q}"),
        format!("http://127.0.0.1:8080/callback{q}"),
        format!("http://localhost:3000/callback{q}"),
        format!("http://localhost/callback{q}"),
        format!("http://localhost:8080/callback/{q}"),
        format!("http://localhost:8080/Callback{q}"),
        format!("http://localhost:8080/{q}"),
        format!("http://evil@localhost:8080/callback{q}"),
        format!("localhost:8080/callback{q}"),
        format!("/callback{q}"),
        format!("code=abc&state={s}"),
        String::new(),
        "http://localhost:8080/callback".into(),
    ] {
        let err = parse_redirect_url(&pasted, REDIRECT, &state).unwrap_err();
        assert!(
            matches!(err, Error::InvalidCallback { .. }),
            "{pasted}: {err:?}"
        );
        assert!(!err.to_string().contains(s), "{err}");
        assert!(!err.to_string().contains("abc"), "{err}");
    }
    for bad_redirect in ["not a url", "http://localhost:8080/callback?x=1"] {
        let pasted = format!("http://localhost:8080/callback{q}");
        let err = parse_redirect_url(&pasted, bad_redirect, &state).unwrap_err();
        assert!(matches!(err, Error::InvalidCallback { .. }), "{err:?}");
    }
}

#[test]
fn state_rules_match_the_listener() {
    let state = State::generate().unwrap();
    let other = State::generate().unwrap();
    for pasted in [
        format!("{REDIRECT}?code=abc&state={}", other.as_str()),
        format!("{REDIRECT}?code=abc"),
        format!("{REDIRECT}?code=abc&state="),
        format!("{REDIRECT}?error=access_denied&state={}", other.as_str()),
    ] {
        let err = parse_redirect_url(&pasted, REDIRECT, &state).unwrap_err();
        assert!(matches!(err, Error::StateMismatch), "{pasted}: {err:?}");
        assert!(
            err.to_string()
                .contains("possible CSRF or an old browser tab")
        );
    }
}

#[test]
fn malformed_queries_are_invalid() {
    let state = State::generate().unwrap();
    let s = state.as_str();
    for query in [
        format!("code=a&code=b&state={s}"),
        format!("code=a&state={s}&state={s}"),
        format!("code=%zz&state={s}"),
        format!("code=%C3&state={s}"),
        format!("code=a%00&state={s}"),
        format!("state={s}"),
    ] {
        let pasted = format!("{REDIRECT}?{query}");
        let err = parse_redirect_url(&pasted, REDIRECT, &state).unwrap_err();
        assert!(
            matches!(err, Error::InvalidCallback { .. }),
            "{query}: {err:?}"
        );
    }
}

#[test]
fn error_responses_with_the_right_state() {
    let state = State::generate().unwrap();
    let s = state.as_str();
    let err = parse_redirect_url(
        &format!("{REDIRECT}?error=access_denied&state={s}"),
        REDIRECT,
        &state,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                description: None,
                iss: None
            }
        ),
        "{err:?}"
    );
    let err = parse_redirect_url(
        &format!("{REDIRECT}?error=server_error&error_description=Down%0D&state={s}"),
        REDIRECT,
        &state,
    )
    .unwrap_err();
    // Control characters are refused outright.
    assert!(matches!(err, Error::InvalidCallback { .. }), "{err:?}");
    let err = parse_redirect_url(
        &format!(
            "{REDIRECT}?error=server_error&error_description=Down&error_uri=u&iss=i&state={s}"
        ),
        REDIRECT,
        &state,
    )
    .unwrap_err();
    let Error::Authorization {
        error,
        description,
        uri,
        iss,
    } = err
    else {
        panic!("expected Authorization");
    };
    assert_eq!(
        (
            error.as_str(),
            description.as_deref(),
            uri.as_deref(),
            iss.as_deref()
        ),
        ("server_error", Some("Down"), Some("u"), Some("i"))
    );
}

#[test]
fn display_sanitises_provider_text() {
    let err = Error::Authorization {
        error: "bad\u{1b}[2J".into(),
        description: Some("line\nbreak".into()),
        uri: None,
        iss: None,
    };
    let shown = err.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}

/// Pasted as people paste: wrapped by the terminal, quoted, in angle brackets (RFC 3986 App. C).
#[test]
fn accepts_the_redirect_as_people_paste_it() {
    let state = State::generate().unwrap();
    let s = state.as_str();
    let (head, tail) = s.split_at(s.len() / 2);
    for pasted in [
        format!("http://localhost:8080/callback?code=abc&state={head}\n{tail}"),
        format!("http://localhost:8080/callback?code=abc&state={head} {tail}"),
        format!("http://localhost:8080/call\r\nback?code=a\tbc&state={s}"),
        format!("\"http://localhost:8080/callback?code=abc&state={s}\""),
        format!("'http://localhost:8080/callback?code=abc&state={s}'"),
        format!("<http://localhost:8080/callback?code=abc&state={s}>"),
        format!("< http://localhost:8080/callback?code=abc&state={s} >\n"),
        format!("`http://localhost:8080/callback?code=abc&state={s}`"),
        format!("http://localhost:8080/callback?code=abc&state={s}\u{a0}"),
    ] {
        let r = parse_redirect_url(&pasted, REDIRECT, &state)
            .unwrap_or_else(|e| panic!("{pasted:?}: {e}"));
        assert_eq!(r.code.secret(), "abc");
    }
    // Only one pair of delimiters, and only matching ones.
    for pasted in [
        format!("<\"http://localhost:8080/callback?code=abc&state={s}\">"),
        format!("<http://localhost:8080/callback?code=abc&state={s}\""),
    ] {
        assert!(
            parse_redirect_url(&pasted, REDIRECT, &state).is_err(),
            "{pasted:?}"
        );
    }
}
