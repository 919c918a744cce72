//! No token, code, verifier or client secret in any output at the highest verbosity, except the
//! access token on `mcp token`'s own stdout.

use std::collections::BTreeSet;

use crate::util::{AuthServer, Home, Pending, base64, follow_to_redirect, require_server};

const CLIENT_SECRET: &str = "ch-confidential-secret";

/// Runs sign-in (pasted redirect), status, token, forced and expiry refresh, and logout with `extra`
/// verbosity; checks every output.
fn whole_flow_leaks_nothing(flags: &[&str], env: &[(&str, &str)]) {
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let mut home = Home::with_local(&server.issuer, "ch-confidential");
    home.set("LOCAL_CLIENT_SECRET", CLIENT_SECRET);
    for (k, v) in env {
        home.set(k, *v);
    }
    let args = |rest: &[&'static str]| -> Vec<&str> {
        flags.iter().copied().chain(rest.iter().copied()).collect()
    };

    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut secrets: BTreeSet<String> = BTreeSet::new();
    secrets.insert(CLIENT_SECRET.to_owned());
    secrets.insert(base64(&format!("ch-confidential:{CLIENT_SECRET}")));
    let collect_tokens = |home: &Home, secrets: &mut BTreeSet<String>| {
        let tokens = home.tokens("local");
        for key in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = tokens[key].as_str() {
                secrets.insert(value.to_owned());
            }
        }
    };

    // Sign in with a pasted redirect URL: the test knows the authorization code.
    let pending = Pending::spawn(home.cmd(&args(&[
        "mcp",
        "auth",
        "local",
        "--no-browser",
        "--port",
        "0",
        "--timeout",
        "60",
    ])));
    let auth_url = pending.url.clone();
    let redirect = follow_to_redirect(&auth_url);
    let code = url_param(&redirect, "code").expect("code in the redirect");
    secrets.insert(code);
    let auth = pending.paste(&redirect);
    auth.expect_code(0);
    outputs.push(("auth stdout".into(), auth.stdout.clone()));
    outputs.push(("auth stderr".into(), auth.stderr.clone()));
    collect_tokens(&home, &mut secrets);

    for (name, rest) in [
        ("status", &["mcp", "status"][..]),
        ("status --json", &["mcp", "status", "--json"]),
        ("providers", &["mcp", "providers", "--json"]),
        ("refresh", &["mcp", "refresh", "local"]),
    ] {
        let run = home.run(&args(rest));
        run.expect_code(0);
        outputs.push((format!("{name} stdout"), run.stdout.clone()));
        outputs.push((format!("{name} stderr"), run.stderr.clone()));
        collect_tokens(&home, &mut secrets);
    }

    // Expiry-triggered refresh inside `mcp token`: its stdout is the one allowed secret.
    home.backdate("local", 7200.0);
    let token = home.run(&args(&["mcp", "token", "local"]));
    token.expect_code(0);
    outputs.push(("token stderr".into(), token.stderr.clone()));
    collect_tokens(&home, &mut secrets);
    assert_eq!(
        token.stdout.trim(),
        home.tokens("local")["access_token"]
            .as_str()
            .unwrap_or_default()
    );

    let logout = home.run(&args(&["mcp", "logout", "local"]));
    logout.expect_code(0);
    outputs.push(("logout stdout".into(), logout.stdout.clone()));
    outputs.push(("logout stderr".into(), logout.stderr));
    assert!(server.stats()["refresh_requests"].as_u64() >= Some(2));

    // The outputs must really be verbose, or this test proves nothing.
    assert!(
        auth.stderr.contains("TRACE") || auth.stderr.contains("DEBUG"),
        "{auth:#?}"
    );

    for (name, text) in &outputs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{name} contains a secret:\n{text}"
            );
        }
    }

    // The PKCE verifier is never known to the test: any long base64url-looking word that is not a
    // public value of the authorization URL (state, challenge) counts as a leak.
    let public: BTreeSet<String> = url_values(&auth_url);
    for (name, text) in &outputs {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
            if word.len() >= 43 && !public.contains(word) {
                panic!("{name} contains a secret-looking value {word:?}:\n{text}");
            }
        }
    }
}

fn url_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

fn url_values(url: &str) -> BTreeSet<String> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(_, v)| v.to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn no_secrets_at_vvv() {
    if !require_server() {
        return;
    }
    whole_flow_leaks_nothing(&["-vvv"], &[]);
}

#[test]
fn no_secrets_with_rust_log_trace() {
    if !require_server() {
        return;
    }
    whole_flow_leaks_nothing(&[], &[("RUST_LOG", "trace")]);
}
