//! The authentication status shown to the user.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a provider's sign-in stands; the Python original's `AuthStatus`, with the same snake_case names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStatus {
    /// No tokens are stored for the provider.
    NotAuthenticated,
    /// Tokens are stored and the access token is (as far as the client knows) still valid.
    Authenticated,
    /// Tokens are stored but the access token has expired (or expires within the buffer): refresh them.
    TokenExpired,
    /// A refresh was tried and the server refused it (e.g. `invalid_grant`): the user must sign in again.
    TokenRefreshFailed,
}

impl AuthStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 4] = [
        Self::NotAuthenticated,
        Self::Authenticated,
        Self::TokenExpired,
        Self::TokenRefreshFailed,
    ];
}

crate::display_as_str! {
    AuthStatus {
        /// The snake_case name, e.g. `"token_expired"` (the Python original's enum values).
        pub fn as_str;
        NotAuthenticated => "not_authenticated",
        Authenticated => "authenticated",
        TokenExpired => "token_expired",
        TokenRefreshFailed => "token_refresh_failed",
    }
}

/// The error from parsing an [`AuthStatus`] name that is not one of the four.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownAuthStatus;

impl fmt::Display for UnknownAuthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown auth status")
    }
}

impl std::error::Error for UnknownAuthStatus {}

impl FromStr for AuthStatus {
    type Err = UnknownAuthStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownAuthStatus)
    }
}
