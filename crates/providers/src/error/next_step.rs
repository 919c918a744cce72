//! [`NextStep`]: what a person should do about an [`Error`](crate::Error), as data.

use std::fmt;

/// What to do next about an error, as data a program renders in its own words (the CLI prints
/// its commands and flags; [`Display`](fmt::Display) gives the library's plain-language text,
/// which is also the error's [`hint`](crate::Error::hint)).
///
/// ```
/// use context_harness_providers::NextStep;
///
/// let step = NextStep::SignIn { provider: "github".to_owned() };
/// assert_eq!(step.to_string(), "sign in to github");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextStep {
    /// Sign in to the provider (a name or an MCP server URL): not signed in, expired without a
    /// refresh token, refresh token refused, or stored tokens bound to another server.
    SignIn {
        /// The provider as the failed call named it.
        provider: String,
    },
    /// The user (or the server) denied the authorization: sign in again and approve it.
    SignInAndApprove {
        /// The provider as the failed call named it.
        provider: String,
    },
    /// The authorization server refuses the RFC 8707 `resource` parameter (`invalid_target`): sign
    /// in to the MCP server URL without it
    /// ([`AuthenticateOptions::without_resource`](crate::AuthenticateOptions::without_resource)).
    SignInWithoutResource,
    /// The provider name is unknown: choose one of the registry's providers.
    ListProviders,
    /// Dynamic client registration (RFC 7591) failed: use a client registered beforehand
    /// ([`AuthenticateOptions::client_id`](crate::AuthenticateOptions::client_id)).
    UsePreRegisteredClient,
    /// The server offers no dynamic client registration: register a client at the server and use
    /// its id ([`AuthenticateOptions::client_id`](crate::AuthenticateOptions::client_id)).
    RegisterClient,
    /// No client id is configured for the provider: set the environment variable (or pass one
    /// with [`AuthenticateOptions::client_id`](crate::AuthenticateOptions::client_id), or add
    /// `client_id` to its `providers.toml` entry).
    SetClientId {
        /// The variable, `{SERVICE}_CLIENT_ID`.
        env_var: String,
        /// The provider's name.
        provider: String,
        /// Where to create an OAuth app for it, when known.
        setup_url: Option<String>,
    },
    /// Every loopback port for the redirect is busy: free one or choose others
    /// ([`AuthenticateOptions::ports`](crate::AuthenticateOptions::ports)).
    ChoosePorts,
    /// A secret is in the keyring but the store in use never reads it: use the `auto` or
    /// `keyring` storage mode.
    UseKeyringStorage,
    /// The provider has no device authorization endpoint (RFC 8628): use the browser sign-in, or
    /// configure `device_auth_url` for it in `providers.toml`.
    UseBrowserFlow {
        /// The provider's name.
        provider: String,
    },
    /// The sign-in was not finished in time: run it again, allowing more time
    /// ([`AuthenticateOptions::timeout`](crate::AuthenticateOptions::timeout)).
    AllowMoreTime,
    /// A file or directory is refused because another user could change it: fix it with
    /// `command` (a `chmod`/`chown` line) after checking who changed it.
    FixPermissions {
        /// The shell command that fixes it, e.g. `chmod go-w /home/u/.context-harness`.
        command: String,
    },
    /// Refreshed tokens could be stored nowhere: free space or fix permissions, then sign in.
    FixStorageThenSignIn {
        /// The provider's name.
        provider: String,
    },
}

impl fmt::Display for NextStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignIn { provider } => write!(f, "sign in to {provider}"),
            Self::SignInAndApprove { provider } => {
                write!(f, "sign in to {provider} again and approve the request")
            }
            Self::SignInWithoutResource => f.write_str(
                "the authorization server refuses the RFC 8707 `resource` parameter; for an MCP server URL, sign in without it",
            ),
            Self::ListProviders => f.write_str("use one of the known providers"),
            Self::UsePreRegisteredClient => f.write_str(
                "the server may not allow dynamic registration; use the client id of a pre-registered client",
            ),
            Self::RegisterClient => {
                f.write_str("register an OAuth client at the server and use its client id")
            }
            Self::SetClientId {
                env_var,
                setup_url: Some(url),
                ..
            } => write!(f, "set {env_var} — create an OAuth app at {url}"),
            Self::SetClientId {
                env_var, provider, ..
            } => write!(
                f,
                "set {env_var}, or add client_id to [providers.{provider}]"
            ),
            Self::ChoosePorts => f.write_str("free one of the ports or choose other ports"),
            Self::UseKeyringStorage => f.write_str("use the auto or keyring storage mode"),
            Self::UseBrowserFlow { provider } => write!(
                f,
                "sign in with the browser, or set device_auth_url in [providers.{provider}]"
            ),
            Self::AllowMoreTime => f.write_str("run the sign-in again, or allow more time"),
            Self::FixPermissions { command } => {
                write!(f, "run `{command}` (after checking who changed it), then try again")
            }
            Self::FixStorageThenSignIn { provider } => {
                write!(f, "free space or fix permissions, then sign in to {provider} again")
            }
        }
    }
}
