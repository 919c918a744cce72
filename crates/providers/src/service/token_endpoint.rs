//! The one way a form reaches an OAuth endpoint with client authentication (RFC 6749 §2.3.1):
//! code redemption, refresh, the device grant's start and polling, and revocation all go through
//! [`OAuthService::post_with_client_auth`].

use std::time::SystemTime;

use context_harness_tokens as tokens;
use tokens::OAuthTokens;
use url::Url;

use super::OAuthService;
use crate::error::{Grant, Result, classify_response_error};
use crate::http::RawResponse;
use crate::provider::{OAuthConfig, TokenAuthMethod, nested_token_answer};

/// Form fields of a request.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// The client-authentication parts of a token-endpoint request: `client_id` in the body for a
/// public client (`none`), else `client_secret_post` fields or HTTP Basic (`client_secret_basic`:
/// id and secret each form-urlencoded first, RFC 6749 §2.3.1).
fn client_auth<'a>(
    config: &'a OAuthConfig,
    mut form: Form<'a>,
) -> (Form<'a>, Option<(String, String)>) {
    match &config.client_secret {
        None => {
            form.push(("client_id", &config.client_id));
            (form, None)
        }
        Some(secret) => match config.provider.token_auth_method {
            TokenAuthMethod::ClientSecretPost => {
                form.push(("client_id", &config.client_id));
                form.push(("client_secret", secret.secret()));
                (form, None)
            }
            _ => {
                let user = form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
                let password =
                    form_urlencoded::byte_serialize(secret.secret().as_bytes()).collect();
                (form, Some((user, password)))
            }
        },
    }
}

impl OAuthService {
    /// Posts `form` to `url` (named `endpoint` in errors) with `config`'s client authentication
    /// applied ([`client_auth`]) and the provider's SSRF policy; returns the raw answer, whatever
    /// its status.
    pub(super) async fn post_with_client_auth(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: &[(&str, &str)],
        endpoint: &str,
    ) -> Result<RawResponse> {
        let (form, basic) = client_auth(config, form.to_vec());
        let basic_ref = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        self.post_token_form(
            config,
            url,
            &form,
            basic_ref,
            endpoint,
            config.provider.url_policy,
        )
        .await
    }

    /// Posts `form` as it is (client authentication already in it or in `basic`). At the token
    /// endpoint of a configuration with a DPoP key, with a fresh proof in the `DPoP` header (RFC
    /// 9449 §5); an answer `use_dpop_nonce` with a `DPoP-Nonce` header is retried once with that
    /// nonce in a new proof (§8).
    pub(super) async fn post_token_form(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        endpoint: &str,
        policy: Option<crate::UrlPolicy>,
    ) -> Result<RawResponse> {
        let key = config
            .dpop_key
            .as_ref()
            .filter(|_| endpoint == "token endpoint");
        let Some(key) = key else {
            return self
                .http
                .post_form(url, form, basic, endpoint, policy, None)
                .await;
        };
        crate::dpop::send_with_proof(key, "POST", url, None, |proof| async move {
            self.http
                .post_form(url, form, basic, endpoint, policy, Some(&proof))
                .await
        })
        .await
    }

    /// One token request (code redemption) and its answer, classified for `grant`.
    pub(super) async fn token_request(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: &[(&str, &str)],
        grant: Grant,
    ) -> Result<OAuthTokens> {
        let sent_at = SystemTime::now();
        let raw = self
            .post_with_client_auth(config, url, form, "token endpoint")
            .await?;
        let body = nested_token_answer(&raw.body, config.provider.token_path.as_deref());
        tokens::parse_token_response(raw.status, raw.content_type.as_deref(), &body, sent_at)
            .map_err(|e| classify_response_error(&e, grant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ClientSecret, OAuthProvider};

    fn config(secret: Option<&str>, method: TokenAuthMethod) -> OAuthConfig {
        let mut provider = OAuthProvider::github();
        provider.token_auth_method = method;
        provider.to_config("id:1 +", secret.map(ClientSecret::new))
    }

    #[test]
    fn each_rfc6749_client_auth_method() {
        // A public client sends its id in the body, and no secret anywhere.
        let public = config(None, TokenAuthMethod::ClientSecretBasic);
        let (form, basic) = client_auth(&public, vec![("grant_type", "x")]);
        assert_eq!(form, [("grant_type", "x"), ("client_id", "id:1 +")]);
        assert!(basic.is_none());

        // client_secret_post: id and secret in the body.
        let post = config(Some("s3cret"), TokenAuthMethod::ClientSecretPost);
        let (form, basic) = client_auth(&post, Vec::new());
        assert_eq!(form, [("client_id", "id:1 +"), ("client_secret", "s3cret")]);
        assert!(basic.is_none());

        // client_secret_basic: HTTP Basic with each part form-urlencoded first, nothing in the body.
        let basic_cfg = config(Some("a/b c"), TokenAuthMethod::ClientSecretBasic);
        let (form, basic) = client_auth(&basic_cfg, Vec::new());
        assert!(form.is_empty());
        assert_eq!(basic, Some(("id%3A1+%2B".to_owned(), "a%2Fb+c".to_owned())));
    }
}
