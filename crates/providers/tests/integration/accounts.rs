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

/// A deleted index loses no account: every reader uses the index rebuilt from the stored tokens
/// (`default` first when signed in, the others by name, the first the default), and a logout then
/// writes it. An index whose default is not one of its accounts is refused by every reader alike
/// (the listing and the resolution of "no account named"), with a message naming the account
/// index and a hint saying what deleting it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_index_is_rebuilt_and_a_bad_default_is_refused() {
    let Some(server) = start() else { return };
    let h = Harness::new(&server.issuer);
    h.service.authenticate("local", opts()).await.unwrap();
    for name in ["work", "home"] {
        account(&h, name)
            .authenticate("local", opts())
            .await
            .unwrap();
    }
    let path = AccountIndex::path(
        &storage::tokens_dir(h.home.path()),
        &ProviderName::new("local").unwrap(),
    );
    assert_eq!(
        index_file(&h).as_ref().map(names),
        Some(vec!["default", "work", "home"])
    );

    // Deleted: every account is still listed, `default` the default, and used as such.
    std::fs::remove_file(&path).unwrap();
    let fresh = h.another_service();
    let listed = fresh.accounts("local").unwrap();
    assert_eq!(names(&listed), ["default", "home", "work"]);
    assert!(listed.default_account().is_default());
    assert!(fresh.account_for("local").unwrap().is_default());
    assert!(account(&h, "home").get_tokens("local").is_ok());

    // A default that is not one of the accounts: refused by the listing and by the resolution.
    std::fs::write(&path, r#"{"default":"evil","accounts":["default"]}"#).unwrap();
    let refused = |err: context_harness_providers::Error| {
        assert_eq!(err.code(), ErrorCode::Storage, "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("account index "), "{message}");
        assert!(message.contains("local.accounts is corrupt"), "{message}");
        assert!(
            message.contains("its default account is not one of its accounts"),
            "{message}"
        );
        assert!(!message.contains("token file"), "{message}");
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("delete it: no tokens are lost"), "{hint}");
    };
    refused(h.another_service().accounts("local").unwrap_err());
    refused(h.another_service().account_for("local").unwrap_err());
    refused(h.another_service().get_tokens("local").unwrap_err());
    refused(
        h.another_service()
            .ensure_valid_token("local")
            .await
            .unwrap_err(),
    );
    // An account named explicitly needs no default.
    assert!(account(&h, "work").get_tokens("local").is_ok());

    // Deleted again, then the default account signs out: the first other account by name is
    // the default, and the index is written.
    std::fs::remove_file(&path).unwrap();
    assert!(h.another_service().logout_local("local").unwrap());
    let listed = h.another_service().accounts("local").unwrap();
    assert_eq!(names(&listed), ["home", "work"]);
    assert_eq!(listed.default_account().as_str(), "home");
    assert_eq!(index_file(&h), Some(listed));
}

/// The library's "not signed in" names the account, unless it is `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_signed_in_names_the_account() {
    let Some(server) = start() else { return };
    let h = Harness::new(&server.issuer);
    let err = account(&h, "zz").get_tokens("local").unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired);
    assert_eq!(err.to_string(), "not signed in to local (account zz)");
    let err = account(&h, "zz")
        .ensure_valid_token("local")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired);
    assert_eq!(err.to_string(), "not signed in to local (account zz)");
    let err = h.service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.to_string(), "not signed in to local");
    // Nothing was written for the account asked about.
    assert!(
        !storage::tokens_dir(h.home.path())
            .join("local@zz.json")
            .exists()
    );
}
