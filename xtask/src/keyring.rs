//! A private, unlocked Secret Service (gnome-keyring in its own D-Bus session) for the keyring tests.
//!
//! The recipe: a temporary directory holding a private `XDG_RUNTIME_DIR` (0700) and a
//! fresh `XDG_DATA_HOME`; `dbus-run-session -- <xtask> inside-secret-service -- <command>`; inside, a throwaway
//! password piped into `gnome-keyring-daemon --unlock --components=secrets` creates an unlocked default
//! collection; we wait until `org.freedesktop.secrets` has an owner on the bus, set
//! `CONTEXT_HARNESS_TEST_SECRET_SERVICE=1` (the marker the keyring tests require, so they never touch a
//! developer's real keyring) and run the command. Leaving `dbus-run-session` tears the bus and the daemon down.
//!
//! Use it by hand with `cargo xtask with-secret-service -- cargo test -p context-harness-storage`.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::util::{self, TempDir};

/// The marker variable the keyring tests look for.
pub(crate) const MARKER_VAR: &str = "CONTEXT_HARNESS_TEST_SECRET_SERVICE";

/// The hidden subcommand run inside `dbus-run-session`.
pub(crate) const INSIDE_SUBCOMMAND: &str = "inside-secret-service";

/// How long to wait for the daemon to own `org.freedesktop.secrets`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `command` (program and arguments) inside a fresh private D-Bus session with an unlocked
/// gnome-keyring. `envs` are added to the command's environment. Returns the command's exit status.
pub(crate) fn run_with_secret_service(
    command: &mut Command,
    extra_env: &[(String, OsString)],
) -> Result<ExitStatus> {
    let tmp = TempDir::new("context-harness-keyring")?;
    let runtime = tmp.path().join("runtime");
    let data = runtime.join("data");
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
    }
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let mut outer = Command::new("dbus-run-session");
    outer
        .arg("--")
        .arg(exe)
        .arg(INSIDE_SUBCOMMAND)
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", &data)
        // Never let the inner command reach a developer's session bus.
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => outer.env(key, v),
            None => outer.env_remove(key),
        };
    }
    for (key, value) in extra_env {
        outer.env(key, value);
    }
    util::say(&format!(
        "private D-Bus session: XDG_RUNTIME_DIR={} XDG_DATA_HOME={}",
        runtime.display(),
        data.display()
    ));
    util::say(&format!("$ {}", util::render(&outer)));
    // The bus, the keyring daemon and the command inherit these streams (the log `cargo xtask test` keeps).
    util::attach(&mut outer);
    let status = outer.status().context("cannot start dbus-run-session")?;
    drop(tmp);
    Ok(status)
}

/// The hidden subcommand: runs inside `dbus-run-session`, unlocks gnome-keyring, waits for it, then runs
/// `command` with the marker variable set and returns its exit status.
pub(crate) fn inside_session(command: &[OsString]) -> Result<ExitStatus> {
    let Some((program, args)) = command.split_first() else {
        bail!("{INSIDE_SUBCOMMAND}: no command given");
    };
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        bail!("{INSIDE_SUBCOMMAND} must run under dbus-run-session");
    }
    start_gnome_keyring()?;
    wait_for_secret_service()?;
    let status = Command::new(program)
        .args(args)
        .env(MARKER_VAR, "1")
        .status()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    Ok(status)
}

/// Starts gnome-keyring's secrets component, unlocked with a throwaway password.
fn start_gnome_keyring() -> Result<()> {
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--unlock", "--components=secrets"])
        .stdin(Stdio::piped())
        // It prints `GNOME_KEYRING_CONTROL=…`; nothing we need.
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start gnome-keyring-daemon (package gnome-keyring)")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A throwaway password: the keyring lives in a temporary directory and dies with the session.
        stdin
            .write_all(b"context-harness-test\n")
            .context("cannot unlock gnome-keyring")?;
    }
    let status = child
        .wait()
        .context("gnome-keyring-daemon did not finish starting")?;
    if !status.success() {
        bail!("gnome-keyring-daemon --unlock failed ({status})");
    }
    Ok(())
}

/// Polls the bus until `org.freedesktop.secrets` has an owner (the daemon returns before it is reachable).
fn wait_for_secret_service() -> Result<()> {
    let start = Instant::now();
    loop {
        let out = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .stderr(Stdio::null())
            .output()
            .context("cannot run dbus-send (package dbus-bin)")?;
        if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
            println!(
                "Secret Service ready after {} (gnome-keyring, unlocked, private session)",
                util::fmt_duration(start.elapsed())
            );
            return Ok(());
        }
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "gnome-keyring did not own org.freedesktop.secrets within {}s",
                READY_TIMEOUT.as_secs()
            );
        }
        sleep(Duration::from_millis(20));
    }
}
