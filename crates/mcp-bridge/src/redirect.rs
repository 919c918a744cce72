//! Redirects of the MCP endpoint (issue 20, "Real servers"): Starlette-based servers answer
//! `/mcp` with `307 → /mcp/`, and users expect that to work. The bridge's HTTP client follows no
//! redirect on its own; [`Bridge::send_following`] follows a `307` or `308` (method and body kept,
//! RFC 9110 §15.4.8/§15.4.9) when the target is on the same origin and — for a request carrying
//! the bearer — inside the token's audience (discovery's `resource_covers` rule, through
//! [`Auth::covers`](super::auth::Auth::covers)), at most [`MAX_REDIRECTS`] times. Any other
//! redirect is refused, and the error names its `Location` (made printable, without its query).

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, LOCATION};
use url::Url;

use super::upstream::UpstreamError;
use super::{Bridge, Fail};

/// Redirects followed for one request, at most.
pub(super) const MAX_REDIRECTS: usize = 3;
/// The `data.code` of a refused redirect.
const REFUSED: &str = "redirect_refused";

impl Bridge {
    /// Sends `request`, following same-origin `307`/`308` redirects as the module documentation
    /// says; returns the first answer that is no followed redirect.
    ///
    /// # Errors
    ///
    /// [`Fail::Upstream`] when the request cannot be sent, or a redirect is refused (`data.code`
    /// `redirect_refused`, the message naming the `Location`).
    pub(super) async fn send_following(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Fail> {
        let (client, request) = request.build_split();
        let mut request = request.map_err(|e| UpstreamError::from_reqwest(&e, &self.host))?;
        let mut hops = 0usize;
        loop {
            let again = request.try_clone();
            let response = client
                .execute(request)
                .await
                .map_err(|e| UpstreamError::from_reqwest(&e, &self.host))?;
            let status = response.status();
            if !matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                return Ok(response);
            }
            let from = response.url().clone();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            drop(response);
            let target = location.as_deref().and_then(|l| from.join(l.trim()).ok());
            let shown = shown_location(location.as_deref(), target.as_ref());
            let refuse = |why: &str| Fail::Upstream(self.redirect_refused(status, &shown, why));
            let Some(target) = target else {
                return Err(refuse("without a usable Location"));
            };
            if target.origin() != from.origin() {
                return Err(refuse("to another origin"));
            }
            if hops >= MAX_REDIRECTS {
                return Err(refuse("once too often"));
            }
            let Some(mut next) = again else {
                return Err(refuse("for a request that cannot be sent again"));
            };
            if next.headers().contains_key(AUTHORIZATION) && !self.auth.covers(&target) {
                // The bearer never leaves its audience (RFC 9728 §3.3; RFC 6750 §5.3).
                return Err(refuse("outside the token's audience"));
            }
            hops = hops.saturating_add(1);
            tracing::info!(
                status = status.as_u16(),
                path = target.path(),
                "the MCP server redirects; following"
            );
            *next.url_mut() = target;
            request = next;
        }
    }

    /// The error of a refused redirect: its status, its `Location` as shown, why, and what to do.
    fn redirect_refused(&self, status: StatusCode, shown: &str, why: &str) -> UpstreamError {
        let mut error = UpstreamError::new(
            REFUSED,
            format!(
                "the MCP server at {} redirected (HTTP {}) {why}: Location `{shown}`; not followed",
                self.host,
                status.as_u16()
            ),
        );
        error.hint = Some(format!(
            "if the new address is right, give it as the server URL (and sign in to it: `{} <url>`)",
            self.auth.settings.sign_in_command
        ));
        error
    }
}

/// A `Location` for a message: printable and bounded, resolved, without query or fragment (which
/// may carry secrets).
fn shown_location(location: Option<&str>, target: Option<&Url>) -> String {
    match target {
        Some(url) => {
            let mut url = url.clone();
            url.set_query(None);
            url.set_fragment(None);
            context_harness_providers::terminal_text_max(url.as_str(), 300)
        }
        None => context_harness_providers::terminal_text_max(location.unwrap_or(""), 300),
    }
}
