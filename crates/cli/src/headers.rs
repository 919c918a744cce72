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

use context_harness_providers::protocol::without_user_info;
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
        return Err(usage(
            format!("--method {}: not an HTTP method", terminal_text(method)),
            METHOD_HINT,
        )
        .into());
    }
    if let Some(nonce) = &request.nonce
        && (nonce.is_empty() || !nonce.bytes().all(is_nqchar))
    {
        return Err(usage(
            format!(
                "--nonce {}: not a DPoP nonce (RFC 9449 §8.1: printable ASCII but space, `\"` and `\\`)",
                terminal_text(nonce)
            ),
            NONCE_HINT,
        )
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
                return Err(usage(
                    format!(
                        "the token for {shown} is DPoP-bound: name the request's URL with --url"
                    ),
                    URL_HINT,
                )
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

/// What a valid `--method` looks like.
const METHOD_HINT: &str = "give the request's HTTP method, e.g. --method GET or --method POST (one word: letters, digits and !#$%&'*+-.^_`|~)";
/// What a valid `--url` looks like.
const URL_HINT: &str = "give the request's full http or https URL without `name:password@`, e.g. --url https://mcp.example.com/mcp";
/// What a valid `--nonce` looks like.
const NONCE_HINT: &str = "give the resource server's DPoP-Nonce response header value as it was sent, e.g. --nonce eyJ7S_zG.eyJH0-Z.HX4w-7v";

/// A usage error of this command (exit 13, as a malformed URL elsewhere), with `hint`.
fn usage(message: String, hint: &str) -> exit::Failure {
    exit::Failure::new(
        exit::code_for(ErrorCode::ConfigInvalid),
        message,
        Some(hint.to_owned()),
    )
}

/// `--url`: an `http` or `https` URL without user info (see the module docs). Its user info is
/// never shown, whether or not the URL parses (`https://u:pw@ho st/`): its password would be.
fn request_url(url: &str) -> Result<Url, exit::Failure> {
    let shown = terminal_text(&shown_url(url));
    let parsed = Url::parse(url).map_err(|e| usage(format!("--url {shown}: {e}"), URL_HINT))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(usage(
            "--url: a request's URL has no user info (`name:password@`; RFC 9110 §4.2.4), and the DPoP proof would carry it to the server".to_owned(),
            URL_HINT,
        ));
    }
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(usage(
            format!("--url {shown}: not an http or https URL"),
            URL_HINT,
        ));
    }
    Ok(parsed)
}

/// `url` as an error may show it, parsed or not: its user info masked ([`without_user_info`]), and
/// everything from `://` (or the start) to the last `@` with it, so that a password holding an
/// unencoded `/`, `?` or `#` (`https://u:pa/ss@host`, where the user info ends early) is masked
/// too; an `@` in a path is masked with it, which costs nothing in an error.
fn shown_url(url: &str) -> String {
    let masked = without_user_info(url);
    let Some((before_at, after_at)) = masked.rsplit_once('@') else {
        return masked.into_owned();
    };
    if before_at.ends_with("***") && !before_at.contains('@') {
        // The last `@` ends the user info the helper masked.
        return masked.into_owned();
    }
    match masked.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => format!("{scheme}://***@{after_at}"),
        _ => format!("***@{after_at}"),
    }
}

/// RFC 9449 §8.1 `NQCHAR`: `%x21 / %x23-5B / %x5D-7E`.
fn is_nqchar(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No password reaches an error, whether the URL parses or not; the host stays readable.
    #[test]
    fn a_shown_url_never_carries_user_info() {
        for (url, want) in [
            ("https://u:s3cret@ho st/", "https://***@ho st/"),
            ("https://u:s3cret@host:99999/", "https://***@host:99999/"),
            ("https://u:s3cret@[::1/", "https://***@[::1/"),
            ("https://u:s3cret@@host/", "https://***@host/"),
            ("https://u:pa/s3cret@host/", "https://***@host/"),
            ("https://u:pa?s3cret@host", "https://***@host"),
            ("https:u:s3cret@host", "https:***@host"),
            ("u:s3cret@host", "u:***@host"),
            ("u:pa/s3cret@host", "***@host"),
            ("https://host/mcp", "https://host/mcp"),
        ] {
            assert_eq!(shown_url(url), want, "{url}");
        }
        for url in ["https://u:s3cret@ho st/", "https://u:s3cret@host:99999/"] {
            let message = request_url(url).err().map(|f| f.message);
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.contains("***@") && !m.contains("s3cret")),
                "{url}: {message:?}"
            );
        }
    }
}
