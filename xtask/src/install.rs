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

use crate::util;

/// The cargo-deny release `cargo xtask test` checks with: an installed `cargo-deny` of exactly this version is
/// reused (on `PATH` or in cargo's bin directory); otherwise this one is installed (see [`ensure_cargo_deny`]).
pub(crate) const CARGO_DENY_VERSION: &str = "0.20.2";

/// The Chromium binary the browser tests drive.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// The local authorization server's directory and the MCP servers built with the official TypeScript SDK
/// (and `mcp-remote` for the bench), relative to the root: defined once, by the test servers' launcher.
pub(crate) use context_harness_test_support::{
    AUTH_SERVER_DIR, CONFORMANCE_DIR, MCP_HOST_DIR, MCP_SERVERS_DIR, PYTHON_MCP_SERVER_DIR,
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
        util::say(&format!("present: {}", names.join(", ")));
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    for tool in &missing {
        util::say(&format!(
            "missing: {} (package {}, for the {})",
            tool.program, tool.package, tool.purpose
        ));
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

/// An installed `cargo-deny`: where, and the version its `--version` names (`None`: it did not answer).
pub(crate) type FoundCargoDeny = (PathBuf, Option<String>);

/// The version a `cargo-deny --version` answer names (`cargo-deny 0.20.2` → `0.20.2`), if it is such an answer.
pub(crate) fn cargo_deny_version(answer: &str) -> Option<&str> {
    let mut words = answer.split_whitespace();
    if words.next() != Some("cargo-deny") {
        return None;
    }
    words.next()
}

/// The first of `found` whose version is `pinned` exactly (another version may check differently).
pub(crate) fn pick_cargo_deny<'a>(found: &'a [FoundCargoDeny], pinned: &str) -> Option<&'a Path> {
    found
        .iter()
        .find(|(_, version)| version.as_deref() == Some(pinned))
        .map(|(path, _)| path.as_path())
}

/// The bin directory `cargo install` writes to: `$CARGO_INSTALL_ROOT/bin`, else `$CARGO_HOME/bin`, else
/// `~/.cargo/bin` (`None` without `HOME`).
fn cargo_install_bin() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("CARGO_INSTALL_ROOT")
        .or_else(|| var("CARGO_HOME"))
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|root| root.join("bin"))
}

/// Every `cargo-deny` installed where `cargo deny` looks (`PATH`, then cargo's bin directory), with the
/// version each reports.
fn installed_cargo_deny() -> Vec<FoundCargoDeny> {
    let mut paths = util::which_all("cargo-deny");
    if let Some(bin) = cargo_install_bin() {
        let path = bin.join("cargo-deny");
        if path.is_file() && !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let version = Command::new(&path)
                .arg("--version")
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| {
                    cargo_deny_version(&String::from_utf8_lossy(&out.stdout)).map(str::to_owned)
                });
            (path, version)
        })
        .collect()
}

/// An installed cargo-deny of exactly [`CARGO_DENY_VERSION`], if there is one (quick: runs `--version`).
pub(crate) fn find_cargo_deny() -> Option<PathBuf> {
    pick_cargo_deny(&installed_cargo_deny(), CARGO_DENY_VERSION).map(Path::to_path_buf)
}

/// The path of a cargo-deny of exactly [`CARGO_DENY_VERSION`]: an installed one is reused; when it is
/// missing, or only another version is installed, this one is installed with `cargo install --locked`
/// (a few minutes), into cargo's bin directory.
pub(crate) fn ensure_cargo_deny() -> Result<PathBuf> {
    let found = installed_cargo_deny();
    if let Some(path) = pick_cargo_deny(&found, CARGO_DENY_VERSION) {
        util::say(&format!(
            "present: cargo-deny {CARGO_DENY_VERSION} ({})",
            path.display()
        ));
        return Ok(path.to_path_buf());
    }
    for (path, version) in &found {
        util::say(&format!(
            "not the pinned {CARGO_DENY_VERSION}: {} ({})",
            path.display(),
            version.as_deref().unwrap_or("no version")
        ));
    }
    util::say(&format!(
        "installing cargo-deny {CARGO_DENY_VERSION} (a few minutes on 2 cores)"
    ));
    // Not `ctx.cargo()`: `cargo install` must not inherit a test's target directory override.
    let mut cmd = Command::new(util::cargo_program());
    cmd.args([
        "install",
        "--locked",
        "cargo-deny",
        "--version",
        CARGO_DENY_VERSION,
    ]);
    util::run(&mut cmd)?;
    find_cargo_deny().with_context(|| {
        format!(
            "`cargo install` finished but no cargo-deny {CARGO_DENY_VERSION} is on PATH or in {}",
            cargo_install_bin()
                .map_or_else(|| "~/.cargo/bin".to_owned(), |b| b.display().to_string())
        )
    })
}

/// The oldest Node major version the test servers run on: the `engines` of `@modelcontextprotocol/server` 2
/// and `playwright-core` say `node >= 20` (Debian 12's own `nodejs` is 18).
pub(crate) const MIN_NODE_MAJOR: u32 = 20;

/// The major version a `node --version` answer names (`v20.20.2` → 20).
pub(crate) fn node_major(answer: &str) -> Option<u32> {
    answer
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Makes sure `node` and `npm` are present (as [`ensure_tools`] does) and node is at least
/// [`MIN_NODE_MAJOR`]; fails naming the version found otherwise.
pub(crate) fn ensure_node() -> Result<()> {
    ensure_tools(NODE_TOOLS)?;
    let answer = util::output(Command::new("node").arg("--version"))?;
    let answer = answer.trim();
    match node_major(answer) {
        Some(major) if major >= MIN_NODE_MAJOR => {
            util::say(&format!("node {answer}"));
            Ok(())
        }
        _ => bail!(
            "node {answer} is too old: the test servers need Node {MIN_NODE_MAJOR} or newer (Debian 12's \
             nodejs package is 18; install Node {MIN_NODE_MAJOR}+ from nodejs.org, NodeSource or nvm)"
        ),
    }
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

/// [`ensure_node_modules`] for one directory of the repository (`dir_name`, relative to `root`).
pub(crate) fn ensure_node_modules_in(root: &Path, dir_name: &str) -> Result<bool> {
    let dir = root.join(dir_name);
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        util::say(&format!(
            "no {dir_name}/package.json yet: nothing to install"
        ));
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
        util::say(&format!("{dir_name}/node_modules is up to date"));
        return Ok(true);
    }
    ensure_node()?;
    let mut cmd = Command::new("npm");
    cmd.current_dir(&dir).args(["--no-audit", "--no-fund"]);
    if lockfile.exists() {
        cmd.arg("ci");
    } else {
        cmd.arg("install");
    }
    // In CI (a fresh machine, used once) the download cache would only double the disk the packages take
    // (hundreds of MB): it goes in a temporary directory removed after the install.
    let cache = if util::is_ci() {
        let cache = util::TempDir::new("xtask-npm-cache")?;
        cmd.env("npm_config_cache", cache.path());
        Some(cache)
    } else {
        None
    };
    util::run(&mut cmd)?;
    drop(cache);
    Ok(true)
}

/// The oldest Python the test server's pinned packages install on (`httpx2`, `starlette` and others in
/// `requirements.txt` require 3.11).
pub(crate) const MIN_PYTHON: (u32, u32) = (3, 11);

/// The `(major, minor)` an answer of `python3 -c 'import sys; print(*sys.version_info[:2], sep=".")'` names.
pub(crate) fn python_version(answer: &str) -> Option<(u32, u32)> {
    let (major, minor) = answer.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Fails unless `python3` is at least [`MIN_PYTHON`].
fn check_python_version() -> Result<()> {
    let answer = util::output(
        Command::new("python3").args(["-c", "import sys; print(*sys.version_info[:2], sep='.')"]),
    )?;
    let (want_major, want_minor) = MIN_PYTHON;
    match python_version(&answer) {
        Some(found) if found >= MIN_PYTHON => Ok(()),
        _ => bail!(
            "python3 {} is too old: the Python MCP test server's packages need Python \
             {want_major}.{want_minor} or newer",
            answer.trim()
        ),
    }
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
        util::say(&format!(
            "no {PYTHON_MCP_SERVER_DIR}/requirements.txt: nothing to install"
        ));
        return Ok(false);
    }
    let venv = dir.join(".venv");
    let marker = venv.join(VENV_MARKER);
    let fresh = matches!((mtime(&marker), mtime(&requirements)), (Some(i), Some(r)) if i >= r);
    if fresh {
        util::say(&format!("{PYTHON_MCP_SERVER_DIR}/.venv is up to date"));
        return Ok(true);
    }
    ensure_tools(PYTHON_TOOLS)?;
    let python = context_harness_test_support::python(root);
    // `python3 -m venv` without Debian's python3-venv fails after making `bin/python` but before
    // pip: such a half-made venv is made again, not reused (pip would be missing for good).
    let half_made = python.is_file() && !venv.join("bin").join("pip").exists();
    if half_made {
        fs::remove_dir_all(&venv)
            .with_context(|| format!("cannot remove the half-made venv {}", venv.display()))?;
    }
    if !python.is_file() || half_made {
        check_python_version()?;
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
        // In CI the download cache only takes disk (see the npm step).
        .args(util::is_ci().then_some("--no-cache-dir"))
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
    fn cargo_deny_version_is_read_from_its_answer() {
        assert_eq!(cargo_deny_version("cargo-deny 0.20.2\n"), Some("0.20.2"));
        assert_eq!(cargo_deny_version("cargo-deny"), None);
        assert_eq!(cargo_deny_version("error: no such command: `deny`"), None);
        assert_eq!(cargo_deny_version(""), None);
    }

    #[test]
    fn only_the_pinned_cargo_deny_is_reused() {
        let found = |list: &[(&str, Option<&str>)]| -> Vec<FoundCargoDeny> {
            list.iter()
                .map(|(p, v)| (PathBuf::from(p), v.map(str::to_owned)))
                .collect()
        };
        // The pinned one is reused wherever it is, even behind another version first on PATH.
        let both = found(&[
            ("/usr/local/bin/cargo-deny", Some("0.18.3")),
            ("/home/u/.cargo/bin/cargo-deny", Some("0.20.2")),
        ]);
        assert_eq!(
            pick_cargo_deny(&both, "0.20.2"),
            Some(Path::new("/home/u/.cargo/bin/cargo-deny"))
        );
        // Another version only, one that does not answer, or none: install.
        let other = found(&[("/home/u/.cargo/bin/cargo-deny", Some("0.20.1"))]);
        assert_eq!(pick_cargo_deny(&other, "0.20.2"), None);
        let broken = found(&[("/home/u/.cargo/bin/cargo-deny", None)]);
        assert_eq!(pick_cargo_deny(&broken, "0.20.2"), None);
        assert_eq!(pick_cargo_deny(&[], "0.20.2"), None);
        // No prefix match: 0.20.20 is not 0.20.2.
        let longer = found(&[("/bin/cargo-deny", Some("0.20.20"))]);
        assert_eq!(pick_cargo_deny(&longer, "0.20.2"), None);
    }

    #[test]
    fn node_and_python_versions_are_read() {
        assert_eq!(node_major("v20.20.2\n"), Some(20));
        assert_eq!(node_major("v18.19.0"), Some(18));
        assert_eq!(node_major("20.1.0"), None);
        assert_eq!(python_version("3.11\n"), Some((3, 11)));
        assert!(python_version("3.10").is_some_and(|v| v < MIN_PYTHON));
        assert!(python_version("3.13").is_some_and(|v| v >= MIN_PYTHON));
        assert_eq!(python_version("Python 3.11.7"), None);
    }

    #[test]
    fn no_package_json_means_nothing_to_install() {
        let tmp = util::TempDir::new("xtask-npm").ok();
        let tmp = tmp.as_ref().map(util::TempDir::path);
        assert!(tmp.is_some());
        if let Some(dir) = tmp {
            assert!(matches!(ensure_node_modules(dir), Ok(false)));
            assert!(matches!(
                ensure_node_modules_in(dir, CONFORMANCE_DIR),
                Ok(false)
            ));
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
