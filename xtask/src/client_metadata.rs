//! `cargo xtask client-metadata --app NAME --url URL [--out FILE]`: renders the Client ID Metadata
//! Document an application publishes at URL (MCP 2026-07-28 "Client ID Metadata Documents"), from
//! the library's own rendering (`context_harness_providers::client_metadata_document`), so the
//! `redirect_uris` are exactly the loopback URIs the sign-in listener uses.
//!
//! The `context-harness` app's document is kept in `docs/client-metadata.json`, rendered for
//! `https://context-harness.github.io/context-harness-auth/client-metadata.json`; a test checks that it
//! is what this command renders.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use context_harness_providers::{App, client_metadata_document};

use crate::util::Context;

/// Arguments of `cargo xtask client-metadata`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientMetadataArgs {
    /// The application's name (as given to `OAuthServiceBuilder::app`; its `client_name`).
    #[arg(long, default_value = "context-harness", value_name = "NAME")]
    pub(crate) app: String,
    /// The https URL the document will be published at (it is also the document's `client_id`).
    #[arg(long, value_name = "URL")]
    pub(crate) url: String,
    /// Write the document to FILE (relative to the repository root) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// The document as published: pretty JSON with a final newline.
pub(crate) fn render(app: &str, url: &str) -> Result<String> {
    let app = App::new(app).with_context(|| format!("application name {app:?}"))?;
    let document = client_metadata_document(&app, url).context("the document URL")?;
    Ok(format!("{}\n", serde_json::to_string_pretty(&document)?))
}

pub(crate) fn run(ctx: &Context, args: &ClientMetadataArgs) -> Result<()> {
    let text = render(&args.app, &args.url)?;
    match &args.out {
        Some(out) => {
            let path = ctx.root.join(out);
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {}: publish it at {} (served as application/json over https)",
                path.display(),
                args.url
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the `context-harness` app's document would be published (its `client_id`).
    const CONTEXT_HARNESS_URL: &str =
        "https://context-harness.github.io/context-harness-auth/client-metadata.json";

    /// The `context-harness` app's document in the repository (rendered for [`CONTEXT_HARNESS_URL`]).
    const SHIPPED: &str = "docs/client-metadata.json";

    /// The shipped document is what the command renders: regenerate it with
    /// `cargo xtask client-metadata --url <CONTEXT_HARNESS_URL> --out docs/client-metadata.json`.
    #[test]
    fn the_shipped_document_is_rendered_by_the_command() -> Result<()> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let shipped = std::fs::read_to_string(root.join(SHIPPED))?;
        assert_eq!(shipped, render("context-harness", CONTEXT_HARNESS_URL)?);
        let document: serde_json::Value = serde_json::from_str(&shipped)?;
        assert_eq!(document["client_id"], CONTEXT_HARNESS_URL);
        assert_eq!(document["client_name"], "context-harness");
        Ok(())
    }

    #[test]
    fn names_and_urls_are_checked() {
        assert!(render("my-tool", "https://my-tool.example/oauth/client.json").is_ok());
        assert!(render("My Tool", "https://my-tool.example/oauth/client.json").is_err());
        assert!(render("my-tool", "http://my-tool.example/oauth/client.json").is_err());
        assert!(render("my-tool", "https://my-tool.example/").is_err());
    }
}
