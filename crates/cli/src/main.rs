//! The `context-harness` command-line program: OAuth 2.1 + PKCE sign-in for command-line programs.
//!
//! `context-harness mcp auth <provider>` signs in with the browser and stores the tokens (system
//! keyring, or a 0600 file); `mcp token` prints a valid access token (refreshing it first when
//! needed); `mcp status`, `mcp refresh`, `mcp logout` and `mcp providers` manage them. See the
//! README for every command, the `--json` schemas and the exit codes ([`exit`]).
//!
//! Output discipline: data (tokens, status, provider lists, completion scripts) goes to stdout;
//! messages, prompts, warnings and errors go to stderr. Only `mcp token`, `mcp headers` and
//! `git-credential get` (to git) ever print a secret; `exec` hands one to the command it runs, in one
//! environment variable.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod accounts;
mod args;
mod auth;
mod context;
mod exec;
mod exit;
mod git_credential;
mod headers;
mod logging;
mod manage;
mod providers;
mod proxy;
mod status;
mod timefmt;
mod token;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use context_harness_providers::storage::StorageMode;

use crate::args::{Cli, Command, McpCommand, StorageArg};
use crate::context::Context;

fn main() -> ExitCode {
    let cli = Cli::parse_token_fast_path().unwrap_or_else(Cli::parse);
    logging::init(cli.verbose, cli.quiet);
    forbid_core_dumps();
    let ctx = context_of(&cli);
    match run(&ctx, cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => ExitCode::from(exit::report(&err, &ctx)),
    }
}

/// The settings every command needs, from the global options (and `--client-metadata-url`).
fn context_of(cli: &Cli) -> Context {
    Context {
        home: cli.home.clone().filter(|h| !h.as_os_str().is_empty()),
        storage: match cli.storage {
            None | Some(StorageArg::Auto) => StorageMode::Auto,
            Some(StorageArg::Keyring) => StorageMode::Keyring,
            Some(StorageArg::File) => StorageMode::File,
        },
        verbose: cli.verbose,
        quiet: cli.quiet,
        client_metadata_url: match &cli.command {
            Command::Mcp(McpCommand::Auth(args)) => args.sign_in.client_metadata_url.clone(),
            Command::Mcp(McpCommand::Proxy(args)) => args.sign_in.client_metadata_url.clone(),
            _ => None,
        },
        account: cli.command.account().map(str::to_owned),
    }
}

/// Makes the process non-dumpable (`PR_SET_DUMPABLE` 0, Linux): no core dump of a process holding
/// tokens, and no `ptrace` attach or `/proc/<pid>/mem` read by other processes of the same user.
/// A failure is only logged (debug): the command still works without it.
fn forbid_core_dumps() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::debug!(error = %e, "could not make the process non-dumpable");
    }
}

/// Runs one command; `Ok` carries the exit code (non-zero only for `mcp status <provider>`).
///
/// Never inlined into `main`, and `mcp token` is dispatched first, to [`run_token`]: the other
/// commands' futures make this function's stack frame some 40 KiB, which `mcp token` (the command
/// run most often, usually with a cached token) should neither reserve nor touch.
#[inline(never)]
fn run(ctx: &Context, command: Command) -> anyhow::Result<u8> {
    let command = match command {
        Command::Mcp(McpCommand::Token {
            provider,
            json,
            timeout,
            no_sign_in,
            account: _,
        }) => return run_token(ctx, &provider, json, timeout, no_sign_in),
        other => other,
    };
    run_other(ctx, command)
}

/// `mcp token`: [`token::run`], in a small stack frame of its own.
#[inline(never)]
fn run_token(
    ctx: &Context,
    provider: &str,
    json: bool,
    timeout: u64,
    no_sign_in: bool,
) -> anyhow::Result<u8> {
    token::run(
        ctx,
        provider,
        json,
        token::Getting {
            wait_secs: timeout,
            sign_in: !no_sign_in,
        },
    )
}

/// Every command but `mcp token` (see [`run`]).
#[inline(never)]
fn run_other(ctx: &Context, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Mcp(mcp) => match mcp {
            McpCommand::Token {
                provider,
                json,
                timeout,
                no_sign_in,
                account: _,
            } => run_token(ctx, &provider, json, timeout, no_sign_in),
            McpCommand::Headers {
                provider,
                method,
                url,
                nonce,
                json: _,
                timeout,
                no_sign_in,
                account: _,
            } => headers::run(
                ctx,
                &provider,
                &headers::Request { method, url, nonce },
                token::Getting {
                    wait_secs: timeout,
                    sign_in: !no_sign_in,
                },
            ),
            McpCommand::Status { provider, json, .. } => {
                status::run(ctx, provider.as_deref(), json)
            }
            McpCommand::Auth(args) => auth::run(ctx, args),
            McpCommand::Refresh { provider, .. } => manage::refresh(ctx, &provider),
            McpCommand::Logout {
                provider,
                local_only,
                ..
            } => manage::logout(ctx, &provider, local_only),
            McpCommand::Providers { json } => providers::run(ctx, json),
            McpCommand::Proxy(args) => proxy::run(ctx, *args),
        },
        Command::GitCredential {
            operation,
            timeout,
            no_sign_in,
        } => git_credential::run(
            ctx,
            &operation,
            token::Getting {
                wait_secs: timeout,
                sign_in: !no_sign_in,
            },
        ),
        Command::Exec(args) => exec::run(ctx, args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut cmd, "context-harness", &mut out);
            Ok(exit::OK)
        }
    }
}
