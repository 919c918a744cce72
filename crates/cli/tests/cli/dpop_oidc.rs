//! DPoP (RFC 9449) against the real `oidc-provider` with its `dPoP` feature (`AS_DPOP=1`): `mcp auth
//! <url>` at an MCP server whose authorization server lists `dpop_signing_alg_values_supported`
//! gets a DPoP-bound token (`token_type` `DPoP`, `cnf.jkt` in the JWT) with its key stored beside it;
//! `mcp refresh` refreshes it with a proof of the same key (oidc-provider refuses a refresh of a
//! public client's bound token without one); with `AS_DPOP_NONCE=1` every token request is first
//! answered `use_dpop_nonce` and retried with the nonce; `--no-dpop` gets a Bearer token; no key
//! material at TRACE. The MCP server is the stand-in of `mcp.rs` (discovery only).

use serde_json::Value;

use crate::mcp::McpStub;
use crate::util::{AuthServer, Home, browser_script, require_server};

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
