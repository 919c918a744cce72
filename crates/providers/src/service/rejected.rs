//! An access token a resource server refused: [`OAuthService::access_token_rejected`].

use std::time::{Duration, SystemTime};

use context_harness_pkce::constant_time_eq;
use context_harness_tokens::{OAuthTokens, unix_seconds};

use super::{OAuthService, for_provider};
use crate::error::Result;

impl OAuthService {
    /// Records that a resource server refused `rejected`, an access token of `provider` (for the
    /// service's account): when it is the stored access token, that token is marked expired, so
    /// the next [`ensure_valid_token`](Self::ensure_valid_token) refreshes it (or renews the
    /// grant), and [`token`](Self::token) signs in only when no refresh is possible. The refresh
    /// token, the ID token, the DPoP key and everything else stored stay as they are: a refusal of
    /// the access token says nothing about them. (A git credential helper calls this on `erase`,
    /// which git sends after the server answered 401 to the credential the helper gave.)
    ///
    /// Done under the provider's refresh lock, and only when the stored access token equals
    /// `rejected` (compared in constant time): a token another process refreshed meanwhile, or one
    /// that was never this service's (another credential helper's password), changes nothing.
    ///
    /// Returns whether the stored token was marked (`false`: not signed in, or another token is
    /// stored).
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token) for the provider name and the store
    /// ([`ErrorCode::ConfigInvalid`](crate::ErrorCode::ConfigInvalid),
    /// [`ErrorCode::Storage`](crate::ErrorCode::Storage)); [`ErrorCode::Timeout`](crate::ErrorCode::Timeout)
    /// when another process holds the refresh lock longer than the lock timeout.
    pub async fn access_token_rejected(&self, provider: &str, rejected: &str) -> Result<bool> {
        let work = async {
            let target = self.target(provider)?;
            let name = target.storage_key();
            let _lock = self.lock(name).await?;
            let Some(mut tokens) = self.load_locked(name).await? else {
                return Ok(false);
            };
            if !constant_time_eq(tokens.access_token.secret().as_bytes(), rejected.as_bytes()) {
                return Ok(false);
            }
            let now = SystemTime::now();
            if tokens.is_expired_at(now, Duration::ZERO) {
                return Ok(true);
            }
            mark_expired(&mut tokens, now);
            self.save(name, tokens).await?;
            tracing::info!(
                provider,
                "the access token was refused; it counts as expired from now on"
            );
            Ok(true)
        };
        for_provider(provider, work).await
    }
}

/// Makes the access token of `tokens` expired at `now` (its lifetime becomes the whole seconds
/// since it was issued, less one), keeping the refresh token's expiry where it was. A token issued
/// "in the future" (the clock went back since) is counted as issued a second before `now`.
fn mark_expired(tokens: &mut OAuthTokens, now: SystemTime) {
    // `issued_at` is kept as f64 seconds, which round by a fraction of a microsecond: an issue
    // time written as "now" can read back a hair later than now, so a token issued "in the future"
    // is counted as issued a second ago, and the lifetime is one second short of what it lived.
    if tokens.issued_at_time() > now {
        let refresh_expiry = tokens.refresh_token_expires_at();
        let earlier = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        tokens.issued_at = unix_seconds(earlier);
        tokens.refresh_token_expires_in =
            refresh_expiry.map(|at| at.duration_since(earlier).unwrap_or_default().as_secs());
    }
    let lived = now
        .duration_since(tokens.issued_at_time())
        .unwrap_or_default();
    tokens.expires_in = Some(lived.as_secs().saturating_sub(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use context_harness_tokens::{AccessToken, RefreshToken};

    #[test]
    fn marked_tokens_are_expired_and_keep_the_refresh_token() {
        let now = SystemTime::now();
        for (issued, lifetime) in [
            (now - Duration::from_secs(30), Some(3600)),
            (now - Duration::from_millis(300), Some(3600)),
            (now - Duration::from_secs(5), None),
            // The clock went back: issued "later" than now.
            (now + Duration::from_secs(100), Some(3600)),
        ] {
            let mut tokens = OAuthTokens::new(AccessToken::new("at"), "Bearer", issued);
            tokens.expires_in = lifetime;
            tokens.refresh_token = Some(RefreshToken::new("rt"));
            tokens.refresh_token_expires_in = Some(86_400);
            let refresh_expiry = tokens.refresh_token_expires_at();
            assert!(!tokens.is_expired_at(now, Duration::ZERO));
            mark_expired(&mut tokens, now);
            assert!(tokens.is_expired_at(now, Duration::ZERO), "{issued:?}");
            assert_eq!(
                tokens.refresh_token.as_ref().map(RefreshToken::secret),
                Some("rt")
            );
            let kept = tokens.refresh_token_expires_at();
            let drift = match (refresh_expiry, kept) {
                (Some(a), Some(b)) => a.duration_since(b).or_else(|e| Ok::<_, ()>(e.duration())),
                _ => Err(()),
            };
            assert!(
                drift.is_ok_and(|d| d <= Duration::from_secs(1)),
                "{issued:?}"
            );
        }
    }
}
