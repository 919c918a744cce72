//! A program that embeds the library under its own name, `my-tool`: its tokens live in the keyring
//! under the service `my-tool` (or in `~/.my-tool/tokens` when there is no keyring), its
//! configuration in `$MY_TOOL_HOME` (default `~/.my-tool`, with `providers.toml` there), and the
//! servers see `User-Agent: my-tool/1.0.0`. Nothing it writes is named context-harness.
//!
//! ```sh
//! export GITHUB_CLIENT_ID=...   # an OAuth app with http://localhost:8080/callback
//! cargo run -p context-harness-providers --features keyring --example my_tool -- github https://api.github.com/user
//! ```
//!
//! [`access_token`] is the whole sign-in logic: one call that returns a valid token, refreshing or
//! signing in only when needed; a [`SignInUi`] says what the user must do. The token is never
//! printed.

// An example program talks to its user on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use context_harness_providers::protocol::DeviceAuthorization;
use context_harness_providers::{
    AccessToken, AuthenticateOptions, Error, OAuthService, OAuthServiceBuilder, SignInUi,
    terminal_text,
};

/// The program's name: keyring service, home (`~/.my-tool`), `MY_TOOL_HOME`, `MY_TOOL_STORAGE`.
pub(crate) const APP: &str = "my-tool";

/// A service builder for `my-tool` (callers may add a home, an environment, a browser opener).
pub(crate) fn builder() -> OAuthServiceBuilder {
    OAuthService::builder().app(APP).app_version("1.0.0")
}

/// What my-tool shows during a sign-in (server text goes through the terminal sanitiser).
pub(crate) struct Terminal;

impl SignInUi for Terminal {
    fn opening_browser(&self, _url: &str) {
        eprintln!("my-tool: opening your browser to sign in…");
    }

    fn browser_failed(&self, url: &str, _error: &std::io::Error) {
        eprintln!("my-tool: open this URL in a browser to sign in:\n  {url}");
    }

    fn device_code(&self, device: &DeviceAuthorization) {
        eprintln!(
            "my-tool: open {} and enter the code {}",
            terminal_text(&device.verification_uri),
            terminal_text(&device.user_code)
        );
    }
}

/// A valid access token for `provider`: the stored one, a refreshed one, or — only when that is
/// what helps ([`Error::needs_sign_in`]) — one from a new sign-in.
pub(crate) async fn access_token(
    service: &OAuthService,
    provider: &str,
) -> Result<AccessToken, Error> {
    service
        .token_with(provider, AuthenticateOptions::new().ui(Terminal))
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(provider) = args.next() else {
        eprintln!("usage: my_tool <provider> [url]");
        return ExitCode::from(2);
    };
    match run(&provider, args.next()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("my-tool: error [{}]: {e}", e.code());
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(provider: &str, url: Option<String>) -> Result<(), Error> {
    let service = builder().build()?;
    access_token(&service, provider).await?;
    eprintln!(
        "my-tool: signed in to {provider}; tokens in {}",
        service.storage_location(provider)?
    );
    if let Some(url) = url {
        let (status, body) = service.get_with_token(provider, &url).await?;
        println!("HTTP {status}");
        println!("{}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
