//! Opening the authorization URL: the system browser by default, anything else by injection.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

/// Opens the authorization URL for the user.
///
/// The default, [`SystemBrowser`], uses the `webbrowser` crate (which honours `$BROWSER`). A CLI with
/// `--no-browser` injects an opener that prints the URL; tests inject one that drives the login with
/// HTTP requests. Closures implement the trait:
///
/// ```
/// use context_harness_providers::BrowserOpener;
///
/// let print_it = |url: &str| -> std::io::Result<()> {
///     eprintln!("Open this URL to sign in:\n  {url}");
///     Ok(())
/// };
/// let _opener: &dyn BrowserOpener = &print_it;
/// ```
pub trait BrowserOpener: Send + Sync {
    /// Shows `url` to the user. An `Err` means the user has not seen it: the service then reports the
    /// URL through [`SignInUi::browser_failed`](crate::SignInUi::browser_failed) (by default a
    /// `tracing` warning) and keeps waiting for the callback.
    ///
    /// # Errors
    ///
    /// Whatever prevented showing the URL.
    fn open(&self, url: &str) -> io::Result<()>;
}

impl<F> BrowserOpener for F
where
    F: Fn(&str) -> io::Result<()> + Send + Sync,
{
    fn open(&self, url: &str) -> io::Result<()> {
        self(url)
    }
}

/// The system's default browser (`$BROWSER` first when set), started **without secrets in its
/// environment**.
///
/// A browser is a large program that runs extensions and helpers and may hand its environment on
/// to them; it has no use for credentials. When the environment holds any secret-like variable
/// (see [`is_secret_env_name`]: every `*_CLIENT_SECRET`, `*_TOKEN`, `*_PASSWORD`, …), the opener is
/// started here with those variables removed: each `:`-separated command of `$BROWSER` (`%s` is
/// replaced by the URL, else the URL is appended; text browsers such as `lynx` or `curl` run in the
/// foreground), then the platform's opener (`open` on macOS; `xdg-open`, `gio open`,
/// `x-www-browser`, `sensible-browser` elsewhere on Unix; `rundll32 url.dll,FileProtocolHandler`
/// on Windows). Without secrets in the environment the `webbrowser` crate is used as is (it also
/// knows WSL, Flatpak and desktop-specific openers), since it cannot be given an environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBrowser;

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> io::Result<()> {
        let secrets = secret_env_names(std::env::vars_os().map(|(name, _)| name));
        if secrets.is_empty() {
            return webbrowser::open(url);
        }
        tracing::debug!(
            count = secrets.len(),
            "starting the browser with secret-like variables removed from its environment"
        );
        open_scrubbed(url, &secrets, std::env::var("BROWSER").ok().as_deref())
    }
}

/// Suffixes (after `_`, or the whole name) of environment variables treated as secrets.
const SECRET_SUFFIXES: [&str; 11] = [
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "SECRET_KEY",
    "PRIVATE_KEY",
    "CREDENTIALS",
];

/// Whether an environment variable named `name` looks like it holds a secret (case-insensitive):
/// `CLIENT_SECRET`, `GITHUB_CLIENT_SECRET`, `GH_TOKEN`, `ACME_API_KEY`, … — every name that is,
/// or ends in `_` followed by, one of `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`, `PASSPHRASE`,
/// `API_KEY`, `APIKEY`, `ACCESS_KEY`, `SECRET_KEY`, `PRIVATE_KEY`, `CREDENTIALS`. Such variables are removed
/// from the environment of the browser this crate starts.
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|suffix| {
        upper == *suffix
            || upper
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('_'))
    })
}

fn secret_env_names(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    names
        .filter(|name| is_secret_env_name(&name.to_string_lossy()))
        .collect()
}

/// Browsers that run in the terminal: started in the foreground and waited for (as the
/// `webbrowser` crate does).
const TEXT_BROWSERS: [&str; 9] = [
    "lynx", "links", "links2", "elinks", "w3m", "eww", "netrik", "retawq", "curl",
];

/// Whether a `$BROWSER` value (entries separated by `:`) names a browser that runs in the terminal
/// (lynx, w3m, curl, …): such a browser reads stdin and writes stdout, so a program whose stdin and
/// stdout carry something else (the `mcp proxy` JSON-RPC channel) must not start it.
///
/// ```
/// use context_harness_providers::browser_needs_terminal;
///
/// assert!(browser_needs_terminal("w3m %s"));
/// assert!(browser_needs_terminal("firefox:/usr/bin/lynx"));
/// assert!(!browser_needs_terminal("firefox"));
/// ```
pub fn browser_needs_terminal(browser_env: &str) -> bool {
    browser_env
        .split(':')
        .filter_map(|entry| entry.split_ascii_whitespace().next())
        .filter_map(|program| Path::new(program).file_name()?.to_str())
        .any(|name| TEXT_BROWSERS.contains(&name))
}

/// The argument vector of one `$BROWSER` entry for `url`: split at whitespace, `%s` replaced by
/// the URL and `%%` by `%`; the URL appended when no `%s` was present.
fn browser_command(entry: &str, url: &str) -> Vec<String> {
    let mut has_url = false;
    let mut argv: Vec<String> = entry
        .split_ascii_whitespace()
        .map(|word| {
            let mut out = String::with_capacity(word.len());
            let mut chars = word.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('s') => {
                        has_url = true;
                        out.push_str(url);
                    }
                    Some('%') => out.push('%'),
                    Some(other) => {
                        out.push('%');
                        out.push(other);
                    }
                    None => out.push('%'),
                }
            }
            out
        })
        .collect();
    if !has_url {
        argv.push(url.to_owned());
    }
    argv
}

/// The platform's own openers, tried after `$BROWSER`.
fn platform_openers(url: &str) -> Vec<Vec<String>> {
    let with = |argv: &[&str]| {
        let mut v: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        v.push(url.to_owned());
        v
    };
    if cfg!(target_os = "macos") {
        vec![with(&["open"])]
    } else if cfg!(windows) {
        vec![with(&["rundll32", "url.dll,FileProtocolHandler"])]
    } else {
        vec![
            with(&["xdg-open"]),
            with(&["gio", "open"]),
            with(&["x-www-browser"]),
            with(&["sensible-browser"]),
        ]
    }
}

/// Starts the first opener that works, with `secrets` removed from its environment.
fn open_scrubbed(url: &str, secrets: &[OsString], browser_env: Option<&str>) -> io::Result<()> {
    let mut candidates: Vec<Vec<String>> = browser_env
        .unwrap_or_default()
        .split(':')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| browser_command(entry, url))
        .collect();
    candidates.extend(platform_openers(url));
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no browser opener found");
    for argv in candidates {
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        let mut command = Command::new(program);
        command.args(args);
        for name in secrets {
            command.env_remove(name);
        }
        let text_browser = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| TEXT_BROWSERS.contains(&n));
        let started = if text_browser {
            command.status().and_then(|status| {
                if status.success() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "the browser command exited with {status}"
                    )))
                }
            })
        } else {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(|mut child| {
                    // Reap it whenever it exits, so no zombie is left behind.
                    drop(
                        std::thread::Builder::new()
                            .name("browser-reaper".to_owned())
                            .spawn(move || child.wait()),
                    );
                })
        };
        match started {
            Ok(()) => return Ok(()),
            Err(e) => {
                // The program name only: the arguments hold the URL (with `state`).
                tracing::debug!(program = %program, error = %e, "browser opener failed");
                last = e;
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_like_names() {
        for name in [
            "GITHUB_CLIENT_SECRET",
            "acme_client_secret",
            "CLIENT_SECRET",
            "GH_TOKEN",
            "GITHUB_TOKEN",
            "ACME_REFRESH_TOKEN",
            "DB_PASSWORD",
            "OPENAI_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SECRET_KEY",
            "SSH_PRIVATE_KEY",
            "TOKEN",
        ] {
            assert!(is_secret_env_name(name), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "DISPLAY",
            "BROWSER",
            "TOKENIZER_MODE",
            "MYTOKEN",
            "SECRETARY",
            "GITHUB_CLIENT_ID",
        ] {
            assert!(!is_secret_env_name(name), "{name}");
        }
    }

    #[test]
    fn browser_entries_expand_like_the_webbrowser_crate() {
        let url = "https://as.example/authorize?a=1&state=x%20y";
        assert_eq!(browser_command("firefox", url), ["firefox", url]);
        assert_eq!(
            browser_command("  chromium --new-window  ", url),
            ["chromium", "--new-window", url]
        );
        assert_eq!(
            browser_command("open --url=%s --pct=100%%", url),
            ["open", &format!("--url={url}"), "--pct=100%"]
        );
    }
}
