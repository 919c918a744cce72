//! What `mcp auth --account NAME [--default]` adds to a sign-in: making an account the provider's
//! default, and saying which account a sign-in stored.

use context_harness_providers::{AuthStatus, OAuthService};

use crate::args::AuthArgs;
use crate::context::Context;

/// `mcp auth <provider> --account NAME --default` for an account that is signed in already: only
/// the default changes, no sign-in. `Ok(true)` when that is done; `Ok(false)` when a sign-in is
/// needed (then [`after_sign_in`] makes the account the default): the account is not in the
/// provider's index, or the index lists it but its tokens are gone (deleted by hand, or from the
/// keyring by another program), so it is not signed in whatever the index says.
///
/// # Errors
///
/// When the provider's accounts cannot be read or the index cannot be written.
pub(crate) fn switch_default_only(
    ctx: &Context,
    service: &OAuthService,
    args: &AuthArgs,
) -> anyhow::Result<bool> {
    let Some(account) = service.account().filter(|_| args.default) else {
        return Ok(false);
    };
    let provider = &args.provider;
    if !service.accounts(provider)?.contains(account) {
        return Ok(false);
    }
    // The service uses `account` (the builder's): its status is that account's stored tokens.
    if matches!(
        service.get_status(provider),
        Ok(AuthStatus::NotAuthenticated)
    ) {
        return Ok(false);
    }
    service.set_default_account(provider, account.as_str())?;
    ctx.say(format!(
        "The default account of {provider} is now {account} (signed in already; to sign in again, run `context-harness mcp auth {provider} --account {account}`)."
    ));
    Ok(true)
}

/// After a sign-in: with `--default`, makes its account the default; and when the provider has
/// several accounts (or this one was named), says which account signed in (the one the sign-in
/// started with, even when another process changed the default meanwhile) and which is the
/// default now.
///
/// # Errors
///
/// When the provider's accounts cannot be read or the index cannot be written.
pub(crate) fn after_sign_in(
    ctx: &Context,
    service: &OAuthService,
    args: &AuthArgs,
) -> anyhow::Result<()> {
    let provider = &args.provider;
    // The account the sign-in stored: the one this service resolved when it started (another
    // process may have made another account the default since).
    let account = service.account_for(provider)?;
    let index = service.accounts(provider)?;
    if args.default && index.default_account() != &account {
        service.set_default_account(provider, account.as_str())?;
        ctx.say(format!(
            "Account {account} is now the default account of {provider}."
        ));
        return Ok(());
    }
    if ctx.account.is_some() || index.names().len() > 1 {
        let default = if index.default_account() == &account {
            "the default account".to_owned()
        } else {
            format!(
                "the default account stays {} (make it this one with --default)",
                index.default_account()
            )
        };
        ctx.say(format!("Account {account} of {provider}: {default}."));
    }
    Ok(())
}
