//! Attacks on MCP server sign-in, replayed: each test sends the hostile input of a reported attack
//! and asserts that it now fails safe. The authorization server is the real local oidc-provider;
//! the MCP server and the "attacker's endpoint" are small local stand-ins (`McpStub`) that record
//! every request they receive.

use std::time::Duration;

use context_harness_providers::storage::{FileStore, ProviderName, TokenStore, tokens_dir};
use context_harness_providers::tokens::{AccessToken, OAuthTokens, RefreshToken};
use context_harness_providers::{AuthenticateOptions, ErrorCode, Revocation};
use serde_json::{Value, json};

use crate::mcp::{McpStub, PrmConfig, opts, start};
use crate::support::Harness;

/// Texts that one URL parser reads as `good`'s URL and another as somewhere else, or that carry
/// parts a server URL has no use for. Each must be refused, never mapped to `good`'s tokens.
fn crafted_variants(good: &str) -> Vec<String> {
    let rest = good.strip_prefix("http://").unwrap();
    vec![
        format!("http://evil.example\\@{rest}"),
        format!("http://evil.example\\{rest}"),
        format!("http://evil.example@{rest}"),
        format!("http://user:pw@{rest}"),
        format!("{good}#fragment"),
        format!("{good}#"),
        format!("{good} "),
        format!(" {good}"),
        format!("{good}\n"),
        format!("{good}\u{0}"),
        format!("http:/{rest}"),
        format!("http:///{rest}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_urls_never_reach_another_servers_tokens() {
    let home = tempfile::tempdir().unwrap();
    let good = "http://127.0.0.1:9/mcp";
    let name = ProviderName::for_server(good).unwrap();
    let store = FileStore::new(tokens_dir(home.path()));
    let mut tokens = OAuthTokens::new(
        AccessToken::new("good-access-token"),
        "Bearer",
        std::time::SystemTime::now(),
    );
    tokens.refresh_token = Some(RefreshToken::new("good-refresh-token"));
    tokens.expires_in = Some(3600);
    tokens.extra.insert(
        "mcp_server".to_owned(),
        json!({"server_url": good, "issuer": "http://127.0.0.1:9", "token_endpoint": "http://127.0.0.1:9/token"}),
    );
    store.save(&name, &tokens).unwrap();
    let service = crate::support::service_for(
        home.path(),
        context_harness_providers::Environment::empty(),
        context_harness_providers::HttpSettings::default(),
        |_: &str| Ok(()),
    );
    // The honest URL finds its tokens (the test would prove nothing otherwise).
    assert!(service.cached_valid_token(good).unwrap().is_some());

    for crafted in crafted_variants(good) {
        let check = |result: Result<(), context_harness_providers::Error>, what: &str| {
            let err = result.expect_err(&format!("{what} accepted {crafted:?}"));
            assert_eq!(
                err.code(),
                ErrorCode::ConfigInvalid,
                "{what} {crafted:?}: {err}"
            );
            assert!(!err.to_string().contains("good-access-token"));
        };
        check(
            service.cached_valid_token(&crafted).map(drop),
            "cached_valid_token",
        );
        check(service.get_tokens(&crafted).map(drop), "get_tokens");
        check(service.get_status(&crafted).map(drop), "get_status");
        check(
            service.storage_location(&crafted).map(drop),
            "storage_location",
        );
        check(
            service.ensure_valid_token(&crafted).await.map(drop),
            "ensure_valid_token",
        );
        check(
            service.refresh_tokens(&crafted).await.map(drop),
            "refresh_tokens",
        );
        check(service.logout(&crafted).await.map(drop), "logout");
        check(service.logout_local(&crafted).map(drop), "logout_local");
        check(
            service
                .authenticate(&crafted, AuthenticateOptions::new())
                .await
                .map(drop),
            "authenticate",
        );
        check(
            service.discover_mcp_server(&crafted).await.map(drop),
            "discover_mcp_server",
        );
    }
    // Nothing was deleted by the refused logouts.
    assert!(store.load(&name).unwrap().is_some());
}

/// The record file of `url` in `h`'s home.
fn record_path(h: &Harness, url: &str) -> std::path::PathBuf {
    h.home
        .path()
        .join("mcp")
        .join(format!("{}.json", ProviderName::for_server(url).unwrap()))
}

fn read_record(h: &Harness, url: &str) -> Value {
    serde_json::from_slice(&std::fs::read(record_path(h, url)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_sign_in_does_not_redirect_the_refresh_token() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    // The attacker's token endpoint: it records whatever reaches it.
    let evil = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let evil_token = format!("{}/token", evil.url());
    let h = Harness::new(&server.issuer);
    let url = stub.url();

    // No record before a sign-in has succeeded, even after discovery.
    h.service.discover_mcp_server(&url).await.unwrap();
    assert!(!record_path(&h, &url).exists());
    h.service.authenticate(&url, opts()).await.unwrap();
    let honest = read_record(&h, &url);
    assert_eq!(honest["token_endpoint"], format!("{}/token", server.issuer));

    // Discovery now names the attacker's token endpoint, and the sign-in is abandoned.
    server
        .control(json!({"discovery_patch": {"token_endpoint": evil_token}}))
        .await;
    let abandoned = AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_millis(300))
        .browser(|_: &str| Ok(()));
    let err = h.service.authenticate(&url, abandoned).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    server.control(json!({"discovery_patch": null})).await;

    // The record is the honest one, and the refresh token goes to the honest server only.
    assert_eq!(read_record(&h, &url), honest);
    let before = server.stats().await;
    h.service.refresh_tokens(&url).await.unwrap();
    let after = server.stats().await;
    assert_ne!(before, after, "the refresh reached the honest server");
    assert!(evil.paths().is_empty(), "{:?}", evil.paths());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_disagrees_with_the_tokens_is_never_used() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let evil = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    h.service.authenticate(&url, opts()).await.unwrap();
    let honest = read_record(&h, &url);

    // Another writer points the record's endpoints at the attacker.
    for (field, value) in [
        ("token_endpoint", format!("{}/token", evil.url())),
        ("revocation_endpoint", format!("{}/revoke", evil.url())),
        ("issuer", evil.url()),
        ("server_url", evil.url()),
    ] {
        let mut record = honest.clone();
        record[field] = Value::String(value);
        std::fs::write(record_path(&h, &url), serde_json::to_vec(&record).unwrap()).unwrap();
        let err = h.service.refresh_tokens(&url).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthRequired, "{field}: {err}");
        assert!(err.to_string().contains("refusing"), "{field}: {err}");
    }
    // Logout deletes the local tokens but sends nothing to the record's endpoint.
    let out = h.service.logout(&url).await.unwrap();
    assert!(
        matches!(out.revocation, Revocation::NotAttempted { .. }),
        "{:?}",
        out.revocation
    );
    assert!(out.deleted);
    assert!(evil.paths().is_empty(), "{:?}", evil.paths());

    // Tokens stored without a binding (an older version) are not refreshed on a record's word.
    h.service.authenticate(&url, opts()).await.unwrap();
    let name = ProviderName::for_server(&url).unwrap();
    let store = FileStore::new(tokens_dir(h.home.path()));
    let mut unbound = store.load(&name).unwrap().unwrap();
    unbound.extra.remove("mcp_server");
    store.save(&name, &unbound).unwrap();
    let err = h.service.refresh_tokens(&url).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_response_cannot_rebind_the_tokens() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    h.service.authenticate(&url, opts()).await.unwrap();
    let name = ProviderName::for_server(&url).unwrap();
    let bound = h.stored(name.as_str()).unwrap().extra["mcp_server"].clone();
    assert_eq!(bound["server_url"], url.as_str());
    assert_eq!(bound["issuer"], server.issuer.as_str());
    let refreshed = h.service.refresh_tokens(&url).await.unwrap();
    assert_eq!(refreshed.extra["mcp_server"], bound);
    assert_eq!(h.stored(name.as_str()).unwrap().extra["mcp_server"], bound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_is_only_a_prefix_is_refused() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    // Tenant A at http://host/mcp publishes the whole host (or a parent path) as its resource: a
    // token for it would fit every tenant on the host (RFC 9728 §3.3 wants an identical match).
    for resource in ["{base}", "{base}/", "{base}/m", "{base}/mcp/x"] {
        let mut config = PrmConfig::new(&server.issuer);
        config.resource = Some(resource.to_owned());
        let stub = McpStub::start(config).await;
        let err = h
            .service
            .authenticate(&stub.url(), opts())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{resource}: {err}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }
    assert_eq!(server.stats().await["registration_requests"], 0);

    // The same resource in another spelling is the same resource; the canonical URL is sent.
    let mut config = PrmConfig::new(&server.issuer);
    config.resource = Some("{base}/mcp/".to_owned());
    let stub = McpStub::start(config).await;
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.resource, stub.url());

    // Found at the path-inserted URL (no challenge URL), a parent is refused just the same.
    for resource in ["{base}", "{base}/"] {
        let mut config = PrmConfig::new(&server.issuer);
        config.resource = Some(resource.to_owned());
        config.header = false;
        let stub = McpStub::start(config).await;
        let err = h
            .service
            .discover_mcp_server(&stub.url())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(
            stub.paths()
                .contains(&"/.well-known/oauth-protected-resource/mcp".to_owned()),
            "{:?}",
            stub.paths()
        );
    }
}

/// RFC 9728 §3.3: the root well-known document stands for the origin, so its `resource` may be the
/// origin, which covers the endpoint `/mcp` (the conformance suite's `auth/metadata-var2`, and what the
/// official SDKs accept). The origin is then the audience: the access token fits every endpoint on
/// the origin, on purpose. Anything else in that document is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_document_may_name_the_origin_which_becomes_the_audience() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    for resource in ["{base}/m", "{base}/mcp/x", "http://localhost:1"] {
        let mut config = PrmConfig::new(&server.issuer);
        config.resource = Some(resource.to_owned());
        config.header = false;
        config.at_root = true;
        let stub = McpStub::start(config).await;
        let err = h
            .service
            .discover_mcp_server(&stub.url())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{resource}: {err}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    let mut config = PrmConfig::new(&server.issuer);
    config.resource = Some("{base}/".to_owned());
    config.header = false;
    config.at_root = true;
    let stub = McpStub::start(config).await;
    let base = stub.url().trim_end_matches("/mcp").to_owned();
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.resource, base);
    assert_eq!(info.server_url, stub.url());
    let outcome = h.service.authenticate(&stub.url(), opts()).await.unwrap();
    let claims = crate::mcp::jwt_payload(outcome.tokens.access_token.secret());
    assert_eq!(claims["aud"], base.as_str(), "{claims}");
    // Stored under the endpoint, bound to it, and the record keeps the audience for refreshes.
    let record = h.service.mcp_server_record(&stub.url()).unwrap().unwrap();
    assert_eq!(record.resource, base);
    assert_eq!(record.server_url, stub.url());
    let refreshed = h.service.refresh_tokens(&stub.url()).await.unwrap();
    let claims = crate::mcp::jwt_payload(refreshed.access_token.secret());
    assert_eq!(claims["aud"], base.as_str(), "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_on_another_issuers_path_is_not_accepted() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let forged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let callbacks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let opener = {
        let (forged, callbacks) = (forged.clone(), callbacks.clone());
        move |url: &str| {
            let url = reqwest::Url::parse(url).unwrap();
            let query: std::collections::HashMap<String, String> =
                url.query_pairs().into_owned().collect();
            let redirect = reqwest::Url::parse(&query["redirect_uri"]).unwrap();
            let state = query["state"].clone();
            let (forged, callbacks, url) = (forged.clone(), callbacks.clone(), url.to_string());
            tokio::runtime::Handle::current().spawn(async move {
                // An authorization response on the default path (where a response routed through
                // another issuer's authorization endpoint would land), with the right state.
                for path in ["/callback", "/callback/other-issuer"] {
                    let mut wrong = redirect.clone();
                    wrong.set_path(path);
                    wrong.set_query(Some(&format!("code=forged&state={state}")));
                    let status = crate::support::test_client()
                        .get(wrong)
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    forged.lock().unwrap().push(status);
                }
                if let Err(e) = crate::support::drive(&url, &callbacks).await {
                    eprintln!("http browser: {e}");
                }
            });
            Ok(())
        }
    };
    let outcome = h
        .service
        .authenticate(&stub.url(), opts().browser(opener))
        .await
        .unwrap();
    let path = format!(
        "/callback/{}",
        ProviderName::from_url(&server.issuer).unwrap()
    );
    assert!(
        outcome.redirect_uri.ends_with(&path),
        "{}",
        outcome.redirect_uri
    );
    assert_eq!(*forged.lock().unwrap(), [404, 404]);
    assert_eq!(callbacks.lock().unwrap().len(), 1);
}

/// Red-team finding: a provider in `providers.toml` whose name equals an MCP server's storage name
/// shared that server's token file, so `mcp auth NAME` replaced the server's tokens, `mcp token
/// NAME` printed them and `mcp logout NAME` deleted them. Servers' tokens now live in a namespace of
/// their own (`_…`) that no provider can have: a `providers.toml` entry of that name is refused,
/// and an entry named like the server's old (0.2) storage name is an ordinary provider that never
/// reaches the server's tokens. (The "attacker's endpoint" is a local `McpStub` that records
/// requests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_named_like_an_mcp_server_never_gets_its_tokens() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let evil = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    h.service.authenticate(&url, opts()).await.unwrap();
    let name = ProviderName::for_server(&url).unwrap();
    assert!(name.as_str().starts_with('_'), "{name}");
    let stored = h.stored(name.as_str()).unwrap();
    let toml_for = |provider: &str| {
        format!(
            "[providers.\"{provider}\"]\nauth_url = \"{e}/authorize\"\ntoken_url = \"{e}/token\"\n\
             revocation_url = \"{e}/revoke\"\nclient_id = \"x\"\n",
            e = evil.url()
        )
    };

    // The server's own name cannot be a provider: the file is refused, and so is the name itself.
    std::fs::write(
        h.home.path().join("providers.toml"),
        toml_for(name.as_str()),
    )
    .unwrap();
    let err = context_harness_providers::ProviderRegistry::load(h.home.path()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
    assert!(err.to_string().contains("MCP server"), "{err}");
    let service = &h.service;
    let err = service.refresh_tokens(name.as_str()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
    for result in [
        service.cached_valid_token(name.as_str()).map(drop),
        service.get_tokens(name.as_str()).map(drop),
        service.get_status(name.as_str()).map(drop),
        service.logout_local(name.as_str()).map(drop),
        service.token(name.as_str()).await.map(drop),
        service.logout(name.as_str()).await.map(drop),
        service
            .authenticate(name.as_str(), AuthenticateOptions::new())
            .await
            .map(drop),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
    }

    // A provider named like the server's old storage name is just another provider.
    let legacy = ProviderName::from_url(&url).unwrap();
    std::fs::write(
        h.home.path().join("providers.toml"),
        toml_for(legacy.as_str()),
    )
    .unwrap();
    let service = h.another_service();
    assert!(
        service
            .cached_valid_token(legacy.as_str())
            .unwrap()
            .is_none()
    );
    let err = service.refresh_tokens(legacy.as_str()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired, "{err}");
    assert!(!service.logout_local(legacy.as_str()).unwrap());
    let out = service.logout(legacy.as_str()).await.unwrap();
    assert!(!out.deleted);
    // The server's tokens are untouched and still its own.
    let kept = h.stored(name.as_str()).unwrap();
    assert_eq!(kept.refresh_token, stored.refresh_token);
    assert_eq!(kept.extra["mcp_server"], stored.extra["mcp_server"]);
    assert_eq!(
        service
            .cached_valid_token(&url)
            .unwrap()
            .unwrap()
            .access_token,
        stored.access_token
    );
    assert!(evil.paths().is_empty(), "{:?}", evil.paths());
}

/// A 0.2 home: the server's tokens (bound to it) and record under the old storage name, which a
/// provider could share. The first use of either name moves them to the server's own name; tokens
/// without a binding are never handed to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_under_the_old_shared_name_move_to_the_server() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens_dir = h.home.path().join("tokens");
    let mcp_dir = h.home.path().join("mcp");
    for by_provider_name in [false, true] {
        let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
        let url = stub.url();
        let outcome = h.service.authenticate(&url, opts()).await.unwrap();
        let (new, legacy) = (
            ProviderName::for_server(&url).unwrap(),
            ProviderName::from_url(&url).unwrap(),
        );
        // Make it look like 0.2 left it: the same files under the old name.
        for (dir, ext) in [(&tokens_dir, "json"), (&mcp_dir, "json")] {
            std::fs::rename(
                dir.join(format!("{new}.{ext}")),
                dir.join(format!("{legacy}.{ext}")),
            )
            .unwrap();
        }
        assert!(h.stored(new.as_str()).is_none());
        if by_provider_name {
            // Asked for by the old name (a provider's, now): not given out, moved to the server.
            let err = h.service.get_tokens(legacy.as_str()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::AuthRequired, "{err}");
        } else {
            let listed: Vec<String> = h
                .service
                .mcp_servers()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert!(listed.contains(&new.as_str().to_owned()), "{listed:?}");
        }
        assert!(h.stored(legacy.as_str()).is_none());
        assert!(!mcp_dir.join(format!("{legacy}.json")).exists());
        assert!(mcp_dir.join(format!("{new}.json")).exists());
        let moved = h.service.cached_valid_token(&url).unwrap().unwrap();
        assert_eq!(moved.access_token, outcome.tokens.access_token);
        // Refresh works from the moved record.
        h.service.refresh_tokens(&url).await.unwrap();
    }

    // Unbound tokens under the old name: not the server's (nothing says its sign-in wrote them).
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let url = stub.url();
    h.service.authenticate(&url, opts()).await.unwrap();
    let (new, legacy) = (
        ProviderName::for_server(&url).unwrap(),
        ProviderName::from_url(&url).unwrap(),
    );
    let store = FileStore::new(tokens_dir.clone());
    let mut unbound = store.load(&new).unwrap().unwrap();
    unbound.extra.remove("mcp_server");
    store.save(&legacy, &unbound).unwrap();
    store.delete(&new).unwrap();
    assert!(h.service.cached_valid_token(&url).unwrap().is_none());
    assert!(store.load(&legacy).unwrap().is_some(), "left where it was");
    // And unbound tokens under the server's own name are not sent either.
    store.save(&new, &unbound).unwrap();
    let err = h.service.cached_valid_token(&url).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired, "{err}");
}
