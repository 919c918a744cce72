//! Conversions of the member crates' errors and of token-endpoint answers into this crate's
//! [`Error`], with the stable [`ErrorCode`] and the hint each case gets.

use context_harness_callback_server as callback;
use context_harness_protocol::TokenError;
use context_harness_storage as storage;
use context_harness_tokens::ResponseError;

use super::{Error, ErrorCode, NextStep, SERVER_TROUBLE_HINT};

/// What to do about a corrupt account index (`tokens/<provider>.accounts`).
const INDEX_TOO_LARGE_HINT: &str =
    "log out of accounts no longer used; the index and every stored token are as they were";
const CORRUPT_INDEX_HINT: &str = "fix the file, or delete it: no tokens are lost, the provider's accounts are found again from the stored tokens, and the default account becomes `default` when it is signed in, else the first account by name (then choose the default again if it was another)";

/// What a token request is for (changes how errors are classified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Redeeming an authorization code or a device code (RFC 6749 §4.1.3, RFC 8628 §3.4).
    Exchange,
    /// Redeeming a refresh token (RFC 6749 §6).
    Refresh,
    /// The client credentials grant (RFC 6749 §4.4).
    ClientCredentials,
    /// The JWT-bearer grant with a workload identity assertion (RFC 7523 §2.1).
    JwtBearer,
    /// The token exchange (RFC 8693) of an ID token for an ID-JAG at an enterprise IdP.
    TokenExchange,
}

/// A token-store failure as [`ErrorCode::Storage`]; for a refused (untrusted) file or directory
/// the hint names the exact `chmod`/`chown` that fixes it; for a corrupt account index, what
/// deleting it does.
pub(crate) fn storage_error(e: storage::Error) -> Error {
    // A refused (untrusted) file or directory: the message names it, the hint the exact fix.
    if let Some(fix) = e.fix() {
        return Error::new(ErrorCode::Storage, e.to_string())
            .with_step(NextStep::FixPermissions { command: fix })
            .with_source(e);
    }
    if matches!(e, storage::Error::CorruptIndex { .. }) {
        return Error::new(ErrorCode::Storage, e.to_string())
            .with_hint(CORRUPT_INDEX_HINT)
            .with_source(e);
    }
    if matches!(e, storage::Error::IndexTooLarge { .. }) {
        return Error::new(ErrorCode::Storage, e.to_string())
            .with_hint(INDEX_TOO_LARGE_HINT)
            .with_source(e);
    }
    Error::new(ErrorCode::Storage, format!("token storage failed: {e}")).with_source(e)
}

/// A loopback-listener or pasted-redirect failure, classified (denied, timeout, bad callback, ports
/// busy) with the hint that helps.
pub(crate) fn callback_error(e: callback::Error) -> Error {
    use callback::Error as C;
    let (code, message) = match &e {
        C::AllPortsBusy { .. } => (
            ErrorCode::NetworkError,
            "every loopback port for the redirect is in use".to_owned(),
        ),
        C::Timeout { state_mismatch_seen: true } => (
            ErrorCode::Timeout,
            "no valid authorization callback arrived in time (a callback with a wrong state was rejected)".to_owned(),
        ),
        C::Timeout { .. } => (
            ErrorCode::Timeout,
            "no authorization callback arrived in time".to_owned(),
        ),
        C::Cancelled { .. } => (ErrorCode::AuthCancelled, "the authorization was denied".to_owned()),
        C::Authorization { error, .. } if error == "access_denied" => {
            (ErrorCode::AuthCancelled, "the authorization was denied".to_owned())
        }
        C::Authorization { error, .. } => (
            ErrorCode::AuthFailed,
            format!("the authorization server returned `{}`", sanitize_code(error)),
        ),
        C::InvalidCallback { .. } => (
            ErrorCode::AuthFailed,
            format!("the authorization callback was invalid: {e}"),
        ),
        C::StateMismatch => (
            ErrorCode::AuthFailed,
            "the pasted redirect URL belongs to a different or older sign-in attempt (its state does not match)"
                .to_owned(),
        ),
        _ => (ErrorCode::NetworkError, format!("the loopback listener failed: {e}")),
    };
    let mut err = Error::new(code, message);
    match &e {
        C::AllPortsBusy { .. } => {
            err = err.with_step(NextStep::ChoosePorts);
        }
        C::StateMismatch => {
            err =
                err.with_hint("paste the URL the browser shows after the sign-in you just started");
        }
        C::Authorization { error, .. } if error == "invalid_target" => {
            err = err.with_step(NextStep::SignInWithoutResource);
        }
        _ => {}
    }
    err.with_source(e)
}

/// Keeps only characters an OAuth error code may have (RFC 6749 §5.2), so a server cannot put
/// arbitrary text into our messages.
pub(crate) fn sanitize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

/// The next step for an off-spec HTTP 2xx token answer.
const OFF_SPEC_ANSWER_HINT: &str = "the server answered, but not as RFC 6749 §5.1 requires (a server problem, not your network); report it to the server's operator, then sign in again";

/// A token-endpoint answer that is not a token response (RFC 6749 §5.2), classified for `grant`:
/// a refusal, a server fault, rate limiting (RFC 6585 §4), or an unreadable body.
pub(crate) fn classify_response_error(e: &ResponseError, grant: Grant) -> Error {
    let err = classify_response_error_inner(e, grant);
    // The answer arrived, so the network is not the cause: never the default "check your network".
    if err.code() == ErrorCode::NetworkError && err.hint().is_none() {
        err.with_hint(SERVER_TROUBLE_HINT)
    } else {
        err
    }
}

fn classify_response_error_inner(e: &ResponseError, grant: Grant) -> Error {
    let what = match grant {
        Grant::Exchange => "exchanging the authorization code",
        Grant::Refresh => "refreshing the token",
        Grant::ClientCredentials => "requesting a token with the client credentials grant",
        Grant::JwtBearer => "requesting a token with the JWT-bearer grant",
        Grant::TokenExchange => "exchanging the ID token at the identity provider",
    };
    match e {
        ResponseError::OAuth {
            error,
            description,
            status,
            ..
        } => {
            let code = sanitize_code(error);
            // A provider's documented name of a standard error is that error (GitHub answers a
            // dead refresh token with HTTP 200 and `bad_refresh_token`: `invalid_grant`); the
            // message names the code the server sent.
            let standard = TokenError::parse(&code).standard();
            let (kind, message) = match (standard.as_str(), grant) {
                ("invalid_grant", Grant::Refresh) => (
                    ErrorCode::TokenRefreshFailed,
                    format!("the server refused the refresh token ({code}); sign in again"),
                ),
                ("invalid_grant", Grant::Exchange) => (
                    ErrorCode::AuthFailed,
                    format!("the server refused the authorization code ({code})"),
                ),
                ("invalid_grant", Grant::JwtBearer) => (
                    ErrorCode::AuthFailed,
                    "the server refused the assertion (invalid_grant)".to_owned(),
                ),
                ("access_denied", _) => {
                    (ErrorCode::AuthCancelled, format!("{what}: access denied"))
                }
                ("temporarily_unavailable" | "server_error", _) => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server is unavailable ({code})"),
                ),
                _ if *status >= 500 => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server failed with HTTP {status} ({code})"),
                ),
                // RFC 6585 §4: "too many requests" is "wait and try again", never a refusal.
                _ if *status == 429 => (
                    ErrorCode::NetworkError,
                    format!("{what}: the server is rate-limiting requests (HTTP 429, {code})"),
                ),
                _ => (
                    ErrorCode::AuthFailed,
                    format!("{what}: the server answered `{code}`"),
                ),
            };
            let err =
                Error::new(kind, message).with_oauth(code.clone(), description.clone(), *status);
            if code == "invalid_target" {
                return err.with_step(NextStep::SignInWithoutResource);
            }
            err
        }
        ResponseError::Http { status: 429 } => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint is rate-limiting requests (HTTP 429)"),
        )
        .with_hint("retry later")
        .with_status(429),
        ResponseError::Http { status } if *status >= 500 => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint failed with HTTP {status}"),
        )
        .with_status(*status),
        ResponseError::Http { status } if (300..400).contains(status) => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint redirected (HTTP {status}); redirects are not followed"
            ),
        )
        .with_hint("check the provider's token_url")
        .with_status(*status),
        ResponseError::Http { status } => Error::new(
            ErrorCode::AuthFailed,
            format!("{what}: the token endpoint answered HTTP {status} without an OAuth error"),
        )
        .with_status(*status),
        ResponseError::Html { status } => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint answered with an HTML page (HTTP {status}), not JSON"
            ),
        )
        .with_hint("a proxy, captive portal or wrong token_url is likely; check them and retry")
        .with_status(*status),
        // A 2xx answer that is not a token response: the server's fault, not the network's.
        ResponseError::Empty { status } | ResponseError::Malformed { status, .. }
            if (200..300).contains(status) =>
        {
            let reason = match e {
                ResponseError::Malformed { reason, .. } => reason,
                _ => "the body is empty",
            };
            Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{what}: the authorization server's answer (HTTP {status}) is not a token response as it should be: {reason}"
                ),
            )
            .with_hint(OFF_SPEC_ANSWER_HINT)
            .with_status(*status)
        }
        ResponseError::Empty { status } => Error::new(
            ErrorCode::NetworkError,
            format!("{what}: the token endpoint sent an empty answer (HTTP {status})"),
        )
        .with_status(*status),
        ResponseError::Malformed { status, reason } => Error::new(
            ErrorCode::NetworkError,
            format!(
                "{what}: the token endpoint sent an unreadable answer (HTTP {status}: {reason})"
            ),
        )
        .with_status(*status),
        ResponseError::MissingAccessToken => Error::new(
            ErrorCode::AuthFailed,
            format!("{what}: the answer has no access_token"),
        ),
        other => Error::new(ErrorCode::AuthFailed, format!("{what}: {other}")),
    }
}

/// [`ErrorCode::AuthRequired`]: no tokens are stored for `target`'s account (named unless it is
/// the [`DEFAULT_ACCOUNT`](storage::DEFAULT_ACCOUNT)).
pub(crate) fn not_signed_in(target: &crate::ProviderRef) -> Error {
    let provider = target.as_str();
    let account = target.account();
    let message = if account.is_default() {
        format!("not signed in to {provider}")
    } else {
        format!("not signed in to {provider} (account {account})")
    };
    Error::new(ErrorCode::AuthRequired, message).for_account(account)
}

/// [`ErrorCode::TokenExpired`]: expired, and nothing to refresh with.
pub(crate) fn expired_without_rt() -> Error {
    Error::new(
        ErrorCode::TokenExpired,
        "the access token has expired and there is no refresh token",
    )
}

/// [`ErrorCode::TokenRefreshFailed`]: the stored tokens carry an earlier refusal of their refresh token.
pub(crate) fn refresh_refused_before() -> Error {
    Error::new(
        ErrorCode::TokenRefreshFailed,
        "the server refused the refresh token earlier; sign in again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account index too large to write is a storage error whose hint says what helps (and that
    /// nothing was lost), like a corrupt one.
    #[test]
    fn index_errors_carry_their_hints() {
        let too_large = storage_error(storage::Error::IndexTooLarge {
            path: "tokens/local.accounts".into(),
            limit: 4 * 1024 * 1024,
        });
        assert_eq!(too_large.code(), ErrorCode::Storage);
        assert_eq!(too_large.hint(), Some(INDEX_TOO_LARGE_HINT));
        assert!(
            too_large.to_string().contains("tokens/local.accounts"),
            "{too_large}"
        );
    }
}
