//! `context-harness exec <provider|url> [--env NAME] -- CMD ARGS…`: runs CMD with a valid access
//! token in one environment variable.
//!
//! - The token is got exactly as `mcp token` gets it ([`valid_tokens_of`]: cached, else refreshed,
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
use std::path::Path;
use std::process::Command;

use context_harness_providers::{ProviderRef, env_prefix, terminal_text};

use crate::args::ExecArgs;
use crate::context::Context;
use crate::exit;
use crate::token::{Getting, refuse_dpop_bound, valid_tokens_of};

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

/// Variables that programs read as configuration rather than as data: the token put there would
/// be used as such (and shown in the errors that follow: `ld.so: object '<token>' cannot be
/// preloaded`), and a token is the server's text (printable ASCII, spaces and `$(…)` included), so
/// in a variable read as code or a command it would run as one — `PS0` in `bash -i`, `VIMINIT` in
/// vim, `MAKEFLAGS='--eval=$(shell …)'` in make, `CARGO_TARGET_<triple>_RUNNER` in `cargo run`
/// all did. `--env` refuses them. The list follows sudo's `env_delete` defaults and glibc's
/// `UNSECURE_ENVVARS`, widened to what names a command, an option, a file, a directory or a place
/// to connect to: exact names, then prefixes and suffixes (upper-cased comparison).
///
/// Each list is names separated by white space.
const CONFIGURATION_NAMES: &str = "
    PATH HOME SHELL USER LOGNAME MAIL IFS ENV SHELLOPTS BASHOPTS CDPATH GLOBIGNORE EXECIGNORE
    HISTFILE PROMPT_COMMAND PS0 PS1 PS2 PS3 PS4 NULLCMD READNULLCMD TMPPREFIX FCEDIT
    PROMPT PROMPT2 PROMPT3 PROMPT4 RPROMPT RPROMPT2 RPS1 RPS2 SPROMPT
    TERM TERMCAP TERMINFO LANG LANGUAGE TZ GLIBC_TUNABLES HOSTALIASES LOCALDOMAIN RES_OPTIONS
    EDITOR VISUAL BROWSER TERMINAL DISPLAY XAUTHORITY DOCKER_HOST
    CC CXX CPP LD AR AS FC MAKE GOROOT GOTOOLCHAIN GOENV
    VIM VIMINIT EXINIT GVIMINIT MYVIMRC MYGVIMRC VIMRUNTIME NVIM NVIM_APPNAME
    RUBYOPT RUBYLIB RUBYPATH RUBYSHELL RUBYGEMS_GEMDEPS BUNDLE_GEMFILE
    RUSTFMT
    PERLLIB
    LESS LESSBINFMT LESSCLOSE LESSECHO LESSEDIT LESSGLOBALTAGS LESSOPEN LESSSEPARATOR
    NODE_OPTIONS NODE_PATH NODE_EXTRA_CA_CERTS NODE_ICU_DATA NODE_NO_WARNINGS NODE_ENV
    NODE_PRESERVE_SYMLINKS NODE_REDIRECT_WARNINGS NODE_SKIP_PLATFORM_CHECK NODE_UNIQUE_ID
    NODE_V8_COVERAGE
    R_PROFILE R_PROFILE_USER R_ENVIRON R_ENVIRON_USER
";
/// The loader, the C library, locale, desktop, shells, git and ssh, Kerberos, sudo and systemd,
/// less, the language runtimes and their package managers, the Rust, Go and .NET tool chains, and
/// this program's own (`CONTEXT_HARNESS_STORAGE`: a nested context-harness showed the token in an
/// error). Each family is the names its program reads (its manual's ENVIRONMENT section), not
/// every name that starts alike: `RUBYGEMS_API_KEY`, `NODE_API_KEY` and `LESSON_KEY` are data.
/// `RUBY_` stays whole: `RUBY_CRASH_REPORT='|cmd'` runs a command, `RUBY_DEBUG_*` debugger ones.
const CONFIGURATION_PREFIXES: &str = "
    LD_ DYLD_ _RLD MALLOC_ RESOLV_ GCONV_ LC_ XDG_ DBUS_ BASH_ GIT_ SSH_ KRB5 SUDO_ SYSTEMD_
    LESS_ LESSANSI LESSCHAR LESSHIST LESSKEY LESSMETA LESSSECURE LESSUTF
    PERL5 PERL_ PERLIO PERLDB PERLDOC PERLBREW_ PYTHON RUBY_
    NODE_TLS_ NODE_DEBUG NODE_REPL_ NODE_COMPILE_ NODE_DISABLE_ NODE_PENDING_ NODE_TEST_
    NODE_USE_ NODE_CHANNEL_ NODE_INSPECT_ NODE_RUN_
    NPM_CONFIG_ PIP_ LUA_ ERL_ RUSTC RUSTDOC RUSTUP_ RUST_ CARGO_ CGO_ DOTNET_ CORECLR_ COMPLUS_
    CONTEXT_HARNESS_
";
/// Options and flags (`NODE_OPTIONS`, `MAVEN_OPTS`, `RUBYOPT`, `CFLAGS`, `MAKEFLAGS`); commands
/// (`GIT_SSH_COMMAND`, `MANPAGER`, `SUDO_EDITOR`, `RSYNC_RSH`, `RUSTC_WRAPPER`); files and
/// directories (`CLASSPATH`, `FPATH`, `ZDOTDIR`, `SSL_CERT_FILE`, `SSLKEYLOGFILE`,
/// `MYSQL_HISTFILE`, `PSQL_HISTORY`: a file is written at the path, `OPENSSL_CONF`, `KUBECONFIG`,
/// `INPUTRC`); where to connect (`HTTPS_PROXY`, `OPENAI_BASE_URL`, `VAULT_ADDR`,
/// `NVIM_LISTEN_ADDRESS`); OAuth client credentials (`{PROVIDER}_CLIENT_ID`: a sign-in would send
/// the token as the client id in the browser's URL).
const CONFIGURATION_SUFFIXES: &str = "
    _OPTIONS OPTS OPT FLAGS
    _COMMAND _CMD _PROG _PROGRAM PAGER EDITOR _ASKPASS _RSH _SSH _SHELL _WRAPPER _RUNNER _HOOKS
    PATH PATHS DIR DIRS HOME FILE HISTORY CONFIG _CONF RC _CA_BUNDLE
    _PROXY URL URI _HOST _ADDR _ADDRESS _ENDPOINT
    _CLIENT_ID _CLIENT_SECRET
";

/// Whether programs read `name` as configuration ([`CONFIGURATION_NAMES`] and its prefixes and
/// suffixes). A name ending in `TOKEN` (every default name, `GITHUB_TOKEN`, `GIT_TOKEN`) names
/// data, whatever its prefix.
fn is_configuration_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("TOKEN") {
        return false;
    }
    CONFIGURATION_NAMES
        .split_ascii_whitespace()
        .any(|n| upper == n)
        || CONFIGURATION_PREFIXES
            .split_ascii_whitespace()
            .any(|p| upper.starts_with(p))
        || CONFIGURATION_SUFFIXES
            .split_ascii_whitespace()
            .any(|s| upper.ends_with(s))
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
        const RULE: &str =
            "not an environment variable name (letters, digits and `_`, not starting with a digit)";
        let failure = match &args.env {
            Some(_) => exit::Failure::new(
                USAGE,
                format!("--env {}: {RULE}", terminal_text(&name)),
                None,
            ),
            None => exit::Failure::new(
                USAGE,
                format!("the default variable {name} (made from the provider name) is {RULE}"),
                Some("name the variable with --env NAME".to_owned()),
            ),
        };
        return Err(failure.into());
    }
    if is_configuration_name(&name) {
        return Err(exit::Failure::new(
            USAGE,
            format!(
                "--env {name}: programs read that variable as configuration (code or a command, options, a file or a path, a place to connect to), so the token would be used as one: run, or shown in their errors"
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
    let (tokens, account) = valid_tokens_of(ctx, &args.provider, getting)?;
    refuse_dpop_bound(
        ctx,
        &args.provider,
        &account,
        &tokens,
        "exec does not pass it on",
    )?;
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

/// The failure for a CMD that could not be started: 127 when not found, else 126. "No such file"
/// for a program that is there means its interpreter (`#!` line) or loader is missing: 126, as a
/// shell's "bad interpreter".
fn cannot_start(program: &OsString, error: &std::io::Error) -> exit::Failure {
    let shown = terminal_text(&program.to_string_lossy());
    if error.kind() == std::io::ErrorKind::NotFound && is_there(program) {
        exit::Failure::new(
            CANNOT_RUN,
            format!("cannot run {shown}: {error}"),
            Some(
                "the program exists, so its interpreter (its `#!` line) or its loader is missing"
                    .to_owned(),
            ),
        )
    } else if error.kind() == std::io::ErrorKind::NotFound {
        exit::Failure::new(
            NOT_FOUND,
            format!("{shown}: command not found"),
            Some("give the program's path, or check PATH".to_owned()),
        )
    } else {
        exit::Failure::new(CANNOT_RUN, format!("cannot run {shown}: {error}"), None)
    }
}

/// Whether `program` names a file: a path as given, a bare name in a directory of `PATH` (as
/// `execvp` searches it: an empty entry is the current directory, no `PATH` is `/bin:/usr/bin`).
fn is_there(program: &OsString) -> bool {
    let path = Path::new(program);
    let text = program.to_string_lossy();
    if text.contains('/') || text.contains(std::path::MAIN_SEPARATOR) {
        return path.is_file();
    }
    let paths = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    !program.is_empty() && std::env::split_paths(&paths).any(|dir| dir.join(path).is_file())
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
            // Each of these ran a command named by the token's value (a server's text) or read
            // it as options, a file or a place to connect to.
            "PS0",
            "VIMINIT",
            "EXINIT",
            "MAKEFLAGS",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
            "RUSTC_WRAPPER",
            "MANPAGER",
            "LESSOPEN",
            "PYTHONWARNINGS",
            "PERL5DB",
            "LUA_INIT",
            "ERL_AFLAGS",
            "DOTNET_STARTUP_HOOKS",
            "RSYNC_RSH",
            "CVS_RSH",
            "SVN_SSH",
            "SUDO_EDITOR",
            "GLIBC_TUNABLES",
            "MALLOC_TRACE",
            "GCONV_PATH",
            "NLSPATH",
            "CLASSPATH",
            "FPATH",
            "ZDOTDIR",
            "INPUTRC",
            "PHPRC",
            "HTTPS_PROXY",
            "all_proxy",
            "OPENAI_BASE_URL",
            "VAULT_ADDR",
            "SSL_CERT_FILE",
            "KUBECONFIG",
            "CC",
            "npm_config_script_shell",
            "CONTEXT_HARNESS_STORAGE",
            "GITHUB_CLIENT_ID",
            "ACME_CLIENT_SECRET",
            // The families, named as their programs' manuals name them.
            "RUBYOPT",
            "RUBYLIB",
            "RUBYSHELL",
            "RUBYPATH",
            "RUBY_CRASH_REPORT",
            "RUBY_DEBUG_INIT_SCRIPT",
            "RUBYGEMS_GEMDEPS",
            "RUSTC",
            "RUSTDOC",
            "RUSTDOCFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFMT",
            "RUSTUP_TOOLCHAIN",
            "RUST_LOG",
            "PERL5LIB",
            "PERL5OPT",
            "PERLLIB",
            "PERLIO",
            "PERLIO_DEBUG",
            "PERL_MM_OPT",
            "PERLDB_OPTS",
            "PERLDOC_PAGER",
            "PERLBREW_ROOT",
            "LESS",
            "LESSCLOSE",
            "LESSEDIT",
            "LESSGLOBALTAGS",
            "LESSKEY",
            "LESSKEYIN",
            "LESSKEY_CONTENT",
            "LESSSECURE_ALLOW",
            "LESSHISTFILE",
            "LESSCHARSET",
            "LESS_TERMCAP_md",
            "LESS_OSC8_man",
            "NODE_PATH",
            "NODE_EXTRA_CA_CERTS",
            "NODE_TLS_REJECT_UNAUTHORIZED",
            "NODE_DEBUG",
            "NODE_REPL_EXTERNAL_MODULE",
            "NODE_REDIRECT_WARNINGS",
            "NODE_V8_COVERAGE",
            "NODE_COMPILE_CACHE",
            "NODE_CHANNEL_FD",
            // Files written or read at the path, where to connect, shell prompts.
            "SSLKEYLOGFILE",
            "MYSQL_HISTFILE",
            "PSQL_HISTORY",
            "NODE_REPL_HISTORY",
            "OPENSSL_CONF",
            "KRB5CCNAME",
            "KRB5_KTNAME",
            "TERMINFO",
            "NVIM_LISTEN_ADDRESS",
            "NVIM",
            "FCEDIT",
            "PROMPT",
            "RPROMPT",
            "RPS1",
            "RPS2",
            "SPROMPT",
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
            "OPENAI_API_KEY",
            "NPM_TOKEN",
            "VAULT_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "NODE_AUTH_TOKEN",
            "TWINE_PASSWORD",
            "CI_JOB_JWT",
            "API_SECRET",
            "TF_TOKEN_app_terraform_io",
            "RUBYGEMS_API_KEY",
            "NODE_API_KEY",
            "RUSTY_KEY",
            "LESSON_KEY",
            "PERLITE_KEY",
            "ANTHROPIC_API_KEY",
            "PYPI_PASSWORD",
        ] {
            assert!(!is_configuration_name(name), "{name}");
        }
        for provider in [
            "github",
            "git",
            "ld",
            "ssh",
            "lc-x",
            "python",
            "cargo",
            "less",
            "proxy",
            "https://mcp.example/mcp",
        ] {
            assert!(
                !is_configuration_name(&default_env_name(provider)),
                "{provider}"
            );
        }
    }
}
