//! Several accounts per provider (issue 23), against the repository's oidc-provider (auto-approve):
//! each account's tokens under its own storage key, the index `tokens/<provider>.accounts` kept by
//! sign-in and logout, the default account resolved once per service, a 0.2 home's tokens as the
//! `default` account, and invalid account names refused with a stable code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::storage::{self, AccountIndex, AccountName, ProviderName};
use context_harness_providers::{AuthenticateOptions, ErrorCode, OAuthService};

use crate::support::{AuthServer, Harness, captured_logs};

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(30))
}

fn start() -> Option<AuthServer> {
    captured_logs();
    AuthServer::start(&[("AS_AUTO_APPROVE", "1")])
}

fn names(index: &AccountIndex) -> Vec<&str> {
    index.names().iter().map(AccountName::as_str).collect()
}

fn account(h: &Harness, name: &str) -> OAuthService {
    h.service.with_account(name).unwrap()
}

/// A browser that records each authorization URL in `urls`, then follows it like the harness's.
fn recording(
    h: &Harness,
    urls: &Arc<Mutex<Vec<String>>>,
) -> impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static {
    let follow = h.browser.opener();
    let urls = Arc::clone(urls);
    move |url: &str| {
        urls.lock().unwrap().push(url.to_owned());
        follow(url)
    }
}

/// The `prompt` parameter of each recorded authorization URL.
fn prompts(urls: &Mutex<Vec<String>>) -> Vec<String> {
    urls.lock()
        .unwrap()
        .iter()
        .map(|u| {
            let url = reqwest::Url::parse(u).unwrap();
            url.query_pairs()
                .find(|(k, _)| k == "prompt")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The index file, if any.
fn index_file(h: &Harness) -> Option<AccountIndex> {
    AccountIndex::load(
        &storage::tokens_dir(h.home.path()),
        &ProviderName::new("local").unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_have_their_own_tokens_and_the_index_follows_sign_in_and_logout() {
    let Some(server) = start() else { return };
    let h = Harness::new(&server.issuer);

    // An existing sign-in without accounts (as version 0.2 made it): the `default` account, and no
    // index file is written for it.
    let signed_in = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    assert!(h.token_file("local").is_some());
    assert_eq!(index_file(&h), None);
    let listed = h.service.accounts("local").unwrap();
    assert_eq!(names(&listed), ["default"]);
    assert!(listed.default_account().is_default());

    // Signing in again to the only account asks for no identity choice (`local` asks for consent
    // anyway).
    let urls = Arc::new(Mutex::new(Vec::new()));
    let first = h
        .service
        .authenticate("local", opts().browser(recording(&h, &urls)))
        .await
        .unwrap()
        .tokens;
    assert_ne!(first.access_token, signed_in.access_token);
    assert_eq!(prompts(&urls), ["consent"]);

    // A second account: its own key, the default unchanged.
    let work = account(&h, "Work");
    assert_eq!(work.account().map(AccountName::as_str), Some("work"));
    let second = work
        .authenticate("local", opts().browser(recording(&h, &urls)))
        .await
        .unwrap()
        .tokens;
    // Another account is signed in: the user may pick another identity (OpenID Connect Core
    // §3.1.2.1 `prompt=login`, which oidc-provider understands).
    assert_eq!(prompts(&urls), ["consent", "consent login"]);
    assert_ne!(first.access_token, second.access_token);
    let key = storage::tokens_dir(h.home.path()).join("local@work.json");
    assert!(key.is_file(), "{}", key.display());
    let listed = h.service.accounts("local").unwrap();
    assert_eq!(names(&listed), ["default", "work"]);
    assert!(listed.default_account().is_default());
    assert_eq!(index_file(&h), Some(listed));
    // Each account reads its own tokens; no account named means the default.
    let fresh = h.another_service();
    assert_eq!(
        fresh.get_tokens("local").unwrap().access_token,
        first.access_token
    );
    assert_eq!(
        work.get_tokens("local").unwrap().access_token,
        second.access_token
    );
    assert!(
        work.storage_location("local")
            .unwrap()
            .ends_with("local@work.json")
    );

    // A refresh of one account leaves the other's tokens alone.
    let refreshed = work.refresh_tokens("local").await.unwrap();
    assert_ne!(refreshed.access_token, second.access_token);
    assert_eq!(
        h.another_service()
            .get_tokens("local")
            .unwrap()
            .access_token,
        first.access_token
    );

    // The default changes for services built afterwards; one that already resolved keeps its own.
    assert!(fresh.cached_valid_token("local").unwrap().is_some());
    h.service.set_default_account("local", "work").unwrap();
    assert_eq!(
        h.service
            .accounts("local")
            .unwrap()
            .default_account()
            .as_str(),
        "work"
    );
    assert_eq!(
        h.another_service()
            .get_tokens("local")
            .unwrap()
            .access_token,
        refreshed.access_token
    );
    assert_eq!(
        fresh.get_tokens("local").unwrap().access_token,
        first.access_token
    );
    // Only a signed-in account can be the default.
    let err = h
        .service
        .set_default_account("local", "nobody")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired);

    // Logging out the default account: the other one becomes the default, and its tokens stay.
    assert!(work.logout_local("local").unwrap());
    assert!(!key.exists());
    let listed = h.another_service().accounts("local").unwrap();
    assert_eq!(names(&listed), ["default"]);
    assert!(listed.default_account().is_default());
    // Back to what version 0.2 had: no index file.
    assert_eq!(index_file(&h), None);
    assert_eq!(
        h.another_service()
            .get_tokens("local")
            .unwrap()
            .access_token,
        first.access_token
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_account_signed_in_is_the_default() {
    let Some(server) = start() else { return };
    let h = Harness::new(&server.issuer);
    let home = account(&h, "alice@example.com");
    let tokens = home.authenticate("local", opts()).await.unwrap().tokens;
    assert!(h.token_file("local").is_none());
    let listed = h.service.accounts("local").unwrap();
    assert_eq!(names(&listed), ["alice@example.com"]);
    assert_eq!(listed.default_account().as_str(), "alice@example.com");
    // Without an account named, the default one's tokens.
    assert_eq!(
        h.another_service()
            .get_tokens("local")
            .unwrap()
            .access_token,
        tokens.access_token
    );
    // Its logout leaves nothing, not even the index.
    let outcome = h.another_service().logout("local").await.unwrap();
    assert!(outcome.deleted);
    assert_eq!(index_file(&h), None);
    assert!(h.service.accounts("local").unwrap().names().is_empty());
}

#[test]
fn invalid_account_names_are_config_invalid_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    for bad in ["", "-x", "a/b", "a b", "..", &"a".repeat(65)] {
        let err = OAuthService::builder()
            .home(home.path())
            .account(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{bad:?}");
        assert!(err.to_string().starts_with("invalid account name"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("64")), "{err:?}");
    }
}
