//! `context-harness mcp headers <provider|url> [--method M] [--url U] [--nonce N]`: the HTTP
//! headers that present the stored token on one request, as the JSON object MCP hosts' headers
//! helpers read.
//!
//! - A Bearer token: `{"Authorization": "Bearer <token>"}` (RFC 6750 §2.1).
//! - A DPoP-bound token (RFC 9449 §7.1): `{"Authorization": "DPoP <token>", "DPoP": "<proof>"}`,
//!   the proof fresh (new `jti`, `iat` now) for `--method` (default `POST`) and `--url` (default:
//!   the MCP server URL; its query and fragment are left out of `htu`), with `ath` bound to the
//!   token and `--nonce` when the resource server asked for one. A proof is for one request.
//!
//! `--method` must be an HTTP method (RFC 9110 §9.1: a token), `--url` an `http`/`https` URL
//! without user info (a request's target URI never carries it, RFC 9110 §4.2.4, and the proof
//! would carry it to the server), `--nonce` a nonce (RFC 9449 §8.1: `NQCHAR`s); checked before a
//! token is got, whatever its kind (exit 13).
//!
//! Like `mcp token`, this command prints a secret (the token), and never signs in.

use context_harness_providers::{DpopKey, ErrorCode, ProviderRef, is_dpop_bound, terminal_text};
use serde_json::json;
use url::Url;

use crate::context::{Context, print_stdout};
use crate::exit;
use crate::token::{Getting, valid_tokens_of};

/// The request the headers are for.
pub(crate) struct Request {
    /// The HTTP method (`htm`).
    pub(crate) method: String,
    /// The request URL (`htu`); `None`: the MCP server URL.
    pub(crate) url: Option<String>,
    /// The resource server's `DPoP-Nonce`, if it asked for one.
    pub(crate) nonce: Option<String>,
}

pub(crate) fn run(
    ctx: &Context,
    provider: &str,
    request: &Request,
    getting: Getting,
) -> anyhow::Result<u8> {
    let request_url = request.url.as_deref().map(request_url).transpose()?;
    let method = request.method.trim();
    if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
        return Err(usage(format!(
            "--method {}: not an HTTP method",
            terminal_text(method)
        ))
        .into());
    }
    if let Some(nonce) = &request.nonce
        && (nonce.is_empty() || !nonce.bytes().all(is_nqchar))
    {
        return Err(usage(format!(
            "--nonce {}: not a DPoP nonce (RFC 9449 §8.1: printable ASCII but space, `\"` and `\\`)",
            terminal_text(nonce)
        ))
        .into());
    }
    let (tokens, account) = valid_tokens_of(ctx, provider, getting)?;
    let token = tokens.access_token.secret();
    let shown = terminal_text(provider);
    let headers = if is_dpop_bound(&tokens) {
        let Some(key) = DpopKey::from_tokens(&tokens) else {
            return Err(exit::Failure::new(
                exit::code_for(ErrorCode::Storage),
                format!("the DPoP key stored with the tokens for {shown} is unreadable"),
                Some(format!(
                    "run `context-harness mcp auth {shown}{}` to sign in again",
                    ctx.account_flag_of(&account)
                )),
            )
            .into());
        };
        let target = ProviderRef::parse(provider)?;
        let url = match (request_url, target.server_url()) {
            (Some(url), _) => url,
            (None, Some(server)) => Url::parse(server)?,
            (None, None) => {
                return Err(usage(format!(
                    "the token for {shown} is DPoP-bound: name the request's URL with --url"
                ))
                .into());
            }
        };
        let proof = key.proof(method, &url, request.nonce.as_deref(), Some(token))?;
        json!({ "Authorization": format!("DPoP {token}"), "DPoP": proof })
    } else {
        json!({ "Authorization": format!("Bearer {token}") })
    };
    print_stdout(&headers.to_string())?;
    Ok(exit::OK)
}

/// A usage error of this command (exit 13, as a malformed URL elsewhere).
fn usage(message: String) -> exit::Failure {
    exit::Failure::new(exit::code_for(ErrorCode::ConfigInvalid), message, None)
}

/// `--url`: an `http` or `https` URL without user info (see the module docs). Refused for its user
/// info, it is not shown (its password would be).
fn request_url(url: &str) -> Result<Url, exit::Failure> {
    let parsed =
        Url::parse(url).map_err(|e| usage(format!("--url {}: {e}", terminal_text(url))))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(usage(
            "--url: a request's URL has no user info (`name:password@`; RFC 9110 §4.2.4), and the DPoP proof would carry it to the server".to_owned(),
        ));
    }
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(usage(format!(
            "--url {}: not an http or https URL",
            terminal_text(url)
        )));
    }
    Ok(parsed)
}

/// RFC 9449 §8.1 `NQCHAR`: `%x21 / %x23-5B / %x5D-7E`.
fn is_nqchar(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}
