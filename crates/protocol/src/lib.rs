//! The OAuth/MCP protocol without I/O: parsers, URL construction and state machines that a client
//! drives with the bytes and instants it has, so every rule is tested without a network or a clock.
//!
//! - `WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1):
//!   [`parse_www_authenticate`], [`bearer_resource_metadata`].
//! - The canonical server URI (RFC 8707, MCP): [`ServerUrl`], [`canonical_url`],
//!   [`canonical_resource_uri`]; the well-known metadata URLs ([`protected_resource_metadata_urls`],
//!   [`authorization_server_metadata_urls`]) and identifier checks ([`resource_matches`],
//!   [`accepted_resource`], [`resource_covers`], [`issuers_match`]).
//! - Metadata documents: [`ProtectedResourceMetadata`] (RFC 9728) and
//!   [`AuthorizationServerMetadata`] (RFC 8414, OpenID Connect Discovery).
//! - Dynamic client registration (RFC 7591): [`registration_request`],
//!   [`parse_registration_response`], [`ClientRegistration`]; Client ID Metadata Documents:
//!   [`check_client_metadata_url`], [`client_metadata_document`].
//! - The device authorization grant (RFC 8628): [`DeviceAuthorization`], [`PollOutcome`] and the
//!   [`DevicePoller`] state machine (an injected clock: it is given instants, it never sleeps).
//! - OAuth error codes as a type: [`TokenError`].
//! - JWTs a client sends (RFC 7523): the [`ClientAssertionClaims`] of a `private_key_jwt` client
//!   assertion as a signing input ([`compact_jws`] once signed), the shape check of a workload
//!   identity assertion ([`is_compact_jws`]), and the grant names ([`CLIENT_CREDENTIALS_GRANT`],
//!   [`JWT_BEARER_GRANT`]).
//! - Enterprise-Managed Authorization (ID-JAG): the RFC 8693 token exchange at the IdP
//!   ([`IdJagRequest`], [`check_issued_token_type`]) and a held JWT's expiry ([`jwt_expiry`]).
//! - The reaction to a resource server's 401/403 (RFC 6750 §3, RFC 9728 §5, MCP "Step-Up
//!   Authorization Flow"): the [`AuthRecovery`] state machine, fed [`Refusal`]s and [`Outcome`]s of
//!   each [`Exchange`], answering [`Decision`]s (refresh, sign in, step up, give up) within bounds a
//!   server cannot push.
//!
//! Errors are [`ProtocolError`]s: an [`ErrorKind`] to branch on and a printable message, with no
//! advice about commands (the embedding program decides what to suggest).
//!
//! This crate depends only on `url`, `serde`, `serde_json`, `base64ct` and
//! `context-harness-tokens`; it opens no socket and no file (a rule enforced by the repository's
//! tidy tests).
//!
//! # Example
//!
//! From a 401's challenge to the metadata URLs to fetch:
//!
//! ```
//! use context_harness_protocol::{
//!     authorization_server_metadata_urls, bearer_resource_metadata, parse_www_authenticate,
//! };
//!
//! let challenges = parse_www_authenticate(
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read""#,
//! );
//! let (metadata_url, scope) = bearer_resource_metadata(&challenges);
//! assert_eq!(
//!     metadata_url.as_deref(),
//!     Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
//! );
//! assert_eq!(scope.as_deref(), Some("files:read"));
//!
//! let urls = authorization_server_metadata_urls("https://auth.example.com/tenant1")?;
//! assert_eq!(
//!     urls[0].as_str(),
//!     "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
//! );
//! # Ok::<(), context_harness_protocol::ProtocolError>(())
//! ```

mod device;
mod error;
mod jwt;
mod metadata;
mod recovery;
mod registration;
mod server_url;
mod token_error;
mod token_exchange;
mod well_known;
mod www_authenticate;

pub use device::{
    DEFAULT_INTERVAL, DEVICE_CODE_GRANT, DeviceAuthorization, DeviceClock, DeviceCode,
    DevicePoller, MAX_BACKOFF, MAX_EXPIRES_IN, MAX_INTERVAL, MIN_INTERVAL, NextPoll, PollOutcome,
    PollStep, SLOW_DOWN_STEP,
};
pub use error::{BoxError, ErrorKind, ProtocolError, Result, debug_error};
pub use jwt::{
    CLIENT_ASSERTION_LIFETIME, CLIENT_ASSERTION_TYPE, CLIENT_CREDENTIALS_GRANT,
    ClientAssertionClaims, JWT_BEARER_GRANT, JwsAlgorithm, MAX_ASSERTION_BYTES, compact_jws,
    is_compact_jws,
};
pub use metadata::{AuthorizationServerMetadata, ProtectedResourceMetadata};
pub use recovery::{
    AuthRecovery, Decision, Exchange, GiveUp, GiveUpReason, MAX_CHALLENGE_SCOPES, MAX_RETRIES,
    Outcome, Refusal, RefusalStatus, Sent,
};
pub use registration::{
    ClientRegistration, MAX_CLIENT_METADATA_URL_LEN, check_client_metadata_url,
    client_metadata_document, parse_registration_response, registration_request,
};
pub use server_url::{ServerUrl, ServerUrlError, canonical_url, without_user_info};
pub use token_error::TokenError;
pub use token_exchange::{
    ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, IdJagRequest, TOKEN_EXCHANGE_GRANT, check_issued_token_type,
    jwt_expiry,
};
pub use well_known::{
    accepted_resource, authorization_server_metadata_urls, canonical_resource_uri, issuers_match,
    metadata_url_resource, parse_config_url, protected_resource_metadata_urls, resource_covers,
    resource_matches,
};
pub use www_authenticate::{Challenge, bearer_resource_metadata, parse_www_authenticate};
