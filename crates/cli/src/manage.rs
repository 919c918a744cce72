//! `context-harness mcp refresh <provider> [--account NAME]` and `context-harness mcp logout
//! <provider> [--account NAME] [--local-only]`.

use std::time::SystemTime;

use context_harness_providers::storage::{AccountIndex, AccountName};
use context_harness_providers::{OAuthService, Revocation};

use crate::context::{Context, safe_lines};
use crate::exit;
use crate::timefmt;

/// `provider`, and `(account NAME)` when the provider has several accounts or the one in use is
/// not `default`; the account in use and the provider's accounts before the command.
fn who(
    service: &OAuthService,
    provider: &str,
) -> anyhow::Result<(String, AccountName, AccountIndex)> {
    // The account the command acts on: the one this service resolved (once, when it first used
    // the provider), even when another process changed the default since.
    let account = service.account_for(provider)?;
    let index = service.accounts(provider)?;
    let label = if index.names().len() > 1 || !account.is_default() {
        format!("{provider} (account {account})")
    } else {
        provider.to_owned()
    };
    Ok((label, account, index))
}

pub(crate) fn refresh(ctx: &Context, provider: &str) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let tokens = ctx.block_on(service.refresh_tokens(provider))??;
    let (provider, ..) = who(&service, provider)?;
    let expiry = tokens.expires_at().map_or_else(
        || "no expiry given".to_owned(),
        |at| format!("valid until {}", timefmt::human(at, SystemTime::now())),
    );
    ctx.say(format!(
        "Refreshed the tokens for {provider}: access token {expiry}."
    ));
    Ok(exit::OK)
}

pub(crate) fn logout(ctx: &Context, name: &str, local_only: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let (provider, account, before) = who(&service, name)?;
    // Signing out of the default account hands the default to another one: say which.
    let new_default = || -> anyhow::Result<()> {
        let after = service.accounts(name)?;
        if before.default_account() == &account && !after.names().is_empty() {
            ctx.say(format!(
                "The default account of {name} is now {}.",
                after.default_account()
            ));
        }
        Ok(())
    };
    if local_only {
        let location = service.storage_location(name)?;
        if service.logout_local(name)? {
            ctx.say(format!(
                "Signed out of {provider}: deleted the tokens from {location} (not revoked at the server)."
            ));
            new_default()?;
        } else {
            ctx.say(format!("Not signed in to {provider}; nothing to delete."));
        }
        return Ok(exit::OK);
    }
    let location = service.storage_location(name)?;
    let outcome = ctx.block_on(service.logout(name))??;
    if !outcome.deleted {
        ctx.say(format!(
            "Not signed in to {provider}; nothing to revoke or delete."
        ));
        return Ok(exit::OK);
    }
    // One line per token and outcome (the service logs failures at `info` only, i.e. with -v).
    if outcome.tokens.is_empty() {
        revocation_line(ctx, "tokens", &outcome.revocation);
    }
    for token in &outcome.tokens {
        revocation_line(ctx, token.token, &token.result);
    }
    ctx.say(format!(
        "Signed out of {provider}: tokens deleted from {location}."
    ));
    new_default()?;
    Ok(exit::OK)
}

/// `Refresh token revoked at the server.`, or a `warning:` line when revoking it failed (shown
/// even with -q: the token may stay valid at the server until it expires).
fn revocation_line(ctx: &Context, token: &str, result: &Revocation) {
    let mut label = token.to_owned();
    if let Some(first) = label.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    match result {
        Revocation::Revoked => ctx.say(format!("{label} revoked at the server.")),
        Revocation::NotAttempted { reason } => {
            ctx.say(format!(
                "{label} not revoked at the server: {}.",
                safe_lines(reason)
            ));
        }
        Revocation::Failed { message } => eprintln!(
            "warning: revoking the {token} at the server failed ({}); it may stay valid there until it expires",
            safe_lines(message)
        ),
        other => ctx.say(format!("{label}: {other:?}.")),
    }
}
