//! Command-line arguments (clap derive). The names here are a public contract: scripts depend on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// OAuth 2.1 sign-in with PKCE for command-line programs.
#[derive(Debug, Parser)]
#[command(name = "context-harness", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// More diagnostics on stderr (repeatable: -v info, -vv debug, -vvv trace). `RUST_LOG` also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// Only print errors (and the data a command exists to print).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Configuration and token directory (default `~/.context-harness`).
    #[arg(long, global = true, env = "CONTEXT_HARNESS_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// Where tokens are kept: `auto` (keyring when usable, else file), `keyring` or `file`.
    #[arg(
        long,
        global = true,
        env = "CONTEXT_HARNESS_STORAGE",
        value_enum,
        value_name = "BACKEND"
    )]
    pub(crate) storage: Option<StorageArg>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The token storage backend chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StorageArg {
    /// Keyring when a write probe succeeds, else the 0600 file store.
    Auto,
    /// The system keyring only.
    Keyring,
    /// The file store only (`<home>/tokens/<provider>.json`, mode 0600).
    File,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sign in to providers and MCP servers, and manage their tokens.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `context-harness mcp …` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Sign in with the browser (or `--device`) and store the tokens.
    Auth(AuthArgs),
    /// Show whether each provider is signed in, when its token expires, its scopes and storage.
    Status {
        /// One provider (default: every known provider).
        provider: Option<String>,
        /// Machine-readable output (see the README for the schema).
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token, refreshing it first when needed.
    Token {
        /// The provider name or MCP server URL.
        provider: String,
        /// Print `{access_token, token_type, expires_at}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the stored tokens now.
    Refresh {
        /// The provider name or MCP server URL.
        provider: String,
    },
    /// Revoke the tokens at the provider (when it supports it) and delete them here.
    Logout {
        /// The provider name or MCP server URL.
        provider: String,
        /// Delete the local tokens without contacting the provider.
        #[arg(long)]
        local_only: bool,
    },
    /// List built-in and configured providers.
    Providers {
        /// Machine-readable output (see the README for the schema).
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `context-harness mcp auth`.
#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// The provider name (`github`, `atlassian`, one from providers.toml) or an MCP server URL.
    pub(crate) provider: String,
    /// OAuth client id (default: `{PROVIDER}_CLIENT_ID`, then providers.toml).
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// Scope to request (repeatable; default: the provider's scopes).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
    /// Do not open a browser: print the URL (and accept a pasted redirect URL on a terminal).
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
    /// Loopback port to listen on (repeatable, tried in order; default 8080, 3000, 57548).
    #[arg(long = "port", value_name = "PORT")]
    pub(crate) ports: Vec<u16>,
    /// Use the device authorization grant (RFC 8628) instead of the browser redirect.
    #[arg(long)]
    pub(crate) device: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
