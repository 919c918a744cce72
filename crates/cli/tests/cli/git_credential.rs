//! `context-harness git-credential` (issue 23) with real git (`GIT_TERMINAL_PROMPT=0`, a private
//! `HOME` and `GIT_CONFIG_GLOBAL`).
//!
//! End to end, once per installed git ([`git_clients`]: `git` on `PATH`, and `/usr/bin/git` when
//! it is another version, e.g. Debian 12's 2.39 beside a git 2.46+ in `/usr/local/bin`): `git
//! clone` and `git push` over loopback HTTP to `tests/git-server/server.py` (a test fixture: `git
//! http-backend` behind a check of the Bearer token or Basic password at the local oidc-provider's
//! introspection endpoint, and of the user owning the repository). Each test asserts the path that
//! git takes: with a git announcing the `authtype` capability (2.46 and later) the token goes as
//! `Authorization: Bearer` and never reaches git's own stores, even with `credential.helper=store`
//! configured before this helper; with an older git it goes as the HTTP Basic password, which a
//! `store` helper before this one keeps (and drops when the server refuses it), and the README's
//! configuration (the helper list reset for the host) keeps out of git's stores. On both: a second
//! account chosen by the `username` in the URL, a revoked access token recovered by a refresh
//! without a sign-in, then by a sign-in once the refresh token is revoked too. Basic is also
//! tested with a new git whose `capability[]` lines a wrapper drops. Over HTTPS (`protocol=https`,
//! the production path) with one git: the server with a throwaway self-signed certificate for
//! `localhost` made by `openssl`.
//!
//! Without a server (a token record written as a sign-in stores it): the answers for an unmapped
//! host (none, so git asks the next helper), for malformed input (git's rules), `store`, `erase`
//! of a foreign or of the stored token, an unknown operation, and the README's
//! `credential.<url>.helper "context-harness git-credential"` line run by each git itself.
//!
//! git (any version with its `git-remote-http`), its `git-http-backend`, python3 and (for HTTPS)
//! openssl are required: missing, the tests that use them fail under `CI=true` and are skipped
//! with a note elsewhere.
//! `CONTEXT_HARNESS_TEST_GITS` (git programs separated by `:`) replaces the list of gits tried.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use context_harness_providers::{AccessToken, OAuthTokens, RefreshToken};
use serde_json::Value;

use crate::util::{
    AuthServer, BIN, Home, Run, browser_script, form_encode, http, repo_root, require,
    require_server,
};

/// A home whose `local` provider (at `issuer`) claims the git host `git_host`, signed in with
/// `tokens` when given (written as a sign-in stores them: 0600 in a 0700 directory).
pub(crate) fn home_for_git(issuer: &str, git_host: &str, tokens: Option<&OAuthTokens>) -> Home {
    let home = Home::with_local(issuer, "ch-public");
    let toml = home.path().join("providers.toml");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&toml)
        .expect("providers.toml");
    // Any free loopback port for a sign-in the helper starts (the test server allows any).
    writeln!(file, "git_hosts = [\"{git_host}\"]\nports = [0]").expect("append");
    if let Some(tokens) = tokens {
        let dir = home.path().join("tokens");
        std::fs::create_dir(&dir).expect("mkdir tokens");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let path = dir.join("local.json");
        std::fs::write(&path, serde_json::to_string(tokens).expect("json")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    home
}

/// A Bearer token set issued now, valid for an hour, with a refresh token.
pub(crate) fn bearer_tokens(access: &str) -> OAuthTokens {
    let mut tokens = OAuthTokens::new(AccessToken::new(access), "Bearer", SystemTime::now());
    tokens.expires_in = Some(3600);
    tokens.refresh_token = Some(RefreshToken::new("rt-kept"));
    tokens
}

/// Runs `context-harness git-credential <operation>` with `input` on stdin.
pub(crate) fn helper(home: &Home, operation: &str, input: &str) -> Run {
    let mut child = home
        .cmd(&["git-credential", operation])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the helper");
    let mut stdin = child.stdin.take().expect("stdin");
    // An operation that reads nothing may have exited already: a broken pipe is fine then.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// One git program the tests drive as the client.
#[derive(Debug)]
struct GitClient {
    program: PathBuf,
    /// `git --version`'s answer, e.g. `git version 2.39.5`.
    version: String,
    /// Whether it announces the `authtype` capability (git 2.46 and later: `git credential
    /// capability` lists it), so this helper answers a Bearer credential; else HTTP Basic.
    bearer: bool,
}

impl std::fmt::Display for GitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.bearer { "Bearer" } else { "Basic" };
        write!(f, "{} ({}, {path})", self.version, self.program.display())
    }
}

impl GitClient {
    /// `program` as a client, when it runs and has its HTTP transport (`git-remote-http` in its
    /// exec path); `None` otherwise.
    fn probe(program: &Path) -> Option<Self> {
        let stdout = |args: &[&str]| {
            Command::new(program)
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .map(|o| {
                    (
                        o.status.success(),
                        String::from_utf8_lossy(&o.stdout).into_owned(),
                    )
                })
        };
        let (true, version) = stdout(&["--version"])? else {
            return None;
        };
        let (true, exec_path) = stdout(&["--exec-path"])? else {
            return None;
        };
        if !Path::new(exec_path.trim())
            .join("git-remote-http")
            .is_file()
        {
            return None;
        }
        // git before 2.46 has no `capability` operation: usage, exit 129, nothing on stdout.
        let bearer = stdout(&["credential", "capability"])
            .is_some_and(|(_, out)| out.lines().any(|l| l == "capability authtype"));
        Some(Self {
            program: program.to_owned(),
            version: version.trim().to_owned(),
            bearer,
        })
    }
}

/// The gits to test with: `CONTEXT_HARNESS_TEST_GITS` (programs separated by `:`) when set, else
/// `git` on PATH, `/usr/bin/git` and `/usr/local/bin/git`; those that run with their HTTP
/// transport, one per version, the first one found first.
fn git_clients() -> Vec<GitClient> {
    let programs: Vec<PathBuf> = match std::env::var_os("CONTEXT_HARNESS_TEST_GITS") {
        Some(list) => std::env::split_paths(&list).collect(),
        None => ["git", "/usr/bin/git", "/usr/local/bin/git"]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
    };
    let mut clients: Vec<GitClient> = Vec::new();
    for program in programs {
        match GitClient::probe(&program) {
            Some(client) if clients.iter().all(|c| c.version != client.version) => {
                clients.push(client);
            }
            Some(_) => {}
            None => eprintln!(
                "note: {} is not a git with its HTTP transport: not tested",
                program.display()
            ),
        }
    }
    clients
}

/// The gits to test with (see [`git_clients`]), when there is at least one and git's
/// `http-backend` and python3 are there (see [`require`]).
fn require_git() -> Option<Vec<GitClient>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let backend = Command::new("git")
        .arg("--exec-path")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("git-http-backend"))
        .is_some_and(|p| p.is_file())
        || Path::new("/usr/lib/git-core/git-http-backend").is_file();
    let clients = git_clients();
    // The server's side (`git init`, `git http-backend`) is the git on PATH.
    let present = require(works("git", &["--version"]), "git")
        && require(!clients.is_empty(), "git (with git-remote-http)")
        && require(backend, "git-http-backend (Debian package `git`)")
        && require(works("python3", &["--version"]), "python3");
    present.then_some(clients)
}

/// `tests/git-server/server.py` on loopback, serving the bare repositories of its own directory.
struct GitServer {
    _server: context_harness_test_support::TestServer,
    /// `http://127.0.0.1:PORT`, or over TLS `https://localhost:PORT`.
    url: String,
    /// Over TLS: the (self-signed) certificate the server presents, which a client must trust.
    cert: Option<PathBuf>,
    repos: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

impl GitServer {
    fn start(auth: &AuthServer) -> Self {
        Self::start_with(auth, None)
    }

    /// The server over HTTPS only, presenting `cert` (with its private key `key`).
    fn start_tls(auth: &AuthServer, cert: &Path, key: &Path) -> Self {
        Self::start_with(auth, Some((cert, key)))
    }

    fn start_with(auth: &AuthServer, tls: Option<(&Path, &Path)>) -> Self {
        let repos = tempfile::tempdir().expect("tempdir");
        let introspection = format!("{}/token/introspection", auth.issuer);
        let repos_arg = repos.path().display().to_string();
        let logs = tempfile::tempdir().expect("tempdir");
        let mut args = vec![
            "--repos".to_owned(),
            repos_arg,
            "--introspection".to_owned(),
            introspection,
        ];
        if let Some((cert, key)) = tls {
            args.extend(["--tls-cert".to_owned(), cert.display().to_string()]);
            args.extend(["--tls-key".to_owned(), key.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = context_harness_test_support::TestServer::start_program(
            Command::new("python3"),
            "python3",
            &repo_root().join("tests/git-server/server.py"),
            &args,
            &[],
            context_harness_test_support::ServerLog::File(logs.path().join("git-server.log")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let url = server.ready_str("url").unwrap_or_else(|e| panic!("{e}"));
        Self {
            _server: server,
            url,
            cert: tls.map(|(cert, _)| cert.to_owned()),
            repos,
            _logs: logs,
        }
    }

    /// `host:port` as git's credential `host` attribute has it.
    fn host(&self) -> &str {
        self.url.split_once("://").expect("a URL").1
    }

    /// A new empty bare repository `OWNER/repo.git`; its URL (with `user@` when given).
    fn repo(&self, owner: &str, user: Option<&str>) -> String {
        let path = self.repos.path().join(owner).join("repo.git");
        std::fs::create_dir_all(&path).expect("mkdir repo");
        let init = Command::new("git")
            .args(["init", "--bare", "--quiet", "-b", "main"])
            .arg(&path)
            .status()
            .expect("git init");
        assert!(init.success());
        self.url_of(owner, user)
    }

    fn url_of(&self, owner: &str, user: Option<&str>) -> String {
        let at = user.map(|u| format!("{u}@")).unwrap_or_default();
        let (scheme, host) = self.url.split_once("://").expect("a URL");
        format!("{scheme}://{at}{host}/{owner}/repo.git")
    }

    fn stats(&self) -> Value {
        let url = format!("{}/_test/stats", self.url);
        let Some(cert) = &self.cert else {
            let (status, body) = http("GET", &url, &[], "");
            assert_eq!(status, 200, "{body}");
            return serde_json::from_str(&body).expect("stats json");
        };
        // Over TLS: python3 (there anyway for the server) trusting the server's certificate.
        let fetch = "import ssl, sys, urllib.request\n\
                     context = ssl.create_default_context(cafile=sys.argv[2])\n\
                     print(urllib.request.urlopen(sys.argv[1], context=context, timeout=30).read().decode())";
        let out = Command::new("python3")
            .args(["-c", fetch, &url])
            .arg(cert)
            .output()
            .expect("python3");
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).expect("stats json")
    }
}

/// A git client with a private HOME and global config, never prompting, and this home's settings
/// for the helper (its environment is cleared first: no browser, display or terminal is
/// inherited).
struct Git {
    program: PathBuf,
    dir: tempfile::TempDir,
    ch_home: PathBuf,
}

impl Git {
    /// `client` run with `config` as the global git configuration (`~/.gitconfig`).
    fn new(client: &GitClient, home: &Home, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".gitconfig"), config).expect("gitconfig");
        Self {
            program: client.program.clone(),
            dir,
            ch_home: home.path().to_owned(),
        }
    }

    fn cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(cwd)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_GLOBAL", self.dir.path().join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("LANG", "C")
            .env("CONTEXT_HARNESS_HOME", &self.ch_home)
            .env("CONTEXT_HARNESS_STORAGE", "file")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        self.run_env(cwd, args, &[])
    }

    fn run_env(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .cmd(cwd, args)
            .envs(env.iter().copied())
            .output()
            .expect("run git");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Clones `url` into a new directory under HOME named `name`.
    fn clone(&self, url: &str, name: &str) -> Run {
        self.run(self.dir.path(), &["clone", "--quiet", url, name])
    }

    /// Commits a new file in the clone `name` and pushes it.
    fn commit_and_push(&self, name: &str, file: &str) -> Run {
        let work = self.dir.path().join(name);
        std::fs::write(work.join(file), file).expect("write file");
        self.run(&work, &["add", file]).expect_code(0);
        self.run(&work, &["commit", "--quiet", "-m", file])
            .expect_code(0);
        self.run(&work, &["push", "--quiet", "origin", "HEAD:main"])
    }

    /// `~/.git-credentials` (git's `store` helper's file), if it exists.
    fn stored_credentials(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(".git-credentials")).ok()
    }
}

/// The global git config: git's `store` helper first, then this helper for the server's URL (the
/// absolute path form of `credential.<url>.helper`).
fn store_then_helper(server: &GitServer) -> String {
    format!(
        "[credential]\n\thelper = store\n[credential \"{}\"]\n\thelper = {BIN} git-credential\n",
        server.url
    )
}

/// The global git config of the README: git's `store` helper for every host, and for the server's
/// URL the list of helpers reset (an empty `helper`) to this helper alone, so that a git without
/// the `authtype` capability (before 2.46), whose credential is a Basic password, does not hand
/// the token to `store`.
fn store_reset_then_helper(server: &GitServer) -> String {
    format!(
        "[credential]\n\thelper = store\n[credential \"{}\"]\n\thelper =\n\thelper = {BIN} git-credential\n",
        server.url
    )
}

fn sign_in(home: &Home, account: Option<&str>) {
    let mut args = vec!["mcp", "auth", "local", "--port", "0", "--timeout", "60"];
    if let Some(account) = account {
        args.extend(["--account", account]);
    }
    home.run_env(&args, &[("BROWSER", &browser_script("follow.mjs"))])
        .expect_code(0);
}

fn control(auth: &AuthServer, body: &str) {
    let (status, answer) = http(
        "POST",
        &format!("{}/test/control", auth.issuer),
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(status, 200, "{answer}");
}

fn stored_access_token(home: &Home, key: &str) -> String {
    home.tokens(key)["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The authorization server and the gits to test with, when everything they need is there.
fn start() -> Option<(AuthServer, Vec<GitClient>)> {
    if !require_server() {
        return None;
    }
    let clients = require_git()?;
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    Some((auth, clients))
}

/// The server's counter of requests with the kind of credential `client` sends (`bearer` or
/// `basic`), and of the other kind.
fn used_and_unused(client: &GitClient) -> (&'static str, &'static str) {
    if client.bearer {
        ("bearer", "basic")
    } else {
        ("basic", "bearer")
    }
}

#[test]
fn clone_push_and_recover_from_revoked_tokens() {
    let Some((auth, clients)) = start() else {
        return;
    };
    for client in &clients {
        eprintln!("clone, push and recovery with {client}");
        clone_push_and_recover(&auth, client);
    }
}

fn clone_push_and_recover(auth: &AuthServer, client: &GitClient) {
    let server = GitServer::start(auth);
    let home = home_for_git(&auth.issuer, server.host(), None);
    sign_in(&home, None);
    let url = server.repo("test-user", None);
    let git = Git::new(client, &home, &store_then_helper(&server));

    git.clone(&url, "work").expect_code(0);
    git.commit_and_push("work", "one.txt").expect_code(0);
    let stats = server.stats();
    let (used, unused) = used_and_unused(client);
    assert!(stats[used].as_u64() > Some(0), "{client}: {stats}");
    assert_eq!(stats[unused], 0, "{client}: {stats}");
    assert!(stats["users"]["test-user"].as_u64() > Some(0), "{stats}");
    let first = stored_access_token(&home, "local");
    let refresh = home.tokens("local")["refresh_token"].clone();
    assert!(refresh.is_string(), "a refresh token was issued");
    // git's store helper ran before this one. A Bearer credential has no password: `store` keeps
    // nothing. A Basic one it keeps, under the user name this helper answered (`oauth2`), and
    // answers it itself next time (this helper is not asked then).
    let stored_basic = |token: &str| {
        let stored = git.stored_credentials().unwrap_or_default();
        let line = format!("http://oauth2:{token}@");
        assert!(
            stored.lines().count() == 1 && stored.starts_with(&line),
            "{client}: {stored:?}"
        );
    };
    if client.bearer {
        assert!(
            git.stored_credentials().is_none_or(|c| !c.contains(&first)),
            "{:?}",
            git.stored_credentials()
        );
    } else {
        stored_basic(&first);
    }

    // The authorization server revokes the access token alone (its grant and refresh token stay).
    let (status, body) = http(
        "POST",
        &format!("{}/test/revoke-access-token", auth.issuer),
        &[("Content-Type", "application/json")],
        &serde_json::json!({ "token": first }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(!auth.introspect(&first));
    let before = auth.stats();

    // git presents the stored token (this helper's, or with Basic `store`'s copy of it), gets
    // 401, tells every helper `erase` and gives up (git does not retry a refused credential):
    // `store` forgets it, this helper marks the token expired, keeping the refresh token.
    let refused = git.commit_and_push("work", "two.txt");
    refused.expect_code(128);
    assert!(
        refused.stderr.contains("Authentication failed"),
        "{refused:#?}"
    );
    assert!(
        refused.stderr.contains("refreshes it"),
        "the helper says what happens next: {refused:#?}"
    );
    assert_eq!(stored_access_token(&home, "local"), first);
    assert_eq!(home.tokens("local")["refresh_token"], refresh);
    let stored = git.stored_credentials().unwrap_or_default();
    assert!(!stored.contains(&first), "{client}: {stored:?}");

    // The next git command gets a refreshed token: no sign-in, the push goes through.
    git.run(
        &git.dir.path().join("work"),
        &["push", "--quiet", "origin", "HEAD:main"],
    )
    .expect_code(0);
    let after = auth.stats();
    assert_eq!(
        after["refresh_requests"].as_u64(),
        before["refresh_requests"].as_u64().map(|n| n + 1),
        "{after}"
    );
    assert_eq!(
        after["authorization_code_requests"],
        before["authorization_code_requests"]
    );
    let second = stored_access_token(&home, "local");
    assert_ne!(second, first);
    assert!(auth.introspect(&second));
    if !client.bearer {
        stored_basic(&second);
    }

    // Revoked at RFC 7009's endpoint, which at this server revokes the refresh token too: after
    // the refused push, the next git command signs in again (the helper starts the sign-in as
    // `mcp token` does; here the "browser" follows the auto-approved authorization).
    let (status, body) = http(
        "POST",
        &format!("{}/token/revocation", auth.issuer),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form_encode(&[
            ("client_id", "ch-public"),
            ("token", &second),
            ("token_type_hint", "access_token"),
        ]),
    );
    assert_eq!(status, 200, "{body}");
    git.commit_and_push("work", "three.txt").expect_code(128);
    let work = git.dir.path().join("work");
    let signed_in = git.run_env(
        &work,
        &["push", "--quiet", "origin", "HEAD:main"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    signed_in.expect_code(0);
    assert_eq!(
        auth.stats()["authorization_code_requests"].as_u64(),
        after["authorization_code_requests"].as_u64().map(|n| n + 1)
    );
    let third = stored_access_token(&home, "local");
    assert!(auth.introspect(&third));

    // Everything pushed arrived, with one kind of credential throughout. git's store: no token
    // (Bearer); with Basic only the token in use, the refused ones erased.
    git.clone(&url, "check").expect_code(0);
    for file in ["one.txt", "two.txt", "three.txt"] {
        assert!(git.dir.path().join("check").join(file).is_file(), "{file}");
    }
    let stats = server.stats();
    assert_eq!(stats[unused], 0, "{client}: {stats}");
    let stored = git.stored_credentials().unwrap_or_default();
    let kept: &[&String] = if client.bearer { &[] } else { &[&third] };
    for token in [&first, &second, &third] {
        assert_eq!(
            stored.contains(token.as_str()),
            kept.contains(&token),
            "{client}: {stored:?}"
        );
    }
}

#[test]
fn the_username_in_the_url_chooses_the_account() {
    let Some((auth, clients)) = start() else {
        return;
    };
    for client in &clients {
        eprintln!("accounts chosen by the URL's user name with {client}");
        username_chooses_the_account(&auth, client);
    }
}

fn username_chooses_the_account(auth: &AuthServer, client: &GitClient) {
    let server = GitServer::start(auth);
    let home = home_for_git(&auth.issuer, server.host(), None);
    sign_in(&home, None);
    control(auth, r#"{"login":"second-user"}"#);
    sign_in(&home, Some("second-user"));
    control(auth, r#"{"login":"test-user"}"#);
    assert_ne!(
        stored_access_token(&home, "local"),
        stored_access_token(&home, "local@second-user")
    );
    let mine = server.repo("test-user", None);
    let theirs = server.repo("second-user", Some("second-user"));
    // The README's configuration: `store` for other hosts, this helper alone for the server.
    let git = Git::new(client, &home, &store_reset_then_helper(&server));

    // `second-user@` in the URL: that account's token, accepted for that user's repository.
    git.clone(&theirs, "theirs").expect_code(0);
    git.commit_and_push("theirs", "a.txt").expect_code(0);
    assert!(server.stats()["users"]["second-user"].as_u64() > Some(0));

    // No user name: the default account (test-user), refused for second-user's repository (403:
    // git does not call erase) and accepted for its own.
    let wrong = git.clone(&server.url_of("second-user", None), "wrong");
    wrong.expect_code(128);
    assert!(server.stats()["wrong_owner"].as_u64() > Some(0));
    git.clone(&mine, "mine").expect_code(0);
    git.commit_and_push("mine", "b.txt").expect_code(0);
    let stats = server.stats();
    let (used, unused) = used_and_unused(client);
    assert!(stats[used].as_u64() > Some(0), "{client}: {stats}");
    assert_eq!(stats[unused], 0, "{client}: {stats}");
    // Both accounts keep their tokens (a 403 is not a refusal of the token).
    assert!(auth.introspect(&stored_access_token(&home, "local")));
    assert!(auth.introspect(&stored_access_token(&home, "local@second-user")));
    // `store` never ran for this host, whatever the kind of credential.
    assert!(
        git.stored_credentials().is_none_or(|c| c.trim().is_empty()),
        "{client}: {:?}",
        git.stored_credentials()
    );
}

/// A git 2.46+ whose helper gets no `capability[]` lines (a wrapper drops them) is answered as
/// an older git is: the token as the Basic password. (An older git installed here is tested as
/// itself by the tests above.)
#[test]
fn basic_auth_when_git_offers_no_authtype_capability() {
    let Some((auth, clients)) = start() else {
        return;
    };
    let Some(client) = clients.iter().find(|c| c.bearer) else {
        eprintln!("note: no git 2.46 or later here: its Basic fallback is not tested");
        return;
    };
    let server = GitServer::start(&auth);
    let home = home_for_git(&auth.issuer, server.host(), None);
    sign_in(&home, None);
    let url = server.repo("test-user", None);
    let config = format!(
        "[credential \"{}\"]\n\thelper = \"!f() {{ grep -v '^capability' | {BIN} git-credential \\\"$@\\\"; }}; f\"\n",
        server.url
    );
    let git = Git::new(client, &home, &config);
    git.clone(&url, "work").expect_code(0);
    git.commit_and_push("work", "basic.txt").expect_code(0);
    let stats = server.stats();
    assert!(stats["basic"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["bearer"], 0, "{stats}");
}

/// A throwaway self-signed certificate for `localhost` and 127.0.0.1 made by `openssl` in `dir`:
/// `(certificate, private key)` PEM files; `None` when `openssl` is missing (see [`require`]).
fn self_signed_localhost(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(made, "openssl (for a test certificate)").then_some((cert, key))
}

/// The production path, HTTPS (`protocol=https`): `git clone` and `git push` to the git server
/// over TLS at `https://localhost:PORT` (a throwaway self-signed certificate for `localhost`,
/// which git trusts through `http.sslCAInfo`), with one git (a Bearer-capable one when there is
/// one). The helper is asked for `protocol=https` and `host=localhost:PORT` only (a wrapper logs
/// those two lines of its input, never a credential), the server accepts the kind of credential
/// that git gets, and git's `store` helper, configured first, keeps no Bearer token (a Basic one
/// it keeps under `https://`).
#[test]
fn clone_and_push_over_https() {
    let Some((auth, clients)) = start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((cert, key)) = self_signed_localhost(dir.path()) else {
        return;
    };
    let client = clients
        .iter()
        .find(|c| c.bearer)
        .or_else(|| clients.first())
        .expect("a git");
    eprintln!("clone and push over HTTPS with {client}");
    let server = GitServer::start_tls(&auth, &cert, &key);
    assert!(
        server.url.starts_with("https://localhost:"),
        "{}",
        server.url
    );
    let home = home_for_git(&auth.issuer, server.host(), None);
    sign_in(&home, None);
    let url = server.repo("test-user", None);

    let asked = dir.path().join("helper-asked");
    let wrapper = dir.path().join("helper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ninput=$(cat)\n\
             printf '%s\\n' \"$input\" | grep -E '^(protocol|host)=' >> '{}'\n\
             printf '%s\\n\\n' \"$input\" | exec '{BIN}' git-credential \"$@\"\n",
            asked.display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = format!(
        "[http]\n\tsslCAInfo = {}\n[credential]\n\thelper = store\n[credential \"{}\"]\n\thelper = {}\n",
        cert.display(),
        server.url,
        wrapper.display()
    );
    let git = Git::new(client, &home, &config);

    git.clone(&url, "work").expect_code(0);
    git.commit_and_push("work", "tls.txt").expect_code(0);
    let pushed = Command::new("git")
        .arg("--git-dir")
        .arg(server.repos.path().join("test-user/repo.git"))
        .args(["show", "main:tls.txt"])
        .output()
        .expect("git show");
    assert_eq!(String::from_utf8_lossy(&pushed.stdout), "tls.txt");

    let stats = server.stats();
    let (used, unused) = used_and_unused(client);
    assert!(stats[used].as_u64() > Some(0), "{client}: {stats}");
    assert_eq!(stats[unused], 0, "{client}: {stats}");
    assert!(stats["users"]["test-user"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["inactive"], 0, "{stats}");

    let asked = std::fs::read_to_string(&asked).expect("the helper was asked");
    let host = format!("host={}", server.host());
    assert!(asked.lines().any(|l| l == "protocol=https"), "{asked}");
    assert!(
        asked.lines().all(|l| l == "protocol=https" || l == host),
        "{asked}"
    );

    let token = stored_access_token(&home, "local");
    let stored = git.stored_credentials().unwrap_or_default();
    if client.bearer {
        assert!(!stored.contains(&token), "{client}: {stored:?}");
    } else {
        assert!(
            stored.starts_with(&format!("https://oauth2:{token}@localhost")),
            "{client}: {stored:?}"
        );
    }
}

/// A home with a valid token for `local`, which claims the git host `127.0.0.1:9`.
fn offline_home() -> Home {
    home_for_git(
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        Some(&bearer_tokens("at-git-1")),
    )
}

#[test]
fn answers_for_mapped_and_unmapped_hosts() {
    let home = offline_home();
    let expiry = home.tokens("local")["issued_at"]
        .as_f64()
        .expect("issued_at") as i64
        + 3600;

    // git 2.46+ announces authtype: Bearer, ephemeral (no storage helper keeps it).
    let run = helper(
        &home,
        "get",
        "capability[]=authtype\ncapability[]=state\nprotocol=http\nhost=127.0.0.1:9\nwwwauth[]=Bearer realm=\"git\"\n\n",
    );
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!(
            "capability[]=authtype\nauthtype=Bearer\ncredential=at-git-1\nephemeral=1\npassword_expiry_utc={expiry}\n"
        )
    );
    // Older git: Basic, with a user name GitLab wants for OAuth tokens.
    let run = helper(
        &home,
        "get",
        "protocol=http\nhost=127.0.0.1:9\npath=o/r.git\n",
    );
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("username=oauth2\npassword=at-git-1\npassword_expiry_utc={expiry}\n")
    );
    // `oauth2` as the user name is the default account too.
    let run = helper(
        &home,
        "get",
        "protocol=http\nhost=127.0.0.1:9\nusername=oauth2\n\n",
    );
    assert_eq!(
        run.stdout,
        format!("password=at-git-1\npassword_expiry_utc={expiry}\n")
    );

    // Unmapped: nothing on stdout, exit 0 (git asks its next helper).
    for input in [
        "protocol=https\nhost=example.com\n\n",
        "protocol=https\nhost=127.0.0.1:10\n\n",
        "protocol=http\nhost=github.com\n\n",
        "protocol=ssh\nhost=127.0.0.1:9\n\n",
        "host=127.0.0.1:9\n\n",
        "",
    ] {
        let run = helper(&home, "get", input);
        run.expect_code(0);
        assert_eq!(run.stdout, "", "{input:?}");
    }

    // An account that is not signed in: no answer, exit 0 (git moves on), a line saying how to
    // sign it in (see `a_user_name_never_signs_in_a_new_account`).
    let run = helper(
        &home,
        "get",
        "protocol=http\nhost=127.0.0.1:9\nusername=alice\n\n",
    );
    run.expect_code(0);
    assert_eq!(run.stdout, "");

    // Other operations: store does nothing; an unknown one is ignored; capability lists ours.
    let before = std::fs::read(home.token_file("local")).expect("tokens");
    let run = helper(
        &home,
        "store",
        "protocol=http\nhost=127.0.0.1:9\nusername=oauth2\npassword=at-git-1\n\n",
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    let run = helper(&home, "frobnicate", "");
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    let run = helper(&home, "capability", "");
    assert_eq!(run.stdout, "version 0\ncapability authtype\n");
    assert_eq!(
        std::fs::read(home.token_file("local")).expect("tokens"),
        before
    );
}

/// The files of `home`'s token directory whose name contains `part`.
fn files_with(home: &Home, part: &str) -> Vec<String> {
    std::fs::read_dir(home.path().join("tokens"))
        .expect("tokens")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(part))
        .collect()
}

/// A user name in a remote URL (or in a hostile `.gitmodules`: `https://anything@host/...`)
/// chooses only an account that is signed in (or the default one): for any other, no answer
/// (exit 0, so git asks its next helper), a line on stderr saying how to sign it in, no sign-in
/// started even where a browser could be opened, and no file of that account made, by `get` or
/// by `erase`.
#[test]
fn a_user_name_never_signs_in_a_new_account() {
    let mut home = offline_home();
    // A browser that would leave a mark if a sign-in were started.
    let mark = home.path().join("browser-ran");
    home.set("BROWSER", format!("touch {}", mark.display()));
    for (input, account) in [
        (
            "protocol=http\nhost=127.0.0.1:9\nusername=ghost\n\n",
            "ghost",
        ),
        (
            "capability[]=authtype\nurl=http://Anything@127.0.0.1:9/o/r.git\n\n",
            "anything",
        ),
    ] {
        let run = helper(&home, "get", input);
        run.expect_code(0);
        assert_eq!(run.stdout, "", "{input:?}");
        assert!(
            run.stderr.contains(&format!(
                "account {account} of local (git's user name) is not signed in"
            )),
            "{run:#?}"
        );
        assert!(
            run.stderr.contains(&format!(
                "run `context-harness mcp auth local --account {account}` first"
            )),
            "{run:#?}"
        );
        assert!(files_with(&home, &format!("@{account}")).is_empty());
    }
    // A user name that is no account name at all: the same, without echoing it.
    let run = helper(
        &home,
        "get",
        "protocol=http\nhost=127.0.0.1:9\nusername=a b:c\n\n",
    );
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("is not an account name"), "{run:#?}");
    assert!(!run.stderr.contains("a b:c"), "{run:#?}");
    // `erase` for an account that is not signed in: nothing at all (no lock file either).
    let run = helper(
        &home,
        "erase",
        "protocol=http\nhost=127.0.0.1:9\nusername=ghost\npassword=at-git-1\n\n",
    );
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    assert!(
        files_with(&home, "@ghost").is_empty(),
        "{:?}",
        files_with(&home, "@")
    );
    assert!(!mark.exists(), "a sign-in was started");
    // The default account's token is untouched; `oauth2` (any case), `default` and no user name
    // are it.
    for user in [
        "",
        "username=oauth2\n",
        "username=OAuth2\n",
        "username=default\n",
    ] {
        let run = helper(
            &home,
            "get",
            &format!("capability[]=authtype\nprotocol=http\nhost=127.0.0.1:9\n{user}\n"),
        );
        run.expect_code(0);
        assert!(
            run.stdout.contains("credential=at-git-1\n"),
            "{user}: {run:#?}"
        );
    }
    // An account signed in already is used (its token file, as a sign-in stores it).
    let work = home.path().join("tokens").join("local@work.json");
    std::fs::write(
        &work,
        serde_json::to_string(&bearer_tokens("at-git-work")).expect("json"),
    )
    .expect("write");
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = helper(
        &home,
        "get",
        "capability[]=authtype\nprotocol=http\nhost=127.0.0.1:9\nusername=Work\n\n",
    );
    run.expect_code(0);
    assert!(run.stdout.contains("credential=at-git-work\n"), "{run:#?}");
    assert!(!mark.exists(), "a sign-in was started");
}

/// An error of an account's token (here expired, without a refresh token, and nobody to show a
/// sign-in to) names that account, and the hint signs that account in (`--account`), not the
/// default one.
#[test]
fn hints_name_the_account_of_the_user_name() {
    let home = offline_home();
    let mut expired = bearer_tokens("at-git-zz");
    expired.refresh_token = None;
    expired.issued_at -= 7200.0;
    let path = home.path().join("tokens").join("local@zz.json");
    std::fs::write(&path, serde_json::to_string(&expired).expect("json")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = helper(
        &home,
        "get",
        "protocol=https\nhost=127.0.0.1:9\nusername=zz\n\n",
    );
    assert_eq!(run.stdout, "");
    // Exit 6: expired, and no refresh token.
    run.expect_code(6);
    assert!(
        run.stderr
            .contains("run `context-harness mcp auth local --account zz`"),
        "{run:#?}"
    );
}

#[test]
fn malformed_input_is_an_error_with_nothing_on_stdout() {
    let home = offline_home();
    for input in [
        "protocol=http\nhost=127.0.0.1:9\nthis line has no equals sign hunter2\n\n",
        "protocol=http\nhost=127.0.0.1:9\npassword=hunter2\0\n\n",
        "url=127.0.0.1:9/no-scheme\n\n",
        "protocol=http\nhost=127.0.0.1:9\nephemeral=maybe\n\n",
    ] {
        for operation in ["get", "store", "erase"] {
            let run = helper(&home, operation, input);
            run.expect_code(2);
            assert_eq!(run.stdout, "", "{input:?}");
            assert!(run.stderr.contains("malformed input"), "{run:#?}");
            assert!(!run.stderr.contains("hunter2"), "{run:#?}");
        }
    }
    // A line longer than git allows.
    let long = format!(
        "protocol=http\nhost=127.0.0.1:9\npath={}\n\n",
        "a".repeat(70_000)
    );
    let run = helper(&home, "get", &long);
    run.expect_code(2);
    assert_eq!(run.stdout, "");
}

#[test]
fn erase_marks_only_the_stored_token_expired_and_keeps_the_refresh_token() {
    let home = offline_home();
    let before = home.tokens("local");

    // Another helper's password, or a token already replaced: nothing changes.
    for input in [
        "protocol=http\nhost=127.0.0.1:9\nusername=oauth2\npassword=someone-elses\n\n",
        "capability[]=authtype\nauthtype=Bearer\ncredential=at-git-0\nprotocol=http\nhost=127.0.0.1:9\n\n",
        "protocol=https\nhost=example.com\npassword=at-git-1\n\n",
    ] {
        let run = helper(&home, "erase", input);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:#?}");
        assert_eq!(home.tokens("local"), before);
    }

    // The stored token, refused: expired from now on, the refresh token and the rest kept.
    let run = helper(
        &home,
        "erase",
        "capability[]=authtype\nauthtype=Bearer\ncredential=at-git-1\nephemeral=1\nprotocol=http\nhost=127.0.0.1:9\n\n",
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:#?}");
    let after = home.tokens("local");
    assert_eq!(after["access_token"], "at-git-1");
    assert_eq!(after["refresh_token"], before["refresh_token"]);
    assert_eq!(after["issued_at"], before["issued_at"]);
    let lived = after["expires_in"].as_u64().expect("expires_in");
    assert!(lived < 3600, "{after}");
    let status = home.run(&["mcp", "status", "local", "--json"]);
    assert!(status.stdout.contains("\"token_expired\""), "{status:#?}");
    // Basic's password works the same; a second erase changes nothing more.
    let run = helper(
        &home,
        "erase",
        "protocol=http\nhost=127.0.0.1:9\npassword=at-git-1\n\n",
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    assert_eq!(
        home.tokens("local")["refresh_token"],
        before["refresh_token"]
    );
}

/// `erase` for an account with nothing stored (here the default account before any sign-in, as
/// when git reports a refused password that another helper gave): nothing happens, and no token
/// directory or lock file is made.
#[test]
fn erase_without_a_stored_token_makes_no_file() {
    let home = home_for_git("http://127.0.0.1:9", "127.0.0.1:9", None);
    for input in [
        "protocol=http\nhost=127.0.0.1:9\nusername=someone\npassword=another-helpers\n\n",
        "protocol=http\nhost=127.0.0.1:9\npassword=another-helpers\n\n",
        "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nprotocol=http\nhost=127.0.0.1:9\nusername=default\n\n",
    ] {
        let run = helper(&home, "erase", input);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (0, "", ""),
            "{input:?}"
        );
        assert!(
            !home.path().join("tokens").exists(),
            "{input:?}: {:?}",
            files_with(&home, "")
        );
    }
}

/// Each git itself runs the helper: with the README's line (`credential.<url>.helper
/// "context-harness git-credential"`, which git runs as `git credential-context-harness
/// git-credential get`, so a `git-credential-context-harness` link to the binary must be on PATH),
/// and as the first of two helpers, where an unmapped host falls through to the second. git takes
/// the answer without a warning: a Bearer credential from a git 2.46+, a Basic password (and no
/// attribute it does not know) from an older one.
#[test]
fn git_credential_fill_runs_the_helper() {
    let Some(clients) = require_git() else {
        return;
    };
    let home = offline_home();
    // The shipped `git-credential-context-harness` (which runs the `context-harness` beside it),
    // found on PATH as git looks for it.
    let helper = Path::new(env!("CARGO_BIN_EXE_git-credential-context-harness"));
    let bin_dir = helper.parent().expect("the helper's directory");
    assert!(bin_dir.join("context-harness").is_file());
    let config = "[credential \"http://127.0.0.1:9\"]\n\thelper = context-harness git-credential\n\
                  [credential]\n\thelper = \"!f() { echo username=next; echo password=next-helper; }; f\"\n";
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for client in &clients {
        eprintln!("git credential fill with {client}");
        let git = Git::new(client, &home, config);
        let fill = |input: &str| {
            let mut child = git
                .cmd(git.dir.path(), &["credential", "fill"])
                .env("PATH", &path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("git credential fill");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{client}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "",
                "{client}: git says nothing about the answer"
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // A caller announcing authtype: git 2.46+ passes it on and gets Bearer; an older git
        // drops it and gets Basic.
        let mapped = fill("capability[]=authtype\nprotocol=http\nhost=127.0.0.1:9\n\n");
        if client.bearer {
            assert!(mapped.contains("authtype=Bearer\n"), "{mapped}");
            assert!(mapped.contains("credential=at-git-1\n"), "{mapped}");
            assert!(!mapped.contains("password="), "{mapped}");
        } else {
            assert!(!mapped.contains("authtype="), "{mapped}");
            assert!(mapped.contains("username=oauth2\n"), "{mapped}");
            assert!(mapped.contains("password=at-git-1\n"), "{mapped}");
        }
        assert!(!mapped.contains("next-helper"), "{mapped}");
        let basic = fill("protocol=http\nhost=127.0.0.1:9\n\n");
        assert!(basic.contains("username=oauth2\n"), "{basic}");
        assert!(basic.contains("password=at-git-1\n"), "{basic}");
        let unmapped = fill("protocol=https\nhost=example.com\n\n");
        assert!(unmapped.contains("password=next-helper\n"), "{unmapped}");
        assert!(!unmapped.contains("at-git-1"), "{unmapped}");
    }
}

#[test]
fn two_providers_for_one_host_is_a_configuration_error() {
    let home = offline_home();
    let toml = home.path().join("providers.toml");
    let mut text = std::fs::read_to_string(&toml).expect("providers.toml");
    text.push_str("\n[providers.other]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\ngit_hosts = [\"127.0.0.1:9\"]\n");
    std::fs::write(&toml, text).expect("write");
    let run = helper(&home, "get", "protocol=http\nhost=127.0.0.1:9\n\n");
    run.expect_code(13);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("local and other"), "{run:#?}");
}

/// `git-credential --no-sign-in get` (for scripts: `credential.helper = "context-harness
/// git-credential --no-sign-in"`) never starts a sign-in, even where a browser could open: with no
/// tokens it answers nothing and exits 3 at once; the option may come before or after the
/// operation, as git appends the operation to the configured command.
#[test]
fn no_sign_in_answers_nothing_without_a_browser() {
    let home = home_for_git("http://127.0.0.1:9", "127.0.0.1:9", None);
    let opened = home.path().join("browser-opened");
    let browser = format!("touch {}", opened.display());
    for args in [
        &["git-credential", "--no-sign-in", "get"][..],
        &["git-credential", "get", "--no-sign-in", "--timeout", "5"][..],
    ] {
        let mut child = home
            .cmd(args)
            .env("BROWSER", &browser)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the helper");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"protocol=http\nhost=127.0.0.1:9\n\n")
            .expect("write");
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    assert!(!opened.exists(), "no browser was started");
}
