//! What every command needs: the home directory, the storage mode and the output settings.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use context_harness_providers::storage::{AccountName, StorageMode};
use context_harness_providers::{OAuthService, terminal_text_max};

/// Settings shared by all commands, taken from the global options (built from them in `main`).
#[derive(Debug)]
pub(crate) struct Context {
    /// `--home` / `CONTEXT_HARNESS_HOME`; `None` means `~/.context-harness`.
    pub(crate) home: Option<PathBuf>,
    /// `--storage` / `CONTEXT_HARNESS_STORAGE` (default auto).
    pub(crate) storage: StorageMode,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// `-q`.
    pub(crate) quiet: bool,
    /// `--client-metadata-url` of `mcp auth` / `mcp proxy` (the service's builder option, so every
    /// sign-in the command runs uses it).
    pub(crate) client_metadata_url: Option<String>,
    /// `--account NAME` of the command (`mcp auth|token|status|refresh|logout|proxy|headers`, …):
    /// the account every provider is used with (the builder's option; checked when the service is
    /// built). `None`: each provider's default account.
    pub(crate) account: Option<String>,
}

impl Context {
    /// The service. Cheap: no HTTP client, no file read, no keyring access until used.
    pub(crate) fn service(&self) -> context_harness_providers::Result<OAuthService> {
        let mut builder = OAuthService::builder().storage_mode(self.storage);
        if let Some(home) = &self.home {
            builder = builder.home(home);
        }
        if let Some(url) = &self.client_metadata_url {
            builder = builder.client_metadata_url(url);
        }
        if let Some(account) = &self.account {
            builder = builder.account(account);
        }
        builder.build()
    }

    /// ` --account NAME` when the command named an account (for the commands a hint suggests),
    /// else nothing.
    pub(crate) fn account_flag(&self) -> String {
        self.account
            .as_deref()
            .and_then(|a| AccountName::new(a).ok())
            .map(|a| format!(" --account {a}"))
            .unwrap_or_default()
    }

    /// ` --account NAME` for a hint about `account`'s tokens: named whenever the command named an
    /// account or `account` (the provider's default account, resolved) is not `default`.
    pub(crate) fn account_flag_of(&self, account: &str) -> String {
        if self.account.is_none() && account == context_harness_providers::storage::DEFAULT_ACCOUNT
        {
            String::new()
        } else {
            format!(" --account {account}")
        }
    }

    /// Runs `future` on a fresh current-thread runtime: only commands that need the network call this.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> anyhow::Result<F::Output> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let output = runtime.block_on(future);
        // A stdin reader thread (pasted redirect URL) may still be blocked; do not wait for it.
        runtime.shutdown_background();
        Ok(output)
    }

    /// Prints a message line to stderr unless `-q`.
    /// Prints a message to stderr unless `-q`; every line goes through the terminal sanitiser,
    /// since messages embed outside text (names, URLs, server answers).
    pub(crate) fn say(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}",
                safe_lines(&message.to_string())
            );
        }
    }
}

/// The longest line of a message built around outside text ([`safe_lines`]).
pub(crate) const MAX_MESSAGE_LINE: usize = 2000;

/// `text` with every line through the one terminal sanitiser (control, format and bidi characters
/// replaced), lines kept apart.
pub(crate) fn safe_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| terminal_text_max(line, MAX_MESSAGE_LINE))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether stderr gets ANSI colours: a terminal, and `NO_COLOR` unset or empty.
pub(crate) fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
