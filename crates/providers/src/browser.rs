//! Opening the authorization URL: the system browser by default, anything else by injection.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

/// Opens the authorization URL for the user.
///
/// The default, [`SystemBrowser`], honours `$BROWSER` and starts the opener with an allowlisted
/// environment. A CLI with `--no-browser` injects an opener that prints the URL; tests inject one
/// that drives the login with HTTP requests. Closures implement the trait:
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

/// The system's default browser (`$BROWSER` first when set), started with **an environment built
/// from an allowlist** ([`is_browser_env_name`]), never the whole environment of this process.
///
/// A browser is a large program that runs extensions and helpers and may hand its environment on
/// to them; it has no use for credentials, and an MCP host typically starts `mcp proxy` with API
/// keys, database URLs and tokens in its environment. So the opener is started with
/// `env_clear()` and then only the variables it needs to find the display, the session bus, the
/// locale and the network ([`browser_env`]): each `:`-separated command of `$BROWSER` (`%s` is
/// replaced by the URL, else the URL is appended; text browsers such as `lynx` or `curl` run in the
/// foreground), then the platform's opener (`open` on macOS; `rundll32 url.dll,FileProtocolHandler`
/// on Windows; elsewhere `wslview` and Windows' `rundll32.exe` under WSL, then `xdg-open`,
/// `gio open`, `x-www-browser`, `sensible-browser`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBrowser;

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> io::Result<()> {
        let env = browser_env(std::env::vars_os());
        tracing::debug!(
            variables = env.len(),
            "starting the browser with an allowlisted environment"
        );
        open_with_env(url, &env, std::env::var("BROWSER").ok().as_deref())
    }
}

/// The environment variables a browser (or the platform's opener) is started with, when set: what
/// finds the program, the user, the display and the session bus, the locale, temporary and
/// configuration directories, the network (proxies, CA bundle), and a few display and input
/// settings of Chromium, Firefox, GTK and Qt. Compared exactly (ASCII case-insensitively on
/// Windows); `LC_*` names are allowed too ([`BROWSER_ENV_PREFIXES`]). Proxy variables lose any
/// `user:password@` ([`browser_env`]).
pub const BROWSER_ENV_NAMES: &[&str] = &[
    // Finding programs, the user and their files.
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TMP",
    "TEMP",
    // Locale and time zone (`LC_*` by prefix).
    "LANG",
    "LANGUAGE",
    "TZ",
    // Text browsers (lynx, w3m) and `$BROWSER` itself (xdg-open and sensible-browser read it).
    "TERM",
    "COLORTERM",
    "BROWSER",
    // The display and the session bus.
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "DBUS_SESSION_BUS_ADDRESS",
    // XDG base directories and session (xdg-open picks the desktop's opener from these).
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "XDG_DATA_HOME",
    "XDG_DATA_DIRS",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_CURRENT_DESKTOP",
    "XDG_SESSION_DESKTOP",
    "XDG_SESSION_TYPE",
    "XDG_SESSION_CLASS",
    "XDG_SESSION_ID",
    "XDG_SEAT",
    "XDG_VTNR",
    "XDG_MENU_PREFIX",
    "DESKTOP_SESSION",
    "KDE_FULL_SESSION",
    "KDE_SESSION_VERSION",
    "GNOME_DESKTOP_SESSION_ID",
    "MATE_DESKTOP_SESSION_ID",
    // Network: proxies (credentials removed) and the CA bundle.
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    // Display and input settings: without them a browser may fail to reach the running instance
    // (a second Firefox on Wayland) or the user's input method.
    "MOZ_ENABLE_WAYLAND",
    "MOZ_DBUS_REMOTE",
    "CHROME_CONFIG_HOME",
    "GDK_BACKEND",
    "QT_QPA_PLATFORM",
    "GTK_IM_MODULE",
    "QT_IM_MODULE",
    "XMODIFIERS",
    // WSL: running Windows' opener needs the interop socket.
    "WSL_DISTRO_NAME",
    "WSL_INTEROP",
    "WSLENV",
    // Windows: what `rundll32` and a browser need to start.
    "SYSTEMROOT",
    "WINDIR",
    "SYSTEMDRIVE",
    "COMSPEC",
    "PATHEXT",
    "USERPROFILE",
    "USERNAME",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "PROGRAMFILES",
    "PROGRAMFILES(X86)",
    "COMMONPROGRAMFILES",
];

/// Prefixes of further allowed names ([`BROWSER_ENV_NAMES`]): the locale categories.
pub const BROWSER_ENV_PREFIXES: &[&str] = &["LC_"];

/// The proxy variables among [`BROWSER_ENV_NAMES`] whose value is a URL that may carry
/// credentials.
const PROXY_URL_NAMES: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

/// Whether the environment variable `name` is passed to the browser: listed in
/// [`BROWSER_ENV_NAMES`] or starting with one of [`BROWSER_ENV_PREFIXES`], and not secret-like
/// ([`is_secret_env_name`]).
///
/// ```
/// use context_harness_providers::is_browser_env_name;
///
/// assert!(is_browser_env_name("DISPLAY"));
/// assert!(is_browser_env_name("LC_ALL"));
/// assert!(!is_browser_env_name("GITHUB_PAT"));
/// assert!(!is_browser_env_name("DATABASE_URL"));
/// assert!(!is_browser_env_name("CONTEXT_HARNESS_HOME"));
/// ```
pub fn is_browser_env_name(name: &str) -> bool {
    let listed = BROWSER_ENV_NAMES.iter().any(|allowed| {
        if cfg!(windows) {
            allowed.eq_ignore_ascii_case(name)
        } else {
            *allowed == name
        }
    });
    let prefixed = BROWSER_ENV_PREFIXES
        .iter()
        .any(|prefix| name.len() > prefix.len() && name.starts_with(prefix));
    (listed || prefixed) && !is_secret_env_name(name)
}

/// The environment a browser is started with, from `vars` (this process's environment): the
/// variables [`is_browser_env_name`] allows, with any `user:password@` removed from the proxy URLs
/// (`http_proxy`, `https_proxy`, `all_proxy` in either case). A name that is not Unicode, or a
/// proxy URL that is not, is left out.
///
/// Proxy credentials are not passed: Chromium and Firefox ignore credentials in these variables
/// (they ask for them when the proxy does), and a text browser can be given its own.
///
/// ```
/// use context_harness_providers::browser_env;
///
/// let env = browser_env(
///     [
///         ("PATH", "/usr/bin"),
///         ("GITHUB_PAT", "ghp_secret"),
///         ("HTTPS_PROXY", "http://alice:pw@proxy.example:3128"),
///     ]
///     .map(|(k, v)| (k.into(), v.into())),
/// );
/// assert_eq!(
///     env,
///     [
///         ("PATH".into(), "/usr/bin".into()),
///         ("HTTPS_PROXY".into(), "http://proxy.example:3128".into()),
///     ]
/// );
/// ```
pub fn browser_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter_map(|(name, value)| {
            let name_str = name.to_str()?;
            if !is_browser_env_name(name_str) {
                return None;
            }
            if PROXY_URL_NAMES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name_str))
            {
                let stripped = without_userinfo(value.to_str()?);
                return Some((name, OsString::from(stripped)));
            }
            Some((name, value))
        })
        .collect()
}

/// A proxy URL (`scheme://user:password@host:port/…`, the scheme optional) without its user info.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at.saturating_add(3)),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!(
            "{scheme}{}{tail}",
            authority.get(at.saturating_add(1)..).unwrap_or("")
        ),
        None => url.to_owned(),
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
/// `API_KEY`, `APIKEY`, `ACCESS_KEY`, `SECRET_KEY`, `PRIVATE_KEY`, `CREDENTIALS`.
///
/// The browser's environment is an allowlist ([`is_browser_env_name`]); this check only removes a
/// secret-like name that an allowed prefix (`LC_*`) would let through.
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|suffix| {
        upper == *suffix
            || upper
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('_'))
    })
}

/// Browsers that run in the terminal: started in the foreground and waited for.
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
        let mut openers = Vec::new();
        if std::env::var_os("WSL_DISTRO_NAME").is_some()
            || std::env::var_os("WSL_INTEROP").is_some()
        {
            openers.push(with(&["wslview"]));
            openers.push(with(&["rundll32.exe", "url.dll,FileProtocolHandler"]));
        }
        openers.extend([
            with(&["xdg-open"]),
            with(&["gio", "open"]),
            with(&["x-www-browser"]),
            with(&["sensible-browser"]),
        ]);
        openers
    }
}

/// Starts the first opener that works, with exactly `env` as its environment.
fn open_with_env(
    url: &str,
    env: &[(OsString, OsString)],
    browser_env: Option<&str>,
) -> io::Result<()> {
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
        command
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
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

    /// Secret-like names, the tool's own variables and anything unlisted stay out; what a browser
    /// needs gets in; proxy credentials are removed.
    #[test]
    fn the_browser_environment_is_an_allowlist() {
        let vars = [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/u"),
            ("DISPLAY", ":0"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_ALL", "C"),
            ("LC_SECRET_TOKEN", "x"),
            ("no_proxy", "localhost,.corp"),
            ("https_proxy", "http://bob:s3cret@proxy.corp:8080/"),
            ("ALL_PROXY", "socks5://carol@socks.corp:1080"),
            ("HTTP_PROXY", "proxy.corp:3128"),
            ("GITHUB_PAT", "ghp_1"),
            ("DB_PASS", "p"),
            ("DATABASE_URL", "postgres://u:p@db/x"),
            ("SLACK_WEBHOOK", "https://hooks.slack.com/x"),
            ("CONTEXT_HARNESS_HOME", "/home/u/.ch"),
            ("ACME_CLIENT_SECRET", "s"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("LD_PRELOAD", "/tmp/evil.so"),
        ];
        let env = browser_env(vars.map(|(k, v)| (OsString::from(k), OsString::from(v))));
        let got: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/u"),
            ("DISPLAY", ":0"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_ALL", "C"),
            ("no_proxy", "localhost,.corp"),
            ("https_proxy", "http://proxy.corp:8080/"),
            ("ALL_PROXY", "socks5://socks.corp:1080"),
            ("HTTP_PROXY", "proxy.corp:3128"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(without_userinfo("u:p@proxy:1"), "proxy:1");
        assert_eq!(without_userinfo("http://proxy:1/a@b"), "http://proxy:1/a@b");
        assert_eq!(without_userinfo("http://a@b@proxy:1"), "http://proxy:1");
    }

    #[test]
    fn browser_entries_expand_percent_s_or_append_the_url() {
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
