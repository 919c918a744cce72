//! PKCE (RFC 7636) S256 code verifier and challenge pairs, plus the CSRF state value.
