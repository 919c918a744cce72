//! DPoP (RFC 9449) against the real `oidc-provider` with its `dPoP` feature (`AS_DPOP=1`): `mcp auth
//! <url>` at an MCP server whose authorization server lists `dpop_signing_alg_values_supported`
//! gets a DPoP-bound token (`token_type` `DPoP`, `cnf.jkt` in the JWT) with its key stored beside it;
//! `mcp refresh` refreshes it with a proof of the same key (oidc-provider refuses a refresh of a
//! public client's bound token without one); with `AS_DPOP_NONCE=1` every token request is first
//! answered `use_dpop_nonce` and retried with the nonce; `--no-dpop` gets a Bearer token; no key
//! material at TRACE. The MCP server is the stand-in of `mcp.rs` (discovery only). The headers of
//! `mcp headers` are checked by the server's DPoP resource (`/test/resource`, RFC 9449 §4.3, §7.1):
//! accepted once, refused when replayed, for another URL or method, or presented as Bearer (JWT and
//! opaque access tokens), and accepted again with the token of `mcp refresh`.

use serde_json::Value;

use crate::mcp::McpStub;
use crate::util::{AuthServer, Home, browser_script, http, require_server};

/// The stored token JSON of the one MCP server `home` signed in to.
fn stored(home: &Home) -> Value {
    let dir = home.path().join("tokens");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tokens dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json")
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(value) = serde_json::from_str::<Value>(&text)
            && value.get("access_token").is_some()
        {
            found.push(value);
        }
    }
    assert_eq!(found.len(), 1, "one token record in {}", dir.display());
    found.remove(0)
}

/// The claims of a JWT (no signature check: the server made it).
fn jwt_claims(token: &str) -> Value {
    use base64ct::{Base64UrlUnpadded, Encoding as _};
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).expect("base64url"))
        .expect("json")
}

fn sign_in(home: &Home, url: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["-vvv", "mcp", "auth", url, "--port", "0", "--timeout", "60"];
    args.extend_from_slice(extra);
    home.run_env(&args, &[("BROWSER", &browser_script("follow.mjs"))])
}

#[test]
fn a_dpop_bound_sign_in_and_refresh_at_oidc_provider() {
    if !require_server() {
        return;
    }
    for nonce in [false, true] {
        let mut env = vec![("AS_AUTO_APPROVE", "1"), ("AS_DPOP", "1")];
        if nonce {
            env.push(("AS_DPOP_NONCE", "1"));
        }
        let server = AuthServer::start(&env);
        let stub = McpStub::start(&server.issuer);
        let home = Home::new();
        let url = stub.url.as_str();

        let auth = sign_in(&home, url, &[]);
        auth.expect_code(0);
        let tokens = stored(&home);
        assert_eq!(tokens["token_type"], "DPoP", "nonce {nonce}: {tokens:#}");
        let key = tokens["dpop_key"]["pkcs8"]
            .as_str()
            .expect("key stored")
            .to_owned();
        assert_eq!(tokens["dpop_key"]["alg"], "ES256");
        let access = tokens["access_token"].as_str().expect("token").to_owned();
        let jkt = jwt_claims(&access)["cnf"]["jkt"].clone();
        assert!(
            jkt.is_string(),
            "the token is bound (cnf.jkt): {}",
            jwt_claims(&access)
        );
        assert!(tokens["refresh_token"].is_string(), "{tokens:#}");
        assert!(!auth.stderr.contains(&key), "key at TRACE");
        if nonce {
            assert!(
                auth.stderr.contains("asks for a DPoP nonce"),
                "the nonce demand was met: {auth:#?}"
            );
        }

        let status = home.run(&["mcp", "status", url, "--json"]);
        assert_eq!(
            status.json()["providers"][0]["dpop_bound"],
            true,
            "{status:#?}"
        );
        let text = home.run(&["mcp", "status", url]);
        assert!(text.stdout.contains("dpop:     bound"), "{text:#?}");
        let token = home.run(&["mcp", "token", url]);
        token.expect_code(13);
        assert!(token.stdout.is_empty());
        assert!(token.stderr.contains("mcp headers"), "{token:#?}");

        // The refresh carries a proof of the same key, or oidc-provider refuses it.
        let refresh = home.run(&["-vvv", "mcp", "refresh", url]);
        refresh.expect_code(0);
        assert!(!refresh.stderr.contains(&key), "key at TRACE");
        // With nonces: the first request answered use_dpop_nonce, the retry with the nonce.
        assert_eq!(
            server.stats()["refresh_requests"],
            if nonce { 2 } else { 1 },
            "nonce {nonce}"
        );
        let after = stored(&home);
        assert_ne!(after["access_token"], tokens["access_token"]);
        assert_eq!(after["token_type"], "DPoP");
        assert_eq!(after["dpop_key"], tokens["dpop_key"], "the key is kept");
        let fresh = after["access_token"].as_str().expect("token");
        assert_eq!(
            jwt_claims(fresh)["cnf"]["jkt"],
            jkt,
            "bound to the same key"
        );

        // `mcp headers` presents it.
        let headers = home.run(&["mcp", "headers", url]);
        headers.expect_code(0);
        assert_eq!(headers.json()["Authorization"], format!("DPoP {fresh}"));
        assert!(headers.json()["DPoP"].is_string());
    }
}

#[test]
fn no_dpop_gets_a_bearer_token() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1"), ("AS_DPOP", "1")]);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    sign_in(&home, &stub.url, &["--no-dpop"]).expect_code(0);
    let tokens = stored(&home);
    assert!(
        tokens["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{tokens:#}"
    );
    assert!(tokens.get("dpop_key").is_none());
    home.run(&["mcp", "token", &stub.url]).expect_code(0);
}

/// The headers `mcp headers <url> --method <method> --url <target>` prints, as (name, value) pairs.
fn headers_for(home: &Home, url: &str, method: &str, target: &str) -> Vec<(String, String)> {
    let run = home.run(&["mcp", "headers", url, "--method", method, "--url", target]);
    run.expect_code(0);
    let json = run.json();
    let object = json.as_object().expect("a JSON object");
    object
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect()
}

/// `method` `target` with `headers`: the status and the JSON answer.
fn call(method: &str, target: &str, headers: &[(String, String)]) -> (u16, Value) {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, body) = http(method, target, &pairs, "");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

#[test]
fn the_headers_of_mcp_headers_are_accepted_once_by_a_dpop_resource() {
    if !require_server() {
        return;
    }
    // JWT access tokens (checked with the server's keys), then opaque ones (looked up in its store).
    for opaque in [false, true] {
        headers_at_the_resource(opaque);
    }
}

fn headers_at_the_resource(opaque: bool) {
    let mut env = vec![("AS_AUTO_APPROVE", "1"), ("AS_DPOP", "1")];
    if opaque {
        env.push(("AS_OPAQUE_ACCESS_TOKENS", "1"));
    }
    let server = AuthServer::start(&env);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let url = stub.url.as_str();
    sign_in(&home, url, &[]).expect_code(0);
    let tokens = stored(&home);
    let access = tokens["access_token"].as_str().expect("token").to_owned();
    assert_eq!(access.split('.').count() == 3, !opaque, "token format");
    let resource = format!("{}/test/resource", server.issuer);

    // Accepted: the token is the server's, bound to the proof's key, and the proof is for this request.
    let headers = headers_for(&home, url, "GET", &resource);
    let (status, answer) = call("GET", &resource, &headers);
    assert_eq!(status, 200, "opaque {opaque}: {answer}");
    let jkt = answer["jkt"].clone();
    assert!(jkt.is_string(), "{answer}");
    if !opaque {
        assert_eq!(
            jwt_claims(&access)["cnf"]["jkt"],
            jkt,
            "the proof key is the token's"
        );
    }
    assert_eq!(answer["sub"], "test-user");

    // The same proof again: a replay (its jti was seen).
    let (status, answer) = call("GET", &resource, &headers);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "invalid_dpop_proof");
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("replayed")),
        "{answer}"
    );

    // A proof for another URL (here the MCP server) or another method: refused (htu, htm).
    let elsewhere = headers_for(&home, url, "GET", url);
    let (status, answer) = call("GET", &resource, &elsewhere);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "invalid_dpop_proof");
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("htu")),
        "{answer}"
    );
    let posted = headers_for(&home, url, "POST", &resource);
    let (status, answer) = call("GET", &resource, &posted);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("htm")),
        "{answer}"
    );
    // A fresh proof for POST, on a POST: accepted.
    let fresh = headers_for(&home, url, "POST", &resource);
    let (status, answer) = call("POST", &resource, &fresh);
    assert_eq!(status, 200, "{answer}");

    // The DPoP-bound token as a Bearer token, with or without a valid proof: refused.
    let mut bearer = headers_for(&home, url, "GET", &resource);
    for (name, value) in &mut bearer {
        if name == "Authorization" {
            *value = format!("Bearer {access}");
        }
    }
    let (status, answer) = call("GET", &resource, &bearer);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "invalid_token");
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("Bearer")),
        "{answer}"
    );
    let (status, answer) = call(
        "GET",
        &resource,
        &[("Authorization".to_owned(), format!("Bearer {access}"))],
    );
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"], "invalid_token");

    // An altered token (not one this server signed) with a valid proof: refused.
    let mut other_token = headers_for(&home, url, "GET", &resource);
    for (name, value) in &mut other_token {
        if name == "Authorization" {
            *value = format!("DPoP {access}x");
        }
    }
    let (status, answer) = call("GET", &resource, &other_token);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(
        answer["error"], "invalid_token",
        "a token this server did not sign"
    );

    // After `mcp refresh` (a proof of the same key), the new token is presented and accepted.
    home.run(&["mcp", "refresh", url]).expect_code(0);
    let refreshed = stored(&home)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_ne!(refreshed, access);
    let headers = headers_for(&home, url, "GET", &resource);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "Authorization" && *v == format!("DPoP {refreshed}")),
        "{headers:?}"
    );
    let (status, answer) = call("GET", &resource, &headers);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["jkt"], jkt, "still bound to the same key");

    let stats = server.stats();
    assert_eq!(stats["resource_requests"], 9, "{stats}");
    assert_eq!(stats["resource_accepted"], 3, "{stats}");
}
