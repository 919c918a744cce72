//! The `error` codes of OAuth error responses, as a type: RFC 6749 §5.2 (token endpoint), RFC 8628
//! §3.5 (device grant), RFC 6750 §3.1 (resource server), RFC 8707 §2 (resource indicators) and
//! RFC 7009 §2.2.1 (revocation), parsed from the `error` string of an answer.

use std::fmt;

/// An OAuth `error` code. Codes this type does not know are kept in [`Other`](Self::Other), so
/// [`as_str`](Self::as_str) gives back the text received.
///
/// ```
/// use context_harness_protocol::TokenError;
///
/// assert_eq!(TokenError::parse("invalid_grant"), TokenError::InvalidGrant);
/// assert!(TokenError::parse("slow_down").is_retryable());
/// assert_eq!(TokenError::parse("vendor_specific").as_str(), "vendor_specific");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// RFC 6749 §5.2: the request is missing a parameter or is otherwise malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (unknown client, wrong secret, …).
    InvalidClient,
    /// RFC 6749 §5.2: the grant (authorization code, refresh token, device code) is invalid,
    /// expired, revoked, or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the server does not support this grant type.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid, unknown or exceeds what was granted.
    InvalidScope,
    /// RFC 8628 §3.5: the user has not finished the device sign-in yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll less often (add 5 seconds to the interval).
    SlowDown,
    /// RFC 8628 §3.5 (and RFC 6749 §4.1.2.1): the user denied the request.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1: the server met an unexpected condition.
    ServerError,
    /// RFC 8707 §2: the `resource` is invalid or not one the server serves.
    InvalidTarget,
    /// RFC 6750 §3.1: the access token is expired, revoked, malformed or otherwise invalid.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope the request needs.
    InsufficientScope,
    /// RFC 7009 §2.2.1: the server does not support revoking this token type.
    UnsupportedTokenType,
    /// Any other code, as received.
    Other(String),
}

/// The known codes and their text, in the order of the variants.
const KNOWN: [(&str, TokenError); 16] = [
    ("invalid_request", TokenError::InvalidRequest),
    ("invalid_client", TokenError::InvalidClient),
    ("invalid_grant", TokenError::InvalidGrant),
    ("unauthorized_client", TokenError::UnauthorizedClient),
    ("unsupported_grant_type", TokenError::UnsupportedGrantType),
    ("invalid_scope", TokenError::InvalidScope),
    ("authorization_pending", TokenError::AuthorizationPending),
    ("slow_down", TokenError::SlowDown),
    ("access_denied", TokenError::AccessDenied),
    ("expired_token", TokenError::ExpiredToken),
    (
        "temporarily_unavailable",
        TokenError::TemporarilyUnavailable,
    ),
    ("server_error", TokenError::ServerError),
    ("invalid_target", TokenError::InvalidTarget),
    ("invalid_token", TokenError::InvalidToken),
    ("insufficient_scope", TokenError::InsufficientScope),
    ("unsupported_token_type", TokenError::UnsupportedTokenType),
];

/// Codes that providers document in place of a standard one, with the standard code each stands
/// for (RFC 6749 §5.2 defines what these mean; the providers answer them, often with HTTP 200).
const DOCUMENTED_EQUIVALENTS: [(&str, TokenError); 11] = [
    // GitHub, "Troubleshooting OAuth app access token request errors" and "Refreshing user access
    // tokens": a wrong or expired code, a refresh token that is incorrect or expired, a
    // `redirect_uri` that differs from the authorization request's (RFC 6749 §5.2 puts all three
    // under `invalid_grant`), wrong client credentials.
    ("bad_verification_code", TokenError::InvalidGrant),
    ("bad_refresh_token", TokenError::InvalidGrant),
    ("redirect_uri_mismatch", TokenError::InvalidGrant),
    ("incorrect_client_credentials", TokenError::InvalidClient),
    // GitHub's device flow: a device code it does not know; the device flow not enabled for the app.
    ("incorrect_device_code", TokenError::InvalidGrant),
    ("device_flow_disabled", TokenError::UnauthorizedClient),
    // Slack, `oauth.v2.access` (answered with HTTP 200 and `"ok": false`).
    ("invalid_code", TokenError::InvalidGrant),
    ("invalid_refresh_token", TokenError::InvalidGrant),
    ("bad_redirect_uri", TokenError::InvalidGrant),
    ("invalid_client_id", TokenError::InvalidClient),
    ("bad_client_secret", TokenError::InvalidClient),
];

impl TokenError {
    /// The standard code this one means: itself for a code of the RFCs, the documented equivalent
    /// for a provider's own name of a standard error (GitHub's `bad_refresh_token` is
    /// `invalid_grant`, `incorrect_client_credentials` is `invalid_client`; Slack's `invalid_code`
    /// is `invalid_grant`), and itself (an [`Other`](Self::Other)) for anything else: no meaning is
    /// guessed.
    ///
    /// ```
    /// use context_harness_protocol::TokenError;
    ///
    /// assert_eq!(TokenError::parse("bad_refresh_token").standard(), TokenError::InvalidGrant);
    /// assert!(TokenError::parse("bad_refresh_token").standard().needs_new_grant());
    /// assert_eq!(TokenError::parse("vendor_specific").standard().as_str(), "vendor_specific");
    /// ```
    pub fn standard(&self) -> Self {
        match self {
            Self::Other(text) => DOCUMENTED_EQUIVALENTS
                .iter()
                .find(|(alias, _)| alias == text)
                .map_or_else(|| self.clone(), |(_, code)| code.clone()),
            known => known.clone(),
        }
    }

    /// The code for the `error` text of an answer. Codes are case-sensitive (RFC 6749 §5.2 lists
    /// them in lowercase), surrounding whitespace is ignored.
    pub fn parse(error: &str) -> Self {
        let error = error.trim();
        KNOWN
            .iter()
            .find(|(text, _)| *text == error)
            .map_or_else(|| Self::Other(error.to_owned()), |(_, code)| code.clone())
    }

    /// The code's text (for [`Other`](Self::Other), as received: make it printable before showing
    /// it).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(text) => text,
            known => KNOWN
                .iter()
                .find(|(_, code)| code == known)
                .map_or("", |(text, _)| text),
        }
    }

    /// Whether the same request may succeed later without anything changing on the client's side:
    /// `authorization_pending`, `slow_down`, `temporarily_unavailable`, `server_error`.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::AuthorizationPending
                | Self::SlowDown
                | Self::TemporarilyUnavailable
                | Self::ServerError
        )
    }

    /// Whether the grant itself is dead and a new sign-in is needed: `invalid_grant` (a refresh
    /// token revoked or expired, a code used twice) and `expired_token` (a device code).
    pub fn needs_new_grant(&self) -> bool {
        matches!(self, Self::InvalidGrant | Self::ExpiredToken)
    }

    /// Whether the client itself is refused (`invalid_client`, `unauthorized_client`): its
    /// configuration or registration must change.
    pub fn is_client_problem(&self) -> bool {
        matches!(self, Self::InvalidClient | Self::UnauthorizedClient)
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::error::printable(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (text, code) in &KNOWN {
            assert_eq!(TokenError::parse(text), *code, "{text}");
            assert_eq!(code.as_str(), *text);
            assert_eq!(TokenError::parse(&format!(" {text}\n")), *code);
        }
        let distinct: std::collections::BTreeSet<&str> = KNOWN.iter().map(|(t, _)| *t).collect();
        assert_eq!(distinct.len(), KNOWN.len());
    }

    /// (error text, retryable, needs a new grant, client problem).
    #[test]
    fn classification_table() {
        for (text, retry, regrant, client) in [
            ("authorization_pending", true, false, false),
            ("slow_down", true, false, false),
            ("temporarily_unavailable", true, false, false),
            ("server_error", true, false, false),
            ("invalid_grant", false, true, false),
            ("expired_token", false, true, false),
            ("invalid_client", false, false, true),
            ("unauthorized_client", false, false, true),
            ("access_denied", false, false, false),
            ("invalid_target", false, false, false),
            ("invalid_scope", false, false, false),
            ("insufficient_scope", false, false, false),
            // Unknown and differently-cased codes are `Other`, with no meaning guessed.
            ("token_expired", false, false, false),
            ("INVALID_GRANT", false, false, false),
            ("", false, false, false),
        ] {
            let code = TokenError::parse(text);
            assert_eq!(
                (
                    code.is_retryable(),
                    code.needs_new_grant(),
                    code.is_client_problem()
                ),
                (retry, regrant, client),
                "{text}"
            );
        }
        assert_eq!(
            TokenError::parse("INVALID_GRANT"),
            TokenError::Other("INVALID_GRANT".to_owned())
        );
    }

    #[test]
    fn documented_equivalents_are_standard_codes_and_unknown_codes_stay() {
        for (alias, code) in &DOCUMENTED_EQUIVALENTS {
            assert!(
                matches!(TokenError::parse(alias), TokenError::Other(_)),
                "{alias} is a standard code itself"
            );
            assert_eq!(TokenError::parse(alias).standard(), *code, "{alias}");
            assert!(!matches!(code, TokenError::Other(_)));
        }
        assert_eq!(
            TokenError::parse("bad_refresh_token").standard(),
            TokenError::InvalidGrant
        );
        assert!(
            TokenError::parse("incorrect_client_credentials")
                .standard()
                .is_client_problem()
        );
        // Standard codes map to themselves; unknown ones are not guessed at.
        assert_eq!(
            TokenError::parse("invalid_grant").standard(),
            TokenError::InvalidGrant
        );
        for unknown in ["token_revoked", "BAD_REFRESH_TOKEN", ""] {
            assert_eq!(
                TokenError::parse(unknown).standard(),
                TokenError::parse(unknown)
            );
        }
    }

    #[test]
    fn display_is_printable() {
        let code = TokenError::parse("bad\u{1b}[31mcode");
        assert!(!code.to_string().contains('\u{1b}'));
        assert_eq!(code.as_str(), "bad\u{1b}[31mcode");
    }
}
