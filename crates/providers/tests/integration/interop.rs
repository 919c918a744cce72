//! Real-world quirks of servers that would otherwise break sign-in, each reproduced
//! against the real local oidc-provider and the stand-in MCP server. Where the authorization server
//! is made to misbehave (an HTML catch-all page at a well-known URL), that is a control of the test
//! server reproducing a documented quirk, not oidc-provider's own behaviour.

use context_harness_providers::ErrorCode;
use context_harness_providers::storage::ProviderName;
use serde_json::{Value, json};

use crate::mcp::{McpStub, PrmConfig, opts, start};
use crate::support::Harness;

/// The protected-resource metadata names `https://as.example/` while the authorization server's
/// metadata says `https://as.example` (or the reverse): the same issuer (RFC 3986 §6.2.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_or_without_a_root_slash_is_the_same_issuer() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    // PRM with the slash, metadata without: the sign-in works and the `iss` check (RFC 9207) uses
    // the metadata's own spelling, which is what the server sends.
    let stub = McpStub::start(PrmConfig::new(&format!("{}/", server.issuer))).await;
    let outcome = h.service.authenticate(&stub.url(), opts()).await.unwrap();
    assert!(outcome.tokens.refresh_token.is_some());
    let record: Value = serde_json::from_slice(
        &std::fs::read(h.home.path().join("mcp").join(format!(
            "{}.json",
            ProviderName::for_server(&stub.url()).unwrap()
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["issuer"], server.issuer.as_str());
    h.service.refresh_tokens(&stub.url()).await.unwrap();

    // The reverse: metadata with the slash, PRM without.
    server
        .control(json!({"discovery_patch": {"issuer": format!("{}/", server.issuer)}}))
        .await;
    let plain = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let info = h.service.discover_mcp_server(&plain.url()).await.unwrap();
    assert_eq!(
        info.authorization_server.issuer,
        format!("{}/", server.issuer)
    );

    // Nothing else is loosened: another path, or a slash after a path, is another issuer.
    for other in [
        format!("{}/x", server.issuer),
        format!("{}//", server.issuer),
    ] {
        server
            .control(json!({"discovery_patch": {"issuer": other}}))
            .await;
        let err = h
            .service
            .discover_mcp_server(&plain.url())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{other}: {err}");
        assert!(err.to_string().contains("names issuer"), "{err}");
    }
}

/// A candidate URL that answers 200 with something that is not metadata (a single-page app's
/// catch-all HTML) is a miss: the next candidate is tried, as the MCP specification requires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_keeps_looking_past_html_and_unusable_hints() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ISSUER_PATH", "/tenant1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);

    // The challenge's resource_metadata URL answers with HTML: the well-known URL is next.
    let mut config = PrmConfig::new(&server.issuer);
    config.header_url = Some("{base}/spa".to_owned());
    let stub = McpStub::start(config).await;
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.resource, stub.url());
    assert_eq!(
        stub.paths(),
        ["/mcp", "/spa", "/.well-known/oauth-protected-resource/mcp"]
    );

    // A resource_metadata value that is not a URL counts as absent.
    for junk in ["not a url", "ftp://x/prm", "/relative/prm", ""] {
        let mut config = PrmConfig::new(&server.issuer);
        config.header_url = Some(junk.to_owned());
        let stub = McpStub::start(config).await;
        let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
        assert_eq!(info.resource, stub.url(), "{junk:?}");
        assert_eq!(
            stub.paths(),
            ["/mcp", "/.well-known/oauth-protected-resource/mcp"],
            "{junk:?}"
        );
    }

    // The RFC 8414 path-inserted URL answers with HTML: OIDC discovery is next, and a sign-in works.
    server.control(json!({"rfc8414_path_html": true})).await;
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let outcome = h.service.authenticate(&stub.url(), opts()).await.unwrap();
    assert!(outcome.tokens.refresh_token.is_some());
    let well_known = server.stats().await["well_known"].clone();
    assert!(
        well_known["/.well-known/openid-configuration/tenant1"].as_u64() >= Some(1)
            || well_known["/tenant1/.well-known/openid-configuration"].as_u64() >= Some(1),
        "{well_known}"
    );
}

/// `--no-resource`: some authorization servers answer `invalid_target` to RFC 8707 `resource`. The
/// choice is remembered in the server's record, so refresh leaves it out too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resource_is_remembered_for_refresh() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    let outcome = h
        .service
        .authenticate(&url, opts().without_resource(true))
        .await
        .unwrap();
    // Without `resource`, oidc-provider issues its default opaque token (with it, a JWT whose `aud`
    // is the server): the token shows whether `resource` was sent.
    let is_jwt = |token: &str| token.split('.').count() == 3;
    assert!(!is_jwt(outcome.tokens.access_token.secret()));
    let record_path = h
        .home
        .path()
        .join("mcp")
        .join(format!("{}.json", ProviderName::for_server(&url).unwrap()));
    let record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["no_resource"], true);
    let refreshed = h.service.refresh_tokens(&url).await.unwrap();
    assert!(!is_jwt(refreshed.access_token.secret()));

    // Signing in again without the option sends `resource` again.
    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    assert!(is_jwt(outcome.tokens.access_token.secret()));
    let record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record.get("no_resource"), None);

    // A named provider has no record to remember it in.
    let err = h
        .service
        .authenticate("local", opts().without_resource(true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
}
