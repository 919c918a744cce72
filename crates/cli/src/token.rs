//! `context-harness mcp token <provider> [--json]`: the one command that prints a secret.
//!
//! Fast path: a still-valid cached token is read from the store and printed, with no async runtime,
//! no HTTP client, no `providers.toml` read and (with the file store) no keyring access. Only an
//! expired token starts a runtime to refresh it.
//!
//! `mcp token` never signs in. When a sign-in is needed and another process is running one for the
//! same name (`mcp auth`, `mcp proxy`, a program using the library's `token()`), it waits for that
//! sign-in (at most `--timeout`) and prints the token it stored.

use std::time::Duration;

use context_harness_providers::tokens::is_vschar;
use context_harness_providers::{
    Error as ProviderError, ErrorCode, OAuthService, OAuthTokens, SignInUi, is_dpop_bound,
    terminal_text,
};

use crate::context::{Context, print_stdout};
use crate::exit;
use crate::timefmt;

pub(crate) fn run(ctx: &Context, provider: &str, json: bool, wait_secs: u64) -> anyhow::Result<u8> {
    let tokens = valid_tokens(ctx, provider, wait_secs)?;
    // A DPoP-bound token alone is refused by its resource server (RFC 9449 §7): each request needs
    // a proof signed by the key stored with it, which `mcp headers` makes.
    if is_dpop_bound(&tokens) {
        let shown = terminal_text(provider);
        return Err(exit::Failure::new(
            exit::code_for(ErrorCode::ConfigInvalid),
            format!(
                "the access token for {shown} is DPoP-bound (RFC 9449): it is useless without a proof signed by its key, so mcp token does not print it"
            ),
            Some(format!(
                "run `context-harness mcp headers {shown} --method M --url U` for the Authorization and DPoP headers of one request"
            )),
        )
        .into());
    }
    print_stdout(&render(&tokens, json))?;
    Ok(exit::OK)
}

/// A valid token set for `provider` (the cached one, else refreshed, else the one a sign-in another
/// process is running stores, waited for at most `wait_secs`), with printable access token.
pub(crate) fn valid_tokens(
    ctx: &Context,
    provider: &str,
    wait_secs: u64,
) -> anyhow::Result<OAuthTokens> {
    let service = ctx.service()?;
    let tokens = match service.cached_valid_token(provider)? {
        Some(tokens) => tokens,
        None => ctx.block_on(valid_or_awaited(
            &service,
            provider,
            Duration::from_secs(wait_secs),
            ctx.quiet,
        ))??,
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
    Ok(tokens)
}

/// A valid token (refreshed if needed); when a sign-in is needed and another process is running one
/// for `provider`, the token that sign-in stored, waiting for it at most `wait`.
async fn valid_or_awaited(
    service: &OAuthService,
    provider: &str,
    wait: Duration,
    quiet: bool,
) -> Result<OAuthTokens, ProviderError> {
    match service.ensure_valid_token(provider).await {
        Err(e) if e.needs_sign_in() => {
            if service
                .wait_for_sign_in(provider, wait, &Waiting { quiet })
                .await?
            {
                service.ensure_valid_token(provider).await
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

/// Says once on stderr (unless `-q`) that another process's sign-in is being waited for.
struct Waiting {
    quiet: bool,
}

impl SignInUi for Waiting {
    fn waiting_for_sign_in(&self, provider: &str) {
        if !self.quiet {
            eprintln!(
                "another context-harness process is signing in to {}; waiting…",
                terminal_text(provider)
            );
        }
    }
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
