//! Service behaviour that needs no server: configuration errors and hints, status of a fresh home.

use std::sync::Arc;

use context_harness_providers::storage::MemoryStore;
use context_harness_providers::{
    AuthStatus, AuthenticateOptions, Environment, ErrorCode, NextStep, OAuthService,
};

fn service(home: &std::path::Path, env: Environment) -> OAuthService {
    OAuthService::builder()
        .home(home)
        .environment(env)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn missing_client_id_is_config_missing_with_setup_url() {
    let home = tempfile::tempdir().unwrap();
    let err = service(home.path(), Environment::empty())
        .authenticate("github", AuthenticateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigMissing);
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("GITHUB_CLIENT_ID")
            && hint.contains("https://github.com/settings/developers"),
        "{hint}"
    );
}

#[tokio::test]
async fn unknown_provider_is_not_found_and_unauthenticated_is_auth_required() {
    let home = tempfile::tempdir().unwrap();
    let service = service(home.path(), Environment::empty());
    let err = service.ensure_valid_token("nope").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = service.ensure_valid_token("github").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired);
    assert_eq!(err.hint(), Some("sign in to github"));
    assert_eq!(
        err.next_step(),
        Some(&NextStep::SignIn {
            provider: "github".to_owned()
        })
    );
    assert_eq!(
        service.get_status("github").unwrap(),
        AuthStatus::NotAuthenticated
    );
    assert!(service.cached_valid_token("github").unwrap().is_none());
    let err = service
        .ensure_valid_token("../etc/passwd")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(!service.http_client_built());
}

#[tokio::test]
async fn malformed_providers_toml_names_file_line_and_field() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("providers.toml"),
        "# comment\n[providers.acme]\nauth_url = \"http://sso.example/authorize\"\ntoken_url = \"https://sso.example/token\"\n",
    )
    .unwrap();
    let service = service(home.path(), Environment::empty());
    let err = service
        .authenticate("acme", AuthenticateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    let msg = err.to_string();
    assert!(msg.contains("providers.toml:2:"), "{msg}");
    assert!(msg.contains("providers.acme.auth_url"), "{msg}");
}

#[tokio::test]
async fn home_and_client_id_come_from_the_injected_environment() {
    let home = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([
        ("CONTEXT_HARNESS_HOME", home.path().to_str().unwrap()),
        ("ATLASSIAN_CLIENT_ID", "atl-id"),
    ]);
    let service = OAuthService::builder()
        .environment(env)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    assert_eq!(service.home(), home.path());
    let config = service.resolve_config("atlassian", None).unwrap();
    assert_eq!(config.client_id, "atl-id");
    assert_eq!(
        config.provider.audience.as_deref(),
        Some("api.atlassian.com")
    );
}

#[tokio::test]
async fn logout_removes_a_corrupt_token_file_without_revoking() {
    let home = tempfile::tempdir().unwrap();
    let service = OAuthService::builder()
        .home(home.path())
        .environment(Environment::empty())
        .storage_mode(context_harness_providers::storage::StorageMode::File)
        .build()
        .unwrap();
    let tokens = home.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let file = tokens.join("github.json");
    std::fs::write(&file, b"{ not json").unwrap();
    // Reading refuses the corrupt file (and leaves it alone)...
    let err = service.get_tokens("github").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    assert!(file.exists());
    // ...but signing out still removes it, without contacting the provider.
    let outcome = service.logout("github").await.unwrap();
    assert!(outcome.deleted);
    assert!(matches!(
        outcome.revocation,
        context_harness_providers::Revocation::NotAttempted { .. }
    ));
    assert!(!file.exists());
    assert!(!service.http_client_built());
}

/// `token()` never hands over a DPoP-bound token (RFC 9449 §7.1: a caller would send it as a Bearer
/// token, which the server must refuse): `config_invalid` saying how to present it, and the token
/// is in no message. `ensure_valid_token` still returns it, with its key; a Bearer token passes.
#[tokio::test]
async fn token_refuses_a_dpop_bound_token() {
    use context_harness_providers::DpopKey;
    use context_harness_providers::storage::{ProviderName, TokenStore as _};
    use context_harness_providers::tokens::{AccessToken, OAuthTokens};

    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut tokens = OAuthTokens::new(
        AccessToken::new("at-bound-secret"),
        "DPoP",
        std::time::SystemTime::now(),
    );
    tokens.expires_in = Some(3600);
    DpopKey::generate().unwrap().write(&mut tokens);
    let github = ProviderName::new("github").unwrap();
    store.save(&github, &tokens).unwrap();
    let service = OAuthService::builder()
        .home(home.path())
        .environment(Environment::empty())
        .store(store.clone())
        .build()
        .unwrap();
    let err = service.token("github").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.to_string().contains("DPoP-bound"), "{err}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("DpopKey::from_tokens")),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("at-bound-secret"));
    let valid = service.ensure_valid_token("github").await.unwrap();
    assert!(DpopKey::from_tokens(&valid).is_some());

    let bearer = OAuthTokens::new(
        AccessToken::new("at-bearer"),
        "Bearer",
        std::time::SystemTime::now(),
    );
    let mut bearer = bearer;
    bearer.expires_in = Some(3600);
    store.save(&github, &bearer).unwrap();
    assert_eq!(service.token("github").await.unwrap().secret(), "at-bearer");
}
