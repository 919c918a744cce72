//! `context-harness mcp status [<provider>] [--account NAME] [--json]`: sign-in state, expiry,
//! scopes and storage of every account of every provider (or of one), never tokens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use context_harness_providers::storage::{AccountName, ProviderName};
use context_harness_providers::{
    AuthStatus, EXPIRY_BUFFER, Error as ProviderError, ErrorCode, GrantType, OAuthService,
    OAuthTokens, ProviderRef, check_dpop_key_kept, is_dpop_bound, terminal_text,
};
use serde_json::{Value, json};

use crate::context::{Context, print_stdout, safe_lines};
use crate::exit::{self, Failure};
use crate::timefmt;

/// One account's row.
struct Row {
    name: String,
    display_name: String,
    /// The MCP server URL, for a provider signed in to by URL.
    server_url: Option<String>,
    /// The account (`default` for tokens under the bare name, and for a provider not signed in).
    account: AccountName,
    /// Whether it is the provider's default account (the one used without `--account`).
    default: bool,
    /// Whether the text names the account: the provider has several, or one not called `default`.
    show_account: bool,
    /// `Ok(None)`: not signed in.
    tokens: Result<Option<OAuthTokens>, ProviderError>,
    /// Whether the error is the provider's accounts' (its account index), not the tokens'.
    accounts_error: bool,
    location: Option<String>,
}

impl Row {
    fn status(&self, now: SystemTime) -> Option<AuthStatus> {
        match &self.tokens {
            Ok(None) => Some(AuthStatus::NotAuthenticated),
            Ok(Some(t)) => Some(t.status_at(now, t.refresh_margin(EXPIRY_BUFFER))),
            Err(_) => None,
        }
    }

    /// ` --account NAME` for the commands a hint suggests, unless this is the account `default`
    /// and the default account (a default account of another name is named all the same).
    fn account_flag(&self) -> String {
        if self.default && self.account.is_default() {
            String::new()
        } else {
            format!(" --account {}", self.account)
        }
    }

    fn to_json(&self, now: SystemTime) -> Value {
        let tokens = self.tokens.as_ref().ok().and_then(Option::as_ref);
        let storage = self.location.as_deref().map(backend_of);
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "server_url": self.server_url,
            // The account this row is about, and whether commands use it without `--account`.
            "account": self.account.as_str(),
            "default": self.default,
            "status": self.status(now).map_or("error", AuthStatus::as_str),
            "expires_at": tokens.and_then(OAuthTokens::expires_at).map(timefmt::unix),
            "scopes": tokens.map(OAuthTokens::scopes).unwrap_or_default(),
            "has_refresh_token": tokens.is_some_and(|t| t.refresh_token.is_some()),
            // The grant that obtained the tokens (`client_credentials` and `jwt_bearer` renew
            // themselves without a refresh token); null when not signed in.
            "grant_type": tokens.map(|t| GrantType::of_tokens(t).as_str()),
            // Whether the token is bound to a key (DPoP, RFC 9449): then `mcp headers` presents it.
            "dpop_bound": tokens.is_some_and(is_dpop_bound),
            "storage": storage,
            "location": self.location,
            "error": self.tokens.as_ref().err().map(|e| json!({
                "code": e.code().as_str(),
                "message": e.to_string(),
                "hint": exit::hint_for(e, &self.account_flag()),
            })),
        })
    }

    fn to_text(&self, now: SystemTime) -> String {
        let mut out = String::new();
        let label = match self.status(now) {
            Some(AuthStatus::Authenticated) => "authenticated",
            Some(AuthStatus::TokenExpired) => "expired",
            Some(AuthStatus::TokenRefreshFailed) => "refresh failed (sign in again)",
            Some(AuthStatus::NotAuthenticated) => "not authenticated",
            _ => "error",
        };
        let account = match (self.show_account, self.default) {
            (false, _) => String::new(),
            (true, true) => format!(", account {} (default)", self.account),
            (true, false) => format!(", account {}", self.account),
        };
        let _ = writeln!(
            out,
            "{} ({}){account}: {label}",
            terminal_text(&self.name),
            terminal_text(&self.display_name)
        );
        match &self.tokens {
            Ok(Some(t)) => {
                let expiry = t.expires_at().map_or_else(
                    || "unknown (no expires_in)".to_owned(),
                    |at| timefmt::human(at, now),
                );
                let _ = writeln!(out, "  expires:  {expiry}");
                let scopes = t.scopes();
                if !scopes.is_empty() {
                    let _ = writeln!(out, "  scopes:   {}", terminal_text(&scopes.join(" ")));
                }
                let refresh = if t.refresh_token.is_some() {
                    "yes"
                } else {
                    "no"
                };
                let _ = writeln!(out, "  refresh:  {refresh}");
                let grant = GrantType::of_tokens(t);
                if grant.renews_itself() {
                    let _ = writeln!(
                        out,
                        "  grant:    {} (renewed by running it again)",
                        grant.as_str()
                    );
                } else {
                    let _ = writeln!(out, "  grant:    {}", grant.as_str());
                }
                if is_dpop_bound(t) {
                    // RFC 9449: the token is bound to a key kept with it; `mcp token` refuses it.
                    let _ = writeln!(
                        out,
                        "  dpop:     bound to a key (present it with `mcp headers`)"
                    );
                }
                if let Some(location) = &self.location {
                    let _ = writeln!(out, "  storage:  {} ({location})", backend_of(location));
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = writeln!(out, "  error:    {}", safe_lines(&e.to_string()));
                if let Some(hint) = exit::hint_for(e, &self.account_flag()) {
                    let _ = writeln!(out, "  hint:     {}", safe_lines(&hint));
                }
            }
        }
        out
    }
}

/// `"keyring"` or `"file"` from a store location (the keyring's starts with "system keyring").
fn backend_of(location: &str) -> &'static str {
    if location.starts_with("system keyring") {
        "keyring"
    } else {
        "file"
    }
}

/// The rows of the provider or server stored under `name`: one per signed-in account (one for its
/// default account when none is), or only `only`'s; `server_url` for an MCP server, whose tokens
/// are read only by its URL (the storage name is not a provider name).
fn rows(
    service: &OAuthService,
    only: Option<&AccountName>,
    name: &str,
    display_name: &str,
    server_url: Option<&str>,
) -> Vec<Row> {
    let key = server_url.unwrap_or(name);
    let row = |account: &AccountName, default: bool, show_account: bool, tokens| Row {
        name: name.to_owned(),
        display_name: display_name.to_owned(),
        server_url: server_url.map(str::to_owned),
        account: account.clone(),
        default,
        show_account,
        tokens,
        accounts_error: false,
        location: None,
    };
    let index = match service.accounts(key) {
        Ok(index) => index,
        Err(e) => {
            let account = only.cloned().unwrap_or_default();
            let show = !account.is_default();
            let mut row = row(&account, only.is_none(), show, Err(e));
            row.accounts_error = true;
            return vec![row];
        }
    };
    let mut accounts: Vec<AccountName> = match only {
        Some(account) => vec![account.clone()],
        None => index.names().to_vec(),
    };
    if accounts.is_empty() {
        accounts.push(index.default_account().clone());
    }
    let show_account = index.names().len() > 1 || accounts.iter().any(|a| !a.is_default());
    accounts
        .iter()
        .map(|account| {
            let default = account == index.default_account();
            let mut row = row(account, default, show_account, Ok(None));
            let service = match service.with_account(account.as_str()) {
                Ok(service) => service,
                Err(e) => {
                    row.tokens = Err(e);
                    return row;
                }
            };
            row.tokens = match service.get_tokens(key) {
                // DPoP-bound tokens whose key is gone are useless: shown as the error every
                // command that would use them gives (sign in again).
                Ok(t) => match ProviderRef::parse(key) {
                    Ok(target) => check_dpop_key_kept(&target.with_account(account.clone()), &t)
                        .map(|()| Some(t)),
                    Err(e) => Err(e),
                },
                Err(e) if e.is_auth_required() => Ok(None),
                Err(e) => Err(e),
            };
            if let Ok(Some(_)) = &row.tokens {
                row.location = service.storage_location(key).ok();
            }
            row
        })
        .collect()
}

pub(crate) fn run(ctx: &Context, provider: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    // `--account`: only that account's rows (the service was built with it, so it is valid).
    let only = service.account().cloned();
    let now = SystemTime::now();
    let Some(provider) = provider else {
        let rows = all_rows(&service, only.as_ref())?;
        print_rows(&rows, json, now)?;
        return Ok(exit::OK);
    };

    let rows = if ProviderRef::is_server_url(provider) {
        let name = ProviderRef::parse(provider)?.name().as_str().to_owned();
        rows(&service, only.as_ref(), &name, provider, Some(provider))
    } else {
        // A name of the servers' namespace is no provider's (servers go by URL): refused like
        // every other command refuses it.
        ProviderRef::parse(provider)?;
        // Exactly the rows the list shows (tokens of a provider no longer configured included,
        // even when they cannot be read); `not_found` only for a name the list does not have either.
        let (names, servers) = known_names(&service)?;
        match names.get(provider) {
            Some(display) => rows(
                &service,
                only.as_ref(),
                provider,
                display,
                servers.get(provider).map(String::as_str),
            ),
            None => {
                return Err(service.registry()?.get(provider).err().map_or_else(
                    || anyhow::anyhow!("unknown provider `{provider}`"),
                    Into::into,
                ));
            }
        }
    };
    print_rows(&rows, json, now)?;
    // The exit code is the account's that commands would use: `--account`'s, else the default's.
    let Some(row) = rows.iter().find(|r| r.default).or_else(|| rows.first()) else {
        return Ok(exit::OK);
    };
    let sign_in = format!(
        "run `context-harness mcp auth {}{}`",
        row.server_url.as_deref().unwrap_or(provider),
        row.account_flag()
    );
    let who = if row.show_account {
        format!("{provider} (account {})", row.account)
    } else {
        provider.to_owned()
    };
    match (&row.tokens, row.status(now)) {
        (Err(e), _) => Err(Failure::new(
            exit::code_for(e.code()),
            if row.accounts_error {
                format!("cannot read the accounts of {provider}: {e}")
            } else if e.is_auth_required() {
                // Readable tokens that cannot be used (a DPoP key gone): the error says why.
                e.to_string()
            } else {
                format!("cannot read the tokens for {who}: {e}")
            },
            exit::hint_for(e, &row.account_flag()),
        )
        .into()),
        (_, Some(AuthStatus::NotAuthenticated)) => Err(Failure::new(
            exit::code_for(ErrorCode::AuthRequired),
            format!("not signed in to {who}"),
            Some(sign_in),
        )
        .into()),
        (_, Some(AuthStatus::TokenRefreshFailed)) => Err(Failure::new(
            exit::code_for(ErrorCode::TokenRefreshFailed),
            format!("the server refused the refresh token for {who}"),
            Some(sign_in),
        )
        .into()),
        (Ok(Some(t)), Some(AuthStatus::TokenExpired))
            if t.refresh_token.is_none() && !GrantType::of_tokens(t).renews_itself() =>
        {
            Err(Failure::new(
                exit::code_for(ErrorCode::TokenExpired),
                format!("the access token for {who} has expired and there is no refresh token"),
                Some(sign_in),
            )
            .into())
        }
        // Authenticated, or expired with a refresh token or a grant that renews itself (`mcp token`
        // renews it).
        _ => Ok(exit::OK),
    }
}

/// Prints `rows` as the `{"providers": [...]}` document or as text.
fn print_rows(rows: &[Row], json: bool, now: SystemTime) -> anyhow::Result<()> {
    if json {
        let doc = json!({ "providers": rows.iter().map(|r| r.to_json(now)).collect::<Vec<_>>() });
        print_stdout(&doc.to_string())
    } else {
        let text: Vec<String> = rows.iter().map(|r| r.to_text(now)).collect();
        print_stdout(text.join("").trim_end())
    }
}

/// Every account of every configured provider, every MCP server signed in to, plus any provider
/// with stored tokens that is no longer configured (only `only`'s rows when given).
fn all_rows(service: &OAuthService, only: Option<&AccountName>) -> anyhow::Result<Vec<Row>> {
    let (names, servers) = known_names(service)?;
    Ok(names
        .iter()
        .flat_map(|(name, display)| {
            rows(
                service,
                only,
                name,
                display,
                servers.get(name).map(String::as_str),
            )
        })
        .collect())
}

/// The names `mcp status` lists, with display names, and the MCP server URL of those that are
/// servers: every configured provider, every MCP server signed in to, and every name with stored
/// tokens (a token file or a keyring marker). No tokens are read.
fn known_names(
    service: &OAuthService,
) -> anyhow::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let registry = service.registry()?;
    let mut names: BTreeMap<String, String> = registry
        .iter()
        .map(|(p, _)| (p.name.clone(), p.display_name.clone()))
        .collect();
    let mut servers: BTreeMap<String, String> = BTreeMap::new();
    for (name, record) in service.mcp_servers() {
        names.insert(name.clone(), record.server_url.clone());
        servers.insert(name, record.server_url);
    }
    let dir = context_harness_providers::storage::HomeLayout::new(service.home()).tokens_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            let Some(stem) = file
                .strip_suffix(".json")
                .or_else(|| file.strip_suffix(".backend"))
                .or_else(|| file.strip_suffix(".accounts"))
            else {
                continue;
            };
            // An account's key (`github@work`) is its provider's.
            let Some((name, _)) = ProviderName::parse_key(stem) else {
                continue;
            };
            // A server's tokens without its record cannot be named (servers go by URL): not listed.
            if !name.is_server_name() && !names.contains_key(name.as_str()) {
                names.insert(name.as_str().to_owned(), name.as_str().to_owned());
            }
        }
    }
    Ok((names, servers))
}
