//! DPoP-bound tokens at the command line (issue 22, RFC 9449): `mcp token` refuses to print one
//! (exit 13, naming `mcp headers`); `mcp headers` prints the `Authorization: DPoP` header and a
//! fresh proof for the request named, or the Bearer header for a Bearer token; `mcp status --json`
//! says `dpop_bound`; the key never shows at TRACE.
//!
//! The token record is written as a DPoP sign-in stores it (the key made by the library's
//! `DpopKey`); no server is involved, as none of these commands contacts one for a valid token.

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use context_harness_providers::{DpopKey, OAuthTokens, access_token_hash};
use serde_json::Value;

use crate::util::Home;

/// A home signed in to `local` with `tokens` (0600 in a 0700 directory).
fn home_with(tokens: &OAuthTokens) -> Home {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    let dir = home.path().join("tokens");
    std::fs::create_dir(&dir).expect("mkdir tokens");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = dir.join("local.json");
    std::fs::write(&file, serde_json::to_string(tokens).expect("json")).expect("write tokens");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    home
}

fn tokens(token_type: &str) -> OAuthTokens {
    let mut t = OAuthTokens::new(
        context_harness_providers::AccessToken::new("at-dpop-1"),
        token_type,
        SystemTime::now(),
    );
    t.expires_in = Some(3600);
    t
}

fn decode(segment: &str) -> Value {
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(segment).expect("base64url"))
        .expect("json")
}

#[test]
fn a_bound_token_is_presented_by_mcp_headers_only() {
    let key = DpopKey::generate().expect("key");
    let mut bound = tokens("DPoP");
    key.write(&mut bound);
    let stored_key = serde_json::to_value(&bound).expect("json")["dpop_key"]["pkcs8"]
        .as_str()
        .expect("pkcs8")
        .to_owned();
    let home = home_with(&bound);

    // mcp token: refused, exit 13, naming the helper; no token printed.
    let refused = home.run(&["mcp", "token", "local"]);
    refused.expect_code(13);
    assert!(refused.stdout.is_empty(), "{refused:#?}");
    assert!(refused.stderr.contains("DPoP-bound"), "{refused:#?}");
    assert!(refused.stderr.contains("mcp headers local"), "{refused:#?}");

    // mcp headers: the DPoP scheme and a proof for this request, bound to the token.
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let run = home.run(&[
        "mcp",
        "headers",
        "local",
        "--method",
        "post",
        "--url",
        "https://rs.example.com/mcp?x=1#frag",
        "--nonce",
        "n-9",
    ]);
    run.expect_code(0);
    let headers = run.json();
    assert_eq!(headers["Authorization"], "DPoP at-dpop-1");
    assert_eq!(headers.as_object().expect("object").len(), 2, "{headers}");
    let proof = headers["DPoP"].as_str().expect("proof");
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["jwk"], key.public_jwk());
    let claims = decode(parts[1]);
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://rs.example.com/mcp");
    assert_eq!(claims["nonce"], "n-9");
    assert_eq!(claims["ath"], access_token_hash("at-dpop-1"));
    assert!(claims["iat"].as_u64().expect("iat") >= before);

    // --json is accepted; each run's proof is fresh.
    let again = home.run(&[
        "mcp",
        "headers",
        "local",
        "--json",
        "--url",
        "https://rs.example.com/mcp",
    ]);
    again.expect_code(0);
    let proof2 = again.json()["DPoP"].as_str().expect("proof").to_owned();
    let claims2 = decode(proof2.split('.').nth(1).expect("claims"));
    assert_ne!(claims["jti"], claims2["jti"]);
    assert_eq!(claims2["htm"], "POST", "POST by default");
    assert!(claims2.get("nonce").is_none());

    // A provider name has no server URL to default to.
    let no_url = home.run(&["mcp", "headers", "local"]);
    no_url.expect_code(13);
    assert!(no_url.stderr.contains("--url"), "{no_url:#?}");
    assert!(no_url.stdout.is_empty());

    // mcp status says so.
    let status = home.run(&["mcp", "status", "local", "--json"]);
    let row = &status.json()["providers"][0];
    assert_eq!(row["dpop_bound"], true, "{status:#?}");

    // No key material at TRACE, also when a refresh signs a proof for the token endpoint (the
    // test provider's endpoint is a closed port: the refresh fails after the proof is made).
    home.backdate("local", 7200.0);
    let mut stored = home.tokens("local");
    stored["refresh_token"] = Value::from("rt-1");
    std::fs::write(home.token_file("local"), stored.to_string()).expect("rewrite tokens");
    let traced = home.run(&[
        "-vvv",
        "mcp",
        "headers",
        "local",
        "--url",
        "https://rs.example.com/mcp",
    ]);
    assert_ne!(traced.code, 0, "{traced:#?}");
    assert!(traced.stderr.contains("refreshing"), "{traced:#?}");
    assert!(!traced.stderr.contains(&stored_key), "key at TRACE");
    assert!(!traced.stdout.contains(&stored_key), "key on stdout");
}

#[test]
fn a_bearer_token_gets_the_bearer_header() {
    let home = home_with(&tokens("bearer"));
    let run = home.run(&["mcp", "headers", "local"]);
    run.expect_code(0);
    assert_eq!(
        run.json(),
        serde_json::json!({"Authorization": "Bearer at-dpop-1"})
    );
    let status = home.run(&["mcp", "status", "local", "--json"]);
    let row = &status.json()["providers"][0];
    assert_eq!(row["dpop_bound"], false, "{status:#?}");
    home.run(&["mcp", "token", "local"]).expect_code(0);
}

/// A token the server issued as DPoP-bound (`token_type` `DPoP`) whose key is not stored (lost,
/// or a record written without it) is useless: the resource server refuses it as a Bearer token
/// and without a proof signed by that key (RFC 9449 §7.1). No command hands it over or presents it
/// as Bearer: each says why and asks for a new sign-in (exit 3, `auth_required`), naming the
/// account when it is not `default`.
#[test]
fn a_dpop_token_without_its_key_needs_a_new_sign_in() {
    use std::io::Write as _;
    let home = home_with(&tokens("DPoP"));
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("providers.toml"))
        .expect("providers.toml");
    writeln!(toml, "git_hosts = [\"git.example\"]").expect("append");
    drop(toml);
    let check = |runs: Vec<crate::util::Run>, hint: &str| {
        for run in &runs {
            run.expect_code(3);
            assert!(run.stdout.is_empty(), "{run:#?}");
            assert!(!run.stderr.contains("at-dpop-1"), "{run:#?}");
            assert!(
                run.stderr.contains(
                    "is DPoP-bound (token_type DPoP, RFC 9449) but no DPoP key is stored with it"
                ),
                "{run:#?}"
            );
            assert!(run.stderr.contains(hint), "{run:#?}");
        }
    };
    let runs = |home: &Home| {
        vec![
            home.run(&["mcp", "token", "local"]),
            home.run(&["mcp", "headers", "local"]),
            home.run(&[
                "mcp",
                "headers",
                "local",
                "--url",
                "https://rs.example.com/mcp",
            ]),
            home.run(&["exec", "local", "--", "sh", "-c", "echo ran"]),
            crate::git_credential::helper(home, "get", "protocol=https\nhost=git.example\n\n"),
        ]
    };
    check(runs(&home), "hint: run `context-harness mcp auth local`\n");
    // `mcp status` does not call them authenticated: it shows the same error and hint.
    let status = home.run(&["mcp", "status", "local"]);
    assert_ne!(status.code, 0, "{status:#?}");
    assert!(!status.stdout.contains("authenticated"), "{status:#?}");
    assert!(
        status.stdout.contains("no DPoP key is stored with it"),
        "{status:#?}"
    );
    assert!(
        status
            .stdout
            .contains("hint:     run `context-harness mcp auth local`"),
        "{status:#?}"
    );
    let status = home.run(&["mcp", "status", "local", "--json"]);
    let json: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(json["providers"][0]["status"], "error", "{json}");
    assert_eq!(
        json["providers"][0]["error"]["code"], "auth_required",
        "{json}"
    );
    assert_eq!(
        json["providers"][0]["error"]["hint"], "run `context-harness mcp auth local`",
        "{json}"
    );
    assert!(!status.stdout.contains("at-dpop-1") && !status.stderr.contains("at-dpop-1"));
    // The tokens are left as they are (a sign-in replaces them).
    assert_eq!(home.tokens("local")["access_token"], "at-dpop-1");

    // The same for the default account `work`: the hint names it.
    let dir = home.path().join("tokens");
    std::fs::rename(dir.join("local.json"), dir.join("local@work.json")).expect("mv");
    let index = dir.join("local.accounts");
    std::fs::write(&index, r#"{"default": "work", "accounts": ["work"]}"#).expect("index");
    std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    check(
        runs(&home),
        "hint: run `context-harness mcp auth local --account work`",
    );
    let status = home.run(&["mcp", "status", "local"]);
    status.expect_code(3);
    assert!(
        status
            .stdout
            .contains("hint:     run `context-harness mcp auth local --account work`"),
        "{status:#?}"
    );
}
