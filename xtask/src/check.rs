//! `cargo xtask test`: set up what the suites need, then fmt, clippy, tests (inside a private Secret Service
//! session), docs and the offline cargo-deny check — the same order CI runs (`.ci/run` calls this).

use std::ffi::OsString;

use anyhow::{Result, bail};

use crate::install::{self, BROWSER_TOOLS, CHROMIUM, KEYRING_TOOLS};
use crate::keyring;
use crate::util::{self, Context, Steps};

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
}

/// Variable naming the Chromium binary for the browser tests.
pub(crate) const CHROMIUM_VAR: &str = "CONTEXT_HARNESS_TEST_CHROMIUM";
/// Variable naming the authorization server's `node_modules` for the end-to-end tests.
pub(crate) use context_harness_test_support::NODE_MODULES_VAR;

/// What the prerequisite step found; decides how the tests run.
#[derive(Debug, Default)]
struct Prereqs {
    keyring: bool,
    chromium: bool,
    node_modules: bool,
}

/// Runs the whole check.
pub(crate) fn run(ctx: &Context, args: &TestArgs) -> Result<()> {
    let ci = util::is_ci();
    if ci && args.skip_install {
        bail!(
            "--skip-install is refused when CI=true: in CI a missing part is a failure, never a skip"
        );
    }
    let total = if args.no_deny { 5 } else { 6 };
    let mut steps = Steps::new(total, args.keep_going);
    let mut prereqs = Prereqs::default();
    steps.run("prerequisites", || {
        prereqs = prerequisites(ctx, args)?;
        Ok(())
    })?;
    steps.run("cargo fmt --check", || {
        util::run(ctx.cargo().args(["fmt", "--all", "--check"]))
    })?;
    steps.run("cargo clippy", || {
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
    steps.run("cargo test", || run_tests(ctx, &prereqs))?;
    steps.run("cargo doc", || {
        util::run(
            ctx.cargo()
                .args(["doc", "--workspace", "--no-deps", "--all-features"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )
    })?;
    if !args.no_deny {
        steps.run("cargo deny", || deny(ctx))?;
    }
    steps.finish()?;
    println!("\nall checks passed");
    Ok(())
}

/// Checks (and installs, unless `--skip-install`) the Debian packages, npm packages and cargo-deny.
fn prerequisites(ctx: &Context, args: &TestArgs) -> Result<Prereqs> {
    if args.skip_install {
        let present = |tools: &[install::Tool]| tools.iter().all(install::present);
        let found = Prereqs {
            keyring: present(KEYRING_TOOLS),
            chromium: present(BROWSER_TOOLS),
            node_modules: install::node_modules_dir(&ctx.root).is_dir(),
        };
        println!("--skip-install: using what is present: {found:?}");
        return Ok(found);
    }
    install::ensure_tools(&[KEYRING_TOOLS, BROWSER_TOOLS].concat())?;
    let node_modules = install::ensure_node_modules(&ctx.root)?;
    // The MCP conformance suite the `mcp proxy` conformance test runs (it finds the suite itself).
    install::ensure_conformance_suite(&ctx.root)?;
    // The Python-SDK MCP server of the `mcp proxy` tests (they find its venv themselves).
    install::ensure_python_venv(&ctx.root)?;
    if !args.no_deny {
        install::ensure_cargo_deny(ctx)?;
    }
    Ok(Prereqs {
        keyring: true,
        chromium: true,
        node_modules,
    })
}

/// `cargo test --workspace --all-features`, inside the private Secret Service session when available.
fn run_tests(ctx: &Context, prereqs: &Prereqs) -> Result<()> {
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
        println!("export {key}={}", value.to_string_lossy());
    }
    let mut cmd = ctx.cargo();
    // Report every failing test binary, not just the first.
    cmd.args(["test", "--workspace", "--all-features", "--no-fail-fast"]);
    if !prereqs.keyring {
        println!("no gnome-keyring/dbus-run-session: the keyring tests will skip");
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        return util::run(&mut cmd);
    }
    let status = keyring::run_with_secret_service(&mut cmd, &env)?;
    if !status.success() {
        bail!("`cargo test --workspace --all-features --no-fail-fast` failed ({status})");
    }
    Ok(())
}

/// `cargo fetch --locked` (so sources are cached), then the offline cargo-deny check.
pub(crate) fn deny(ctx: &Context) -> Result<()> {
    util::run(ctx.cargo().args(["fetch", "--locked"]))?;
    util::run(ctx.cargo().args([
        "deny",
        "--offline",
        "--locked",
        "check",
        "licenses",
        "bans",
        "sources",
    ]))
}
