//! The one way a request of the bridge reaches the server with the bearer: every verb of every
//! transport — the POSTs of both wires, the GET stream, the legacy HTTP+SSE stream and its
//! endpoint — goes through [`Bridge::send_authorized`], so a 401 or 403 gets the same recovery
//! ([`Auth::recover`](super::auth::Auth::recover)) and the bearer goes only where its audience
//! covers ([`Auth::bearer_for`](super::auth::Auth::bearer_for)).

use context_harness_providers::AccessToken;
use context_harness_providers::protocol::{Exchange, Refusal, RefusalStatus};
use context_harness_providers::{DpopKey, nonce_demand};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::upstream::{SessionHeaders, UpstreamError};
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
        // One retry with the resource server's nonce per request (RFC 9449 §9).
        let mut nonce_retried = false;
        loop {
            let bearer = self.auth.bearer_for(url).await?;
            let mut request = build(bearer.token.as_ref());
            if let (Some(key), Some(token)) = (&bearer.dpop, &bearer.token) {
                request = self.with_dpop(request, key, token)?;
            }
            // Same-origin 307/308 followed, the bearer only inside its audience ([`super::redirect`]).
            let response = self.send_following(request).await?;
            let nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if bearer.dpop.is_some()
                && let Some(nonce) = nonce.as_deref()
            {
                self.auth.set_dpop_nonce(nonce);
            }
            let Some(status) = RefusalStatus::from_status(response.status().as_u16()) else {
                return Ok(response);
            };
            let challenges: Vec<String> = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            if bearer.dpop.is_some()
                && !nonce_retried
                && nonce_demand(status.code(), b"", &challenges, nonce.as_deref()).is_some()
            {
                tracing::debug!("the server asks for a DPoP nonce; retrying once with it");
                nonce_retried = true;
                continue;
            }
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

    /// `request` presenting `token` as DPoP-bound (RFC 9449 §7.1): `Authorization: DPoP <token>`
    /// and a fresh proof for its method and URL, with `ath` and the server's latest nonce.
    ///
    /// # Errors
    ///
    /// [`Fail::Upstream`] when the request cannot be built; [`Fail::Auth`] when no proof can be
    /// signed.
    pub(super) fn with_dpop(
        &self,
        request: reqwest::RequestBuilder,
        key: &DpopKey,
        token: &AccessToken,
    ) -> Result<reqwest::RequestBuilder, Fail> {
        let (client, request) = request.build_split();
        let mut request = request.map_err(|e| UpstreamError::from_reqwest(&e, &self.host))?;
        let nonce = self.auth.dpop_nonce();
        let proof = key
            .proof(
                request.method().as_str(),
                request.url(),
                nonce.as_deref(),
                Some(token.secret()),
            )
            .map_err(|e| self.auth.failure(&e))?;
        let headers = request.headers_mut();
        if let Ok(mut value) = HeaderValue::from_str(&format!("DPoP {}", token.secret())) {
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Ok(mut value) = HeaderValue::from_str(&proof) {
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("dpop"), value);
        }
        Ok(reqwest::RequestBuilder::from_parts(client, request))
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
