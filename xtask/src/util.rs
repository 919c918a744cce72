//! Shared helpers: the project root, running commands (to the terminal, or to the log `cargo xtask test`
//! keeps), step timing, temporary directories.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

/// Where a task works: the repository root and an optional cargo target directory override.
///
/// Tasks take a `Context` instead of reading globals so the tests can point them at a temporary copy of
/// the repository and at a shared, warm target directory.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The workspace root (the directory holding the root `Cargo.toml`).
    pub(crate) root: PathBuf,
    /// `CARGO_TARGET_DIR` for every cargo command this task runs; `None` keeps cargo's default.
    pub(crate) target_dir: Option<PathBuf>,
    /// Extra environment for every cargo command (the tests turn off debug info to build faster).
    pub(crate) cargo_env: Vec<(&'static str, &'static str)>,
}

impl Context {
    /// The context for the repository this xtask binary was built from.
    pub(crate) fn from_build() -> Self {
        Self {
            root: project_root(),
            target_dir: None,
            cargo_env: Vec::new(),
        }
    }

    /// A context for the xtask tests: `root`, building into the shared `target/xtask-test` of this checkout
    /// (warm across runs) without debug info.
    #[cfg(test)]
    pub(crate) fn for_tests(root: PathBuf) -> Self {
        Self {
            root,
            target_dir: Some(project_root().join("target").join("xtask-test")),
            cargo_env: vec![("CARGO_PROFILE_DEV_DEBUG", "0"), ("CARGO_INCREMENTAL", "0")],
        }
    }

    /// Serialises the tests that build into the shared `target/xtask-test`: a release forgets the build
    /// fingerprints of our crates there (see `release::forget_extracted_packages`), which must not happen
    /// while another test's cargo is writing them. Hold the guard for the whole build.
    #[cfg(test)]
    pub(crate) fn shared_target_guard() -> std::sync::MutexGuard<'static, ()> {
        static SHARED_TARGET: Mutex<()> = Mutex::new(());
        SHARED_TARGET.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The target directory the cargo commands of this task use (the one definition; `dist`, `bench`,
    /// `demo` and `release` all ask here): the override (which [`cargo`](Self::cargo) passes on as
    /// `CARGO_TARGET_DIR`), else the inherited `$CARGO_TARGET_DIR` (relative to the root, where cargo
    /// runs), else `<root>/target`.
    pub(crate) fn target_dir(&self) -> PathBuf {
        resolve_target_dir(
            &self.root,
            self.target_dir.as_deref(),
            std::env::var_os("CARGO_TARGET_DIR").as_deref(),
        )
    }

    /// A `cargo` command run from the root, honouring the target directory override.
    pub(crate) fn cargo(&self) -> Command {
        let mut cmd = Command::new(cargo_program());
        cmd.current_dir(&self.root);
        if let Some(dir) = &self.target_dir {
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        cmd.envs(self.cargo_env.iter().copied());
        cmd
    }

    /// A `git` command run from the root.
    pub(crate) fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.root);
        cmd
    }
}

/// The repository root: the parent of this crate's manifest directory.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The target directory cargo uses when run from `root`: `override_dir`, else `env` (the value of
/// `CARGO_TARGET_DIR`, taken relative to `root` unless absolute; empty counts as unset), else
/// `<root>/target`.
fn resolve_target_dir(root: &Path, override_dir: Option<&Path>, env: Option<&OsStr>) -> PathBuf {
    match (override_dir, env) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The cargo executable: `$CARGO` (set by `cargo run`) or plain `cargo`.
pub(crate) fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// `true` when running under CI (`CI=true` or `CI=1`), where a missing prerequisite is a failure.
pub(crate) fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A shell-like rendering of a command line for logs.
pub(crate) fn render(cmd: &Command) -> String {
    // `$CARGO` is a long toolchain path; the log reads better with plain `cargo`.
    let program = cmd.get_program();
    let mut parts = vec![if program == cargo_program() {
        "cargo".to_owned()
    } else {
        quote(program)
    }];
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The log file that [`say`] and the commands started by [`run`], [`output`] and [`attach`] write to while
/// `cargo xtask test` keeps one (see `runlog.rs`); `None`: the terminal, as every other task uses.
static LOG: Mutex<Option<File>> = Mutex::new(None);

/// Sends [`say`] and the output of the commands this process starts to `file` (an append-mode log), or back
/// to the terminal with `None`.
pub(crate) fn log_to(file: Option<File>) {
    *LOG.lock().unwrap_or_else(PoisonError::into_inner) = file;
}

/// A new handle on the active log file, if any (it shares the append-mode file description).
fn log_file() -> Option<File> {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|f| f.try_clone().ok())
}

/// Whether a log is active (the tests check that a run gives the terminal back).
#[cfg(test)]
pub(crate) fn log_is_set() -> bool {
    LOG.lock().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// Prints a progress line: into the active log, else on stdout.
pub(crate) fn say(line: &str) {
    match log_file() {
        // A log that cannot be written loses a progress line; the step's result still decides the run.
        Some(mut file) => drop(writeln!(file, "{line}")),
        None => println!("{line}"),
    }
}

/// Points the command's stdout and stderr at the active log, if any (else they stay inherited).
pub(crate) fn attach(cmd: &mut Command) {
    if let Some(out) = log_file()
        && let Ok(err) = out.try_clone()
    {
        cmd.stdout(out).stderr(err);
    }
}

/// Runs a command with inherited stdio (or into the active log); fails with the command line if it does not
/// exit successfully.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    say(&format!("$ {}", render(cmd)));
    attach(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", render(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", render(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; stderr is passed through (or goes into the active log). Fails on a
/// non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let stderr = log_file().map_or_else(Stdio::inherit, Stdio::from);
    let out = cmd
        .stderr(stderr)
        .output()
        .with_context(|| format!("cannot start `{}`", render(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", render(cmd), out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8", render(cmd)))
}

/// `true` if the command starts and exits successfully (its output is discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Finds an executable on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    which_all(name).into_iter().next()
}

/// Every executable called `name` on `PATH`, in `PATH` order.
pub(crate) fn which_all(name: &str) -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .filter(|p| is_executable(p))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The current user is root (so Debian packages can be installed directly).
pub(crate) fn is_root() -> bool {
    // `id -u` avoids unsafe libc calls; fall back to $USER.
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(
            || std::env::var("USER").is_ok_and(|u| u == "root"),
            |s| s.trim() == "0",
        )
}

/// Formats a duration as `12.3s` or `4m05s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A sequence of named, timed steps with a summary. By default the first failure stops the run and names
/// its step; with `keep_going` every step runs and the failures are listed at the end.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    done: Vec<(String, Duration, bool)>,
    total: usize,
    keep_going: bool,
}

impl Steps {
    /// A step list that will run `total` steps (used for the `[i/n]` counter).
    pub(crate) fn new(total: usize, keep_going: bool) -> Self {
        Self {
            done: Vec::new(),
            total,
            keep_going,
        }
    }

    /// Runs one step under a header and records its time. On failure: stops (the error names the step), or
    /// under `keep_going` records it and carries on.
    pub(crate) fn run(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        let index = self.done.len() + 1;
        println!("\n==> [{index}/{}] {name}", self.total);
        let start = Instant::now();
        let result = f();
        let elapsed = start.elapsed();
        self.done.push((name.to_owned(), elapsed, result.is_ok()));
        match result {
            Ok(()) => {
                println!("<== {name}: ok ({})", fmt_duration(elapsed));
                Ok(())
            }
            Err(err) if self.keep_going => {
                println!(
                    "<== {name}: FAILED after {}: {err:#}",
                    fmt_duration(elapsed)
                );
                Ok(())
            }
            Err(err) => {
                println!("<== {name}: FAILED after {}", fmt_duration(elapsed));
                self.summary();
                Err(err.context(format!("step `{name}` failed")))
            }
        }
    }

    /// Prints the time of every finished step; fails naming the failed steps (only possible with
    /// `keep_going`).
    pub(crate) fn finish(&self) -> Result<()> {
        self.summary();
        let failed: Vec<&str> = self
            .done
            .iter()
            .filter(|(_, _, ok)| !ok)
            .map(|(n, _, _)| n.as_str())
            .collect();
        if !failed.is_empty() {
            bail!("failed steps: {}", failed.join(", "));
        }
        Ok(())
    }

    fn summary(&self) {
        println!("\nstep timings:");
        let mut total = Duration::ZERO;
        for (name, d, ok) in &self.done {
            let mark = if *ok { "" } else { "  FAILED" };
            println!("  {:<28} {:>8}{mark}", name, fmt_duration(*d));
            total += *d;
        }
        println!("  {:<28} {:>8}", "total", fmt_duration(total));
    }
}

/// A temporary directory removed on drop (std-only; xtask keeps its dependencies small).
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/<prefix>-<pid>-<nanos>` with mode 0700.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The workspace version: the `[workspace.package]` line marked `#:version` in the root `Cargo.toml`.
pub(crate) fn workspace_version(root: &Path) -> Result<String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    version_from_manifest(&manifest)
}

/// Extracts the version from the line marked `#:version`.
pub(crate) fn version_from_manifest(manifest: &str) -> Result<String> {
    let line = manifest
        .lines()
        .find(|l| l.contains("#:version"))
        .context("root Cargo.toml has no line marked `#:version`")?;
    let value = line
        .split_once('=')
        .map(|(_, v)| v)
        .and_then(|v| v.split('"').nth(1))
        .with_context(|| format!("cannot read the version from `{line}`"))?;
    Ok(value.to_owned())
}

/// Reads a UTF-8 file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a file, naming it in the error.
pub(crate) fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_is_the_override_then_cargo_target_dir_then_root_target() {
        let root = Path::new("/repo");
        let over = Path::new("/tmp/over");
        // The override wins: `Context::cargo` passes it to cargo as CARGO_TARGET_DIR.
        assert_eq!(
            resolve_target_dir(root, Some(over), Some(OsStr::new("/tmp/env"))),
            over
        );
        // Else the inherited CARGO_TARGET_DIR (the `cargo xtask dist` case), absolute or relative
        // to the root where cargo runs.
        assert_eq!(
            resolve_target_dir(root, None, Some(OsStr::new("/tmp/env"))),
            Path::new("/tmp/env")
        );
        assert_eq!(
            resolve_target_dir(root, None, Some(OsStr::new("tgt"))),
            Path::new("/repo/tgt")
        );
        // Unset or empty: cargo's default.
        assert_eq!(
            resolve_target_dir(root, None, Some(OsStr::new(""))),
            Path::new("/repo/target")
        );
        assert_eq!(
            resolve_target_dir(root, None, None),
            Path::new("/repo/target")
        );
    }

    #[test]
    fn version_is_read_from_the_marked_line() {
        let toml = "[workspace.package]\nversion = \"1.2.3\" #:version\nedition = \"2024\"\n";
        assert_eq!(version_from_manifest(toml).ok().as_deref(), Some("1.2.3"));
        assert!(version_from_manifest("version = \"1\"\n").is_err());
    }

    #[test]
    fn the_real_root_has_a_version() {
        assert!(workspace_version(&project_root()).is_ok());
    }

    #[test]
    fn rendering_quotes_only_when_needed() {
        let mut cmd = Command::new("echo");
        cmd.args(["a-b", "two words", "it's"]);
        assert_eq!(render(&cmd), r"echo a-b 'two words' 'it'\''s'");
    }
}
