//! `context-harness mcp token <provider> [--json]`: the one command that prints a secret.
//!
//! Fast path: a still-valid cached token is read from the store and printed, with no async runtime,
//! no HTTP client, no `providers.toml` read and (with the file store) no keyring access. Only an
//! expired token starts a runtime to refresh it.
//!
//! When there is no usable token (none stored, expired without a refresh token, refresh token
//! refused) it signs in as `mcp auth <provider>` would, with its defaults and `--timeout`: once per
//! name across processes, so when another process (`mcp auth`, `mcp proxy`, `mcp token`, a program
//! using the library's `token()`) is already signing in, it waits for that sign-in and prints the
//! token it stored. It starts a sign-in only when someone can see it: a browser can be opened here,
//! or stderr is a terminal (the URL or the device code is shown there). A script without either —
//! or `--no-sign-in` — gets exit 3 at once (after waiting for a sign-in another process runs).

use std::time::Duration;

use context_harness_providers::tokens::is_vschar;
use context_harness_providers::{
    ErrorCode, OAuthService, OAuthTokens, SignInUi, is_dpop_bound, terminal_text,
};

use crate::auth;
use crate::context::{Context, print_stdout};
use crate::exit;
use crate::timefmt;

/// How `mcp token` (and the commands that get a token the same way) may get one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Getting {
    /// Seconds to wait at most for a sign-in: this process's own, or another process's.
    pub(crate) wait_secs: u64,
    /// Whether this process may start a sign-in itself (`--no-sign-in` says no).
    pub(crate) sign_in: bool,
}

pub(crate) fn run(
    ctx: &Context,
    provider: &str,
    json: bool,
    getting: Getting,
) -> anyhow::Result<u8> {
    let (tokens, account) = valid_tokens_of(ctx, provider, getting)?;
    refuse_dpop_bound(
        ctx,
        provider,
        &account,
        &tokens,
        "mcp token does not print it",
    )?;
    print_stdout(&render(&tokens, &account, json))?;
    Ok(exit::OK)
}

/// Refuses a DPoP-bound token where the token alone would be handed on (`mcp token`, `exec`,
/// `git-credential`): its resource server refuses it without a proof signed by the key stored with
/// it (RFC 9449 §7), which only `mcp headers` makes. `outcome` says what the command does not do
/// ("mcp token does not print it"). Exit 13 (`config_invalid`), naming `mcp headers` (with
/// `--account` unless `account`, the tokens' account, is the bare default).
pub(crate) fn refuse_dpop_bound(
    ctx: &Context,
    provider: &str,
    account: &str,
    tokens: &OAuthTokens,
    outcome: &str,
) -> Result<(), exit::Failure> {
    if !is_dpop_bound(tokens) {
        return Ok(());
    }
    let shown = terminal_text(provider);
    Err(exit::Failure::new(
        exit::code_for(ErrorCode::ConfigInvalid),
        format!(
            "the access token for {shown} is DPoP-bound (RFC 9449): it is useless without a proof signed by its key, so {outcome}"
        ),
        Some(format!(
            "run `context-harness mcp headers {shown}{} --method M --url U` for the Authorization and DPoP headers of one request",
            ctx.account_flag_of(account)
        )),
    ))
}

/// A valid token set for `provider`, with a printable access token: the cached one, else
/// refreshed, else signed in (see the module's doc: this process's sign-in when it may start one,
/// else the one another process is running, waited for at most `getting.wait_secs`), and the
/// account they are of: the one named with `--account`, else the
/// provider's default account when the command started (resolved once, by the one service that
/// gets the tokens).
pub(crate) fn valid_tokens_of(
    ctx: &Context,
    provider: &str,
    getting: Getting,
) -> anyhow::Result<(OAuthTokens, String)> {
    let service = ctx.service()?;
    let account = service.account_for(provider)?.to_string();
    let tokens = match service.cached_valid_token(provider)? {
        Some(tokens) => tokens,
        None => refreshed_or_signed_in(ctx, &service, provider, getting)?,
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
            Some(format!(
                "run `context-harness mcp auth {shown}{}` to sign in again",
                ctx.account_flag_of(&account)
            )),
        )
        .into());
    }
    Ok((tokens, account))
}

/// [`valid_or_signed_in`] on a new runtime: the slow path of [`valid_tokens_of`].
///
/// Never inlined: the future lives in this function's stack frame (some 40 KiB, for the sign-in
/// flows it may run), so the fast path (a cached valid token) neither reserves nor touches those
/// stack pages (each one a page fault and resident memory on every `mcp token`).
#[inline(never)]
#[cold]
fn refreshed_or_signed_in(
    ctx: &Context,
    service: &OAuthService,
    provider: &str,
    getting: Getting,
) -> anyhow::Result<OAuthTokens> {
    ctx.block_on(valid_or_signed_in(ctx, service, provider, getting))?
}

/// A valid token (refreshed if needed); when a sign-in is needed, the tokens of this process's
/// sign-in (which waits for one another process is running), or, when it may not start one, of
/// the sign-in another process is running, waited for at most `getting.wait_secs`.
async fn valid_or_signed_in(
    ctx: &Context,
    service: &OAuthService,
    provider: &str,
    getting: Getting,
) -> anyhow::Result<OAuthTokens> {
    let wait = Duration::from_secs(getting.wait_secs);
    let needed = match service.ensure_valid_token(provider).await {
        Err(e) if e.needs_sign_in() => e,
        other => return Ok(other?),
    };
    let options = if getting.sign_in {
        auth::implicit_sign_in(ctx, service, provider, wait)?
    } else {
        None
    };
    if let Some(options) = options {
        tracing::info!(provider, code = %needed.code(), "signing in: {needed}");
        let outcome = service.authenticate(provider, options).await?;
        let shown = terminal_text(provider);
        ctx.say(if outcome.by_other_process {
            format!(
                "Signed in to {shown} by the sign-in another context-harness process completed."
            )
        } else {
            format!(
                "Signed in to {shown}; tokens stored in {}.",
                outcome.location
            )
        });
        return Ok(outcome.tokens);
    }
    let waiting = Waiting { quiet: ctx.quiet };
    if service.wait_for_sign_in(provider, wait, &waiting).await? {
        Ok(service.ensure_valid_token(provider).await?)
    } else {
        if getting.sign_in {
            tracing::info!(
                "not signing in: no browser can be opened here and stderr is not a terminal"
            );
        }
        Err(needed.into())
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

/// The token alone, or `{"access_token", "token_type", "expires_at", "account"}` (`expires_at` in
/// unix seconds or `null`).
fn render(tokens: &OAuthTokens, account: &str, json: bool) -> String {
    // The only place in the program that exposes a token.
    let secret = tokens.access_token.secret();
    if json {
        serde_json::json!({
            "access_token": secret,
            "token_type": tokens.token_type,
            "expires_at": tokens.expires_at().map(timefmt::unix),
            "account": account,
        })
        .to_string()
    } else {
        secret.to_owned()
    }
}
