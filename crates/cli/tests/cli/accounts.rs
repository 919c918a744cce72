//! Several accounts per provider (issue 23): `--account NAME` on `mcp auth|token|headers|status|
//! refresh|logout`, against the repository's oidc-provider with its real interaction pages.
//!
//! Two people sign in to the same server as two accounts of provider `local`; their tokens are
//! used at once by concurrent processes, each token belonging to its own account's user (checked
//! with the server's introspection, RFC 7662 `sub`). An existing home (a token file as version 0.2
//! wrote it) is the `default` account and stays so when a second account is added; `--default`
//! switches the default; logging out one account keeps the other; invalid account names are
//! refused with exit 13 (`config_invalid`).
//!
//! The browser is a stand-in script (TEST-ONLY, written by the test): it follows the authorization
//! URL with plain HTTP, signs in on the server's login page as the user named on its command line,
//! approves on the consent page, requests the loopback redirect, and appends the user and the
//! request's `prompt` to a log file. Its settings travel as arguments inside `BROWSER` (the
//! browser's environment is an allowlist).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::util::{AuthServer, Home, Run, base64, form_encode, http, require_server};

/// The browser stand-in (see the module docs).
const SIGN_IN_SCRIPT: &str = r#"// TEST-ONLY browser stand-in (crates/cli/tests/cli/accounts.rs).
import { appendFileSync } from 'node:fs';

const [user, log, start] = process.argv.slice(2);
const redirectUri = new URL(start).searchParams.get('redirect_uri');
appendFileSync(log, `${user} ${new URL(start).searchParams.get('prompt') ?? ''}\n`);
const cookies = new Map();
async function request(url, form) {
  const headers = {};
  const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  if (cookie) headers.cookie = cookie;
  const init = { headers, redirect: 'manual' };
  if (form !== undefined) {
    init.method = 'POST';
    init.body = form;
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(url, init);
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const eq = pair.indexOf('=');
    cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return res;
}
let url = start;
let form;
for (let hop = 0; hop < 30; hop += 1) {
  if (url.startsWith(redirectUri)) {
    const res = await fetch(url);
    await res.text();
    process.exit(res.ok ? 0 : 1);
  }
  const res = await request(url, form);
  form = undefined;
  const location = res.headers.get('location');
  if (location && res.status >= 300 && res.status < 400) {
    url = new URL(location, url).href;
    continue;
  }
  const html = await res.text();
  const action = /\/interaction\/([^/"]+)\/(login|confirm)"/.exec(html);
  if (res.status !== 200 || !action) throw new Error(`stuck at ${url}: HTTP ${res.status}`);
  url = new URL(`/interaction/${action[1]}/${action[2]}`, url).href;
  form = action[2] === 'login' ? `login=${encodeURIComponent(user)}` : '';
}
throw new Error('too many hops');
"#;

/// A home with provider `local` (the server, client `ch-public`) and the browser stand-in.
struct Setup {
    server: AuthServer,
    home: Home,
    script: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn start() -> Option<Self> {
        if !require_server() {
            return None;
        }
        // No auto-approve: the login page asks who signs in.
        let server = AuthServer::start(&[]);
        let home = Home::with_local(&server.issuer, "ch-public");
        let script = home.path().join("sign-in.mjs");
        std::fs::write(&script, SIGN_IN_SCRIPT).expect("write the browser stand-in");
        let log = home.path().join("sign-ins.log");
        Some(Self {
            server,
            home,
            script,
            log,
        })
    }

    /// `BROWSER` signing in as `user`.
    fn browser(&self, user: &str) -> String {
        format!(
            "node {} {user} {}",
            self.script.display(),
            self.log.display()
        )
    }

    /// `mcp auth local [extra…]` signing in as `user`.
    fn sign_in(&self, user: &str, extra: &[&str]) -> Run {
        let mut args = vec!["mcp", "auth", "local", "--port", "0", "--timeout", "60"];
        args.extend_from_slice(extra);
        self.home
            .run_env(&args, &[("BROWSER", &self.browser(user))])
    }

    /// Each sign-in's user and `prompt`, in order.
    fn sign_ins(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// The `sub` (the user) of an active access token, by introspection (RFC 7662 §2.2).
    #[track_caller]
    fn user_of(&self, token: &str) -> String {
        let auth = format!("Basic {}", base64("ch-introspector:ch-introspector-secret"));
        let (status, answer) = http(
            "POST",
            &format!("{}/token/introspection", self.server.issuer),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &form_encode(&[("token", token)]),
        );
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).expect("introspection JSON");
        assert_eq!(v["active"], true, "not active: {v}");
        v["sub"].as_str().expect("sub").to_owned()
    }

    /// The user of `mcp token local [--account …]`'s token.
    #[track_caller]
    fn token_user(&self, extra: &[&str]) -> String {
        let mut args = vec!["mcp", "token", "local"];
        args.extend_from_slice(extra);
        let run = self.home.run(&args);
        run.expect_code(0);
        self.user_of(run.stdout.trim())
    }

    /// `mcp status --json` rows of `local`: (account, default, status).
    fn status(&self) -> Vec<(String, bool, String)> {
        let run = self.home.run(&["mcp", "status", "local", "--json"]);
        run.json()["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .map(|row| {
                assert_eq!(row["name"], "local", "{row}");
                (
                    row["account"].as_str().expect("account").to_owned(),
                    row["default"].as_bool().expect("default"),
                    row["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect()
    }

    fn tokens_dir(&self) -> PathBuf {
        self.home.path().join("tokens")
    }
}

fn row(account: &str, default: bool, status: &str) -> (String, bool, String) {
    (account.to_owned(), default, status.to_owned())
}

/// Moves a stored token set's `issued_at` back by an hour (its access token looks expired).
fn backdate(file: &Path) {
    let mut tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("token file")).expect("JSON");
    let issued = tokens["issued_at"].as_f64().expect("issued_at");
    tokens["issued_at"] = Value::from(issued - 3600.0);
    std::fs::write(file, tokens.to_string()).expect("rewrite the token file");
}

#[test]
fn two_accounts_are_two_users_used_at_once_and_managed_apart() {
    let Some(s) = Setup::start() else { return };
    let tokens = s.tokens_dir();

    // The first sign-in, without --account: stored as every earlier version stored it.
    s.sign_in("alice", &[]).expect_code(0);
    assert!(tokens.join("local.json").is_file());
    assert!(!tokens.join("local.accounts").exists());
    assert_eq!(s.status(), [row("default", true, "authenticated")]);

    // A second person signs in as account `Work` (names are case-insensitive).
    let second = s.sign_in("bob", &["--account", "Work"]);
    second.expect_code(0);
    assert!(
        second
            .stderr
            .contains("Account work of local: the default account stays default"),
        "{second:#?}"
    );
    assert!(tokens.join("local@work.json").is_file());
    assert!(tokens.join("local.json").is_file());
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(tokens.join("local.accounts")).expect("the account index"),
    )
    .expect("index JSON");
    assert_eq!(
        index,
        serde_json::json!({"default": "default", "accounts": ["default", "work"]})
    );
    // The second sign-in asked the server to let the user choose who signs in (another account
    // was signed in); the first did not.
    assert_eq!(s.sign_ins(), ["alice consent", "bob consent login"]);
    assert_eq!(
        s.status(),
        [
            row("default", true, "authenticated"),
            row("work", false, "authenticated")
        ]
    );
    let text = s.home.run(&["mcp", "status", "local"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("local (Local test server), account default (default): authenticated"),
        "{text:#?}"
    );
    assert!(
        text.stdout
            .contains("local (Local test server), account work: authenticated"),
        "{text:#?}"
    );
    let only = s
        .home
        .run(&["mcp", "status", "local", "--account", "work", "--json"]);
    only.expect_code(0);
    assert_eq!(only.json()["providers"][0]["account"], "work");
    assert_eq!(only.json()["providers"].as_array().map(Vec::len), Some(1));

    // Each account's token is its own user's.
    assert_eq!(s.token_user(&[]), "alice");
    assert_eq!(s.token_user(&["--account", "default"]), "alice");
    assert_eq!(s.token_user(&["--account", "work"]), "bob");
    let headers = s
        .home
        .run(&["mcp", "headers", "local", "--account", "work"]);
    headers.expect_code(0);
    let bearer = headers.json()["Authorization"]
        .as_str()
        .and_then(|h| h.strip_prefix("Bearer "))
        .expect("a Bearer header")
        .to_owned();
    assert_eq!(s.user_of(&bearer), "bob");

    // Both access tokens expired; processes of both accounts at once: one refresh per account,
    // and each process gets its own account's user.
    backdate(&tokens.join("local.json"));
    backdate(&tokens.join("local@work.json"));
    let (status, body) = http("POST", &format!("{}/test/reset", s.server.issuer), &[], "");
    assert_eq!(status, 200, "{body}");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let account = if i % 2 == 0 { "default" } else { "work" };
            let child = s
                .home
                .cmd(&["mcp", "token", "local", "--account", account])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            (account, child)
        })
        .collect();
    for (account, child) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let expected = if account == "work" { "bob" } else { "alice" };
        assert_eq!(s.user_of(&token), expected, "--account {account}");
    }
    assert_eq!(
        s.server.stats()["refresh_requests"],
        2,
        "one refresh per account"
    );

    // `mcp refresh` of one account.
    let refresh = s
        .home
        .run(&["mcp", "refresh", "local", "--account", "work"]);
    refresh.expect_code(0);
    assert!(
        refresh
            .stderr
            .contains("Refreshed the tokens for local (account work)"),
        "{refresh:#?}"
    );
    assert_eq!(s.server.stats()["refresh_requests"], 3);

    // `--default` for an account signed in already: no browser (none could start: `false`).
    let switch = s.home.run_env(
        &[
            "mcp",
            "auth",
            "local",
            "--account",
            "work",
            "--default",
            "--timeout",
            "5",
        ],
        &[("BROWSER", "false")],
    );
    switch.expect_code(0);
    assert!(
        switch
            .stderr
            .contains("The default account of local is now work"),
        "{switch:#?}"
    );
    assert_eq!(s.sign_ins().len(), 2, "no sign-in for --default");
    assert_eq!(s.token_user(&[]), "bob");
    assert_eq!(
        s.status(),
        [
            row("default", false, "authenticated"),
            row("work", true, "authenticated")
        ]
    );

    // `mcp token --json` names the account: the default one (now `work`) without --account.
    for (extra, account) in [
        (&[][..], "work"),
        (&["--account", "default"][..], "default"),
    ] {
        let mut args = vec!["mcp", "token", "local", "--json"];
        args.extend_from_slice(extra);
        let run = s.home.run(&args);
        run.expect_code(0);
        assert_eq!(run.json()["account"], account, "{run:#?}");
    }

    // Signing out of the default account `work` keeps `default`, which is the default again.
    let alice_token = s.home.run(&["mcp", "token", "local"]);
    let logout = s.home.run(&["mcp", "logout", "local", "--account", "work"]);
    logout.expect_code(0);
    assert!(
        logout.stderr.contains("Signed out of local (account work)"),
        "{logout:#?}"
    );
    assert!(
        logout
            .stderr
            .contains("The default account of local is now default."),
        "{logout:#?}"
    );
    assert!(!tokens.join("local@work.json").exists());
    assert!(tokens.join("local.json").is_file());
    // The index says no more than a home without it: removed.
    assert!(!tokens.join("local.accounts").exists());
    assert_eq!(s.token_user(&[]), "alice");
    assert_eq!(s.status(), [row("default", true, "authenticated")]);
    assert_eq!(alice_token.code, 0);
    // The account signed out of is not signed in; the hint names it.
    let gone = s.home.run(&["mcp", "token", "local", "--account", "work"]);
    gone.expect_code(3);
    assert!(
        gone.stderr
            .contains("context-harness mcp auth local --account work"),
        "{gone:#?}"
    );
    let gone = s.home.run(&["mcp", "status", "local", "--account", "work"]);
    gone.expect_code(3);
}

#[test]
fn an_existing_home_is_the_default_account_and_keeps_it() {
    let Some(s) = Setup::start() else { return };
    // A token file written before accounts existed (version 0.2's layout: `tokens/local.json`
    // alone), made here by a sign-in in another home and copied.
    let other = Home::with_local(&s.server.issuer, "ch-public");
    let run = other.run_env(
        &["mcp", "auth", "local", "--port", "0", "--timeout", "60"],
        &[("BROWSER", &s.browser("carol"))],
    );
    run.expect_code(0);
    let tokens = s.tokens_dir();
    std::fs::create_dir_all(&tokens).expect("tokens dir");
    let record = tokens.join("local.json");
    std::fs::copy(other.token_file("local"), &record).expect("copy the token file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let before = std::fs::read(&record).expect("read");

    // Listed and used as the default account, with nothing rewritten.
    assert_eq!(s.status(), [row("default", true, "authenticated")]);
    let status = s.home.run(&["mcp", "status", "--json"]);
    let rows = status.json()["providers"].clone();
    let local = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "local"))
        .expect("local listed")
        .clone();
    assert_eq!(local["account"], "default");
    assert_eq!(local["default"], true);
    assert_eq!(s.token_user(&[]), "carol");
    assert_eq!(std::fs::read(&record).expect("read"), before);
    // Refreshed like before accounts.
    backdate(&record);
    s.home.run(&["mcp", "refresh", "local"]).expect_code(0);
    assert_eq!(s.token_user(&[]), "carol");

    // A second account added: the old record stays the default account.
    s.sign_in("dave", &["--account", "dave@example.com"])
        .expect_code(0);
    assert_eq!(
        s.status(),
        [
            row("default", true, "authenticated"),
            row("dave@example.com", false, "authenticated")
        ]
    );
    assert_eq!(s.token_user(&[]), "carol");
    assert_eq!(s.token_user(&["--account", "DAVE@example.com"]), "dave");
    // Logging out of `default` leaves the other account, which becomes the default.
    let logout = s.home.run(&["mcp", "logout", "local", "--local-only"]);
    logout.expect_code(0);
    assert!(
        logout
            .stderr
            .contains("The default account of local is now dave@example.com."),
        "{logout:#?}"
    );
    assert!(!record.exists());
    assert_eq!(s.token_user(&[]), "dave");
    assert_eq!(s.status(), [row("dave@example.com", true, "authenticated")]);
}

/// The `sub` claim of a JWT access token (an MCP server's tokens are JWTs, which oidc-provider
/// does not introspect).
fn jwt_user(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push(((bits >> count) & 0xff) as u8);
        }
    }
    let claims: Value = serde_json::from_slice(&bytes).expect("JWT claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// Two `mcp proxy <url> --account …` bridges at once to an MCP server (the TypeScript SDK's,
/// trusting the oidc-provider), each account with an expired token: each bridge refreshes its own
/// account's (one refresh each) and is served; the refreshed tokens are still each user's.
#[test]
fn two_bridges_of_two_accounts_run_at_once() {
    if !crate::proxy::require_mcp_servers() {
        return;
    }
    let Some(s) = Setup::start() else { return };
    let mcp = context_harness_test_support::McpServer::start(
        &crate::util::repo_root(),
        &[("MCP_ISSUER", s.server.issuer.as_str())],
        context_harness_test_support::ServerLog::Inherit,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = mcp.url().to_owned();
    let sign_in = |user: &str, extra: &[&str]| {
        let mut args = vec!["mcp", "auth", &url, "--port", "0", "--timeout", "60"];
        args.extend_from_slice(extra);
        s.home.run_env(&args, &[("BROWSER", &s.browser(user))])
    };
    sign_in("alice", &[]).expect_code(0);
    sign_in("bob", &["--account", "work"]).expect_code(0);
    let prompts = s.sign_ins();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(!prompts[0].contains("login"), "{prompts:?}");
    assert!(prompts[1].ends_with("login"), "{prompts:?}");
    // The server's storage name is shared; each account has its own token file.
    let files: Vec<PathBuf> = std::fs::read_dir(s.tokens_dir())
        .expect("tokens dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let token_of = |file: &Path| {
        let tokens: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("JSON");
        tokens["access_token"].as_str().expect("token").to_owned()
    };
    let work = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with("@work.json"))
        .expect("the work account's file")
        .clone();
    let default = files.iter().find(|p| **p != work).expect("default").clone();
    assert_eq!(jwt_user(&token_of(&default)), "alice");
    assert_eq!(jwt_user(&token_of(&work)), "bob");

    backdate(&default);
    backdate(&work);
    let (status, body) = http("POST", &format!("{}/test/reset", s.server.issuer), &[], "");
    assert_eq!(status, 200, "{body}");
    let mut bridges: Vec<crate::proxy::Proxy> = [&[][..], &["--account", "work"][..]]
        .iter()
        .map(|extra| crate::proxy::Proxy::spawn(&s.home, &url, extra, &[]))
        .collect();
    // Both asked at once (both refresh then), then both answered.
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "accounts-test", "version": "1"}}});
    for bridge in &mut bridges {
        bridge.send(&initialize);
    }
    for (i, bridge) in bridges.iter_mut().enumerate() {
        assert!(
            bridge.recv()["result"]["serverInfo"].is_object(),
            "bridge {i}"
        );
        bridge.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let call = bridge.call(
            2,
            "tools/call",
            serde_json::json!({"name": "echo", "arguments": {"text": format!("bridge {i}")}}),
        );
        assert_eq!(crate::proxy::text_of(&call), format!("bridge {i}"));
    }
    for bridge in bridges {
        let (code, _, stderr) = bridge.finish();
        assert_eq!(code, 0, "{stderr}");
    }
    assert_eq!(
        s.server.stats()["refresh_requests"],
        2,
        "one refresh per account"
    );
    assert_eq!(jwt_user(&token_of(&default)), "alice");
    assert_eq!(jwt_user(&token_of(&work)), "bob");
}

#[test]
fn invalid_account_names_are_refused_with_exit_13() {
    let home = Home::new();
    for args in [
        &["mcp", "token", "github", "--account", "../x"][..],
        &["mcp", "auth", "github", "--account", ""],
        &["mcp", "status", "--account", "a b"],
        &["mcp", "logout", "github", "--account=-x"],
        &["mcp", "refresh", "github", "--account", "a/b"],
        &["mcp", "headers", "github", "--account", "x:y"],
    ] {
        let run = home.run(args);
        run.expect_code(13);
        assert!(run.stderr.contains("invalid account name"), "{run:#?}");
        assert!(run.stderr.contains("1 to 64 letters, digits"), "{run:#?}");
    }
    let long = "a".repeat(65);
    home.run(&["mcp", "token", "github", "--account", &long])
        .expect_code(13);
    // Nothing was written for them.
    assert!(!home.path().join("tokens").exists());
    // `--default` needs `--account`.
    home.run(&["mcp", "auth", "github", "--default"])
        .expect_code(2);
}

/// Stores a valid token set with access token `access` under storage key `key` (as a sign-in
/// writes it: 0600 in a 0700 directory).
fn store_tokens(home: &Home, key: &str, access: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = home.path().join("tokens");
    if !dir.is_dir() {
        std::fs::create_dir(&dir).expect("mkdir tokens");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    let path = dir.join(format!("{key}.json"));
    let tokens = crate::git_credential::bearer_tokens(access);
    std::fs::write(&path, serde_json::to_string(&tokens).expect("json")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Writes the account index of `local`.
fn write_index(home: &Home, json: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = home.path().join("tokens").join("local.accounts");
    std::fs::write(&path, json).expect("write the index");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// `mcp status local --json` rows: (account, default, status).
fn status_rows(home: &Home) -> Vec<(String, bool, String)> {
    let run = home.run(&["mcp", "status", "local", "--json"]);
    run.expect_code(0);
    run.json()["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|row| {
            (
                row["account"].as_str().expect("account").to_owned(),
                row["default"].as_bool().expect("default"),
                row["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// An index whose default is not one of its accounts is refused alike by the commands that use
/// the default account and by `mcp status`, named as the account index, with a hint saying what
/// deleting it does; deleted, it loses no account (they are found again from the token files);
/// "not signed in" names the account. No server: the tokens are valid and read from the files.
#[test]
fn a_bad_index_is_refused_everywhere_and_a_deleted_one_loses_no_account() {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    store_tokens(&home, "local", "at-default");
    store_tokens(&home, "local@work", "at-work");
    store_tokens(&home, "local@home", "at-home");
    write_index(
        &home,
        r#"{"default": "work", "accounts": ["default", "work", "home"]}"#,
    );
    let token = |args: &[&str]| {
        let mut all = vec!["mcp", "token", "local"];
        all.extend_from_slice(args);
        home.run(&all)
    };
    assert_eq!(token(&[]).expect_code(0).stdout.trim(), "at-work");

    // Its default is not one of its accounts: `mcp token` would sign in an account `mcp status`
    // does not show as the default. Both refuse the index, saying what it is and what to do.
    write_index(&home, r#"{"default":"evil","accounts":["default"]}"#);
    let refused = token(&[]);
    refused.expect_code(12);
    assert_eq!(refused.stdout, "");
    for needle in [
        "local.accounts is corrupt: its default account is not one of its accounts",
        "error: account index ",
        "hint: fix the file, or delete it: no tokens are lost",
    ] {
        assert!(refused.stderr.contains(needle), "{needle}: {refused:#?}");
    }
    assert!(!refused.stderr.contains("token file"), "{refused:#?}");
    let status = home.run(&["mcp", "status", "local"]);
    status.expect_code(12);
    assert!(
        status
            .stderr
            .contains("cannot read the accounts of local: account index"),
        "{status:#?}"
    );
    assert!(!status.stdout.contains("authenticated"), "{status:#?}");
    let json = home.run(&["mcp", "status", "local", "--json"]);
    assert_eq!(
        json.json()["providers"][0]["error"]["code"],
        "storage",
        "{json:#?}"
    );
    // A named account needs no default.
    assert_eq!(
        token(&["--account", "home"]).expect_code(0).stdout.trim(),
        "at-home"
    );

    // Deleted: every account with tokens is listed, `default` is the default again.
    std::fs::remove_file(home.path().join("tokens").join("local.accounts")).expect("rm");
    assert_eq!(
        status_rows(&home),
        [
            row("default", true, "authenticated"),
            row("home", false, "authenticated"),
            row("work", false, "authenticated"),
        ]
    );
    assert_eq!(token(&[]).expect_code(0).stdout.trim(), "at-default");
    let all = home.run(&["mcp", "status"]);
    all.expect_code(0);
    assert!(
        all.stdout
            .contains("local (Local test server), account home: authenticated"),
        "{all:#?}"
    );

    // Not signed in: the message names the account, the hint signs that account in.
    let missing = token(&["--account", "zz"]);
    missing.expect_code(3);
    assert!(
        missing
            .stderr
            .contains("error: not signed in to local (account zz)"),
        "{missing:#?}"
    );
    assert!(
        missing
            .stderr
            .contains("run `context-harness mcp auth local --account zz`"),
        "{missing:#?}"
    );
    // ...and none of its files was made.
    let made: Vec<String> = std::fs::read_dir(home.path().join("tokens"))
        .expect("tokens")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("@zz"))
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

/// Four sign-ins of four accounts into an empty home, started together as real processes (no
/// sleeps): each stores its own user's tokens, and the account index written under the accounts
/// lock lists all four afterwards, with one of them the default (none lost to a lost update, none
/// half-written; the token directory made by whichever got there first).
#[test]
fn concurrent_sign_ins_of_different_accounts_all_reach_the_index() {
    let Some(s) = Setup::start() else { return };
    let users = ["ann", "ben", "cat", "dan"];
    let children: Vec<_> = users
        .iter()
        .map(|user| {
            let child = s
                .home
                .cmd(&[
                    "mcp",
                    "auth",
                    "local",
                    "--account",
                    user,
                    "--port",
                    "0",
                    "--timeout",
                    "60",
                ])
                .env("BROWSER", s.browser(user))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a sign-in");
            (*user, child)
        })
        .collect();
    for (user, child) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text =
        std::fs::read_to_string(s.tokens_dir().join("local.accounts")).expect("the account index");
    let index: Value = serde_json::from_str(&text).expect("index JSON");
    let mut listed: Vec<&str> = index["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a.as_str().expect("a name"))
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, users, "{text}");
    let default = index["default"].as_str().expect("default");
    assert!(users.contains(&default), "{text}");
    for user in users {
        assert_eq!(s.token_user(&["--account", user]), user);
    }
    assert_eq!(s.token_user(&[]), default);
    let rows = s.status();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter()
            .all(|(account, is_default, status)| status == "authenticated"
                && *is_default == (account == default)),
        "{rows:?}"
    );
}

/// `mcp auth --account NAME --default` for an account the index still lists but whose tokens are
/// gone (deleted by hand, or from the keyring by another program) signs that account in first, as
/// for any account not signed in: it does not say "signed in already" and make an account without
/// tokens the default. No server answers here: the sign-in fails, and the default stays.
#[test]
fn default_for_a_listed_account_without_tokens_signs_in_first() {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    store_tokens(&home, "local", "at-default");
    store_tokens(&home, "local@work", "at-work");
    store_tokens(&home, "local@old", "at-old");
    write_index(
        &home,
        r#"{"default": "default", "accounts": ["default", "work", "old"]}"#,
    );
    std::fs::remove_file(home.token_file("local@old")).expect("rm");
    let switch = home.run_env(
        &[
            "mcp",
            "auth",
            "local",
            "--account",
            "old",
            "--default",
            "--no-browser",
            "--timeout",
            "1",
        ],
        &[("BROWSER", "false")],
    );
    // The sign-in started (its URL shown, for account `old`) and ran out of time: exit 10.
    switch.expect_code(10);
    assert!(!switch.stderr.contains("signed in already"), "{switch:#?}");
    assert!(
        switch.stderr.contains("http://127.0.0.1:9/auth?"),
        "{switch:#?}"
    );
    assert_eq!(
        home.run(&["mcp", "token", "local"])
            .expect_code(0)
            .stdout
            .trim(),
        "at-default"
    );
    // An account with tokens still only switches.
    let switch = home.run(&["mcp", "auth", "local", "--account", "work", "--default"]);
    switch.expect_code(0);
    assert!(
        switch
            .stderr
            .contains("The default account of local is now work (signed in already"),
        "{switch:#?}"
    );
    assert_eq!(
        home.run(&["mcp", "token", "local"])
            .expect_code(0)
            .stdout
            .trim(),
        "at-work"
    );
}

/// A sign-in without `--account` signs in the account that was the default when it started; when
/// another process makes another account the default while the browser is open (here the browser
/// itself runs that command before signing in), the sign-in still stores the account it started
/// with, and its closing line names that account, not the new default.
#[test]
fn a_sign_in_names_the_account_it_started_with() {
    let Some(s) = Setup::start() else { return };
    store_tokens(&s.home, "local", "at-default");
    store_tokens(&s.home, "local@work", "at-work");
    let script = s.home.path().join("switch-then-sign-in.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             CONTEXT_HARNESS_HOME='{home}' CONTEXT_HARNESS_STORAGE=file HOME='{home}' '{bin}' \
             mcp auth local --account work --default >> '{home}/switch.log' 2>&1 || exit 1\n\
             exec {browser} \"$1\"\n",
            home = s.home.path().display(),
            bin = crate::util::BIN,
            browser = s.browser("alice"),
        ),
    )
    .expect("write the browser script");
    let browser = format!("sh {}", script.display());
    let run = s.home.run_env(
        &["mcp", "auth", "local", "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser)],
    );
    run.expect_code(0);
    let switched = std::fs::read_to_string(s.home.path().join("switch.log")).expect("switch log");
    assert!(
        switched.contains("The default account of local is now work"),
        "{switched}"
    );
    // The sign-in stored the `default` account's tokens (alice's), not work's.
    assert_eq!(s.token_user(&["--account", "default"]), "alice");
    assert_eq!(
        s.home
            .run(&["mcp", "token", "local", "--account", "work"])
            .expect_code(0)
            .stdout
            .trim(),
        "at-work"
    );
    assert!(
        run.stderr.contains(
            "Account default of local: the default account stays work (make it this one with --default)."
        ),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("Account work"), "{run:#?}");
}

/// The keyring entry (service `context-harness`) that `user` names, read with `secret-tool`.
fn keyring_entry(user: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "context-harness", "username", user])
        .output()
        .ok()?;
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Accounts with `--storage keyring`, against the real Secret Service (the private one of
/// `cargo xtask with-secret-service`): each account's tokens are the keyring entry of its own
/// storage key (user `local` for `default`, `local@work`), no token file exists, the accounts are
/// found again from the backend records when the index is deleted, and signing out of one account
/// deletes its entry only.
#[test]
fn keyring_accounts_are_entries_of_their_own() {
    if !crate::util::require(
        std::env::var("CONTEXT_HARNESS_TEST_SECRET_SERVICE").as_deref() == Ok("1"),
        "a private Secret Service (run under `cargo xtask with-secret-service`)",
    ) {
        return;
    }
    let Some(mut s) = Setup::start() else { return };
    s.home.set("CONTEXT_HARNESS_STORAGE", "keyring");
    s.sign_in("alice", &[]).expect_code(0);
    s.sign_in("bob", &["--account", "work"]).expect_code(0);
    let tokens = s.tokens_dir();
    let access = |entry: Option<String>| -> String {
        let json: Value = serde_json::from_str(&entry.expect("a keyring entry")).expect("JSON");
        json["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    };
    let default_token = access(keyring_entry("local"));
    let work_token = access(keyring_entry("local@work"));
    assert_eq!(s.user_of(&default_token), "alice");
    assert_eq!(s.user_of(&work_token), "bob");
    assert!(!tokens.join("local.json").exists());
    assert!(!tokens.join("local@work.json").exists());
    assert_eq!(s.token_user(&["--account", "work"]), "bob");
    assert_eq!(s.token_user(&[]), "alice");

    // The index deleted: both accounts found again from their backend records.
    std::fs::remove_file(tokens.join("local.accounts")).expect("rm the index");
    assert_eq!(
        s.status(),
        [
            row("default", true, "authenticated"),
            row("work", false, "authenticated")
        ]
    );

    // Signing out of `work` deletes its entry, not the default's.
    s.home
        .run(&[
            "mcp",
            "logout",
            "local",
            "--account",
            "work",
            "--local-only",
        ])
        .expect_code(0);
    assert_eq!(keyring_entry("local@work"), None);
    assert_eq!(access(keyring_entry("local")), default_token);
    assert_eq!(s.status(), [row("default", true, "authenticated")]);
    s.home
        .run(&["mcp", "logout", "local", "--local-only"])
        .expect_code(0);
    assert_eq!(keyring_entry("local"), None);
}

/// `mcp auth --account work --default` checks that `work` is signed in, then waits for the
/// provider's accounts lock (held here, as a logout of `work` holds it to forget the account);
/// meanwhile `work`'s tokens are deleted (that logout's first step). When the lock is free, the
/// switch must see that `work` is signed out (judged under the lock) and refuse, rather than write
/// an index whose default has no tokens. No server: the tokens are read from the files.
#[test]
fn a_default_switch_racing_a_logout_names_no_signed_out_default() {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    store_tokens(&home, "local", "at-default");
    store_tokens(&home, "local@work", "at-work");
    let lock_path = home.path().join("tokens").join("local.accounts-lock");
    let lock = hold_lock(&lock_path);
    let switch = home
        .cmd(&[
            "mcp",
            "auth",
            "local",
            "--account",
            "work",
            "--default",
            "--timeout",
            "5",
        ])
        .env("BROWSER", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the switch");
    // The switch has checked and is waiting for the lock once it holds the lock file open.
    wait_until_open(switch.id(), &lock_path);
    std::fs::remove_file(home.token_file("local@work")).expect("sign work out");
    drop(lock);
    let out = switch.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("account work of local is not signed in"),
        "{stderr}"
    );
    assert_eq!(
        home.run(&["mcp", "token", "local"])
            .expect_code(0)
            .stdout
            .trim(),
        "at-default"
    );
    assert_eq!(status_rows(&home), [row("default", true, "authenticated")]);
}

/// Holds the lock of lock file `path` (made 0600 as the program makes it) until dropped.
fn hold_lock(path: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt as _;
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .expect("open the lock file");
    lock.lock().expect("hold the lock");
    lock
}

/// Returns once process `pid` has `path` open (it is waiting for the lock `path` is the file of).
fn wait_until_open(pid: u32, path: &Path) {
    let fds = PathBuf::from(format!("/proc/{pid}/fd"));
    let open = || {
        std::fs::read_dir(&fds).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        })
    };
    let start = std::time::Instant::now();
    while !open() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "process {pid} never opened {}",
            path.display()
        );
        // Polled, not spun: the waited-for process needs the CPU (no timing is asserted).
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `mcp refresh local` without `--account` refreshes the account that was the default when it
/// started; when another process makes another account the default while the refresh waits for
/// its account's refresh lock (held here), it still refreshes that account and its message names
/// it, not the new default.
#[test]
fn a_refresh_names_the_account_it_refreshed() {
    let Some(s) = Setup::start() else { return };
    s.sign_in("alice", &[]).expect_code(0);
    s.sign_in("bob", &["--account", "work"]).expect_code(0);
    let lock_path = s.tokens_dir().join("local.lock");
    let lock = hold_lock(&lock_path);
    let refresh = s
        .home
        .cmd(&["mcp", "refresh", "local"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the refresh");
    wait_until_open(refresh.id(), &lock_path);
    s.home
        .run(&["mcp", "auth", "local", "--account", "work", "--default"])
        .expect_code(0);
    drop(lock);
    let out = refresh.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Refreshed the tokens for local (account default)"),
        "{stderr}"
    );
    assert_eq!(s.token_user(&["--account", "default"]), "alice");
    assert_eq!(s.token_user(&[]), "bob");
}

/// A provider whose default account is not `default` (the index says `work`) and is not signed
/// in: every command that uses the default account says which one is not signed in, and its hint
/// signs in that account by name (`--account work`), as does `mcp status`; when the default is
/// the bare `default`, the hint names none. No server: nothing is contacted before the tokens are
/// found missing.
#[test]
fn a_default_account_not_signed_in_is_named_in_the_hint() {
    use std::io::Write as _;
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    let toml = home.path().join("providers.toml");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&toml)
        .expect("providers.toml");
    writeln!(file, "git_hosts = [\"git.example\"]").expect("append");
    drop(file);
    store_tokens(&home, "local", "at-default");
    write_index(
        &home,
        r#"{"default": "work", "accounts": ["default", "work"]}"#,
    );
    let hint = "hint: run `context-harness mcp auth local --account work`";
    let runs = [
        home.run(&["mcp", "token", "local"]),
        home.run(&["mcp", "token", "local", "--no-sign-in"]),
        home.run(&["mcp", "headers", "local"]),
        home.run(&["exec", "local", "--", "true"]),
        home.run(&["mcp", "refresh", "local"]),
        crate::git_credential::helper(&home, "get", "protocol=https\nhost=git.example\n\n"),
    ];
    for run in &runs {
        run.expect_code(3);
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert!(
            run.stderr
                .contains("error: not signed in to local (account work)"),
            "{run:#?}"
        );
        assert!(run.stderr.contains(hint), "{run:#?}");
    }
    let status = home.run(&["mcp", "status", "local"]);
    status.expect_code(3);
    assert!(status.stderr.contains(hint), "{status:#?}");
    let json = home.run(&["mcp", "status", "local", "--json"]);
    let rows = json.json()["providers"].clone();
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{json:#?}");
    assert!(
        rows.iter().any(|r| r["account"] == "work"
            && r["default"] == true
            && r["status"] == "not_authenticated"),
        "{json:#?}"
    );

    // The bare default not signed in: the hint names no account.
    std::fs::remove_file(home.path().join("tokens").join("local.accounts")).expect("rm");
    std::fs::remove_file(home.token_file("local")).expect("rm tokens");
    let bare = home.run(&["mcp", "token", "local"]);
    bare.expect_code(3);
    assert!(
        bare.stderr
            .contains("hint: run `context-harness mcp auth local`\n"),
        "{bare:#?}"
    );
}
