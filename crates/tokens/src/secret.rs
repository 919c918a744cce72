//! Secret newtypes: redacted `Debug`, no `Display`, an explicit accessor.

use std::fmt;

use serde::{Deserialize, Serialize};

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
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

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
