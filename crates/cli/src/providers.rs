//! `context-harness mcp providers [--json]`: built-in and configured providers.

use std::fmt::Write as _;

use context_harness_providers::{OAuthProvider, terminal_text};
use serde_json::{Value, json};

use crate::context::{Context, print_stdout, safe_lines};
use crate::exit;

pub(crate) fn run(ctx: &Context, json: bool) -> anyhow::Result<u8> {
    let service = ctx.service()?;
    let registry = service.registry()?;
    let env = service.environment();
    let rows: Vec<Value> = registry
        .iter()
        .map(|(p, source)| {
            let id_env = p.client_id_env();
            let secret_env = p.client_secret_env();
            let client_id_source = if env.get(&id_env).is_some() {
                Some("env")
            } else if p
                .client_id
                .as_deref()
                .is_some_and(|id| !id.trim().is_empty())
            {
                Some("config")
            } else {
                None
            };
            json!({
                "name": p.name,
                "display_name": p.display_name,
                "source": source.as_str(),
                "client_id_set": client_id_source.is_some(),
                "client_id_source": client_id_source,
                "client_id_env": id_env,
                "client_secret_set": env.get(&secret_env).is_some(),
                "client_secret_env": secret_env,
                "scopes": p.scopes,
                "auth_url": p.auth_url,
                "token_url": p.token_url,
                "revocation": p.revocation_url.is_some(),
                "device_flow": p.device_auth_url.is_some(),
                "setup_url": p.setup_url,
            })
        })
        .collect();
    if json {
        let doc = json!({
            "config_file": registry.file().map(|f| f.display().to_string()),
            "providers": rows,
        });
        print_stdout(&doc.to_string())?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    for ((p, source), row) in registry.iter().zip(&rows) {
        let _ = writeln!(
            text,
            "{}  ({}, {})",
            terminal_text(&p.name),
            terminal_text(&p.display_name),
            source.as_str()
        );
        let _ = writeln!(text, "  client id:  {}", describe_client_id(p, row));
        if !p.scopes.is_empty() {
            let _ = writeln!(text, "  scopes:     {}", terminal_text(&p.scopes.join(" ")));
        }
        let _ = writeln!(text, "  authorize:  {}", safe_lines(&p.auth_url));
    }
    match registry.file() {
        Some(file) => {
            let _ = write!(text, "configured in {}", file.display());
        }
        None => {
            let _ = write!(text, "no providers.toml in {}", service.home().display());
        }
    }
    print_stdout(&text)?;
    Ok(exit::OK)
}

fn describe_client_id(p: &OAuthProvider, row: &Value) -> String {
    match row["client_id_source"].as_str() {
        Some("env") => format!("set ({})", p.client_id_env()),
        Some(_) => "set (providers.toml)".to_owned(),
        None => match &p.setup_url {
            Some(url) => format!(
                "not set: set {} (create an app at {url})",
                p.client_id_env()
            ),
            None => format!(
                "not set: set {} or client_id in providers.toml",
                p.client_id_env()
            ),
        },
    }
}
