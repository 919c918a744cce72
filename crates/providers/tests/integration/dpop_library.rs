//! The library's token calls and DPoP (RFC 9449), for an MCP server (the stand-in of `mcp.rs`)
//! whose authorization server is the repository's oidc-provider with DPoP on (`AS_DPOP=1`,
//! auto-approving; its `/test/resource` is a DPoP-checking resource server):
//! `token()` hands a token over alone, so its sign-in gets a Bearer token; `authenticate` binds the
//! tokens to a key, and `get_with_token` then presents them as DPoP with a proof (a Bearer
//! presentation of a bound token is refused there, §7.1) while `token()` refuses to hand them over.

use std::time::Duration;

use context_harness_providers::{AuthenticateOptions, ErrorCode, is_dpop_bound};

use crate::mcp::{McpStub, PrmConfig};
use crate::support::{AuthServer, Harness, captured_logs};

fn options() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_signs_in_for_a_bearer_token_and_get_with_token_presents_a_bound_one() {
    captured_logs();
    let Some(server) = AuthServer::start(&[("AS_AUTO_APPROVE", "1"), ("AS_DPOP", "1")]) else {
        return;
    };
    let resource = format!("{}/test/resource", server.issuer);
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let url = stub.url();

    // token(): the server offers DPoP, but the token is handed over alone: a Bearer token.
    let bearer = Harness::new(&server.issuer);
    let token = bearer.service.token_with(&url, options()).await.unwrap();
    let stored = bearer.service.get_tokens(&url).unwrap();
    assert!(!is_dpop_bound(&stored), "{:?}", stored.token_type);
    assert!(stored.token_type.eq_ignore_ascii_case("bearer"));
    assert_eq!(stored.access_token.secret(), token.secret());

    // authenticate(): bound to a key; get_with_token presents it with a proof (the resource
    // refuses a bound token presented as Bearer).
    let bound = Harness::new(&server.issuer);
    bound.service.authenticate(&url, options()).await.unwrap();
    assert!(is_dpop_bound(&bound.service.get_tokens(&url).unwrap()));
    let (status, body) = bound.service.get_with_token(&url, &resource).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // A second request gets a fresh proof (the resource refuses a replayed `jti`).
    let (status, _) = bound.service.get_with_token(&url, &resource).await.unwrap();
    assert_eq!(status, 200);
    // token() does not hand the bound token over.
    let err = bound.service.token(&url).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
}
