//! `context-harness mcp proxy <url>`: the command line of the bridge of
//! [`context_harness_mcp_bridge`] (its arguments as a [`BridgeConfig`]), run on stdin and stdout.

use std::time::Duration;

use context_harness_mcp_bridge::{BridgeConfig, Browser, Error as BridgeError};

use crate::args::ProxyArgs;
use crate::auth::{Opener, choose_opener};
use crate::context::Context;
use crate::exit;

/// Runs the bridge until stdin ends or a signal comes; 0 then.
pub(crate) fn run(ctx: &Context, args: ProxyArgs) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let mut config = BridgeConfig::new(&args.url).map_err(failure)?;
    config.headers = context_harness_mcp_bridge::extra_headers(
        &args.headers,
        &args.header_files,
        &args.header_envs,
        service.environment(),
    )
    .map_err(failure)?;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    let s = &mut config.sign_in;
    s.client_id.clone_from(&args.sign_in.client_id);
    s.scopes.clone_from(&args.sign_in.scopes);
    s.ports.clone_from(&args.sign_in.ports);
    s.timeout = Duration::from_secs(args.sign_in.timeout);
    s.no_resource = args.sign_in.no_resource;
    s.no_dpop = args.sign_in.no_dpop;
    s.grant = args.sign_in.grant_options(None)?;
    s.quiet = ctx.quiet;
    // Hints name the account this bridge signs in with (`mcp auth --account NAME <url>`).
    s.sign_in_command = format!("context-harness mcp auth{}", ctx.account_flag());
    s.browser = match choose_opener(false) {
        Opener::System => Browser::System,
        Opener::Manual(why) => Browser::Manual(why.to_owned()),
    };
    context_harness_mcp_bridge::run_stdio(service, config).map_err(failure)?;
    Ok(exit::OK)
}

/// A bridge error as the CLI reports it: a provider error as such, a setting with exit 13
/// (`config_invalid`), anything else exit 1.
fn failure(e: BridgeError) -> anyhow::Error {
    match e {
        BridgeError::Provider(e) => e.into(),
        BridgeError::Config { message, hint } => exit::Failure::new(
            exit::code_for(context_harness_providers::ErrorCode::ConfigInvalid),
            message,
            Some(hint),
        )
        .into(),
        other => anyhow::Error::new(other),
    }
}
