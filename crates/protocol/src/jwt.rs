//! JWTs a client sends, without keys or I/O: the RFC 7523 §2.2 client assertion (`private_key_jwt`)
//! as a signing input, the compact serialisation once signed (RFC 7515 §7.1), the shape check of an
//! assertion handed to the client (a workload identity token for the RFC 7523 §2.1 JWT-bearer grant),
//! and the names of the grants and the assertion type.
//!
//! The signing itself needs a private key, so it happens where keys are read (the `providers`
//! crate); this module builds the exact bytes to sign from values it is given — the time, the random
//! `jti` — so every rule is tested without a clock or a random source.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde_json::json;

/// `grant_type` of the client credentials grant (RFC 6749 §4.4.2).
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";

/// `grant_type` of the JWT-bearer authorization grant (RFC 7523 §2.1), used for workload identity
/// (MCP SEP-1933) and, with an ID-JAG as the assertion, for Enterprise-Managed Authorization.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid: `exp` is `iat` plus this (5 minutes). RFC 7523 §3 asks for
/// an expiry "within a reasonably short time"; the MCP Python SDK uses the same 300 s. Each token
/// request gets a fresh assertion with a fresh `jti`, so the window only covers clock skew.
pub const CLIENT_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The most bytes of a JWT this crate builds into a request or accepts as an assertion: 16 KiB.
/// Workload identity tokens (Kubernetes, GitHub Actions, cloud metadata services) are 1–2 KiB.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// A JWS signature algorithm (RFC 7518 §3.1, RFC 8037 §3.1) for a client assertion. Only asymmetric
/// algorithms: a client assertion signed with a shared secret (`client_secret_jwt`) is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    Ps512,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDsa,
}

impl JwsAlgorithm {
    /// Every algorithm, in the order of this enum.
    pub const ALL: [Self; 9] = [
        Self::Es256,
        Self::Es384,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::EdDsa,
    ];

    /// The `alg` header value (`ES256`, `RS256`, `EdDSA`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `alg` exactly as RFC 7518 spells it (case-sensitive, as JOSE names are);
    /// `None` for any other name, `none` and the symmetric `HS*` included.
    ///
    /// ```
    /// use context_harness_protocol::JwsAlgorithm;
    ///
    /// assert_eq!(JwsAlgorithm::parse("ES256"), Some(JwsAlgorithm::Es256));
    /// assert_eq!(JwsAlgorithm::parse("es256"), None);
    /// assert_eq!(JwsAlgorithm::parse("HS256"), None);
    /// ```
    pub fn parse(alg: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == alg)
    }
}

impl std::fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of an RFC 7523 §2.2 client assertion (`private_key_jwt`), before signing: `iss` and
/// `sub` are the client id (§3 items 1–2), `aud` the authorization server (§3 item 3: its issuer
/// identifier, as draft-ietf-oauth-rfc7523bis and the MCP conformance suite require, else its token
/// endpoint), `iat` now, `exp` [`CLIENT_ASSERTION_LIFETIME`] later (§3 item 4), and a `jti` that the
/// caller draws at random for every request (§3 item 7: the server may refuse a replayed one).
///
/// ```
/// use context_harness_protocol::{ClientAssertionClaims, JwsAlgorithm};
///
/// let claims = ClientAssertionClaims::new("my-service", "https://as.example.com", 1_700_000_000, "k2Xq9")?;
/// let input = claims.signing_input(JwsAlgorithm::Es256);
/// assert_eq!(input.split('.').count(), 2); // header.payload; append "." + signature once signed
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAssertionClaims {
    client_id: String,
    audience: String,
    issued_at: u64,
    expires_at: u64,
    jwt_id: String,
}

impl ClientAssertionClaims {
    /// Claims for `client_id` at `audience`, issued at `now` (unix seconds), with `jwt_id` (the
    /// caller's fresh random value).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUrl`](crate::ErrorKind::InvalidUrl) when `client_id`, `audience` or
    /// `jwt_id` is empty, or `now` is so late that the expiry overflows.
    pub fn new(client_id: &str, audience: &str, now: u64, jwt_id: &str) -> crate::Result<Self> {
        let invalid = |what: &str| {
            crate::ProtocolError::new(
                crate::ErrorKind::InvalidUrl,
                format!("a client assertion needs {what}"),
            )
        };
        if client_id.is_empty() {
            return Err(invalid("a client id"));
        }
        if audience.is_empty() {
            return Err(invalid("an audience (the authorization server)"));
        }
        if jwt_id.is_empty() {
            return Err(invalid("a JWT id"));
        }
        let expires_at = now
            .checked_add(CLIENT_ASSERTION_LIFETIME.as_secs())
            .ok_or_else(|| invalid("a time before the year 292277026596"))?;
        Ok(Self {
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            issued_at: now,
            expires_at,
            jwt_id: jwt_id.to_owned(),
        })
    }

    /// `exp`, in unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The JWS signing input (RFC 7515 §5.1 step 6): `BASE64URL(header) '.' BASE64URL(claims)`,
    /// with the header `{"alg": alg, "typ": "JWT"}`. Sign these bytes, then finish with
    /// [`compact_jws`].
    pub fn signing_input(&self, alg: JwsAlgorithm) -> String {
        let header = json!({ "alg": alg.as_str(), "typ": "JWT" });
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.jwt_id,
        });
        format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        )
    }
}

/// The JWS compact serialisation (RFC 7515 §7.1) of a signed `signing_input`: the input, `.`, and
/// the base64url (unpadded) `signature`, which for ECDSA is `R || S` at the curve's fixed width
/// (RFC 7518 §3.4).
pub fn compact_jws(signing_input: &str, signature: &[u8]) -> String {
    format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(signature)
    )
}

/// Whether `text` has the shape of a JWS in compact serialisation (a JWT, RFC 7519 §7.2): three
/// non-empty base64url segments separated by dots, at most [`MAX_ASSERTION_BYTES`], whose first
/// segment decodes to a JSON object naming an `alg` other than `none`. Checked before an assertion
/// read from a file is sent anywhere, so a file that holds something else (a private key, a token
/// file, a scrap) is refused here instead of reaching a server. Nothing is verified: that is the
/// authorization server's job.
///
/// ```
/// use context_harness_protocol::is_compact_jws;
///
/// assert!(is_compact_jws("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln"));
/// assert!(!is_compact_jws("-----BEGIN PRIVATE KEY-----"));
/// assert!(!is_compact_jws("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ3In0.c2ln")); // alg "none"
/// ```
pub fn is_compact_jws(text: &str) -> bool {
    if text.is_empty() || text.len() > MAX_ASSERTION_BYTES {
        return false;
    }
    let segments: Vec<&str> = text.split('.').collect();
    let [header, payload, signature] = segments.as_slice() else {
        return false;
    };
    let base64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(base64url(header) && base64url(payload) && base64url(signature)) {
        return false;
    }
    let Ok(header) = Base64UrlUnpadded::decode_vec(header) else {
        return false;
    };
    let Ok(serde_json::Value::Object(header)) = serde_json::from_slice(&header) else {
        return false;
    };
    header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|alg| !alg.is_empty() && !alg.eq_ignore_ascii_case("none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &str) -> serde_json::Value {
        let bytes = Base64UrlUnpadded::decode_vec(segment).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[test]
    fn client_assertion_claims_follow_rfc7523_section_3() -> crate::Result<()> {
        let claims =
            ClientAssertionClaims::new("svc", "https://as.example.com", 1_700_000_000, "j1")?;
        let input = claims.signing_input(JwsAlgorithm::Rs256);
        let (header, payload) = input.split_once('.').unwrap_or_default();
        assert_eq!(decode(header), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            decode(payload),
            json!({
                "iss": "svc", "sub": "svc", "aud": "https://as.example.com",
                "iat": 1_700_000_000u64, "exp": 1_700_000_300u64, "jti": "j1",
            })
        );
        assert_eq!(claims.expires_at(), 1_700_000_300);
        // No padding, no standard-alphabet characters: base64url (RFC 7515 §2).
        assert!(!input.contains(['=', '+', '/']));
        let jws = compact_jws(&input, &[0xfb, 0xff]);
        assert!(jws.ends_with(".-_8"), "{jws}");
        assert!(is_compact_jws(&jws));
        Ok(())
    }

    #[test]
    fn empty_values_and_overflow_are_refused() {
        assert!(ClientAssertionClaims::new("", "https://as", 1, "j").is_err());
        assert!(ClientAssertionClaims::new("c", "", 1, "j").is_err());
        assert!(ClientAssertionClaims::new("c", "https://as", 1, "").is_err());
        assert!(ClientAssertionClaims::new("c", "https://as", u64::MAX, "j").is_err());
    }

    #[test]
    fn algorithm_names_round_trip_and_nothing_else_parses() {
        for alg in JwsAlgorithm::ALL {
            assert_eq!(JwsAlgorithm::parse(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for other in ["none", "HS256", "es256", "ES256 ", "", "RSA-OAEP"] {
            assert_eq!(JwsAlgorithm::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn only_compact_jws_shapes_pass() {
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"ES256","kid":"k"}"#);
        let good = format!("{header}.eyJzdWIiOiJ4In0.c2lnbmF0dXJl");
        assert!(is_compact_jws(&good));
        for bad in [
            String::new(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{header}..c2ln"),
            format!("{header}.eyJ9.c2ln\n"),
            format!("{header}.e+J9.c2ln"),
            "eyJhbGciOiJFUzI1NiJ9".to_owned(),
            // A header that is not a JSON object, or names no algorithm, or `none`.
            format!("{}.eyJ9.c2ln", Base64UrlUnpadded::encode_string(b"[1]")),
            format!("{}.eyJ9.c2ln", Base64UrlUnpadded::encode_string(b"{}")),
            format!(
                "{}.eyJ9.c2ln",
                Base64UrlUnpadded::encode_string(br#"{"alg":"NONE"}"#)
            ),
            format!("{header}.{}.c2ln", "A".repeat(MAX_ASSERTION_BYTES)),
        ] {
            assert!(!is_compact_jws(&bad), "{bad:?}");
        }
    }
}
