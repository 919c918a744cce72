//! `context-harness mcp status [<provider>] [--json]`: sign-in state, expiry, scopes and storage,
//! never tokens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use context_harness_providers::storage::ProviderName;
use context_harness_providers::{
    AuthStatus, EXPIRY_BUFFER, Error as ProviderError, ErrorCode, GrantType, OAuthService,
    OAuthTokens, ProviderRef, is_dpop_bound, terminal_text,
};
use serde_json::{Value, json};

use crate::context::{Context, print_stdout, safe_lines};
use crate::exit::{self, Failure};
use crate::timefmt;

/// One provider's row.
struct Row {
    name: String,
    display_name: String,
    /// The MCP server URL, for a provider signed in to by URL.
    server_url: Option<String>,
    /// `Ok(None)`: not signed in.
    tokens: Result<Option<OAuthTokens>, ProviderError>,
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

    fn to_json(&self, now: SystemTime) -> Value {
        let tokens = self.tokens.as_ref().ok().and_then(Option::as_ref);
        let storage = self.location.as_deref().map(backend_of);
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "server_url": self.server_url,
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
                "hint": exit::hint_text(e),
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
        let _ = writeln!(
            out,
            "{} ({}): {label}",
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
                if let Some(hint) = exit::hint_text(e) {
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

/// The row of the provider or server stored under `name`; `server_url` for an MCP server, whose
/// tokens are read only by its URL (the storage name is not a provider name).
fn row(service: &OAuthService, name: &str, display_name: &str, server_url: Option<&str>) -> Row {
    let key = server_url.unwrap_or(name);
    let tokens = match service.get_tokens(key) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_auth_required() => Ok(None),
        Err(e) => Err(e),
    };
    let location = match &tokens {
        Ok(Some(_)) => service.storage_location(key).ok(),
        _ => None,
    };
    Row {
        name: name.to_owned(),
        display_name: display_name.to_owned(),
        server_url: server_url.map(str::to_owned),
        tokens,
        location,
    }
}

pub(crate) fn run(ctx: &Context, provider: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let now = SystemTime::now();
    let Some(provider) = provider else {
        let rows = all_rows(&service)?;
        if json {
            let doc =
                json!({ "providers": rows.iter().map(|r| r.to_json(now)).collect::<Vec<_>>() });
            print_stdout(&doc.to_string())?;
        } else {
            let text: Vec<String> = rows.iter().map(|r| r.to_text(now)).collect();
            print_stdout(text.join("").trim_end())?;
        }
        return Ok(exit::OK);
    };

    let row = if ProviderRef::is_server_url(provider) {
        let name = ProviderRef::parse(provider)?.name().as_str().to_owned();
        row(&service, &name, provider, Some(provider))
    } else {
        // A name of the servers' namespace is no provider's (servers go by URL): refused like
        // every other command refuses it.
        ProviderRef::parse(provider)?;
        // Exactly the row the list shows (tokens of a provider no longer configured included, even
        // when they cannot be read); `not_found` only for a name the list does not have either.
        let (names, servers) = known_names(&service)?;
        match names.get(provider) {
            Some(display) => row(
                &service,
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
    if json {
        print_stdout(&json!({ "providers": [row.to_json(now)] }).to_string())?;
    } else {
        print_stdout(row.to_text(now).trim_end())?;
    }
    let sign_in = format!(
        "run `context-harness mcp auth {}`",
        row.server_url.as_deref().unwrap_or(provider)
    );
    match (&row.tokens, row.status(now)) {
        (Err(e), _) => Err(Failure::new(
            exit::code_for(e.code()),
            format!("cannot read the tokens for {provider}: {e}"),
            exit::hint_text(e),
        )
        .into()),
        (_, Some(AuthStatus::NotAuthenticated)) => Err(Failure::new(
            exit::code_for(ErrorCode::AuthRequired),
            format!("not signed in to {provider}"),
            Some(sign_in),
        )
        .into()),
        (_, Some(AuthStatus::TokenRefreshFailed)) => Err(Failure::new(
            exit::code_for(ErrorCode::TokenRefreshFailed),
            format!("the server refused the refresh token for {provider}"),
            Some(sign_in),
        )
        .into()),
        (Ok(Some(t)), Some(AuthStatus::TokenExpired))
            if t.refresh_token.is_none() && !GrantType::of_tokens(t).renews_itself() =>
        {
            Err(Failure::new(
                exit::code_for(ErrorCode::TokenExpired),
                format!(
                    "the access token for {provider} has expired and there is no refresh token"
                ),
                Some(sign_in),
            )
            .into())
        }
        // Authenticated, or expired with a refresh token or a grant that renews itself (`mcp token`
        // renews it).
        _ => Ok(exit::OK),
    }
}

/// Every configured provider, every MCP server signed in to, plus any provider with stored tokens
/// that is no longer configured.
fn all_rows(service: &OAuthService) -> anyhow::Result<Vec<Row>> {
    let (names, servers) = known_names(service)?;
    Ok(names
        .iter()
        .map(|(name, display)| {
            row(
                service,
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
            else {
                continue;
            };
            // A server's tokens without its record cannot be named (servers go by URL): not listed.
            let is_name = ProviderName::new(stem).is_ok_and(|n| !n.is_server_name());
            if is_name && !names.contains_key(stem) {
                names.insert(stem.to_owned(), stem.to_owned());
            }
        }
    }
    Ok((names, servers))
}
