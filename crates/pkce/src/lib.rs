//! PKCE (RFC 7636) S256 code verifier and challenge pairs, plus the CSRF `state` value.
//!
//! # Example
//!
//! ```
//! use context_harness_pkce::{CodeVerifier, PkceChallenge, State};
//!
//! # fn main() -> Result<(), context_harness_pkce::Error> {
//! // A fresh pair per authorization request: the challenge goes into the authorize URL…
//! let pkce = PkceChallenge::generate()?;
//! assert_eq!(pkce.challenge().method(), "S256");
//! assert_eq!(pkce.challenge().as_str().len(), 43);
//! // …and the verifier into the token request, after the redirect.
//! let verifier: CodeVerifier = pkce.into_verifier();
//! assert_eq!(verifier.secret().len(), 43);
//!
//! // RFC 7636 Appendix B.
//! let known = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
//! assert_eq!(known.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//!
//! // The CSRF state travels in the URL and is checked on the callback.
//! let state = State::generate()?;
//! assert!(state.matches(state.as_str()));
//! assert!(!state.matches("forged"));
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - Only the `S256` method exists; there is no code path that emits `plain` (RFC 7636 §7.2, OAuth 2.1
//!   §4.1.1).
//! - Verifiers and states are 32 bytes (256 bits) from the operating system's CSPRNG via `getrandom`,
//!   base64url-encoded without padding (43 characters), the recipe of RFC 7636 §4.1.
//! - [`CodeVerifier`] is a secret: no `Clone` (one verifier per request, moved to its single use), no
//!   `Display`, a redacted `Debug`, and its bytes are overwritten on drop (best effort, without
//!   `unsafe`). [`State`] also redacts `Debug`; it is `Clone` because it is sent in the clear anyway.
//! - A verifier from outside is checked (43–128 characters of `A-Z a-z 0-9 - . _ ~`) and rejected with
//!   an [`Error`], never a panic. Errors never contain the verifier.
//!
//! ## Why `State` lives here
//!
//! `state` is the other per-request random secret of the authorization code flow: it is made at the
//! same moment as the verifier, from the same CSPRNG, kept in the same per-request record, and checked
//! when the code arrives. Putting it here keeps the one `getrandom` dependency and the one
//! constant-time comparison ([`constant_time_eq`]) in this small leaf crate, which both the callback
//! server and the providers crate already depend on, instead of a new crate or a copy in each. The
//! comparison is constant-time so the time a forged callback takes to be rejected says nothing about
//! how many leading characters it got right.
//!
//! # Performance
//!
//! [`PkceChallenge::generate`] (one `getrandom` call for 32 bytes, base64url, SHA-256 of 43 bytes,
//! base64url) takes about **0.69 µs** per pair (criterion 95% interval 670–705 ns), within the 1 µs
//! goal. Of that, the `getrandom` system call is about 0.45 µs ([`State::generate`] alone: 434–481 ns)
//! and SHA-256 plus encoding about 0.21 µs. Measured with `cargo bench -p context-harness-pkce`
//! (release profile, 3 s per benchmark) on the project's 2-core Linux development machine while other
//! builds shared it, so treat the figure as an upper bound.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The shortest code verifier RFC 7636 §4.1 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// The longest code verifier RFC 7636 §4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;
/// Random bytes in a generated verifier or state (256 bits; 43 base64url characters).
const RANDOM_BYTES: usize = 32;

/// Generating or parsing a PKCE value failed.
///
/// The message never contains the verifier.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    len: usize,
    source: Option<getrandom::Error>,
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Parsing: the verifier is shorter than 43 characters.
    TooShort,
    /// Parsing: the verifier is longer than 128 characters.
    TooLong,
    /// Parsing: the verifier has a character outside `A-Z a-z 0-9 - . _ ~`.
    InvalidCharacter,
    /// Generating: the operating system's random number generator failed (the cause is the
    /// [`source`](std::error::Error::source)).
    Rng,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn parse(kind: ErrorKind, len: usize) -> Self {
        Self {
            kind,
            len,
            source: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::TooShort | ErrorKind::TooLong => write!(
                f,
                "code verifier must be {MIN_VERIFIER_LEN} to {MAX_VERIFIER_LEN} characters long, got {}",
                self.len
            ),
            ErrorKind::InvalidCharacter => {
                f.write_str("code verifier may only contain the characters A-Z a-z 0-9 - . _ ~")
            }
            ErrorKind::Rng => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `RANDOM_BYTES` from the OS CSPRNG, base64url-encoded without padding.
fn random_base64url() -> Result<String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| Error {
        kind: ErrorKind::Rng,
        len: 0,
        source: Some(e),
    })?;
    let encoded = Base64UrlUnpadded::encode_string(&bytes);
    bytes.fill(0);
    std::hint::black_box(&bytes);
    Ok(encoded)
}

/// A PKCE code verifier (RFC 7636 §4.1): the secret half of the pair, sent only in the token request.
///
/// Deliberately not `Clone` (a verifier serves exactly one authorization request and is moved to its
/// use) and not `Display` (so it cannot reach a log through `{}`); `Debug` prints a redaction.
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// A new verifier: 32 bytes from the OS CSPRNG, base64url without padding (43 characters).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Rng`] if the operating system's random number generator fails.
    pub fn generate() -> Result<Self> {
        random_base64url().map(Self)
    }

    /// Checks a verifier made elsewhere: 43–128 characters, each one of `A-Z a-z 0-9 - . _ ~`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooShort`], [`ErrorKind::TooLong`] or [`ErrorKind::InvalidCharacter`].
    pub fn parse(verifier: &str) -> Result<Self> {
        let chars = verifier.chars().count();
        if chars < MIN_VERIFIER_LEN {
            return Err(Error::parse(ErrorKind::TooShort, chars));
        }
        if chars > MAX_VERIFIER_LEN {
            return Err(Error::parse(ErrorKind::TooLong, chars));
        }
        if !verifier.bytes().all(is_unreserved) {
            return Err(Error::parse(ErrorKind::InvalidCharacter, chars));
        }
        Ok(Self(verifier.to_owned()))
    }

    /// The verifier itself, for the `code_verifier` parameter of the token request.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The S256 challenge: `BASE64URL(SHA256(ASCII(verifier)))` without padding (RFC 7636 §4.2).
    pub fn challenge(&self) -> CodeChallenge {
        let digest = Sha256::digest(self.0.as_bytes());
        CodeChallenge(Base64UrlUnpadded::encode_string(&digest))
    }
}

/// RFC 3986 unreserved characters, the verifier alphabet (RFC 7636 §4.1).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

impl Drop for CodeVerifier {
    fn drop(&mut self) {
        // Best-effort wipe without `unsafe`: take the bytes out, zero them, keep the stores alive.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// A PKCE code challenge (RFC 7636 §4.2), the public half sent in the authorization URL.
///
/// Always 43 base64url characters, always method `S256`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge, for the `code_challenge` parameter.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method, for the `code_challenge_method` parameter: always `"S256"` (send it explicitly; an
    /// absent method means `plain` to the server).
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// A verifier together with its S256 challenge: the Python original's `PKCEChallenge`.
#[derive(Debug)]
pub struct PkceChallenge {
    verifier: CodeVerifier,
    challenge: CodeChallenge,
}

impl PkceChallenge {
    /// A fresh pair: [`CodeVerifier::generate`] and its challenge.
    ///
    /// Takes about 0.69 µs, most of it the `getrandom` system call (see the crate's `# Performance`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Rng`] if the operating system's random number generator fails.
    pub fn generate() -> Result<Self> {
        CodeVerifier::generate().map(Self::from_verifier)
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: CodeVerifier) -> Self {
        let challenge = verifier.challenge();
        Self {
            verifier,
            challenge,
        }
    }

    /// The verifier, for the token request.
    pub fn verifier(&self) -> &CodeVerifier {
        &self.verifier
    }

    /// The challenge, for the authorization URL.
    pub fn challenge(&self) -> &CodeChallenge {
        &self.challenge
    }

    /// Gives up the challenge (already sent) and keeps the verifier for the token request.
    pub fn into_verifier(self) -> CodeVerifier {
        self.verifier
    }
}

/// The OAuth `state` parameter: an unguessable per-request value that ties the callback to the
/// request (CSRF protection, RFC 6749 §10.12, OAuth 2.1 §2.3.3).
///
/// 32 bytes from the OS CSPRNG (256 bits, well over the 128 required), base64url without padding, so
/// it is URL-safe as is. `Debug` is redacted; `Clone` is allowed because the value travels in the URL
/// in the clear and is no secret once the flow ends. There is deliberately no `PartialEq`: compare with
/// [`State::matches`], which takes constant time.
#[derive(Clone)]
pub struct State(String);

impl State {
    /// A new random state.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Rng`] if the operating system's random number generator fails.
    pub fn generate() -> Result<Self> {
        random_base64url().map(Self)
    }

    /// The value, for the `state` parameter of the authorization URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` (the `state` from the callback) equals this state, in time that does not depend
    /// on where they first differ.
    pub fn matches(&self, other: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), other.as_bytes())
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State([redacted])")
    }
}

/// Compares two byte strings without an early exit: the time depends only on the lengths, not on the
/// position of the first difference.
///
/// Strings of different lengths are unequal at once; the length is not secret (a state's length is
/// fixed and public).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        // `black_box` keeps the optimiser from turning the loop back into an early-exit comparison.
        diff = std::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

#[cfg(test)]
mod tests;
