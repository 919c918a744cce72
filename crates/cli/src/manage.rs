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
    match &outcome.revocation {
        Revocation::Revoked => ctx.say(format!(
            "Signed out of {provider}: tokens revoked at the server and deleted from {location}."
        )),
        Revocation::NotAttempted { reason } => ctx.say(format!(
            "Signed out of {provider}: tokens deleted from {location}; not revoked at the server ({reason})."
        )),
        Revocation::Failed { message } => {
            eprintln!(
                "warning: revoking the tokens at the server failed: {}",
                safe_lines(message)
            );
            ctx.say(format!(
                "Signed out of {provider}: tokens deleted from {location}; they may stay valid at the server until they expire."
            ));
        }
        other => ctx.say(format!(
            "Signed out of {provider}: tokens deleted from {location} ({other:?})."
        )),
    }
    Ok(exit::OK)
}
