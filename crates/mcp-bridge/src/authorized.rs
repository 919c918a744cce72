//! The one way a request of the bridge reaches the server with the bearer: every verb of every
//! transport — the POSTs of both wires, the GET stream, the legacy HTTP+SSE stream and its
//! endpoint — goes through [`Bridge::send_authorized`], so a 401 or 403 gets the same recovery
//! ([`Auth::recover`](super::auth::Auth::recover)) and the bearer goes only where its audience
//! covers ([`Auth::bearer_for`](super::auth::Auth::bearer_for)).

use context_harness_providers::AccessToken;
use context_harness_providers::protocol::{Exchange, Refusal, RefusalStatus};
use reqwest::header::{self, HeaderMap};
use url::Url;

use super::upstream::SessionHeaders;
use super::{Bridge, Fail};

impl Bridge {
    /// Sends the request `build` makes for a bearer (called again for each retry) to `url`: with
    /// the token when its audience covers `url`, recovering from 401 and 403 as `exchange` (one per
    /// request, or per stream for its whole life) allows. Returns the first answer that is neither.
    ///
    /// # Errors
    ///
    /// [`Fail::Auth`] when the recovery gives up or the token would go outside its audience;
    /// [`Fail::Upstream`] when the request cannot be sent.
    pub(super) async fn send_authorized(
        &self,
        exchange: &mut Exchange,
        url: &Url,
        build: impl Fn(Option<&AccessToken>) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Fail> {
        loop {
            let bearer = self.auth.bearer_for(url).await?;
            // Same-origin 307/308 followed, the bearer only inside its audience ([`super::redirect`]).
            let response = self.send_following(build(bearer.token.as_ref())).await?;
            let Some(status) = RefusalStatus::from_status(response.status().as_u16()) else {
                return Ok(response);
            };
            let refusal = Refusal::from_header_values(
                status,
                response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            tracing::debug!(
                status = status.code(),
                generation = bearer.sent.generation,
                path = url.path(),
                "the server refused the request"
            );
            drop(response);
            self.auth.recover(exchange, &refusal, &bearer.sent).await?;
        }
    }

    /// [`Self::post_authorized_with`] without per-request headers.
    pub(super) async fn post_authorized(
        &self,
        url: &Url,
        text: &str,
        session: &SessionHeaders,
    ) -> Result<reqwest::Response, Fail> {
        self.post_authorized_with(url, text, session, &HeaderMap::new())
            .await
    }

    /// POSTs one message ([`Self::send_authorized`], one exchange) with the session headers and
    /// `headers` (the 2026-07-28 request headers) on top.
    pub(super) async fn post_authorized_with(
        &self,
        url: &Url,
        text: &str,
        session: &SessionHeaders,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, Fail> {
        let mut exchange = Exchange::request();
        self.send_authorized(&mut exchange, url, |token| {
            self.upstream
                .post(url, token, session, text)
                .headers(headers.clone())
        })
        .await
    }
}
