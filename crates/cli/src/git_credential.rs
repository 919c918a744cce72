//! `context-harness git-credential <get|store|erase>`: git's credential helper protocol
//! (gitcredentials(7); git-credential(1), "INPUT/OUTPUT FORMAT") on stdin and stdout.
//!
//! - **`get`**: for a remote whose `host` a provider claims
//!   ([`OAuthProvider::serves_git_host`](context_harness_providers::OAuthProvider::serves_git_host):
//!   `github.com` → `github`, `gitlab.com` → `gitlab` (both built in), any `git_hosts` of
//!   `providers.toml`), over `https` (or `http` to a loopback host), a valid access token, got
//!   exactly as `mcp token` gets one ([`valid_tokens_of`]: cached, else refreshed, else a sign-in).
//!   git's `username` names the account (`oauth2` in any case, the user name this helper answers
//!   when git has none, means the default account). Only the default account, or an account that
//!   is signed in already, is used: a user name in a remote URL (or in a hostile `.gitmodules`)
//!   never starts a sign-in of a new account nor creates a file for one. For any other user name
//!   (an account not signed in, or not an account name at all) there is no answer (exit 0, git
//!   moves on) and a line on stderr says to run `mcp auth <provider> --account NAME` first. Errors
//!   name the account in their hints (`--account NAME`). When git announces
//!   `capability[]=authtype` (git 2.46 and later) the answer is `authtype=Bearer` +
//!   `credential=<token>` + `ephemeral=1`: git sends `Authorization: Bearer <token>`, and no
//!   storage helper keeps it (`store` needs a password, `cache` refuses an ephemeral credential).
//!   Otherwise it is `password=<token>` (and `username=oauth2` when git has no user name) for HTTP
//!   Basic. `password_expiry_utc` is the token's expiry when known. Any other host or protocol: no
//!   answer (exit 0), so git asks its next helper.
//! - **`store`**: nothing (git calls it after a success; the token is already stored here).
//! - **`erase`**: git calls it after the server refused the credential. When the refused token is
//!   the one stored for that account (compared in constant time, under the provider's refresh
//!   lock), the library marks that access token expired
//!   ([`OAuthService::access_token_rejected`](context_harness_providers::OAuthService::access_token_rejected)):
//!   the refresh token stays, so the next `get` refreshes, and signs in only when there is no
//!   usable refresh token. A token that is not the stored one (another helper's password, a token
//!   another process already replaced), or a user name that is no signed-in account, changes
//!   nothing; an account with nothing stored (the default one before any sign-in) creates no
//!   lock file either.
//! - Any other operation is ignored, as git asks of helpers; `capability` prints this helper's
//!   capabilities (`version 0`, `capability authtype`).
//!
//! Input follows git's rules: `key=value` lines up to a blank line or the end of input, each at
//! most 65535 bytes with its newline; a line without `=` (or holding a NUL byte) is malformed:
//! an error on stderr, exit 2, nothing on stdout. Unknown keys are ignored; `key[]=` (empty)
//! clears a multi-valued key; `url=` stands for the attributes of that URL. Nothing read or
//! answered is logged.

#[cfg(test)]
mod tests;

use std::io::{BufRead, Write};

use context_harness_providers::storage::AccountName;
use context_harness_providers::tokens::SecretString;
use context_harness_providers::{ErrorCode, terminal_text};

use crate::context::Context;
use crate::exit;
use crate::token::{Getting, refuse_dpop_bound, valid_tokens_of};

/// The user name answered for HTTP Basic when git has none (GitLab requires it for OAuth tokens;
/// GitHub and others accept any). As git's `username` it means the default account.
pub(crate) const PLACEHOLDER_USER: &str = "oauth2";

/// The longest line git's protocol allows, newline included.
const MAX_LINE: usize = 65_535;

/// The most input read (git sends a few hundred bytes; `wwwauth[]` headers add some).
const MAX_INPUT: usize = 1 << 20;

/// The exit code of malformed input.
const MALFORMED: u8 = 2;

/// What git said about the credential it needs (the attributes this helper reads).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) protocol: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<SecretString>,
    pub(crate) authtype: Option<String>,
    pub(crate) credential: Option<SecretString>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) wwwauth: Vec<String>,
    pub(crate) state: Vec<String>,
}

impl Request {
    fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// The account git's `username` names: `None` (the default account) without one, for an empty
    /// one, and for [`PLACEHOLDER_USER`] in any case (account names are compared without regard to
    /// ASCII case: `OAuth2` would otherwise name an account `oauth2`).
    fn account(&self) -> Option<&str> {
        self.username
            .as_deref()
            .filter(|u| !u.is_empty() && !u.eq_ignore_ascii_case(PLACEHOLDER_USER))
    }

    /// The token git says the server refused: `credential` when it came as one (`authtype`
    /// Bearer), else `password`.
    fn refused_token(&self) -> Option<&str> {
        let bearer = self
            .authtype
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        match (&self.credential, &self.password) {
            (Some(credential), _) if bearer => Some(credential.secret()),
            (_, Some(password)) => Some(password.secret()),
            _ => None,
        }
    }
}

/// Malformed input, with what is wrong (never the line itself: it may hold a secret).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// Reads git's attributes from `input`, up to a blank line or the end (see the module docs).
///
/// # Errors
///
/// [`Malformed`] for a line without `=`, a NUL byte, a line over 65535 bytes, input over 1 MiB, a
/// `url` without a scheme or a boolean git would refuse; an I/O error as malformed input too.
pub(crate) fn read_request(mut input: impl BufRead) -> Result<Request, Malformed> {
    let mut request = Request::default();
    let mut total = 0usize;
    let mut line = Vec::new();
    for number in 1usize.. {
        line.clear();
        let limit = u64::try_from(MAX_LINE.saturating_add(1)).unwrap_or(u64::MAX);
        let read = std::io::Read::take(&mut input, limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| Malformed(format!("cannot read the input: {e}")))?;
        if read == 0 {
            break;
        }
        total = total.saturating_add(read);
        if read > MAX_LINE {
            return Err(Malformed(format!(
                "line {number} is longer than git allows ({MAX_LINE} bytes)"
            )));
        }
        if total > MAX_INPUT {
            return Err(Malformed(format!(
                "the input is longer than this helper reads ({MAX_INPUT} bytes, at line {number})"
            )));
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            break;
        }
        apply_line(&mut request, text).map_err(|why| Malformed(format!("line {number}: {why}")))?;
    }
    Ok(request)
}

/// Applies one `key=value` line to `request`.
fn apply_line(request: &mut Request, line: &[u8]) -> Result<(), String> {
    if line.contains(&0) {
        return Err("a NUL byte (git's values cannot hold one)".to_owned());
    }
    let Some(eq) = line.iter().position(|b| *b == b'=') else {
        return Err("not a key=value attribute (no `=`)".to_owned());
    };
    let (key, value) = (&line[..eq], &line[eq.saturating_add(1)..]);
    // Values are bytes to git; every value read here is compared with ASCII names, hosts and
    // tokens, so a byte that is not UTF-8 may become U+FFFD without changing any outcome.
    let value = String::from_utf8_lossy(value).into_owned();
    let multi = |list: &mut Vec<String>, value: String| {
        if value.is_empty() {
            list.clear();
        } else {
            list.push(value);
        }
    };
    match key {
        b"protocol" => request.protocol = Some(value),
        b"host" => request.host = Some(value),
        b"path" => request.path = Some(value),
        b"username" => request.username = Some(value),
        b"password" => request.password = Some(SecretString::new(value)),
        b"authtype" => request.authtype = Some(value),
        b"credential" => request.credential = Some(SecretString::new(value)),
        b"capability[]" => multi(&mut request.capabilities, value),
        b"wwwauth[]" => multi(&mut request.wwwauth, value),
        b"state[]" => multi(&mut request.state, value),
        b"url" => *request = from_url(&value)?,
        b"ephemeral" | b"continue" | b"quit" if !is_git_bool(&value) => {
            return Err(format!(
                "`{}` is not a boolean",
                String::from_utf8_lossy(key)
            ));
        }
        // password_expiry_utc, oauth_refresh_token and keys of later versions of git.
        _ => {}
    }
    Ok(())
}

/// Whether git's `git_config_bool` accepts `value`: true/yes/on, false/no/off (any case), empty,
/// or an integer.
fn is_git_bool(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "" | "true" | "yes" | "on" | "false" | "no" | "off"
    ) || lower.parse::<i64>().is_ok()
}

/// The attributes of `url=` as git reads them (`credential_from_url`): every attribute read
/// before is dropped; `proto://[user[:password]@]host[/path]`, user, password, host and path
/// percent-decoded, the path without its leading and trailing slashes.
fn from_url(url: &str) -> Result<Request, String> {
    let Some((protocol, rest)) = url.split_once("://").filter(|(p, _)| !p.is_empty()) else {
        return Err("`url` has no scheme".to_owned());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut request = Request {
        protocol: Some(protocol.to_owned()),
        ..Request::default()
    };
    let host = match authority.split_once('@') {
        None => authority,
        Some((user, host)) => {
            match user.split_once(':') {
                None => request.username = Some(percent_decode(user)),
                Some((user, password)) => {
                    request.username = Some(percent_decode(user));
                    request.password = Some(SecretString::new(percent_decode(password)));
                }
            }
            host
        }
    };
    request.host = Some(percent_decode(host));
    let path = tail.trim_start_matches('/');
    if !path.is_empty() {
        let decoded = percent_decode(path);
        let trimmed = decoded.trim_end_matches('/');
        // git keeps one character of an all-slash decoded path.
        request.path = Some(if trimmed.is_empty() {
            decoded.chars().take(1).collect()
        } else {
            trimmed.to_owned()
        });
    }
    Ok(request)
}

/// `%XX` sequences decoded (others kept as they are); `+` stays `+`, as in git's `url_decode`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|h| char::from(*h).to_digit(16));
        match (b, hex(i.saturating_add(1)), hex(i.saturating_add(2))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i = i.saturating_add(3);
            }
            _ => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs one helper operation (see the module docs); `Ok` carries the exit code.
pub(crate) fn run(ctx: &Context, operation: &str, getting: Getting) -> anyhow::Result<u8> {
    match operation {
        "get" | "store" | "erase" => {}
        "capability" => {
            write_stdout("version 0\ncapability authtype\n")?;
            return Ok(exit::OK);
        }
        // "If a helper receives any other operation, it should silently ignore the request."
        _ => return Ok(exit::OK),
    }
    let request = read_request(std::io::stdin().lock()).map_err(|Malformed(why)| {
        exit::Failure::new(
            MALFORMED,
            format!("git-credential {operation}: malformed input: {why}"),
            Some("git's credential helper protocol is `key=value` lines ended by a blank line (see `git help credential`)".to_owned()),
        )
    })?;
    if operation == "store" {
        return Ok(exit::OK);
    }
    let (Some(protocol), Some(host)) = (&request.protocol, &request.host) else {
        return Ok(exit::OK);
    };
    let Some(provider) = provider_for(ctx, protocol, host)? else {
        tracing::debug!(host = %terminal_text(host), "no provider for this git host");
        return Ok(exit::OK);
    };
    let Some(account) = known_account(ctx, &provider, request.account(), operation)? else {
        return Ok(exit::OK);
    };
    let ctx = for_account(ctx, account.as_ref());
    let done = if operation == "erase" {
        erase(&ctx, &provider, &request)
    } else {
        get(&ctx, &provider, &request, getting)
    };
    // Reported here, with this account's context: hints carry its `--account`.
    Ok(done.unwrap_or_else(|err| exit::report(&err, &ctx)))
}

/// The account git's user name chooses, when this helper may use it: `Some(None)` for the
/// provider's default account (no user name, or `oauth2`), `Some(Some(name))` for an account
/// that is signed in already (or is the provider's default). `None` for any other user name —
/// then nothing is answered: `get` says on stderr (unless `-q`) how to sign that account in, so
/// that a user name in a remote URL never starts a sign-in of a new account nor creates its files.
///
/// # Errors
///
/// When the provider's accounts cannot be read (a corrupt account index).
fn known_account(
    ctx: &Context,
    provider: &str,
    username: Option<&str>,
    operation: &str,
) -> anyhow::Result<Option<Option<AccountName>>> {
    let Some(username) = username else {
        return Ok(Some(None));
    };
    let shown = terminal_text(provider);
    let Ok(account) = AccountName::new(username) else {
        if operation == "get" {
            ctx.say(format!(
                "git-credential: git's user name for this {shown} remote is not an account name (1 to 64 letters, digits, '.', '_', '@', '+' or '-'); no token for it"
            ));
        }
        return Ok(None);
    };
    let accounts = ctx.service()?.accounts(provider)?;
    if accounts.contains(&account) || accounts.default_account() == &account {
        return Ok(Some(Some(account)));
    }
    if operation == "get" {
        ctx.say(format!(
            "git-credential: account {account} of {shown} (git's user name) is not signed in; no token for it. To use it, run `context-harness mcp auth {shown} --account {account}` first"
        ));
    }
    Ok(None)
}

/// The provider that [serves](context_harness_providers::OAuthProvider::serves_git_host) the git
/// remote `protocol://host`, if one does.
///
/// # Errors
///
/// The registry's errors (a malformed `providers.toml`); exit 13 when two providers list the host.
fn provider_for(ctx: &Context, protocol: &str, host: &str) -> anyhow::Result<Option<String>> {
    let service = ctx.service()?;
    let mut serving = service
        .registry()?
        .iter()
        .map(|(provider, _)| provider)
        .filter(|provider| provider.serves_git_host(protocol, host))
        .map(|provider| provider.name.clone());
    let first = serving.next();
    if let (Some(first), Some(second)) = (&first, serving.next()) {
        let shown = terminal_text(host);
        return Err(exit::Failure::new(
            exit::code_for(ErrorCode::ConfigInvalid),
            format!("providers {first} and {second} both list the git host {shown}"),
            Some(format!(
                "keep {shown} in the git_hosts of one of them in providers.toml (for a built-in provider, set git_hosts = [] in its table)"
            )),
        )
        .into());
    }
    Ok(first)
}

/// `ctx` for `account` (git's `username`; `None`: the provider's default account).
fn for_account(ctx: &Context, account: Option<&AccountName>) -> Context {
    Context {
        home: ctx.home.clone(),
        storage: ctx.storage,
        verbose: ctx.verbose,
        quiet: ctx.quiet,
        client_metadata_url: None,
        account: account.map(ToString::to_string),
    }
}

/// `get`: the answer with a valid token for `provider`.
fn get(ctx: &Context, provider: &str, request: &Request, getting: Getting) -> anyhow::Result<u8> {
    let (tokens, account) = valid_tokens_of(ctx, provider, getting)?;
    refuse_dpop_bound(ctx, provider, &account, &tokens, "git cannot present it")?;
    let token = tokens.access_token.secret();
    let mut answer = if request.has_capability("authtype") {
        // Listed first: the attributes after it depend on it (git-credential(1)).
        format!("capability[]=authtype\nauthtype=Bearer\ncredential={token}\nephemeral=1\n")
    } else {
        let user = match request.username.as_deref() {
            Some(u) if !u.is_empty() => String::new(),
            _ => format!("username={PLACEHOLDER_USER}\n"),
        };
        format!("{user}password={token}\n")
    };
    if let Some(at) = tokens.expires_at() {
        answer.push_str(&format!(
            "password_expiry_utc={}\n",
            crate::timefmt::unix(at)
        ));
    }
    write_stdout(&answer)?;
    Ok(exit::OK)
}

/// `erase`: the refused token, if it is the stored one, is marked expired (see the module docs).
fn erase(ctx: &Context, provider: &str, request: &Request) -> anyhow::Result<u8> {
    let Some(refused) = request.refused_token() else {
        return Ok(exit::OK);
    };
    let service = ctx.service()?;
    // An account with nothing stored (never signed in, or logged out) has no token to mark: no
    // lock file (nor token directory) is made for it.
    let account = service.account_for(provider)?;
    if !service.accounts(provider)?.contains(&account) {
        return Ok(exit::OK);
    }
    let marked = ctx.block_on(service.access_token_rejected(provider, refused))??;
    if marked {
        ctx.say(format!(
            "The server refused the access token for {}; the next git command refreshes it (or signs in again).",
            terminal_text(provider)
        ));
    }
    Ok(exit::OK)
}

/// Writes `text` to stdout as it is (no newline added); a closed pipe is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
