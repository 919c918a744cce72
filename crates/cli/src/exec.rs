//! `context-harness exec <provider|url> [--env NAME] -- CMD ARGS…`: runs CMD with a valid access
//! token in one environment variable.
//!
//! - The token is got exactly as `mcp token` gets it ([`valid_tokens`]: cached, else refreshed,
//!   else a sign-in); a DPoP-bound token is refused as `mcp token` refuses it (exit 13): alone, it
//!   is useless to CMD.
//! - It goes in `NAME` (default `{PROVIDER}_TOKEN`: the provider name upper-cased, every character
//!   that is not a letter or digit replaced by `_`, so `github` → `GITHUB_TOKEN` and `my-idp.v2` →
//!   `MY_IDP_V2_TOKEN`; `MCP_TOKEN` for an MCP server URL). Nothing else is added to or removed
//!   from the environment CMD inherits, and the token is never on a command line.
//! - CMD is looked up on `PATH` like a shell does. On Unix it replaces this process (`execvp`):
//!   its exit status is the one the caller sees, a signal included (a shell reports `128 + n`), its
//!   signals and terminal are its own, and no context-harness process stays behind holding the
//!   token. Elsewhere it runs as a child and its exit code is returned. A CMD that cannot be found
//!   is exit 127, one that cannot be run exit 126 (the shells' codes), with a message.

use std::ffi::OsString;
use std::process::Command;

use context_harness_providers::{ProviderRef, env_prefix, terminal_text};

use crate::args::ExecArgs;
use crate::context::Context;
use crate::exit;
use crate::token::{Getting, refuse_dpop_bound, valid_tokens};

/// The exit code when CMD is not found (as a shell's).
pub(crate) const NOT_FOUND: u8 = 127;
/// The exit code when CMD is found but cannot be run (as a shell's).
pub(crate) const CANNOT_RUN: u8 = 126;
/// The exit code of a usage error (clap's).
const USAGE: u8 = 2;

/// The default variable for `provider` (see the module docs).
pub(crate) fn default_env_name(provider: &str) -> String {
    if ProviderRef::is_server_url(provider) {
        "MCP_TOKEN".to_owned()
    } else {
        format!("{}_TOKEN", env_prefix(provider))
    }
}

/// Variables that programs read as configuration — a search path, a program or library to load,
/// options, a shell's start-up file — rather than as data: the token put there would be used as
/// such (and shown in the errors that follow: `ld.so: object '<token>' cannot be preloaded`), so
/// `--env` refuses them. Exact names, then prefixes and suffixes (upper-cased comparison).
const CONFIGURATION_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "USER",
    "LOGNAME",
    "TERM",
    "TMPDIR",
    "LANG",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_PATH",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "BROWSER",
    "DISPLAY",
];
const CONFIGURATION_PREFIXES: &[&str] = &["LD_", "DYLD_", "GIT_", "SSH_", "LC_", "XDG_", "DBUS_"];
const CONFIGURATION_SUFFIXES: &[&str] = &["_OPTIONS", "_OPTS", "_PATH", "_ASKPASS"];

/// Whether programs read `name` as configuration ([`CONFIGURATION_NAMES`] and its prefixes and
/// suffixes). A name ending in `TOKEN` (every default name, `GITHUB_TOKEN`, `GIT_TOKEN`) names
/// data, whatever its prefix.
fn is_configuration_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("TOKEN") {
        return false;
    }
    CONFIGURATION_NAMES.contains(&upper.as_str())
        || CONFIGURATION_PREFIXES.iter().any(|p| upper.starts_with(p))
        || CONFIGURATION_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// Whether `name` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) fn run(ctx: &Context, args: ExecArgs) -> anyhow::Result<u8> {
    let name = args
        .env
        .clone()
        .unwrap_or_else(|| default_env_name(&args.provider));
    if !is_env_name(&name) {
        return Err(exit::Failure::new(
            USAGE,
            format!(
                "--env {}: not an environment variable name (letters, digits and `_`, not starting with a digit)",
                terminal_text(&name)
            ),
            None,
        )
        .into());
    }
    if is_configuration_name(&name) {
        return Err(exit::Failure::new(
            USAGE,
            format!(
                "--env {name}: programs read that variable as configuration (a path, a program or library to load, options), so the token would be used as one and shown in their errors"
            ),
            Some(format!(
                "choose a name of your own, e.g. the default {}",
                default_env_name(&args.provider)
            )),
        )
        .into());
    }
    let Some((program, program_args)) = args.command.split_first() else {
        return Err(exit::Failure::new(USAGE, "no command to run after `--`", None).into());
    };
    let getting = Getting {
        wait_secs: args.timeout,
        sign_in: !args.no_sign_in,
    };
    let tokens = valid_tokens(ctx, &args.provider, getting)?;
    refuse_dpop_bound(ctx, &args.provider, &tokens, "exec does not pass it on")?;
    let mut command = Command::new(program);
    command
        .args(program_args)
        .env(&name, tokens.access_token.secret());
    tracing::debug!(program = %terminal_text(&program.to_string_lossy()), env = %name, "running the command with the token");
    run_command(command, program)
}

/// Replaces this process with `command` (Unix); returns only when that fails.
#[cfg(unix)]
fn run_command(mut command: Command, program: &OsString) -> anyhow::Result<u8> {
    use std::os::unix::process::CommandExt as _;
    let error = command.exec();
    Err(cannot_start(program, &error).into())
}

/// Runs `command` as a child and returns its exit code (not Unix).
#[cfg(not(unix))]
fn run_command(mut command: Command, program: &OsString) -> anyhow::Result<u8> {
    let status = command
        .status()
        .map_err(|error| cannot_start(program, &error))?;
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(exit::OTHER))
}

/// The failure for a CMD that could not be started: 127 when not found, else 126.
fn cannot_start(program: &OsString, error: &std::io::Error) -> exit::Failure {
    let shown = terminal_text(&program.to_string_lossy());
    if error.kind() == std::io::ErrorKind::NotFound {
        exit::Failure::new(
            NOT_FOUND,
            format!("{shown}: command not found"),
            Some("give the program's path, or check PATH".to_owned()),
        )
    } else {
        exit::Failure::new(CANNOT_RUN, format!("cannot run {shown}: {error}"), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(default_env_name("github"), "GITHUB_TOKEN");
        assert_eq!(default_env_name("my-idp.v2"), "MY_IDP_V2_TOKEN");
        assert_eq!(default_env_name("https://mcp.example/mcp"), "MCP_TOKEN");
        for good in ["GITHUB_TOKEN", "_x", "a1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A=B", "A B", "Ä"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn configuration_variables_are_refused() {
        for name in [
            "PATH",
            "path",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "SHELLOPTS",
            "BASH_ENV",
            "IFS",
            "PS4",
            "NODE_OPTIONS",
            "JAVA_TOOL_OPTIONS",
            "MAVEN_OPTS",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_SSH_COMMAND",
            "HOME",
        ] {
            assert!(is_configuration_name(name), "{name}");
        }
        for name in [
            "GITHUB_TOKEN",
            "GIT_TOKEN",
            "SSH_TOKEN",
            "MCP_TOKEN",
            "ACME_API_TOKEN",
            "ACME_KEY",
        ] {
            assert!(!is_configuration_name(name), "{name}");
        }
        for provider in [
            "github",
            "git",
            "ld",
            "ssh",
            "lc-x",
            "https://mcp.example/mcp",
        ] {
            assert!(
                !is_configuration_name(&default_env_name(provider)),
                "{provider}"
            );
        }
    }
}
