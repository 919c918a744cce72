#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use super::*;

const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The octets RFC 7636 Appendix B encodes into `RFC_VERIFIER`.
const RFC_OCTETS: [u8; 32] = [
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];

#[test]
fn rfc7636_appendix_b_vector() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(Base64UrlUnpadded::encode_string(&RFC_OCTETS), RFC_VERIFIER);
    let verifier = CodeVerifier::parse(RFC_VERIFIER)?;
    assert_eq!(verifier.secret(), RFC_VERIFIER);
    let challenge = verifier.challenge();
    assert_eq!(challenge.as_str(), RFC_CHALLENGE);
    assert_eq!(challenge.method(), "S256");
    let pair = PkceChallenge::from_verifier(verifier);
    assert_eq!(pair.challenge().as_str(), RFC_CHALLENGE);
    assert_eq!(pair.into_verifier().secret(), RFC_VERIFIER);
    Ok(())
}

#[test]
fn ten_thousand_generated_verifiers_are_valid_and_distinct()
-> Result<(), Box<dyn std::error::Error>> {
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let pair = PkceChallenge::generate()?;
        let verifier = pair.verifier().secret();
        assert_eq!(verifier.len(), 43);
        assert!(verifier.bytes().all(is_unreserved), "{verifier}");
        // Re-parsing accepts every generated verifier.
        let reparsed = CodeVerifier::parse(verifier)?;
        assert_eq!(reparsed.challenge(), *pair.challenge());
        let challenge = pair.challenge().as_str();
        assert_eq!(challenge.len(), 43);
        assert!(!challenge.contains(['+', '/', '=']));
        assert!(seen.insert(verifier.to_owned()), "duplicate verifier");
    }
    assert_eq!(seen.len(), 10_000);
    Ok(())
}

#[test]
fn length_boundaries() {
    let cases: [(usize, Option<ErrorKind>); 6] = [
        (0, Some(ErrorKind::TooShort)),
        (42, Some(ErrorKind::TooShort)),
        (43, None),
        (100, None),
        (128, None),
        (129, Some(ErrorKind::TooLong)),
    ];
    for (len, expected) in cases {
        let input = "a~._-Z9".chars().cycle().take(len).collect::<String>();
        let result = CodeVerifier::parse(&input);
        assert_eq!(
            result.as_ref().err().map(Error::kind),
            expected,
            "length {len}"
        );
        if let Ok(verifier) = result {
            assert_eq!(verifier.secret(), input);
        }
    }
}

#[test]
fn bad_characters_are_rejected() {
    let base = "a".repeat(43);
    for bad in [
        '+', '/', '=', ' ', '%', '!', '*', '\'', '(', ')', ':', '@', '\n', '\0', 'é', '€', '😀',
    ] {
        for position in [0, 21, 42] {
            let mut input: Vec<char> = base.chars().collect();
            input[position] = bad;
            let input: String = input.into_iter().collect();
            let err = CodeVerifier::parse(&input).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidCharacter,
                "{bad:?} at {position}"
            );
            // The error never repeats the input.
            assert!(!err.to_string().contains(&input));
            assert!(!format!("{err:?}").contains(&input));
        }
    }
    // Multi-byte characters count as one character for the length check.
    let err = CodeVerifier::parse(&"é".repeat(43)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCharacter);
}

#[test]
fn every_unreserved_character_is_accepted() -> Result<(), Box<dyn std::error::Error>> {
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let verifier = CodeVerifier::parse(alphabet)?;
    assert_eq!(verifier.secret(), alphabet);
    Ok(())
}

#[test]
fn debug_never_shows_secrets() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = CodeVerifier::parse(RFC_VERIFIER)?;
    assert_eq!(format!("{verifier:?}"), "CodeVerifier([redacted])");
    assert_eq!(format!("{verifier:#?}"), "CodeVerifier([redacted])");

    let pair = PkceChallenge::generate()?;
    let debug = format!("{pair:?} {pair:#?}");
    assert!(!debug.contains(pair.verifier().secret()));
    assert!(
        debug.contains(pair.challenge().as_str()),
        "the challenge is public"
    );

    let state = State::generate()?;
    let debug = format!("{state:?}");
    assert_eq!(debug, "State([redacted])");
    assert!(!debug.contains(state.as_str()));
    Ok(())
}

#[test]
fn error_messages_are_lowercase_without_trailing_period() {
    let errors = [
        CodeVerifier::parse("short").unwrap_err(),
        CodeVerifier::parse(&"a".repeat(129)).unwrap_err(),
        CodeVerifier::parse(&"+".repeat(43)).unwrap_err(),
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages[0],
        "code verifier must be 43 to 128 characters long, got 5"
    );
    assert_eq!(
        messages[1],
        "code verifier must be 43 to 128 characters long, got 129"
    );
    for message in messages {
        assert!(message.starts_with(|c: char| c.is_lowercase()));
        assert!(!message.ends_with('.'));
    }
}

#[test]
fn state_is_random_url_safe_and_long_enough() -> Result<(), Box<dyn std::error::Error>> {
    let mut seen = HashSet::new();
    for _ in 0..1_000 {
        let state = State::generate()?;
        let value = state.as_str();
        // 43 base64url characters carry 256 bits; at least 128 are required.
        assert!(value.len() * 6 >= 128);
        assert_eq!(value.len(), 43);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(seen.insert(value.to_owned()));
    }
    Ok(())
}

#[test]
fn state_matches_only_itself() -> Result<(), Box<dyn std::error::Error>> {
    let state = State::generate()?;
    let value = state.as_str().to_owned();
    assert!(state.matches(&value));
    let cloned = state.clone();
    assert!(cloned.matches(&value) && cloned.as_str() == state.as_str());
    assert!(!state.matches(""));
    assert!(!state.matches(&value[..42]));
    assert!(!state.matches(&format!("{value}x")));
    let mut flipped = value.into_bytes();
    flipped[42] = if flipped[42] == b'A' { b'B' } else { b'A' };
    assert!(!state.matches(std::str::from_utf8(&flipped)?));
    assert!(!state.matches(State::generate()?.as_str()));
    Ok(())
}

#[test]
fn constant_time_eq_table() {
    let cases: [(&[u8], &[u8], bool); 7] = [
        (b"", b"", true),
        (b"a", b"a", true),
        (b"abc", b"abc", true),
        (b"abc", b"abd", false),
        (b"abc", b"xbc", false),
        (b"abc", b"ab", false),
        (b"", b"a", false),
    ];
    for (a, b, equal) in cases {
        assert_eq!(constant_time_eq(a, b), equal, "{a:?} vs {b:?}");
        assert_eq!(constant_time_eq(b, a), equal, "{b:?} vs {a:?}");
    }
}

#[test]
fn rng_error_has_source_and_message() {
    let err = Error {
        kind: ErrorKind::Rng,
        len: 0,
        source: Some(getrandom::Error::UNSUPPORTED),
    };
    assert_eq!(err.kind(), ErrorKind::Rng);
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(
        err.to_string(),
        "the operating system's random number generator failed"
    );
}
