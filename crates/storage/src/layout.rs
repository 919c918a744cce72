//! The layout of the home directory (`$CONTEXT_HARNESS_HOME`, default `~/.context-harness`): the one
//! place that says what lives where in it.
//!
//! ```text
//! home/
//!   providers.toml        custom providers (read only)
//!   tokens/               token files (0600), the refresh locks, recovery files, the backend record
//!   mcp/                  one record per signed-in MCP server (`<provider name>.json`)
//!   registrations/        dynamic client registrations (RFC 7591), one per issuer
//!   cache/discovery/      authorization server metadata (RFC 8414), cached for a day
//! ```

use std::path::{Path, PathBuf};

/// The token directory, relative to the home directory.
pub const TOKENS_DIR: &str = "tokens";
/// The directory of MCP server records, relative to the home directory.
pub const MCP_DIR: &str = "mcp";
/// The directory of dynamic client registrations, relative to the home directory.
pub const REGISTRATIONS_DIR: &str = "registrations";
/// The cache directory, relative to the home directory.
pub const CACHE_DIR: &str = "cache";
/// The discovery cache, relative to the home directory.
pub const DISCOVERY_CACHE_DIR: &str = "cache/discovery";
/// The custom providers file, relative to the home directory.
pub const PROVIDERS_FILE: &str = "providers.toml";

/// The paths under one home directory. Borrowing and cheap; does no I/O.
///
/// ```
/// use std::path::Path;
/// use context_harness_storage::HomeLayout;
///
/// let home = HomeLayout::new(Path::new("/h"));
/// assert_eq!(home.tokens_dir(), Path::new("/h/tokens"));
/// assert_eq!(home.providers_toml(), Path::new("/h/providers.toml"));
/// assert_eq!(home.discovery_cache_dir(), Path::new("/h/cache/discovery"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeLayout<'a> {
    root: &'a Path,
}

impl<'a> HomeLayout<'a> {
    /// The layout of the home directory `root`.
    pub fn new(root: &'a Path) -> Self {
        Self { root }
    }

    /// The home directory itself.
    pub fn root(&self) -> &'a Path {
        self.root
    }

    /// `home/tokens`: the token files and the backend record.
    pub fn tokens_dir(&self) -> PathBuf {
        self.root.join(TOKENS_DIR)
    }

    /// Where the per-provider refresh locks live by default (the token directory).
    pub fn lock_dir(&self) -> PathBuf {
        self.tokens_dir()
    }

    /// `home/mcp`: one record per signed-in MCP server.
    pub fn mcp_dir(&self) -> PathBuf {
        self.root.join(MCP_DIR)
    }

    /// `home/registrations`: dynamic client registrations.
    pub fn registrations_dir(&self) -> PathBuf {
        self.root.join(REGISTRATIONS_DIR)
    }

    /// `home/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(CACHE_DIR)
    }

    /// `home/cache/discovery`: cached authorization server metadata.
    pub fn discovery_cache_dir(&self) -> PathBuf {
        self.root.join(DISCOVERY_CACHE_DIR)
    }

    /// `home/providers.toml`: the custom providers.
    pub fn providers_toml(&self) -> PathBuf {
        self.root.join(PROVIDERS_FILE)
    }
}
