//! Exit codes, and how errors are shown.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error |
//! | 2 | usage error (bad command line; printed by clap); malformed `git-credential` input; `exec --env` naming a configuration variable |
//! | 3 | `auth_required`: not signed in (or no sign-in can be shown / `--no-sign-in`); a `DPoP` token whose key is not stored |
//! | 4 | `auth_failed`: the sign-in failed (code or client refused, invalid callback, issuer mix-up) |
//! | 5 | `auth_cancelled`: the user (or the server) denied the authorization |
//! | 6 | `token_expired`: expired and no refresh token |
//! | 7 | `token_refresh_failed`: the server refused the refresh token |
//! | 8 | `config_missing`: no client id (or home directory) configured |
//! | 9 | `not_found`: unknown provider |
//! | 10 | `timeout`: the browser or the server took too long |
//! | 11 | `network_error`: the server could not be reached or answered garbage |
//! | 12 | `storage`: the keyring or the token files failed; a corrupt account index |
//! | 13 | `config_invalid`: a malformed `providers.toml` or a bad URL in it; an invalid `--account` name; `mcp token`, `exec` or `git-credential` on a DPoP-bound token (use `mcp headers`) |
//! | 126, 127 | `exec`: the command cannot be run / is not found (otherwise `exec`'s status is the command's) |

use std::fmt;
use std::io::Write;

use context_harness_providers::{Error as ProviderError, ErrorCode, NextStep};

use context_harness_providers::terminal_text;

use crate::context::{Context, color_enabled, safe_lines};

/// Success.
pub(crate) const OK: u8 = 0;
/// Any error without a more specific code.
pub(crate) const OTHER: u8 = 1;

/// The exit code for an [`ErrorCode`].
pub(crate) fn code_for(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::AuthRequired => 3,
        ErrorCode::AuthFailed => 4,
        ErrorCode::AuthCancelled => 5,
        ErrorCode::TokenExpired => 6,
        ErrorCode::TokenRefreshFailed => 7,
        ErrorCode::ConfigMissing => 8,
        ErrorCode::NotFound => 9,
        ErrorCode::Timeout => 10,
        ErrorCode::NetworkError => 11,
        ErrorCode::Storage => 12,
        ErrorCode::ConfigInvalid => 13,
        _ => OTHER,
    }
}

/// An error raised by the CLI itself, with its exit code and next step.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The next step of a provider error as this program's commands and flags (the library's
/// [`NextStep`] is data; its plain hint is used for advice that names no command).
///
/// `account_flag` (` --account NAME`, or empty) follows the provider in the sign-in commands it
/// suggests; when it is empty and the error is about an [account](ProviderError::account) other
/// than `default` (a provider's default account may be another), that account is named.
pub(crate) fn hint_for(e: &ProviderError, account_flag: &str) -> Option<String> {
    let Some(step) = e.next_step() else {
        return e.hint().map(str::to_owned);
    };
    let named;
    let account_flag = match e.account() {
        Some(account) if account_flag.is_empty() && !account.is_default() => {
            named = format!(" --account {account}");
            named.as_str()
        }
        _ => account_flag,
    };
    Some(match step {
        NextStep::SignIn { provider } => {
            format!("run `context-harness mcp auth {provider}{account_flag}`")
        }
        NextStep::SignInAndApprove { provider } => format!(
            "run `context-harness mcp auth {provider}{account_flag}` again and approve the request"
        ),
        NextStep::SignInWithoutResource => "the authorization server refuses the RFC 8707 `resource` parameter; for an MCP server URL, sign in with `mcp auth <url> --no-resource`".to_owned(),
        NextStep::ListProviders => {
            "run `context-harness mcp providers` to list known providers".to_owned()
        }
        NextStep::UsePreRegisteredClient => "the server may not allow dynamic registration; pass --client-id with a pre-registered client".to_owned(),
        NextStep::RegisterClient => {
            "register an OAuth client at the server and pass its id with --client-id".to_owned()
        }
        NextStep::SetClientId {
            env_var,
            provider,
            setup_url: None,
        } => format!("set {env_var}, pass --client-id, or add client_id to [providers.{provider}]"),
        NextStep::ChoosePorts => "free one of the ports or choose others with --port".to_owned(),
        NextStep::UseKeyringStorage => "use --storage auto or --storage keyring".to_owned(),
        NextStep::UseBrowserFlow { provider } => format!(
            "sign in with the browser (drop --device), or set device_auth_url in [providers.{provider}]"
        ),
        NextStep::AllowMoreTime => {
            "run the sign-in again, or allow more time with --timeout".to_owned()
        }
        NextStep::FixPermissions { command } => {
            format!("run `{command}` (after checking who changed it), then try again")
        }
        NextStep::FixStorageThenSignIn { provider } => format!(
            "free space or fix permissions, then run `context-harness mcp auth {provider}{account_flag}`"
        ),
        // A step added later: the library's own words.
        _ => step.to_string(),
    })
}

/// Prints `err` (and its next step) to stderr and returns the exit code.
///
/// Neither the providers' errors nor ours contain secrets; the server's `error_description` and the
/// error chain are shown only with `-v`.
pub(crate) fn report(err: &anyhow::Error, ctx: &Context) -> u8 {
    let (code, hint, description) = if let Some(e) = err.downcast_ref::<ProviderError>() {
        (
            code_for(e.code()),
            hint_for(e, &ctx.account_flag()),
            e.oauth_error_description().map(terminal_text),
        )
    } else if let Some(f) = err.downcast_ref::<Failure>() {
        (f.code, f.hint.clone(), None)
    } else {
        (OTHER, None, None)
    };
    let (red, yellow, reset) = if color_enabled() {
        ("\x1b[1;31m", "\x1b[1;33m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = std::io::stderr().lock();
    // Messages embed outside text (URLs, names, server answers): all of it goes through the one
    // terminal sanitiser; only our own colour codes stay.
    let _ = writeln!(out, "{red}error:{reset} {}", safe_lines(&err.to_string()));
    if ctx.verbose > 0 {
        if let Some(description) = description {
            let _ = writeln!(out, "  server said: {description}");
        }
        for cause in err.chain().skip(1) {
            let _ = writeln!(out, "  caused by: {}", safe_lines(&cause.to_string()));
        }
    }
    if let Some(hint) = hint {
        let _ = writeln!(out, "{yellow}hint:{reset} {}", safe_lines(&hint));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's hints name no command; the CLI renders the step with its flags.
    #[test]
    fn next_steps_render_as_cli_flags() {
        use context_harness_providers::{Environment, ProviderRegistry};
        let registry = ProviderRegistry::from_toml_str(
            "[providers.acme]\nauth_url = \"https://acme.example/auth\"\ntoken_url = \"https://acme.example/token\"\n",
            "providers.toml",
        );
        let Ok(registry) = registry else {
            panic!("{registry:?}");
        };
        let Err(err) = registry.resolve("acme", None, &Environment::empty()) else {
            panic!("resolved without a client id");
        };
        assert_eq!(
            err.hint(),
            Some("set ACME_CLIENT_ID, or add client_id to [providers.acme]")
        );
        assert_eq!(
            hint_for(&err, "").as_deref(),
            Some("set ACME_CLIENT_ID, pass --client-id, or add client_id to [providers.acme]")
        );
        let Err(err) = registry.resolve("atlassian", None, &Environment::empty()) else {
            panic!("resolved without a client id");
        };
        assert_eq!(hint_for(&err, "").as_deref(), err.hint());
        assert!(hint_for(&err, "").is_some_and(|h| h.starts_with("set ATLASSIAN_CLIENT_ID — ")));
    }

    #[test]
    fn every_error_code_has_its_own_exit_code() {
        let codes: std::collections::BTreeSet<u8> =
            ErrorCode::ALL.iter().map(|c| code_for(*c)).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(codes.iter().all(|c| *c >= 3));
    }
}
