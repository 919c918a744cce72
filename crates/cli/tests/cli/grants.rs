//! Grants without a browser (issue 22) against the local oidc-provider with its `clientCredentials`
//! feature (`AS_CLIENT_CREDENTIALS=1`): the client credentials grant with a secret (HTTP Basic) and
//! with an RFC 7523 `private_key_jwt` assertion (EC and RSA keys), renewed near expiry by
//! `mcp token` / `mcp refresh` without the options repeated (one grant request for many concurrent
//! callers), `mcp status` showing the grant, and the refusals that happen before anything is sent
//! (assertion and key files, missing secret, `id_jag` without its identity provider). No secret, key or assertion appears in any
//! output at `-vvv`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{AuthServer, Home, http, require_server};

const SECRET: &str = "ch-machine-secret";

/// `GET /test/last-token-request`: the form fields of the server's last token request.
fn last_token_request(server: &AuthServer) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/test/last-token-request", server.issuer),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("last token request json")
}

fn token_requests(server: &AuthServer) -> u64 {
    server.stats()["token_requests"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Writes `text` to `home/name` with `mode`.
fn write_file(home: &Home, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = home.path().join(name);
    std::fs::write(&path, text).expect("write file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// A fresh key pair from node's crypto: the private key as PKCS#8 PEM and the public JWK.
fn key_pair(kind: &str) -> (String, Value) {
    let script = format!(
        "const c=require('node:crypto');\
         const o={kind}==='ec'?{{namedCurve:'P-256'}}:{{modulusLength:2048}};\
         const k=c.generateKeyPairSync({kind},o);\
         process.stdout.write(JSON.stringify({{pem:k.privateKey.export({{type:'pkcs8',format:'pem'}}),\
         jwk:k.publicKey.export({{format:'jwk'}})}}));",
        kind = serde_json::to_string(kind).unwrap_or_default()
    );
    let out = Command::new("node")
        .args(["-e", &script])
        .output()
        .expect("run node");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("key json");
    (
        v["pem"].as_str().unwrap_or_default().to_owned(),
        v["jwk"].clone(),
    )
}

/// The base64 body of a PEM file (what a leak of the key would show).
fn pem_body(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

fn assert_absent(outputs: &[(&str, &str)], secrets: &[String]) {
    for (name, text) in outputs {
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{name} contains a secret:\n{text}"
            );
        }
    }
}

#[test]
fn client_credentials_with_a_secret_is_renewed_without_the_options() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_CLIENT_CREDENTIALS", "1")]);
    let mut home = Home::with_local(&server.issuer, "ch-public");
    home.set("CONTEXT_HARNESS_CLIENT_SECRET", SECRET);

    let auth = home.run(&[
        "-vvv",
        "mcp",
        "auth",
        "local",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "ch-machine",
    ]);
    auth.expect_code(0);
    assert!(
        auth.stderr
            .contains("renewed with the client_credentials grant"),
        "{auth:#?}"
    );
    let sent = last_token_request(&server);
    assert_eq!(sent["grant_type"], "client_credentials");
    assert_eq!(sent["authorization_scheme"], "Basic");
    assert!(sent.get("client_secret").is_none(), "{sent}");
    // `offline_access` is not asked for: the grant itself renews the token.
    assert_eq!(sent["scope"], "openid");
    let stored = home.tokens("local");
    assert_eq!(stored["grant"]["type"], "client_credentials");
    assert_eq!(stored["grant"]["client_auth"], "client_secret_basic");
    assert_eq!(stored["client_id"], "ch-machine");
    assert!(stored.get("refresh_token").is_none_or(Value::is_null));
    assert!(!stored.to_string().contains(SECRET));
    let first = stored["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let status = home.run(&["mcp", "status", "local", "--json"]);
    status.expect_code(0);
    let row = &status.json()["providers"][0];
    assert_eq!(row["grant_type"], "client_credentials");
    assert_eq!(row["dpop_bound"], false);
    assert_eq!(row["status"], "authenticated");
    assert!(
        home.run(&["mcp", "status", "local"])
            .stdout
            .contains("grant:    client_credentials")
    );

    // Near expiry: `mcp status` still exits 0 (renewable), and `mcp token` — no options — runs the
    // grant again, once for many concurrent callers (the per-name lock, like a refresh).
    home.backdate("local", 7200.0);
    let expired = home.run(&["mcp", "status", "local", "--json"]);
    expired.expect_code(0);
    assert_eq!(expired.json()["providers"][0]["status"], "token_expired");
    let before = token_requests(&server);
    let spawned: Vec<_> = (0..5)
        .map(|_| {
            home.cmd(&["mcp", "token", "local"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let tokens: Vec<String> = spawned
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();
    assert_eq!(token_requests(&server) - before, 1, "one grant request");
    assert!(tokens.iter().all(|t| t == &tokens[0] && t != &first));
    assert_eq!(
        last_token_request(&server)["grant_type"],
        "client_credentials"
    );
    assert_eq!(home.tokens("local")["grant"]["type"], "client_credentials");

    // `mcp refresh` renews it too; without the secret the renewal says what is missing (exit 8).
    home.run(&["mcp", "refresh", "local"]).expect_code(0);
    assert_eq!(token_requests(&server) - before, 2);
    home.backdate("local", 7200.0);
    let out = home
        .cmd(&["mcp", "token", "local"])
        .env_remove("CONTEXT_HARNESS_CLIENT_SECRET")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CONTEXT_HARNESS_CLIENT_SECRET"));

    assert_absent(
        &[
            ("auth stderr", &auth.stderr),
            ("auth stdout", &auth.stdout),
            ("status", &status.stdout),
        ],
        &[SECRET.to_owned(), first],
    );
}

#[test]
fn private_key_jwt_client_assertions_are_accepted() {
    if !require_server() {
        return;
    }
    let (ec_pem, mut ec_jwk) = key_pair("ec");
    let (rsa_pem, mut rsa_jwk) = key_pair("rsa");
    ec_jwk["kid"] = "ec".into();
    rsa_jwk["kid"] = "rsa".into();
    let jwks = serde_json::json!({ "keys": [ec_jwk, rsa_jwk] }).to_string();
    let server = AuthServer::start(&[("AS_CLIENT_CREDENTIALS", "1"), ("AS_MACHINE_JWKS", &jwks)]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let ec = write_file(&home, "ec.pem", &ec_pem, 0o600);
    let rsa = write_file(&home, "rsa.pem", &rsa_pem, 0o600);
    let path = |p: &Path| p.display().to_string();

    let auth = home.run(&[
        "-vvv",
        "mcp",
        "auth",
        "local",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "ch-machine-jwt",
        "--private-key-file",
        &path(&ec),
    ]);
    auth.expect_code(0);
    let sent = last_token_request(&server);
    assert_eq!(
        sent["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let assertion = sent["client_assertion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(assertion.split('.').count(), 3, "{sent}");
    assert!(
        sent.get("client_id").is_none(),
        "RFC 7523 §3: the id is the `sub` claim"
    );
    let stored = home.tokens("local");
    assert_eq!(stored["grant"]["client_auth"], "private_key_jwt");
    assert_eq!(stored["grant"]["signing_alg"], "ES256");
    assert_eq!(stored["grant"]["private_key_file"], path(&ec));

    // Renewed with a new assertion (fresh `jti`: the server refuses a replayed one) without the
    // options; `mcp refresh` at -vvv.
    let refresh = home.run(&["-vvv", "mcp", "refresh", "local"]);
    refresh.expect_code(0);
    let again = last_token_request(&server)["client_assertion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(again, assertion);

    // An RSA key with RSASSA-PSS.
    let rsa_auth = home.run(&[
        "mcp",
        "auth",
        "local",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "ch-machine-jwt",
        "--private-key-file",
        &path(&rsa),
        "--signing-alg",
        "PS256",
    ]);
    rsa_auth.expect_code(0);
    assert_eq!(home.tokens("local")["grant"]["signing_alg"], "PS256");
    // An algorithm the key cannot make: refused before anything is sent.
    let before = token_requests(&server);
    let wrong = home.run(&[
        "mcp",
        "auth",
        "local",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "ch-machine-jwt",
        "--private-key-file",
        &path(&ec),
        "--signing-alg",
        "RS256",
    ]);
    wrong.expect_code(13);
    assert_eq!(token_requests(&server), before);

    let mut secrets = pem_body(&ec_pem);
    secrets.extend(pem_body(&rsa_pem));
    secrets.extend([assertion, again]);
    for key in [&ec_pem, &rsa_pem] {
        secrets.push(key.clone());
    }
    assert_absent(
        &[
            ("auth stderr", &auth.stderr),
            ("refresh stderr", &refresh.stderr),
            ("rsa stderr", &rsa_auth.stderr),
        ],
        &secrets,
    );
    assert!(auth.stderr.contains("TRACE") || auth.stderr.contains("DEBUG"));
}

#[test]
fn refusals_before_anything_is_sent() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_CLIENT_CREDENTIALS", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let cc = [
        "mcp",
        "auth",
        "local",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "ch-machine",
    ];
    // No secret, no key: what is missing is named (exit 8).
    let missing = home.run(&cc);
    missing.expect_code(8);
    assert!(
        missing.stderr.contains("CONTEXT_HARNESS_CLIENT_SECRET"),
        "{missing:#?}"
    );
    // Enterprise-Managed Authorization without its identity provider: what is missing is named
    // (exit 8); its options without it, a usage error.
    let id_jag = home.run(&["mcp", "auth", "local", "--grant-type", "id_jag"]);
    id_jag.expect_code(8);
    assert!(id_jag.stderr.contains("--idp-issuer"), "{id_jag:#?}");
    home.run(&["mcp", "auth", "local", "--idp-issuer", &server.issuer])
        .expect_code(2);
    // A key or assertion file without a grant that uses it: a usage error.
    let key = write_file(&home, "k.pem", "x", 0o600);
    let key = key.display().to_string();
    home.run(&["mcp", "auth", "local", "--private-key-file", &key])
        .expect_code(2);
    home.run(&["mcp", "auth", "local", "--assertion-file", &key])
        .expect_code(2);

    // The JWT-bearer grant's assertion file: readable by others, not a JWT, or missing → exit 13.
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJl";
    let bearer = |file: &Path| {
        home.run(&[
            "mcp",
            "auth",
            "local",
            "--grant-type",
            "jwt_bearer",
            "--client-id",
            "ch-machine",
            "--assertion-file",
            &file.display().to_string(),
        ])
    };
    let open = write_file(&home, "open.jwt", jwt, 0o644);
    let run = bearer(&open);
    run.expect_code(13);
    assert!(run.stderr.contains("chmod 600"), "{run:#?}");
    let scrap = write_file(
        &home,
        "scrap.jwt",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n",
        0o600,
    );
    let run = bearer(&scrap);
    run.expect_code(13);
    assert!(run.stderr.contains("does not hold a JWT"), "{run:#?}");
    assert!(!run.stderr.contains("MIIB"));
    bearer(&home.path().join("absent.jwt")).expect_code(13);
    // A good file behind a link (a projected volume's layout) is read; this server has no
    // JWT-bearer grant, so it refuses the request (exit 4) — once: nothing is retried.
    let good = write_file(&home, "good.jwt", &format!("{jwt}\n"), 0o600);
    let link = home.path().join("token");
    std::os::unix::fs::symlink(&good, &link).expect("symlink");
    let before = token_requests(&server);
    let run = bearer(&link);
    run.expect_code(4);
    assert_eq!(token_requests(&server) - before, 1);
    assert_eq!(
        last_token_request(&server)["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(last_token_request(&server)["assertion"], jwt);
    assert!(!run.stderr.contains(jwt));
}
