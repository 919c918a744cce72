//! Secret newtypes: redacted `Debug`, no `Display`, an explicit accessor. The one definition of
//! secret strings in the workspace: the providers crate re-exports [`ClientSecret`] from here; the
//! callback-server's single-use `AuthorizationCode` (not `Clone`) prints [`REDACTED`] too, and `pkce`, which depends on nothing of ours, spells its redaction with [`REDACTED`] too).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What every secret type's `Debug` prints in place of the value: `Name([redacted])`.
pub const REDACTED: &str = "[redacted]";

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// `Debug` prints a redaction. There is deliberately no `Display`, so the value cannot reach a
        /// log line or an error message through `{}`. Serde is transparent (a plain JSON string) so the
        /// storage crate can persist it. Equality is an ordinary, not constant-time, comparison: use it
        /// for bookkeeping, never to check a value an attacker supplies.
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// Returns the secret itself.
            ///
            /// Call this only where the value must leave the process: an HTTP request, the token store,
            /// or an explicit "print my token" command.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the secret string.
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({REDACTED})", stringify!($name))
            }
        }
    };
}

secret_type!(
    /// A secret string of no more specific kind (a `state` value, a password), for callers that
    /// need the redaction without a type of their own.
    SecretString
);
secret_type!(
    /// An OAuth client secret (RFC 6749 §2.3.1), sent only to the token and revocation endpoints
    /// and never written to disk by this workspace's files (the keyring may hold one).
    ClientSecret
);
secret_type!(
    /// An OAuth access token (RFC 6749 §1.4), sent as `Authorization: Bearer <token>`.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token (RFC 6749 §1.5); rotating servers replace it on every refresh.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token (a signed JWT that identifies the user).
    IdToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_type_redacts_with_the_one_spelling() {
        let shown = [
            format!("{:?}", SecretString::new("hunter2")),
            format!("{:?}", ClientSecret::new("hunter2")),
            format!("{:#?}", AccessToken::new("hunter2")),
            format!("{:?}", RefreshToken::new("hunter2")),
            format!("{:?}", IdToken::new("hunter2")),
        ];
        for text in &shown {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.ends_with(&format!("({REDACTED})")), "{text}");
        }
        assert_eq!(shown[1], "ClientSecret([redacted])");
    }
}
