//! The outbound HTTP client: built lazily, rustls with the `ring` provider, timeouts, no redirects.

use std::sync::OnceLock;
use std::time::Duration;

use url::Url;

use crate::error::{Error, ErrorCode, Result};

/// Bodies larger than this are refused (a token response is a few kilobytes).
const MAX_BODY: usize = 1024 * 1024;

/// HTTP settings for [`OAuthService`](crate::OAuthService).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to establish a connection (TCP + TLS). Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from sending to the last body byte. Default 30 s.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// An answer read in full.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    /// The `Retry-After` header as sent (RFC 9110 §10.2.3), read by the transient-answer retries.
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// A lazily built `reqwest` client. Constructing it costs milliseconds (TLS roots), so paths that
/// need no network (a valid cached token) never touch it.
pub(crate) struct Http {
    settings: HttpSettings,
    client: OnceLock<reqwest::Client>,
}

impl Http {
    pub(crate) fn new(settings: HttpSettings) -> Self {
        Self {
            settings,
            client: OnceLock::new(),
        }
    }

    /// Whether the client has been built (tests assert the fast path leaves it unbuilt).
    pub(crate) fn is_built(&self) -> bool {
        self.client.get().is_some()
    }

    /// Builds the client now if it is not built yet (for a blocking thread while the user signs in).
    pub(crate) fn prewarm(&self) {
        let _ = self.client();
    }

    fn client(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        // reqwest is built with `rustls-no-provider`: install `ring` as the process default. An
        // `Err` only means some other code installed a provider first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(self.settings.connect_timeout)
            .timeout(self.settings.request_timeout)
            // Never follow redirects: a token endpoint that redirects is misconfigured, and following
            // would re-send credentials to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("context-harness/", env!("CARGO_PKG_VERSION")))
            .https_only(false) // loopback http is allowed; every URL is checked by `check_endpoint`
            .build()
            .map_err(|e| {
                Error::new(ErrorCode::NetworkError, "cannot initialise the HTTP client")
                    .with_source(e.without_url())
            })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`, `Accept: application/json`).
    ///
    /// `basic` is `(user, password)` for HTTP Basic, each already form-urlencoded by the caller.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        what: &str,
    ) -> Result<RawResponse> {
        // Scoped: the serializer is not `Sync`, and must not live across the `.await` below (that
        // would make every service future non-`Send`, so it could not be `tokio::spawn`ed).
        let body = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            body.finish()
        };
        let mut request = self
            .client()?
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some((user, password)) = basic {
            // reqwest marks the Authorization header value sensitive.
            request = request.basic_auth(user, Some(password));
        }
        self.send(request, url, what).await
    }

    /// Sends a prepared request and reads the whole answer (up to 1 MiB).
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Result<RawResponse> {
        let host = url.host_str().unwrap_or("server").to_owned();
        // With "http answer" below, brackets the network time (`cargo xtask bench` subtracts it).
        tracing::debug!(what, host = %host, "http request");
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(e, what, &host))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(64).collect());
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(Error::new(
                            ErrorCode::NetworkError,
                            format!("{what} at {host} sent an oversized answer (over 1 MiB)"),
                        )
                        .with_status(status));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(e, what, &host)),
            }
        }
        tracing::debug!(what, host = %host, status, bytes = body.len(), "http answer");
        Ok(RawResponse {
            status,
            content_type,
            retry_after,
            body,
        })
    }

    /// Builds a GET with a bearer token (for examples and `resources_url`).
    pub(crate) fn get(&self, url: &Url) -> Result<reqwest::RequestBuilder> {
        Ok(self
            .client()?
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    /// Builds an arbitrary request (GitHub's `DELETE` revocation).
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder> {
        Ok(self.client()?.request(method, url.clone()))
    }

    fn transport_error(&self, e: reqwest::Error, what: &str, host: &str) -> Error {
        let e = e.without_url();
        if e.is_timeout() {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "{what} at {host} did not answer within {} s",
                    self.settings.request_timeout.as_secs_f32()
                ),
            )
            .with_hint("retry later; if it persists, check the server or your proxy")
            .with_source(e)
        } else if e.is_connect() {
            Error::new(
                ErrorCode::NetworkError,
                format!("cannot connect to {what} at {host}"),
            )
            .with_source(e)
        } else {
            Error::new(
                ErrorCode::NetworkError,
                format!(
                    "{what} at {host} failed: the connection broke or the answer was unreadable"
                ),
            )
            .with_source(e)
        }
    }
}
