//! `context-harness exec <provider> [--env NAME] -- CMD ARGS…` (issue 23): CMD gets the token in
//! one environment variable and nothing else changes in its environment; the token is on no
//! command line; CMD's exit status is the caller's (a signal too: a shell sees 128 + n); a CMD
//! that is missing or cannot run is exit 127 or 126; a DPoP-bound token is refused (exit 13)
//! before CMD runs.
//!
//! The token record is written as a sign-in stores it; no server is needed for a valid token.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;

use context_harness_providers::DpopKey;

use crate::git_credential::{bearer_tokens, home_for_git};
use crate::util::{BIN, Home, Run};

const TOKEN: &str = "at-exec-1";

fn home() -> Home {
    home_for_git(
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        Some(&bearer_tokens(TOKEN)),
    )
}

/// `context-harness exec …` with exactly this environment (and nothing inherited).
fn exec_with_env(home: &Home, args: &[&str]) -> (Command, Vec<(String, String)>) {
    let env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.path().display().to_string()),
        ("CONTEXT_HARNESS_HOME", home.path().display().to_string()),
        ("CONTEXT_HARNESS_STORAGE", "file".to_owned()),
        ("NO_COLOR", "1".to_owned()),
        ("UNRELATED", "kept as it is".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut cmd = Command::new(BIN);
    cmd.arg("exec").args(args).env_clear();
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    (cmd, env)
}

fn run(mut cmd: Command) -> Run {
    let output = cmd.output().expect("run the binary");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn the_token_is_in_one_variable_and_nothing_else_changes() {
    let home = home();
    // env(1) prints the environment it was given: ours plus LOCAL_TOKEN, nothing else.
    let (cmd, env) = exec_with_env(&home, &["local", "--", "env"]);
    let out = run(cmd);
    out.expect_code(0);
    let mut want: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    want.push(format!("LOCAL_TOKEN={TOKEN}"));
    want.sort();
    assert_eq!(sorted_lines(&out.stdout), want);
    assert!(!out.stderr.contains(TOKEN), "{out:#?}");

    // --env names the variable; the default one is then not set.
    let (cmd, _) = exec_with_env(
        &home,
        &[
            "local",
            "--env",
            "MY_TOKEN",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$MY_TOKEN\" \"${LOCAL_TOKEN-unset}\"",
        ],
    );
    let out = run(cmd);
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{TOKEN}|unset"));

    // Not on CMD's command line (read back from /proc by CMD itself), arguments passed as given.
    let (cmd, _) = exec_with_env(
        &home,
        &[
            "local",
            "--",
            "sh",
            "-c",
            "tr '\\0' ' ' < /proc/$$/cmdline",
            "arg with spaces",
        ],
    );
    let out = run(cmd);
    out.expect_code(0);
    assert!(out.stdout.contains("arg with spaces"), "{out:#?}");
    assert!(!out.stdout.contains(TOKEN), "{out:#?}");
}

#[test]
fn the_exit_status_is_the_commands() {
    let home = home();
    for code in [0, 1, 7, 255] {
        let script = format!("exit {code}");
        let (cmd, _) = exec_with_env(&home, &["local", "--", "sh", "-c", &script]);
        run(cmd).expect_code(code);
    }
    // Killed by a signal: the caller sees the signal, a shell reports 128 + n.
    let (mut cmd, _) = exec_with_env(&home, &["local", "--", "sh", "-c", "kill -TERM $$"]);
    let status = cmd.status().expect("run");
    assert_eq!(status.signal(), Some(15), "{status:?}");
    let (_, env) = exec_with_env(&home, &[]);
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!(
            "{BIN} exec local -- sh -c 'kill -TERM $$'; echo \"status=$?\""
        ))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(shell);
    assert_eq!(out.stdout.trim(), "status=143", "{out:#?}");
}

#[test]
fn a_command_that_cannot_run_has_the_shells_codes() {
    let home = home();
    let (cmd, _) = exec_with_env(&home, &["local", "--", "context-harness-no-such-command"]);
    let out = run(cmd);
    out.expect_code(127);
    assert!(out.stderr.contains("command not found"), "{out:#?}");
    assert!(
        !out.stderr.contains(TOKEN) && out.stdout.is_empty(),
        "{out:#?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (cmd, _) = exec_with_env(&home, &["local", "--", &script.display().to_string()]);
    let out = run(cmd);
    out.expect_code(126);
    assert!(out.stderr.contains("cannot run"), "{out:#?}");

    // There, but its interpreter is not (execve says "no such file"): 126 and "cannot run", as a
    // shell's "bad interpreter", by path and by a name found on PATH (it was 127, "not found").
    let orphan = dir.path().join("orphan");
    std::fs::write(&orphan, "#!/context-harness/no-such-interpreter\n").expect("write");
    std::fs::set_permissions(&orphan, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (cmd, _) = exec_with_env(&home, &["local", "--", &orphan.display().to_string()]);
    let out = run(cmd);
    out.expect_code(126);
    assert!(out.stderr.contains("cannot run"), "{out:#?}");
    assert!(out.stderr.contains("interpreter"), "{out:#?}");
    assert!(!out.stderr.contains("not found"), "{out:#?}");
    let (mut cmd, env) = exec_with_env(&home, &["local", "--", "orphan"]);
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    cmd.env(
        "PATH",
        format!("{}:{}", dir.path().display(), path.unwrap_or_default()),
    );
    let out = run(cmd);
    out.expect_code(126);
    assert!(out.stderr.contains("cannot run orphan"), "{out:#?}");

    // A bad variable name, or no command: usage errors, before any token is read.
    let (cmd, _) = exec_with_env(&home, &["local", "--env", "NOT-A-NAME", "--", "true"]);
    run(cmd).expect_code(2);
    let (cmd, _) = exec_with_env(&home, &["local"]);
    run(cmd).expect_code(2);

    // A default name that is not a name (a provider named `1password`): the message says it is
    // the default and how to name one, rather than blaming an `--env` that was not given.
    let (cmd, _) = exec_with_env(&home, &["1password", "--", "true"]);
    let out = run(cmd);
    out.expect_code(2);
    assert!(
        out.stderr.contains("default variable 1PASSWORD_TOKEN"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("--env NAME"), "{out:#?}");
}

#[test]
fn a_dpop_bound_token_is_refused_before_the_command_runs() {
    let key = DpopKey::generate().expect("key");
    let mut bound = bearer_tokens(TOKEN);
    bound.token_type = "DPoP".to_owned();
    key.write(&mut bound);
    let home = home_for_git("http://127.0.0.1:9", "127.0.0.1:9", Some(&bound));
    let marker = home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let (cmd, _) = exec_with_env(&home, &["local", "--", "sh", "-c", &touch]);
    let out = run(cmd);
    out.expect_code(13);
    assert!(out.stderr.contains("DPoP-bound"), "{out:#?}");
    assert!(!marker.exists());
}

/// `--env` refuses a variable programs read as configuration (a search path, a library to preload,
/// shell options, an askpass program): the token would be used as one and echoed in the errors
/// that follow (`ld.so: object '<token>' cannot be preloaded`). Usage error, CMD never runs.
#[test]
fn configuration_variables_are_refused_for_the_token() {
    let home = home();
    for name in [
        "LD_PRELOAD",
        "PATH",
        "SHELLOPTS",
        "BASH_ENV",
        "NODE_OPTIONS",
        "GIT_ASKPASS",
        "ifs",
        "PS0",
        "VIMINIT",
        "MAKEFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
        "MANPAGER",
        "HTTPS_PROXY",
        "CONTEXT_HARNESS_STORAGE",
        // A file written at the path the token names, a config file, a credentials cache, a
        // terminal description, an editor's socket, an editor command, zsh prompts.
        "SSLKEYLOGFILE",
        "MYSQL_HISTFILE",
        "PSQL_HISTORY",
        "OPENSSL_CONF",
        "KRB5CCNAME",
        "TERMINFO",
        "NVIM_LISTEN_ADDRESS",
        "FCEDIT",
        "PROMPT",
        "RPROMPT",
        "RPS1",
        "RPS2",
        "SPROMPT",
        // The families still refused, named as their programs read them.
        "RUBYOPT",
        "RUBY_CRASH_REPORT",
        "RUSTC_WRAPPER",
        "PERL5OPT",
        "LESSOPEN",
        "LESSKEY_CONTENT",
        "NODE_REPL_EXTERNAL_MODULE",
    ] {
        let (cmd, _) = exec_with_env(
            &home,
            &["local", "--env", name, "--", "sh", "-c", "echo ran"],
        );
        let out = run(cmd);
        out.expect_code(2);
        assert!(!out.stdout.contains("ran"), "{name}: {out:#?}");
        assert!(!out.stderr.contains(TOKEN), "{name}: {out:#?}");
        assert!(out.stderr.contains("configuration"), "{name}: {out:#?}");
    }
    // A name ending in TOKEN is data, whatever its prefix; so are secrets' usual names that share
    // only their first letters with a family (`RUBYGEMS_API_KEY`, a common CI secret, was refused
    // as `RUBY…`, `NODE_API_KEY` as `NODE_…`, `RUSTY_KEY` as `RUST…`, `LESSON_KEY` as `LESS…`).
    for name in [
        "GIT_TOKEN",
        "RUBYGEMS_API_KEY",
        "NODE_API_KEY",
        "RUSTY_KEY",
        "LESSON_KEY",
        "PERLITE_KEY",
        "ANTHROPIC_API_KEY",
        "PYPI_PASSWORD",
    ] {
        let (cmd, _) = exec_with_env(
            &home,
            &[
                "local",
                "--env",
                name,
                "--",
                "sh",
                "-c",
                &format!("printf %s \"${name}\""),
            ],
        );
        let out = run(cmd);
        out.expect_code(0);
        assert_eq!(out.stdout, TOKEN, "{name}: {out:#?}");
    }
}

/// `exec --no-sign-in` with no tokens: exit 3 at once, CMD never runs (as `mcp token --no-sign-in`).
#[test]
fn no_sign_in_exits_3_before_the_command() {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    let (mut cmd, _) = exec_with_env(
        &home,
        &[
            "local",
            "--no-sign-in",
            "--timeout",
            "5",
            "--",
            "sh",
            "-c",
            "echo ran",
        ],
    );
    cmd.env("BROWSER", "true");
    let out = run(cmd);
    out.expect_code(3);
    assert!(!out.stdout.contains("ran"), "{out:#?}");
    assert!(out.stderr.contains("mcp auth local"), "{out:#?}");
}

/// A token is the server's text: printable ASCII, `$(…)` included. In a variable a program reads
/// as code it would run: `bash -i` expands `PS0` (prompt expansion runs command substitutions)
/// before each command, and `exec --env PS0` ran the token's `$(touch …)`. Now refused (exit 2)
/// before bash starts; the same token in a data variable stays data.
#[test]
fn a_token_in_a_variable_read_as_code_never_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let hostile = format!("$(touch {})", marker.display());
    let home = home_for_git(
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        Some(&bearer_tokens(&hostile)),
    );
    for name in ["PS0", "MY_TOKEN"] {
        let (mut cmd, _) = exec_with_env(
            &home,
            &[
                "local",
                "--env",
                name,
                "--",
                "bash",
                "--norc",
                "--noprofile",
                "-i",
            ],
        );
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        // exec may have refused the name and exited before reading: a broken pipe is fine then.
        let _ = std::io::Write::write_all(&mut stdin, b"true\nexit 0\n");
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        let want = if name == "PS0" { 2 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{name}: {out:?}");
        assert!(!marker.exists(), "{name}: the token ran as code");
    }
}
