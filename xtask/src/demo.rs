//! `cargo xtask demo`: the README's "see it work" command. Starts the bundled local authorization server on
//! loopback, writes a temporary home whose `providers.toml` has a `[providers.demo]` entry for it, and runs
//! `context-harness mcp auth demo` (in the user's browser), then `mcp status`, `mcp token` and `mcp logout`.
//! The server is stopped and the home deleted afterwards.
//!
//! Without a browser (no `DISPLAY`/`WAYLAND_DISPLAY`, `CI` set, or `--headless`) the server approves on its
//! own and `BROWSER` is the stand-in `tests/browser/follow.mjs`, which fetches the authorization URL and
//! follows its redirects to the CLI's loopback listener, so the whole flow still runs; what it did is shown.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::install;
use crate::local_server::{self, AuthServer};
use crate::util::{self, Context, Steps, TempDir};

/// The provider name the demo signs in to.
const PROVIDER: &str = "demo";

/// Options of `cargo xtask demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct DemoArgs {
    /// Use no real browser: the server approves automatically and the demo fetches the authorization URL
    /// itself (the default when there is no display, or when CI is set).
    #[arg(long)]
    pub(crate) headless: bool,
}

/// Runs the demo: installs the server's packages when needed, builds the CLI, then the flow.
pub(crate) fn run(ctx: &Context, args: &DemoArgs) -> Result<()> {
    let headless = args.headless || util::is_ci() || !has_display();
    let mut steps = Steps::new(7, false);
    steps.run("prerequisites (node, npm packages)", || {
        install::ensure_tools(install::NODE_TOOLS)?;
        install::ensure_node_modules(&ctx.root).map(drop)
    })?;
    let mut cli = PathBuf::new();
    steps.run("build the CLI", || {
        util::run(ctx.cargo().args([
            "build",
            "--package",
            "context-harness-cli",
            "--bin",
            "context-harness",
        ]))?;
        cli = cli_binary(ctx, "debug");
        Ok(())
    })?;
    run_flow(ctx, &cli, headless, &mut steps)?;
    steps.finish()
}

/// Whether a graphical browser can be opened (Linux/BSD: a display; elsewhere assumed).
fn has_display() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    !cfg!(all(unix, not(target_os = "macos"))) || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// The built `context-harness` for a profile directory (`debug`, `release`), honouring `CARGO_TARGET_DIR`.
pub(crate) fn cli_binary(ctx: &Context, profile: &str) -> PathBuf {
    ctx.target_dir().join(profile).join("context-harness")
}

/// The flow proper with an already built `cli`: server, home, auth, status, token, logout (five steps).
fn run_flow(ctx: &Context, cli: &Path, headless: bool, steps: &mut Steps) -> Result<()> {
    let tmp = TempDir::new("context-harness-demo")?;
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let browser_log = tmp.path().join("browser.log");

    let mut server = None;
    steps.run("start the server", || {
        let env: &[(&str, &str)] = if headless {
            &[("AS_AUTO_APPROVE", "1")]
        } else {
            &[]
        };
        let started = AuthServer::start(&ctx.root, env, &tmp.path().join("server.log"))?;
        println!(
            "oidc-provider listening on {} (loopback only, test-only; stopped at the end)",
            started.issuer
        );
        if headless {
            println!("no browser here: the server approves sign-ins on its own (AS_AUTO_APPROVE=1)");
        }
        let toml = started.providers_toml(PROVIDER, "Demo (local oidc-provider)", &[0]);
        util::write(&home.join("providers.toml"), &toml)?;
        println!(
            "\ntemporary home {} with providers.toml:\n\n{toml}",
            home.display()
        );
        println!("(ports = [0]: the CLI listens on any free loopback port, so a busy 8080 does not matter)");
        server = Some(started);
        Ok(())
    })?;
    let Some(server) = server else {
        bail!("the server did not start");
    };

    let cli_cmd = |args: &[&str]| -> Command {
        let mut cmd = Command::new(cli);
        cmd.args(args)
            .env("CONTEXT_HARNESS_HOME", &home)
            // The file store keeps the demo out of the user's real keyring; the home is deleted at the end.
            .env("CONTEXT_HARNESS_STORAGE", "file")
            .env_remove("DEMO_CLIENT_ID")
            .env_remove("DEMO_CLIENT_SECRET")
            .env_remove("RUST_LOG");
        if headless {
            // The browser's environment is an allowlist: the log file goes in its arguments.
            cmd.env(
                "BROWSER",
                format!(
                    "{} --log={}",
                    local_server::follow_browser(&ctx.root),
                    browser_log.display()
                ),
            );
        }
        cmd
    };
    println!(
        "\nEvery command below runs with CONTEXT_HARNESS_HOME={} CONTEXT_HARNESS_STORAGE=file",
        home.display()
    );

    steps.run("mcp auth demo", || {
        if headless {
            println!(
                "BROWSER is the stand-in `{}`: it fetches the authorization URL and follows the redirects \
                 (sign-in and consent are approved by the server) back to the CLI's loopback listener.",
                local_server::follow_browser(&ctx.root)
            );
        } else {
            println!(
                "Your browser opens the local server's sign-in page: press \"Sign in\" (user test-user), \
                 then \"Allow\"."
            );
        }
        let result = util::run(&mut cli_cmd(&["mcp", "auth", PROVIDER, "--timeout", "120"]));
        if headless && let Ok(log) = std::fs::read_to_string(&browser_log) {
            println!("\nwhat the stand-in browser did:");
            for line in log.lines() {
                println!("  {line}");
            }
        }
        result
    })?;
    steps.run("mcp status demo", || {
        util::run(&mut cli_cmd(&["mcp", "status", PROVIDER]))
    })?;
    steps.run("mcp token demo", || {
        println!("(prints the access token: the one command that shows a secret; this one is a local test token)");
        util::run(&mut cli_cmd(&["mcp", "token", PROVIDER]))
    })?;
    steps.run("mcp logout demo", || {
        util::run(&mut cli_cmd(&["mcp", "logout", PROVIDER]))
    })?;
    drop(server);
    println!("\nlocal authorization server stopped; temporary home removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's main job, non-interactively: the whole demo against the bundled server.
    #[test]
    fn demo_runs_headless() {
        let ctx = Context::from_build();
        let node = util::which("node").is_some();
        let modules = install::node_modules_dir(&ctx.root)
            .join("oidc-provider")
            .is_dir();
        if !(node && modules) {
            assert!(
                !util::is_ci(),
                "CI=true and node or the authorization server's node_modules is missing"
            );
            eprintln!(
                "note: skipping the demo test: node or node_modules missing (`cargo xtask test` installs them)"
            );
            return;
        }
        let result = run(&ctx, &DemoArgs { headless: true });
        assert!(result.is_ok(), "demo failed: {result:?}");
    }
}
