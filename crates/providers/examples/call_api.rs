//! Sign in to a provider (if needed), then call an API with the bearer token.
//!
//! ```sh
//! export GITHUB_CLIENT_ID=...            # an OAuth app with http://localhost:8080/callback
//! cargo run -p context-harness-providers --example call_api -- github https://api.github.com/user
//! ```
//!
//! Without a URL it calls the provider's `resources_url` (GitHub: `/user`; Atlassian:
//! accessible-resources). Tokens are stored under `$CONTEXT_HARNESS_HOME` (default
//! `~/.context-harness`) and refreshed automatically on later runs. The token itself is never printed.

// An example program talks to its user on stdout/stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use context_harness_providers::{AuthenticateOptions, Error, OAuthService, SignInUi};

/// Shows the sign-in URL when no browser can be opened.
struct ShowUrl;

impl SignInUi for ShowUrl {
    fn browser_failed(&self, url: &str, _error: &std::io::Error) {
        eprintln!("Open this URL in a browser to sign in:\n  {url}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(provider) = args.next() else {
        eprintln!("usage: call_api <provider> [url]");
        return ExitCode::from(2);
    };
    match run(&provider, args.next()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(provider: &str, url: Option<String>) -> Result<(), Error> {
    let service = OAuthService::new()?;

    // Fast path: a cached, still-valid token needs no network at all. Otherwise one call refreshes,
    // or signs in only when that is what helps (`Error::needs_sign_in`).
    if service.cached_valid_token(provider)?.is_none() {
        service
            .token_with(provider, AuthenticateOptions::new().ui(ShowUrl))
            .await?;
        eprintln!(
            "signed in; tokens stored in {}",
            service.storage_location(provider)?
        );
    }

    let url = match url {
        Some(url) => url,
        None => service
            .registry()?
            .get(provider)?
            .resources_url
            .clone()
            .unwrap_or_default(),
    };
    if url.is_empty() {
        eprintln!("signed in to {provider}; pass a URL to call an API");
        return Ok(());
    }
    let (status, body) = service.get_with_token(provider, &url).await?;
    println!("HTTP {status}");
    println!("{}", String::from_utf8_lossy(&body));
    Ok(())
}
