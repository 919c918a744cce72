//! `context-harness mcp refresh <provider>` and `context-harness mcp logout <provider> [--local-only]`.

use std::time::SystemTime;

use context_harness_providers::Revocation;

use crate::context::{Context, safe_lines};
use crate::exit;
use crate::timefmt;

pub(crate) fn refresh(ctx: &Context, provider: &str) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let tokens = ctx.block_on(service.refresh_tokens(provider))??;
    let expiry = tokens.expires_at().map_or_else(
        || "no expiry given".to_owned(),
        |at| format!("valid until {}", timefmt::human(at, SystemTime::now())),
    );
    ctx.say(format!(
        "Refreshed the tokens for {provider}: access token {expiry}."
    ));
    Ok(exit::OK)
}

pub(crate) fn logout(ctx: &Context, provider: &str, local_only: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    if local_only {
        let location = service.storage_location(provider)?;
        if service.logout_local(provider)? {
            ctx.say(format!(
                "Signed out of {provider}: deleted the tokens from {location} (not revoked at the server)."
            ));
        } else {
            ctx.say(format!("Not signed in to {provider}; nothing to delete."));
        }
        return Ok(exit::OK);
    }
    let location = service.storage_location(provider)?;
    let outcome = ctx.block_on(service.logout(provider))??;
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
