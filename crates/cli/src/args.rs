//! Command-line arguments (clap derive). The names here are a public contract: scripts depend on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use context_harness_providers::protocol::JwsAlgorithm;
use context_harness_providers::{GrantOptions, GrantType};

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
    /// git's credential helper (`git help credential`): `get` answers a host mapped to a provider
    /// (github.com, gitlab.com, `git_hosts` in providers.toml) with a valid access token for the
    /// account git's `username` names; `store` does nothing; `erase` after a refused token makes
    /// the next `get` refresh it (or sign in). Configure it with `git config --global
    /// credential.https://github.com.helper "context-harness git-credential"`.
    #[command(name = "git-credential")]
    GitCredential {
        /// The operation git asks for: `get`, `store` or `erase` (any other is ignored, as git
        /// asks of its helpers).
        #[arg(value_name = "OPERATION")]
        operation: String,
        /// Seconds to wait at most for a sign-in (as `mcp token`).
        #[arg(long, value_name = "SECS", default_value_t = TOKEN_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Never start a sign-in (as `mcp token --no-sign-in`): without a usable token, answer
        /// nothing (git asks its next helper, or the user).
        #[arg(long)]
        no_sign_in: bool,
    },
    /// Run a command with a valid access token in one environment variable (default
    /// `{PROVIDER}_TOKEN`, e.g. GITHUB_TOKEN; MCP_TOKEN for a server URL); the exit status is the
    /// command's.
    Exec(ExecArgs),
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
    /// Show whether each provider (each account of it) is signed in, when its token expires, its
    /// scopes and storage.
    Status {
        /// One provider (default: every known provider).
        provider: Option<String>,
        /// Machine-readable output (see the README for the schema).
        #[arg(long)]
        json: bool,
        /// Only this account of each provider (default: every account).
        #[command(flatten)]
        account: AccountArg,
    },
    /// Print a valid access token, refreshing it first when needed (and waiting for a sign-in
    /// another process is running for it).
    Token {
        /// The provider name or MCP server URL.
        provider: String,
        #[command(flatten)]
        account: AccountArg,
        /// Print `{access_token, token_type, expires_at, account}` as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds to wait at most for a sign-in: the one this command starts when there is no
        /// usable token, or the one another process is running for the same provider.
        #[arg(long, value_name = "SECS", default_value_t = TOKEN_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Never start a sign-in: without a usable token, exit 3 (after waiting for a sign-in
        /// another process is running).
        #[arg(long)]
        no_sign_in: bool,
    },
    /// Print the HTTP headers that present the stored token on one request, as a JSON object:
    /// `{"Authorization": "Bearer …"}`, or for a DPoP-bound token `{"Authorization": "DPoP …",
    /// "DPoP": "<proof>"}` with a fresh proof for --method and --url (the format MCP hosts'
    /// headers helpers read).
    Headers {
        /// The provider name or MCP server URL.
        provider: String,
        #[command(flatten)]
        account: AccountArg,
        /// The HTTP method of the request the headers are for (DPoP `htm`).
        #[arg(long, value_name = "METHOD", default_value = "POST")]
        method: String,
        /// The URL of the request the headers are for (DPoP `htu`; default: the MCP server URL).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// A nonce the resource server asked for (its `DPoP-Nonce` header), put in the proof.
        #[arg(long, value_name = "NONCE")]
        nonce: Option<String>,
        /// JSON output (the default; accepted for scripts that say so).
        #[arg(long)]
        json: bool,
        /// Seconds to wait at most for a sign-in (as `mcp token`).
        #[arg(long, value_name = "SECS", default_value_t = TOKEN_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Never start a sign-in (as `mcp token --no-sign-in`).
        #[arg(long)]
        no_sign_in: bool,
    },
    /// Refresh the stored tokens now.
    Refresh {
        /// The provider name or MCP server URL.
        provider: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Revoke the tokens at the provider (when it supports it) and delete them here.
    Logout {
        /// The provider name or MCP server URL.
        provider: String,
        /// The account to sign out of (default: the provider's default account; the other
        /// accounts stay signed in).
        #[command(flatten)]
        account: AccountArg,
        /// Delete the local tokens without contacting the provider.
        #[arg(long)]
        local_only: bool,
    },
    /// Bridge a stdio MCP client to a remote MCP server (Streamable HTTP or legacy HTTP+SSE), signed
    /// in with the stored tokens (refreshed, or a browser sign-in when needed).
    Proxy(Box<ProxyArgs>),
    /// List built-in and configured providers.
    Providers {
        /// Machine-readable output (see the README for the schema).
        #[arg(long)]
        json: bool,
    },
}

/// `--account NAME`: which of a provider's signed-in accounts a command uses.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AccountArg {
    /// The account (any name: `work`, your e-mail address or user name; 1 to 64 letters, digits,
    /// `.`, `_`, `@`, `+`, `-`). Default: the provider's default account, the first one signed in
    /// (change it with `mcp auth PROVIDER --account NAME --default`).
    #[arg(long, value_name = "NAME")]
    pub(crate) account: Option<String>,
}

impl Command {
    /// The `--account` the command names, if any (the service of its [`Context`](crate::context::Context) uses it).
    pub(crate) fn account(&self) -> Option<&str> {
        let arg = match self {
            Self::Mcp(
                McpCommand::Status { account, .. }
                | McpCommand::Token { account, .. }
                | McpCommand::Headers { account, .. }
                | McpCommand::Refresh { account, .. }
                | McpCommand::Logout { account, .. },
            ) => account,
            Self::Mcp(McpCommand::Auth(args)) => &args.sign_in.account,
            Self::Mcp(McpCommand::Proxy(args)) => &args.sign_in.account,
            Self::Exec(args) => &args.account,
            _ => return None,
        };
        arg.account.as_deref()
    }
}

/// `mcp token --timeout`'s default: as long as a sign-in waits for the user by default.
pub(crate) const TOKEN_WAIT_SECS: u64 = 300;

/// The sign-in options `mcp auth` and `mcp proxy` share: they mean the same in both (the proxy signs
/// in as `mcp auth <url>` would).
#[derive(Debug, Args)]
pub(crate) struct SignInArgs {
    #[command(flatten)]
    pub(crate) account: AccountArg,
    /// OAuth client id (default: `{PROVIDER}_CLIENT_ID`, then providers.toml; for a server URL, a
    /// dynamically registered client).
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// Scope to request (repeatable; default: the provider's or the server's scopes).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
    /// Seconds to wait for the sign-in: the browser coming back, or the device-flow approval.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
    /// Loopback port to listen on (repeatable, tried in order; default 8080, 3000, 57548).
    #[arg(long = "port", value_name = "PORT")]
    pub(crate) ports: Vec<u16>,
    /// MCP server URLs only: leave out the RFC 8707 `resource` parameter (for authorization servers
    /// that answer `invalid_target`); remembered, so refresh leaves it out too.
    #[arg(long)]
    pub(crate) no_resource: bool,
    /// MCP server URLs only: never bind the tokens to a DPoP key (RFC 9449), even when the
    /// authorization server offers DPoP (by default it is used then).
    #[arg(long)]
    pub(crate) no_dpop: bool,
    /// MCP server URLs only: the https URL of this app's Client ID Metadata Document, used as the
    /// client id where the authorization server accepts one (default:
    /// CONTEXT_HARNESS_CLIENT_METADATA_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) client_metadata_url: Option<String>,
    /// The OAuth grant: `authorization_code` (the browser; the default of `mcp auth`),
    /// `client_credentials` (a machine client: --client-id, and its secret from
    /// CONTEXT_HARNESS_CLIENT_SECRET(_FILE) or --private-key-file), `jwt_bearer` (a workload
    /// identity token from --assertion-file), `id_jag` (Enterprise-Managed Authorization: the
    /// user's ID token from --idp-issuer exchanged for an ID-JAG). Without it `mcp proxy` renews
    /// stored tokens with the grant that obtained them.
    #[arg(long, value_enum, value_name = "GRANT")]
    pub(crate) grant_type: Option<GrantTypeArg>,
    /// client_credentials / jwt_bearer: authenticate the client with an RFC 7523 `private_key_jwt`
    /// assertion signed by this PEM private key (PKCS#8, or PKCS#1 RSA; your own file, mode 0600).
    #[arg(long, value_name = "PEM")]
    pub(crate) private_key_file: Option<PathBuf>,
    /// The JWS algorithm of that assertion: ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512
    /// or EdDSA (default: the key's own, e.g. ES256 for a P-256 key).
    #[arg(long, value_name = "ALG", value_parser = parse_signing_alg, requires = "private_key_file")]
    pub(crate) signing_alg: Option<JwsAlgorithm>,
    /// jwt_bearer: the file holding the workload identity token (a JWT), read again at every token
    /// request (symbolic links followed; yours with mode 0600, or root's when you are not root).
    #[arg(long, value_name = "FILE")]
    pub(crate) assertion_file: Option<PathBuf>,
    /// The options of Enterprise-Managed Authorization (boxed: rarely given).
    #[command(flatten)]
    pub(crate) idp: Box<IdpArgs>,
}

/// The options of `--grant-type id_jag` (Enterprise-Managed Authorization).
#[derive(Debug, Args)]
pub(crate) struct IdpArgs {
    /// id_jag: the enterprise identity provider's issuer URL (discovery is read from it). Its
    /// client secret, if it wants one, from CONTEXT_HARNESS_IDP_CLIENT_SECRET(_FILE).
    #[arg(long, value_name = "URL")]
    pub(crate) idp_issuer: Option<String>,
    /// id_jag: this client's id at the identity provider.
    #[arg(long, value_name = "ID")]
    pub(crate) idp_client_id: Option<String>,
    /// id_jag: a file holding the user's ID token from the identity provider, read again at every
    /// token exchange (yours with mode 0600, or root's when you are not root). Without it, you
    /// sign in to the identity provider in the browser (OpenID Connect) and its tokens are kept.
    #[arg(long, value_name = "FILE")]
    pub(crate) id_token_file: Option<PathBuf>,
}

/// `--grant-type` values (the names are a contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum GrantTypeArg {
    /// The authorization code grant with PKCE, through the browser (or `--device`).
    AuthorizationCode,
    /// The client credentials grant (RFC 6749 §4.4): no user, no browser.
    ClientCredentials,
    /// The JWT-bearer grant (RFC 7523 §2.1) with a workload identity token.
    JwtBearer,
    /// Enterprise-Managed Authorization: an ID-JAG from the identity provider, then the
    /// JWT-bearer grant.
    IdJag,
}

impl GrantTypeArg {
    fn grant(self) -> GrantType {
        match self {
            Self::AuthorizationCode => GrantType::AuthorizationCode,
            Self::ClientCredentials => GrantType::ClientCredentials,
            Self::JwtBearer => GrantType::JwtBearer,
            Self::IdJag => GrantType::IdJag,
        }
    }
}

/// The exit code of a usage error (clap's own).
const USAGE_ERROR: u8 = 2;

/// Parses `--signing-alg` (RFC 7518 names, case-sensitive).
fn parse_signing_alg(value: &str) -> Result<JwsAlgorithm, String> {
    JwsAlgorithm::parse(value).ok_or_else(|| {
        let names: Vec<&str> = JwsAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

impl SignInArgs {
    /// The grant options of these arguments; `default` when `--grant-type` is not given
    /// (`mcp auth`: the authorization code grant; `mcp proxy`: as the stored tokens were obtained).
    ///
    /// # Errors
    ///
    /// A usage error (exit 2) for a key or assertion file without a grant that uses it.
    pub(crate) fn grant_options(
        &self,
        default: Option<GrantType>,
    ) -> Result<GrantOptions, crate::exit::Failure> {
        let grant = self.grant_type.map(GrantTypeArg::grant).or(default);
        let machine = matches!(
            grant,
            Some(GrantType::ClientCredentials | GrantType::JwtBearer | GrantType::IdJag)
        );
        let usage = |what: &str, grants: &str| {
            crate::exit::Failure::new(
                USAGE_ERROR,
                format!("{what} is for --grant-type {grants}"),
                Some(format!("add --grant-type {grants}")),
            )
        };
        if self.private_key_file.is_some() && !machine {
            return Err(usage(
                "--private-key-file",
                "client_credentials or jwt_bearer",
            ));
        }
        if self.assertion_file.is_some() && grant != Some(GrantType::JwtBearer) {
            return Err(usage("--assertion-file", "jwt_bearer"));
        }
        let idp = [
            ("--idp-issuer", self.idp.idp_issuer.is_some()),
            ("--idp-client-id", self.idp.idp_client_id.is_some()),
            ("--id-token-file", self.idp.id_token_file.is_some()),
        ];
        if let Some((flag, _)) = idp.iter().find(|(_, given)| *given)
            && grant != Some(GrantType::IdJag)
        {
            return Err(usage(flag, "id_jag"));
        }
        let mut options = GrantOptions::default();
        options.grant_type = grant;
        options.private_key_file.clone_from(&self.private_key_file);
        options.signing_alg = self.signing_alg;
        options.assertion_file.clone_from(&self.assertion_file);
        options.idp_issuer.clone_from(&self.idp.idp_issuer);
        options.idp_client_id.clone_from(&self.idp.idp_client_id);
        options.id_token_file.clone_from(&self.idp.id_token_file);
        Ok(options)
    }
}

/// Arguments of `context-harness mcp auth`.
#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// The provider name (`github`, `atlassian`, `gitlab`, one from providers.toml) or an MCP
    /// server URL.
    pub(crate) provider: String,
    #[command(flatten)]
    pub(crate) sign_in: SignInArgs,
    /// Do not open a browser: print the URL (and accept a pasted redirect URL on a terminal).
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Use the device authorization grant (RFC 8628) instead of the browser redirect.
    #[arg(long)]
    pub(crate) device: bool,
    /// Make --account the provider's default account (the one commands use without --account).
    /// When that account is signed in already, only the default changes (no sign-in).
    #[arg(long, requires = "account")]
    pub(crate) default: bool,
}

/// Arguments of `context-harness exec`.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The provider name or MCP server URL.
    pub(crate) provider: String,
    #[command(flatten)]
    pub(crate) account: AccountArg,
    /// The environment variable that carries the token (default `{PROVIDER}_TOKEN`: the provider
    /// name upper-cased, other characters than letters and digits as `_`; `MCP_TOKEN` for an MCP
    /// server URL).
    #[arg(long = "env", value_name = "NAME")]
    pub(crate) env: Option<String>,
    /// Seconds to wait at most for a sign-in (as `mcp token`).
    #[arg(long, value_name = "SECS", default_value_t = TOKEN_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
    /// Never start a sign-in (as `mcp token --no-sign-in`): without a usable token, exit 3.
    #[arg(long)]
    pub(crate) no_sign_in: bool,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// Arguments of `context-harness mcp proxy`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The MCP server URL (the same one given to `mcp auth`; tokens are shared).
    pub(crate) url: String,
    /// The sign-in options, when a sign-in is needed (as for `mcp auth`).
    #[command(flatten)]
    pub(crate) sign_in: SignInArgs,
    /// An extra header on every request to the server, `'Name: value'` (repeatable). Other local
    /// users can read the command line: give a secret with --header-file or --header-env.
    #[arg(long = "header", value_name = "HEADER", value_parser = context_harness_mcp_bridge::parse_header)]
    pub(crate) headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// Extra headers from a file of `Name: value` lines (repeatable; blank lines and `#` comments
    /// skipped). The file must be yours, not a symbolic link, and readable by you only (chmod 600).
    #[arg(long = "header-file", value_name = "PATH")]
    pub(crate) header_files: Vec<PathBuf>,
    /// An extra header whose value is the whole value of the environment variable VAR,
    /// `'Name: VAR'` (repeatable), e.g. `--header-env 'X-Api-Key: ACME_API_KEY'`.
    #[arg(long = "header-env", value_name = "HEADER", value_parser = context_harness_mcp_bridge::parse_header_env)]
    pub(crate) header_envs: Vec<(reqwest::header::HeaderName, String)>,
    /// Seconds a request may wait for its answer; then the client gets an error (`data.code`
    /// `timeout`) and the server `notifications/cancelled`. A progress notification for the request
    /// restarts the clock, up to 10 times this in all; time spent signing in does not count.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) request_timeout: u64,
}

impl Cli {
    /// The parse of the hot path, `context-harness mcp token NAME [--account ACCOUNT] [--json]` with
    /// the global options from the environment only, without building clap's command tree (that is
    /// ~30 % of the instructions of a cached `mcp token`; see the Performance section of the README).
    /// `None` for anything else, including an unusual environment value: clap then parses (and
    /// reports errors) as usual.
    pub(crate) fn parse_token_fast_path() -> Option<Self> {
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        Self::token_fast_path(
            &args,
            std::env::var_os("CONTEXT_HARNESS_HOME"),
            std::env::var_os("CONTEXT_HARNESS_STORAGE"),
        )
    }

    /// [`parse_token_fast_path`](Self::parse_token_fast_path) with the arguments (without the program
    /// name) and the two variables given.
    fn token_fast_path(
        args: &[std::ffi::OsString],
        home: Option<std::ffi::OsString>,
        storage: Option<std::ffi::OsString>,
    ) -> Option<Self> {
        let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        let (provider, json, account) = match args.as_slice() {
            ["mcp", "token", provider] => (*provider, false, None),
            ["mcp", "token", provider, "--json"] => (*provider, true, None),
            ["mcp", "token", provider, "--account", account] => (*provider, false, Some(*account)),
            ["mcp", "token", provider, "--account", account, "--json"]
            | ["mcp", "token", provider, "--json", "--account", account] => {
                (*provider, true, Some(*account))
            }
            _ => return None,
        };
        if provider.is_empty() || provider.starts_with('-') {
            return None;
        }
        // A value that looks like an option is clap's to report.
        if account.is_some_and(|a| a.starts_with('-')) {
            return None;
        }
        let home = match home {
            None => None,
            Some(h) if h.is_empty() => return None,
            Some(h) => Some(PathBuf::from(h)),
        };
        let storage = match storage.as_ref().map(|s| s.to_str()) {
            None => None,
            Some(Some("auto")) => Some(StorageArg::Auto),
            Some(Some("keyring")) => Some(StorageArg::Keyring),
            Some(Some("file")) => Some(StorageArg::File),
            Some(_) => return None,
        };
        Some(Self {
            verbose: 0,
            quiet: false,
            home,
            storage,
            command: Command::Mcp(McpCommand::Token {
                provider: provider.to_owned(),
                account: AccountArg {
                    account: account.map(str::to_owned),
                },
                json,
                timeout: TOKEN_WAIT_SECS,
                no_sign_in: false,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    /// Arguments, `CONTEXT_HARNESS_HOME`, `CONTEXT_HARNESS_STORAGE`, whether the fast path applies.
    type Case = (
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    /// The fast path gives exactly what clap gives (the environment is passed as the equivalent
    /// flags to clap, so the test does not depend on or change the process environment).
    #[test]
    fn token_fast_path_matches_clap() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let cases: &[Case] = &[
            (&["mcp", "token", "github"], None, None, true),
            (&["mcp", "token", "github", "--json"], None, None, true),
            (
                &["mcp", "token", "github", "--account", "work"],
                None,
                None,
                true,
            ),
            (
                &[
                    "mcp",
                    "token",
                    "github",
                    "--account",
                    "a@b.example",
                    "--json",
                ],
                None,
                None,
                true,
            ),
            (
                &["mcp", "token", "github", "--json", "--account", "Work"],
                None,
                None,
                true,
            ),
            (
                &["mcp", "token", "github", "--account", ""],
                None,
                None,
                true,
            ),
            (
                &["mcp", "token", "https://mcp.example/mcp"],
                None,
                None,
                true,
            ),
            (
                &["mcp", "token", "github"],
                Some("/tmp/h"),
                Some("file"),
                true,
            ),
            (&["mcp", "token", "github"], None, Some("keyring"), true),
            (&["mcp", "token", "github"], None, Some("auto"), true),
            // Left to clap:
            (&["mcp", "token", "github"], None, Some("File"), false),
            (&["mcp", "token", "github"], None, Some("bogus"), false),
            (&["mcp", "token", "github"], Some(""), None, false),
            (&["mcp", "token", "--help"], None, None, false),
            (&["mcp", "token", "-v"], None, None, false),
            (&["mcp", "token"], None, None, false),
            (&["-v", "mcp", "token", "github"], None, None, false),
            (&["mcp", "token", "github", "-q"], None, None, false),
            (
                &["mcp", "token", "github", "--account", "-x"],
                None,
                None,
                false,
            ),
            (
                &["mcp", "token", "github", "--account=work"],
                None,
                None,
                false,
            ),
            (&["mcp", "token", "github", "--account"], None, None, false),
            (&["mcp", "status", "github"], None, None, false),
        ];
        for &(args, home, storage, fast) in cases {
            let got = Cli::token_fast_path(
                &os(args),
                home.map(OsString::from),
                storage.map(OsString::from),
            );
            assert_eq!(got.is_some(), fast, "{args:?} {home:?} {storage:?}");
            let Some(got) = got else { continue };
            let mut argv = vec!["context-harness"];
            if let Some(h) = home {
                argv.extend(["--home", h]);
            }
            if let Some(s) = storage {
                argv.extend(["--storage", s]);
            }
            argv.extend(args);
            let by_clap = Cli::try_parse_from(&argv).map(|c| format!("{c:?}"));
            assert_eq!(by_clap.ok(), Some(format!("{got:?}")), "{argv:?}");
        }
    }
}
