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
//! Like `mcp token`, this command prints a secret (the token), and never signs in.

use context_harness_providers::{DpopKey, ErrorCode, ProviderRef, is_dpop_bound, terminal_text};
use serde_json::json;
use url::Url;

use crate::context::{Context, print_stdout};
use crate::exit;
use crate::token::{Getting, valid_tokens};

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
    let tokens = valid_tokens(ctx, provider, getting)?;
    let token = tokens.access_token.secret();
    let shown = terminal_text(provider);
    let usage = |message: String| {
        exit::Failure::new(exit::code_for(ErrorCode::ConfigInvalid), message, None)
    };
    let headers = if is_dpop_bound(&tokens) {
        let Some(key) = DpopKey::from_tokens(&tokens) else {
            return Err(exit::Failure::new(
                exit::code_for(ErrorCode::Storage),
                format!("the DPoP key stored with the tokens for {shown} is unreadable"),
                Some(format!(
                    "run `context-harness mcp auth {shown}{}` to sign in again",
                    ctx.account_flag()
                )),
            )
            .into());
        };
        let target = ProviderRef::parse(provider)?;
        let Some(url) = request.url.as_deref().or_else(|| target.server_url()) else {
            return Err(usage(format!(
                "the token for {shown} is DPoP-bound: name the request's URL with --url"
            ))
            .into());
        };
        let url =
            Url::parse(url).map_err(|e| usage(format!("--url {}: {e}", terminal_text(url))))?;
        let method = request.method.trim();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(usage(format!(
                "--method {}: not an HTTP method",
                terminal_text(method)
            ))
            .into());
        }
        let proof = key.proof(method, &url, request.nonce.as_deref(), Some(token))?;
        json!({ "Authorization": format!("DPoP {token}"), "DPoP": proof })
    } else {
        json!({ "Authorization": format!("Bearer {token}") })
    };
    print_stdout(&headers.to_string())?;
    Ok(exit::OK)
}
