//! `context-harness mcp token <provider> [--json]`: the one command that prints a secret.
//!
//! Fast path: a still-valid cached token is read from the store and printed, with no async runtime,
//! no HTTP client, no `providers.toml` read and (with the file store) no keyring access. Only an
//! expired token starts a runtime to refresh it.

use context_harness_providers::tokens::is_vschar;
use context_harness_providers::{ErrorCode, OAuthTokens, terminal_text};

use crate::context::{Context, print_stdout};
use crate::exit;
use crate::timefmt;

pub(crate) fn run(ctx: &Context, provider: &str, json: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let tokens = match service.cached_valid_token(provider)? {
        Some(tokens) => tokens,
        None => ctx.block_on(service.ensure_valid_token(provider))??,
    };
    // Tokens from a token endpoint are printable ASCII (checked when they arrive); a token file
    // written before that check, or by hand, may hold anything: never print an escape sequence or a
    // line break to a terminal or into `$(context-harness mcp token …)`.
    if !is_vschar(tokens.access_token.secret()) {
        let shown = terminal_text(provider);
        return Err(exit::Failure::new(
            exit::code_for(ErrorCode::Storage),
            format!(
                "the stored access token for {shown} holds characters an access token cannot have (RFC 6749 Appendix A: printable ASCII); not printing it"
            ),
            Some(format!("run `context-harness mcp auth {shown}` to sign in again")),
        )
        .into());
    }
    print_stdout(&render(&tokens, json))?;
    Ok(exit::OK)
}

/// The token alone, or `{"access_token", "token_type", "expires_at"}` (unix seconds or `null`).
fn render(tokens: &OAuthTokens, json: bool) -> String {
    // The only place in the program that exposes a token.
    let secret = tokens.access_token.secret();
    if json {
        serde_json::json!({
            "access_token": secret,
            "token_type": tokens.token_type,
            "expires_at": tokens.expires_at().map(timefmt::unix),
        })
        .to_string()
    } else {
        secret.to_owned()
    }
}
