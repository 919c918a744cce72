//! Maintainer automation for context-harness auth (`cargo xtask <task>`).
//!
//! - `cargo xtask test [-v]` — the README's test command: installs what the suites need, then fmt, clippy,
//!   tests (inside a private gnome-keyring session), docs and the offline cargo-deny check; one line per
//!   step, the full output in `target/xtask-test.log`, a last line counting the tests. `.ci/run` calls it.
//! - `cargo xtask dist` — stripped release build of `context-harness`, as a `.tar.gz` plus `SHA256SUMS`.
//! - `cargo xtask release <version> [--dry-run]` — bump, changelog, check, package, commit and tag.
//! - `cargo xtask demo [--headless]` — the README's "see it work": sign in to the bundled local server.
//! - `cargo xtask bench [--quick]` — the performance budget as a markdown table (`target/bench/report.md`).
//! - `cargo xtask with-secret-service -- <command>` — run any command with the private Secret Service.
//! - `cargo xtask client-metadata --app NAME --url URL [--out FILE]` — the Client ID Metadata Document an
//!   app publishes at URL (`docs/client-metadata.json` is context-harness's).
//!
//! Adding a task (`demo`, `bench`): write `src/<task>.rs` with a `clap::Args` struct and a
//! `run(&Context, &Args) -> Result<()>`, add a variant to [`Task`] and a line in `main`. Shared pieces:
//! `util` (project root, running commands, timed steps), `runlog` (quiet steps with a log file), `install`
//! (Debian/npm prerequisites, e.g. `install::ensure_node_modules` for the bundled authorization server),
//! `keyring`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_proxy;
mod check;
mod client_metadata;
mod demo;
mod dist;
mod install;
mod keyring;
mod local_server;
mod release;
mod runlog;
mod test_counts;
#[cfg(test)]
mod tidy;
mod util;

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::util::Context;

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Maintainer automation for context-harness auth"
)]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    task: Task,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Task {
    /// Install/start what the tests need, then fmt, clippy, tests, docs and cargo-deny (what CI runs); one
    /// line per step, full output in target/xtask-test.log.
    Test(check::TestArgs),
    /// Build the stripped release binary into target/dist/context-harness-VERSION-TARGET.tar.gz with SHA256SUMS.
    Dist(dist::DistArgs),
    /// Bump the version, move the CHANGELOG, check, package, commit and tag vVERSION (no push).
    Release(release::ReleaseArgs),
    /// Run a command inside a private D-Bus session with an unlocked gnome-keyring.
    WithSecretService {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Internal: the part of `with-secret-service` that runs under dbus-run-session.
    #[command(name = "inside-secret-service", hide = true)]
    InsideSecretService {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Sign in to the bundled local authorization server in the browser, then status, token, logout.
    Demo(demo::DemoArgs),
    /// Measure the performance budget; prints a markdown table and writes target/bench/report.md.
    Bench(bench::BenchArgs),
    /// Render the Client ID Metadata Document an app publishes at an https URL (its client id).
    ClientMetadata(client_metadata::ClientMetadataArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Context::from_build();
    let result: Result<ExitCode> = match &cli.task {
        Task::Test(args) => check::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Task::Dist(args) => dist::run(&ctx, args).map(|a| {
            println!(
                "archive:   {}\nchecksums: {}",
                a.archive.display(),
                a.sums.display()
            );
            ExitCode::SUCCESS
        }),
        Task::Release(args) => release::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Task::Demo(args) => demo::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Task::Bench(args) => bench::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Task::ClientMetadata(args) => client_metadata::run(&ctx, args).map(|()| ExitCode::SUCCESS),
        Task::WithSecretService { command } => with_secret_service(command),
        Task::InsideSecretService { command } => keyring::inside_session(command).map(exit_code),
    };
    result.unwrap_or_else(|err| {
        // `cargo xtask test` has printed its failure and ends with the test count; nothing to add.
        let reported = matches!(cli.task, Task::Test(_)) && err.is::<runlog::Reported>();
        if !reported {
            eprintln!("\nerror: {err:#}");
        }
        ExitCode::FAILURE
    })
}

fn with_secret_service(command: &[OsString]) -> Result<ExitCode> {
    install::ensure_tools(install::KEYRING_TOOLS)?;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("no command given");
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    keyring::run_with_secret_service(&mut cmd, &[]).map(exit_code)
}

/// Passes a child's exit code through (1 if it died from a signal).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn release_arguments_parse() {
        let cli = Cli::try_parse_from(["xtask", "release", "0.2.0", "--dry-run"]);
        assert!(
            matches!(cli, Ok(Cli { task: Task::Release(ref a) }) if a.dry_run && a.version == "0.2.0")
        );
    }
}
