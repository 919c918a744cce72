//! `git-credential-context-harness`: the program git runs for the credential helper
//! `context-harness git-credential` (or just `context-harness`).
//!
//! git runs a helper configured without `!` or a path as `git credential-<helper>`, so
//! `git config --global credential.https://github.com.helper "context-harness git-credential"` makes
//! git run `git-credential-context-harness git-credential get` (then `store` or `erase`). This
//! program runs `context-harness git-credential <operation>` in its place: the `context-harness`
//! beside it (both are installed together by `cargo install` and shipped together by `cargo xtask
//! dist`), else the one on `PATH`. On Unix it replaces this process, so git talks to
//! `context-harness` directly and sees its exit status; the environment is passed on unchanged
//! (it is git's, and the user's).

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The program this one runs.
const PROGRAM: &str = "context-harness";
/// Its subcommand that speaks git's credential helper protocol.
const SUBCOMMAND: &str = "git-credential";

/// `context-harness` beside this program, else the bare name (looked up on `PATH`).
fn program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(PROGRAM)))
        .filter(|sibling| sibling.is_file())
        .unwrap_or_else(|| PathBuf::from(PROGRAM))
}

/// The global options of `context-harness` whose value is the next argument.
const VALUED_OPTIONS: [&str; 2] = ["--home", "--storage"];

/// The arguments for `context-harness`: as given when their subcommand is `git-credential` (helper
/// `context-harness git-credential`, or with global options before it, `context-harness --home D
/// git-credential`), else `git-credential` and then them (helper `context-harness`). So this
/// program runs nothing but `context-harness git-credential`: other arguments (`mcp token …`)
/// become arguments of `git-credential`, which refuses them.
fn arguments(given: Vec<OsString>) -> Vec<OsString> {
    if subcommand(&given) == Some(OsStr::new(SUBCOMMAND)) {
        given
    } else {
        std::iter::once(OsString::from(SUBCOMMAND))
            .chain(given)
            .collect()
    }
}

/// The first argument that is neither an option nor the value of one of [`VALUED_OPTIONS`] (as
/// clap reads them); `None` when there is none before a `--` or an argument that is not UTF-8.
fn subcommand(given: &[OsString]) -> Option<&OsStr> {
    let mut args = given.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_str()?;
        if text == "--" {
            return None;
        }
        if VALUED_OPTIONS.contains(&text) {
            args.next();
        } else if !text.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

fn main() -> ExitCode {
    let program = program();
    let mut command = Command::new(&program);
    command.args(arguments(std::env::args_os().skip(1).collect()));
    #[cfg(unix)]
    let failure = {
        use std::os::unix::process::CommandExt as _;
        command.exec()
    };
    #[cfg(not(unix))]
    let failure = match command.status() {
        Ok(status) => {
            return ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            );
        }
        Err(e) => e,
    };
    let _ = writeln!(
        std::io::stderr(),
        "git-credential-context-harness: cannot run {}: {failure}",
        program.display()
    );
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_is_added_once() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            arguments(os(&["git-credential", "get"])),
            os(&["git-credential", "get"])
        );
        assert_eq!(arguments(os(&["get"])), os(&["git-credential", "get"]));
        assert_eq!(
            arguments(os(&["--home", "/h", "git-credential", "erase"])),
            os(&["--home", "/h", "git-credential", "erase"])
        );
        assert_eq!(arguments(os(&[])), os(&["git-credential"]));
        assert_eq!(
            arguments(os(&["--home=/h", "-v", "git-credential", "get"])),
            os(&["--home=/h", "-v", "git-credential", "get"])
        );
    }

    /// `git-credential` anywhere but as the subcommand (an option's value, an argument of
    /// another command) did not make this program run `context-harness` with the arguments as
    /// given: `mcp token local --account git-credential` printed a token to git.
    #[test]
    fn only_the_git_credential_subcommand_is_run() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        for given in [
            &["mcp", "token", "local", "--account", "git-credential"][..],
            &["exec", "local", "--", "echo", "git-credential"],
            &["--", "git-credential", "get"],
        ] {
            let mut wanted = os(&["git-credential"]);
            wanted.extend(os(given));
            assert_eq!(arguments(os(given)), wanted, "{given:?}");
        }
        // A home directory called `git-credential` is the value of `--home`.
        assert_eq!(
            arguments(os(&["--home", "git-credential", "get"])),
            os(&["git-credential", "--home", "git-credential", "get"])
        );
        assert_eq!(
            arguments(os(&["--storage", "file", "git-credential", "get"])),
            os(&["--storage", "file", "git-credential", "get"])
        );
    }
}
