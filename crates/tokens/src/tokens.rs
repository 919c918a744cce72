//! The stored token set and its expiry logic.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::{AccessToken, AuthStatus, IdToken, RefreshToken};

/// How long before the real expiry a token already counts as expired: 60 seconds, as in the Python original.
///
/// The margin covers clock skew and the time a request spends in flight.
pub const DEFAULT_EXPIRY_BUFFER: Duration = Duration::from_secs(60);

/// The longest lifetime (seconds) taken from a server's `expires_in` or `refresh_token_expires_in`:
/// one year (365 days). Longer values are clamped to it when a response is parsed, which errs on the
/// safe side (the token is refreshed earlier) and keeps every expiry computation far from overflow.
pub const MAX_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// Field names with their own struct field; an `extra` entry with one of these names is never written.
pub(crate) const KNOWN_FIELDS: [&str; 9] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "issued_at",
    "id_token",
    "refresh_token_expires_in",
    "refresh_failed_at",
];

/// A token set as received from a token endpoint and as stored on disk.
///
/// The JSON form uses the Python original's field names (`access_token`, `token_type`, `expires_in`,
/// `refresh_token`, `scope`, `issued_at`, with `issued_at` a float of unix seconds), so token files the
/// original context-harness wrote load unchanged. Its six fields are always written (`null` when
/// absent); the additions (`id_token`, `refresh_token_expires_in`, `refresh_failed_at`) are written only
/// when set, and any other field is kept in [`extra`](Self::extra) and written back as it came.
///
/// # Expiry
///
/// The absolute expiry is `issued_at + expires_in`, where `issued_at` is the time the response was
/// received. When `expires_in` is absent the lifetime is **unknown**, and this crate treats the token
/// as valid until the server says otherwise: the caller learns of expiry from a 401 on use or an
/// `invalid_grant` on refresh. That is what RFC 6749 allows (`expires_in` is only RECOMMENDED) and what
/// GitHub OAuth-app tokens, which do not expire, need. An `issued_at` that is not a finite,
/// non-negative number counts as the unix epoch, so such a token with a known lifetime is expired.
///
/// `Debug` redacts the tokens and shows only the keys of `extra`, whose values may hold secrets too.
#[derive(Clone, PartialEq, Deserialize)]
pub struct OAuthTokens {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type as the server sent it (e.g. `"bearer"` from GitHub). Compare it without regard
    /// to case (RFC 6749 §5.1), e.g. with [`is_bearer`](Self::is_bearer). Defaults to `"Bearer"` when
    /// a stored file lacks it.
    #[serde(default = "default_token_type")]
    pub token_type: String,
    /// The access token's lifetime in seconds from `issued_at`; `None` means unknown (see above).
    #[serde(default, deserialize_with = "de_lenient_u64")]
    pub expires_in: Option<u64>,
    /// The refresh token, if the server issued one.
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// The granted scopes as the server sent them, space- or comma-separated (see [`scopes`](Self::scopes)).
    #[serde(default)]
    pub scope: Option<String>,
    /// When the response was received, in unix seconds (a float, like Python's `time.time()`).
    pub issued_at: f64,
    /// The OpenID Connect ID token, if the server sent one.
    #[serde(default)]
    pub id_token: Option<IdToken>,
    /// The refresh token's lifetime in seconds from `issued_at` (GitHub's `refresh_token_expires_in`).
    #[serde(default, deserialize_with = "de_lenient_u64")]
    pub refresh_token_expires_in: Option<u64>,
    /// When a refresh was last refused by the server (unix seconds); cleared by a successful sign-in or
    /// refresh. Set with [`mark_refresh_failed`](Self::mark_refresh_failed).
    #[serde(default)]
    pub refresh_failed_at: Option<f64>,
    /// Every other field of the response or file, preserved and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_token_type() -> String {
    "Bearer".to_owned()
}

fn de_lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    match value {
        None => Ok(None),
        Some(value) => lenient_u64(&value).map_err(serde::de::Error::custom),
    }
}

/// Reads a count of seconds given as a JSON number or a numeric string (Azure AD v1 sends `"3599"`).
///
/// `null` and an empty string mean absent. A fractional value is rounded down.
pub(crate) fn lenient_u64(value: &Value) -> std::result::Result<Option<u64>, &'static str> {
    const NOT_A_COUNT: &str = "expected a non-negative whole number of seconds";
    fn from_f64(f: f64) -> std::result::Result<Option<u64>, &'static str> {
        // 2^64 as f64; anything at or above it does not fit.
        if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
            // Truncation is intended (whole seconds, rounded down); the range is checked above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(f as u64))
        } else {
            Err(NOT_A_COUNT)
        }
    }
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Ok(Some(u)),
            (None, Some(f)) => from_f64(f),
            (None, None) => Err(NOT_A_COUNT),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if let Ok(u) = s.parse::<u64>() {
                Ok(Some(u))
            } else {
                s.parse::<f64>().map_or(Err(NOT_A_COUNT), from_f64)
            }
        }
        _ => Err(NOT_A_COUNT),
    }
}

impl Serialize for OAuthTokens {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        // The six original fields, always present, in the original order.
        map.serialize_entry("access_token", &self.access_token)?;
        map.serialize_entry("token_type", &self.token_type)?;
        map.serialize_entry("expires_in", &self.expires_in)?;
        map.serialize_entry("refresh_token", &self.refresh_token)?;
        map.serialize_entry("scope", &self.scope)?;
        map.serialize_entry("issued_at", &self.issued_at)?;
        // Additions, only when set, so files stay close to the original ones.
        if let Some(id_token) = &self.id_token {
            map.serialize_entry("id_token", id_token)?;
        }
        if let Some(secs) = self.refresh_token_expires_in {
            map.serialize_entry("refresh_token_expires_in", &secs)?;
        }
        if let Some(at) = self.refresh_failed_at {
            map.serialize_entry("refresh_failed_at", &at)?;
        }
        for (key, value) in &self.extra {
            // A duplicate key would make the file ambiguous; the typed field wins.
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Keys<'a>(&'a Map<String, Value>);
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_set().entries(self.0.keys()).finish()
            }
        }
        f.debug_struct("OAuthTokens")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token)
            .field("scope", &self.scope)
            .field("issued_at", &self.issued_at)
            .field("id_token", &self.id_token)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .field("refresh_failed_at", &self.refresh_failed_at)
            .field("extra_keys", &Keys(&self.extra))
            .finish()
    }
}

/// Converts a time to unix seconds as a float (the Python original's `issued_at` format); times
/// before the epoch give `0.0`.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Converts unix seconds back to a time. NaN, infinite, negative or unrepresentable values give the
/// unix epoch, which makes any token with a known lifetime count as expired (the safe side).
pub fn from_unix_seconds(secs: f64) -> SystemTime {
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|elapsed| UNIX_EPOCH.checked_add(elapsed))
        .unwrap_or(UNIX_EPOCH)
}

impl OAuthTokens {
    /// The default expiry buffer, 60 seconds; the same as the crate-level [`DEFAULT_EXPIRY_BUFFER`].
    pub const DEFAULT_EXPIRY_BUFFER: Duration = DEFAULT_EXPIRY_BUFFER;

    /// A token set with only an access token and type, received at `issued_at`; the other fields are
    /// empty and can be set directly.
    pub fn new(
        access_token: AccessToken,
        token_type: impl Into<String>,
        issued_at: SystemTime,
    ) -> Self {
        Self {
            access_token,
            token_type: token_type.into(),
            expires_in: None,
            refresh_token: None,
            scope: None,
            issued_at: unix_seconds(issued_at),
            id_token: None,
            refresh_token_expires_in: None,
            refresh_failed_at: None,
            extra: Map::new(),
        }
    }

    /// When the response was received, as a time (see [`from_unix_seconds`] for invalid values).
    pub fn issued_at_time(&self) -> SystemTime {
        from_unix_seconds(self.issued_at)
    }

    /// The absolute expiry of the access token, or `None` when the lifetime is unknown (no
    /// `expires_in`) or too large to represent.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.issued_at_time()
            .checked_add(Duration::from_secs(self.expires_in?))
    }

    /// The absolute expiry of the refresh token, when the server gave one (GitHub's
    /// `refresh_token_expires_in`).
    pub fn refresh_token_expires_at(&self) -> Option<SystemTime> {
        self.issued_at_time()
            .checked_add(Duration::from_secs(self.refresh_token_expires_in?))
    }

    /// Whether the access token counts as expired at `now`, treating it as expired `buffer` early.
    ///
    /// Pure: the clock is a parameter. With an unknown lifetime (no `expires_in`) the answer is always
    /// `false`: the token stays in use until the server rejects it.
    pub fn is_expired_at(&self, now: SystemTime, buffer: Duration) -> bool {
        match self.expires_at() {
            None => false,
            // `now + buffer` overflowing means "later than any expiry".
            Some(expires_at) => now.checked_add(buffer).is_none_or(|t| t >= expires_at),
        }
    }

    /// [`is_expired_at`](Self::is_expired_at) with the system clock.
    pub fn is_expired(&self, buffer: Duration) -> bool {
        self.is_expired_at(SystemTime::now(), buffer)
    }

    /// The refresh margin that fits this token: `min(cap, lifetime / 2)`, where the lifetime is
    /// `expires_in` (RFC 6749 §5.1) and `cap` is usually [`DEFAULT_EXPIRY_BUFFER`] (60 s).
    ///
    /// A fixed 60 s margin makes a token that lives 60 s or less count as expiring the moment it
    /// arrives, so every use would refresh it again; half its lifetime keeps such a token in use for
    /// the first half of its life. With an unknown lifetime the margin is `cap` (it does not matter:
    /// such a token never counts as expired, see [`is_expired_at`](Self::is_expired_at)).
    pub fn refresh_margin(&self, cap: Duration) -> Duration {
        match self.expires_in {
            None => cap,
            Some(secs) => cap.min(Duration::from_secs(secs) / 2),
        }
    }

    /// Whether the access token should be refreshed at `now`: [`is_expired_at`](Self::is_expired_at)
    /// with the [`refresh_margin`](Self::refresh_margin) for `cap`. Pure: the clock is a parameter.
    pub fn needs_refresh_at(&self, now: SystemTime, cap: Duration) -> bool {
        self.is_expired_at(now, self.refresh_margin(cap))
    }

    /// Whether the refresh token is known to have expired at `now` (no buffer). `false` when there is
    /// no refresh token expiry.
    pub fn is_refresh_token_expired_at(&self, now: SystemTime) -> bool {
        self.refresh_token_expires_at().is_some_and(|at| now >= at)
    }

    /// The status of these stored tokens at `now`: [`AuthStatus::TokenRefreshFailed`] if a refresh
    /// was refused since the last sign-in, else [`AuthStatus::TokenExpired`] if the access token has
    /// expired (with `buffer`), else [`AuthStatus::Authenticated`].
    ///
    /// For the margin that fits the token's lifetime, pass
    /// [`refresh_margin(cap)`](Self::refresh_margin) as `buffer`.
    pub fn status_at(&self, now: SystemTime, buffer: Duration) -> AuthStatus {
        if self.refresh_failed_at.is_some() {
            AuthStatus::TokenRefreshFailed
        } else if self.is_expired_at(now, buffer) {
            AuthStatus::TokenExpired
        } else {
            AuthStatus::Authenticated
        }
    }

    /// Records that the server refused a refresh at `now` (sets `refresh_failed_at`).
    pub fn mark_refresh_failed(&mut self, now: SystemTime) {
        self.refresh_failed_at = Some(unix_seconds(now));
    }

    /// Whether the token type is `Bearer`, compared without regard to ASCII case (RFC 6749 §5.1;
    /// GitHub sends `bearer`).
    pub fn is_bearer(&self) -> bool {
        self.token_type.trim().eq_ignore_ascii_case("bearer")
    }

    /// The granted scopes, split on spaces and commas (RFC 6749 uses spaces, GitHub commas), with empty
    /// pieces dropped. Empty when `scope` is absent or empty.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.as_deref().map_or_else(Vec::new, |scope| {
            scope
                .split([' ', ',', '\t', '\n', '\r'])
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// Whether `scope` is among the granted [`scopes`](Self::scopes) (exact, case-sensitive match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(&scope)
    }

    /// Serialises to the stored JSON format (pretty-printed, the Python original's field names).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NonFiniteTime`] when `issued_at` or `refresh_failed_at` is NaN or infinite (JSON
    /// would silently turn it into `null`, which could not be read back).
    pub fn to_json(&self) -> Result<String> {
        if !self.issued_at.is_finite() || self.refresh_failed_at.is_some_and(|t| !t.is_finite()) {
            return Err(Error::new(ErrorKind::NonFiniteTime));
        }
        serde_json::to_string_pretty(self).map_err(|e| Error::from_json(&e, false))
    }

    /// Parses the stored JSON format, including token files written by the Python original.
    ///
    /// `expires_in` and `refresh_token_expires_in` may be numbers or numeric strings; unknown fields go
    /// to [`extra`](Self::extra).
    ///
    /// # Errors
    ///
    /// An [`Error`] of kind `Syntax`, `Eof` or `Data` (e.g. no `access_token` or `issued_at`). The
    /// error never quotes the file's contents.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::from_json(&e, true))
    }

    /// Merges a refresh response into these stored tokens and returns the new set.
    ///
    /// The result is `fresh`, except that what the refresh response left out is kept from `self`:
    /// the refresh token (RFC 6749 §6: "the client MUST discard the old refresh token" only when a new
    /// one is issued) with its expiry re-based onto the new `issued_at`, the scope (RFC 6749 §5.1: an
    /// omitted scope is unchanged), the ID token, and extra fields that `fresh` does not have.
    /// `refresh_failed_at` is cleared.
    pub fn merge_refresh(&self, fresh: Self) -> Self {
        let mut merged = fresh;
        if merged.refresh_token.is_none() {
            merged.refresh_token.clone_from(&self.refresh_token);
            merged.refresh_token_expires_in = self.refresh_token_expires_at().map(|at| {
                at.duration_since(merged.issued_at_time())
                    .map_or(0, |left| left.as_secs())
            });
        }
        if merged.scope.is_none() {
            merged.scope.clone_from(&self.scope);
        }
        if merged.id_token.is_none() {
            merged.id_token.clone_from(&self.id_token);
        }
        for (key, value) in &self.extra {
            if !merged.extra.contains_key(key) {
                merged.extra.insert(key.clone(), value.clone());
            }
        }
        merged.refresh_failed_at = None;
        merged
    }
}
