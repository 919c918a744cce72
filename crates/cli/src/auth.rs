//! `context-harness mcp auth <provider>`: the browser sign-in (or the device grant).
//!
//! `<provider>` is a registry name or an MCP server URL (discovery and dynamic registration happen
//! in the service). `--device` uses the device authorization grant (RFC 8628); so does a session
//! where no browser can be opened, when the provider has a device endpoint.
//!
//! The loopback listener is bound first; then the browser is opened on the authorization URL (the
//! system browser, which honours `$BROWSER`). With `--no-browser`, or when no browser can be opened
//! (Linux/BSD without `DISPLAY`/`WAYLAND_DISPLAY` and without `BROWSER`, or an SSH session without
//! `BROWSER`), the URL is printed instead, and a redirect URL pasted on stdin is raced against the
//! listener: on a terminal with a prompt; otherwise the first non-empty line read from stdin (end of
//! input just leaves the listener waiting). The tokens are stored and only their location is shown.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, SystemTime};

use context_harness_providers::protocol::DeviceAuthorization;
use context_harness_providers::{
    AuthenticateOptions, BrowserOpener, DEFAULT_PORTS, Error as ProviderError, GrantType,
    OAuthService, PastedRedirects, ProviderRef, SignInFlow, SignInUi, SystemBrowser, terminal_text,
};

use crate::args::AuthArgs;
use crate::context::Context;
use crate::exit;
use crate::timefmt;

/// How the authorization URL reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opener {
    /// The system browser (or `$BROWSER`).
    System,
    /// Printed for the user to open; the reason is shown.
    Manual(&'static str),
}

/// What the sign-in tells the user on stderr (server text through the terminal sanitiser).
struct Terminal {
    display_name: String,
    /// Whether to offer pasting the redirect address after a browser failure.
    offer_paste: bool,
    quiet: bool,
}

impl SignInUi for Terminal {
    fn waiting_for_sign_in(&self, _provider: &str) {
        if !self.quiet {
            eprintln!(
                "another context-harness process is signing in to {}; waiting…",
                self.display_name
            );
        }
    }

    fn browser_failed(&self, url: &str, err: &std::io::Error) {
        eprintln!(
            "Could not open a browser ({}). Open this URL to sign in to {}:\n\n    {url}\n",
            terminal_text(&err.to_string()),
            self.display_name
        );
        if self.offer_paste {
            eprintln!("Or paste the address the browser was redirected to here and press Enter.");
        }
    }

    fn device_code(&self, device: &DeviceAuthorization) {
        // Shown even with -q: the user must type the code.
        // The code and URIs are the server's text: through the terminal sanitiser.
        eprintln!(
            "To sign in to {}, open {} and enter the code\n\n    {}\n",
            self.display_name,
            terminal_text(&device.verification_uri),
            terminal_text(&device.user_code)
        );
        if let Some(complete) = &device.verification_uri_complete {
            eprintln!("(or open {})", terminal_text(complete));
        }
        eprintln!(
            "Waiting for the approval (the code expires in {} min)…",
            device.expires_in.as_secs().div_ceil(60)
        );
    }

    fn paste_rejected(&self, err: &ProviderError) {
        // Shown even with -q: the user is waiting on it.
        eprintln!("That address was not accepted: {err}.");
        eprintln!(
            "Paste the address again (the whole of it), or finish the sign-in in the browser."
        );
    }
}

/// What the user sees around the browser step (runs on the opener's thread).
struct Notice {
    quiet: bool,
    display_name: String,
    first_port: Option<u16>,
    opener: Opener,
    /// Whether a redirect address pasted on stdin is read (else the notice never asks for one).
    paste_read: bool,
    /// The command that can sign in by pasting, for a sign-in that reads no paste itself
    /// (`mcp auth <provider> --no-browser`); also shows the URL when a browser is started, since
    /// nobody may be watching for it (a sign-in the command started on its own).
    implicit: Option<String>,
}

impl Notice {
    /// Says which redirect URI the listener waits on, and that a fallback port was used.
    fn listening(&self, url: &str) {
        let Some(redirect) = redirect_uri_of(url) else {
            return;
        };
        let port = url::Url::parse(&redirect).ok().and_then(|u| u.port());
        if let (Some(first), Some(port)) = (self.first_port, port)
            && first != 0
            && first != port
        {
            // Shown even with -q: the app registration may have to allow this redirect URI.
            eprintln!(
                "Port {first} is in use; listening on port {port} instead ({redirect} must be an allowed redirect URI)."
            );
        }
        if !self.quiet {
            eprintln!("Waiting for the authorization on {redirect}");
        }
    }

    fn manual(&self, url: &str, why: &str) {
        // Shown even with -q: without it the user cannot sign in.
        eprintln!(
            "{why}. Open this URL in a browser to sign in to {} at {}:\n\n    {url}\n",
            self.display_name,
            authorization_server_of(url)
        );
        self.listening(url);
        if self.paste_read {
            if !self.quiet {
                eprintln!(
                    "If the browser is on another machine, paste the address it was redirected to (the page that fails to load) here and press Enter."
                );
            }
        } else if let Some(command) = &self.implicit {
            // Shown even with -q: otherwise a user on another machine waits for nothing.
            eprintln!(
                "The browser must run on this machine (the sign-in returns to its loopback address). From another machine, stop this (Ctrl-C) and run `{command}`, which reads the address the browser is sent to."
            );
        }
    }
}

impl BrowserOpener for Notice {
    fn open(&self, url: &str) -> std::io::Result<()> {
        tracing::info!(opener = ?self.opener, "showing the authorization URL");
        match self.opener {
            Opener::Manual(why) => {
                self.manual(url, why);
                Ok(())
            }
            Opener::System => {
                if !self.quiet {
                    // The authorization server's host, before the browser opens (RFC 9700 §4.4:
                    // the user can see where the sign-in really goes).
                    eprintln!(
                        "Opening the browser to sign in to {} at {}…",
                        self.display_name,
                        authorization_server_of(url)
                    );
                }
                if self.implicit.is_some() {
                    // A browser command can "succeed" without showing anything (a failing
                    // $BROWSER falls back to xdg-open, a stale DISPLAY): the URL, always.
                    eprintln!("If no browser opens, open this URL:\n\n    {url}\n");
                }
                self.listening(url);
                SystemBrowser.open(url)
            }
        }
    }
}

/// The authorization server's origin as `host[:port]`, from the authorization URL.
fn authorization_server_of(url: &str) -> String {
    let Ok(url) = url::Url::parse(url) else {
        return "an unknown server".to_owned();
    };
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "an unknown server".to_owned(),
    }
}

/// The `redirect_uri` parameter of the authorization URL.
fn redirect_uri_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
}

const NO_BROWSER_FLAG: &str = "--no-browser given";

/// Decides whether a browser can be opened here.
pub(crate) fn choose_opener(no_browser: bool) -> Opener {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if no_browser {
        return Opener::Manual(NO_BROWSER_FLAG);
    }
    if set("BROWSER") {
        return Opener::System;
    }
    if set("SSH_CONNECTION") || set("SSH_CLIENT") || set("SSH_TTY") {
        return Opener::Manual("This is an SSH session");
    }
    if cfg!(all(unix, not(target_os = "macos"))) && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Opener::Manual("No display found (DISPLAY and WAYLAND_DISPLAY are unset)");
    }
    Opener::System
}

/// Reads stdin line by line on a plain thread (it may block forever; the runtime does not wait for
/// it) and sends each non-empty line: a paste that is refused can be followed by another. The
/// channel closes at end of input.
fn pasted_lines() -> PastedRedirects {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let spawned = std::thread::Builder::new()
        .name("paste".to_owned())
        .spawn(move || {
            let mut line = String::new();
            let mut stdin = std::io::stdin().lock();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.trim().is_empty() => {}
                    Ok(_) => {
                        if tx.blocking_send(line.trim().to_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if spawned.is_err() {
        tracing::debug!("could not start the stdin reader; only the listener answers");
    }
    rx
}

/// What a sign-in shows and how it reaches the user, shared by `mcp auth` and the sign-ins other
/// commands start when they need tokens.
struct Interaction {
    display_name: String,
    ports: Vec<u16>,
    timeout: Duration,
    opener: Opener,
    device: bool,
    /// `None` for `mcp auth`, which may read a redirect URL pasted on stdin; for a sign-in another
    /// command starts on its own (whose stdin is never read: it may be the command's own input),
    /// the `mcp auth … --no-browser` command that can finish it from another machine.
    implicit: Option<String>,
}

/// The [`AuthenticateOptions`] of `interaction`: the flow (`--device`, else the device grant where
/// no browser can be opened and the provider has one, else the browser), the notices, the terminal
/// UI and the pasted-redirect reader.
fn interactive_options(ctx: &Context, interaction: Interaction) -> AuthenticateOptions {
    let Interaction {
        display_name,
        ports,
        timeout,
        opener,
        device,
        implicit,
    } = interaction;
    let stdin_paste = implicit.is_none();
    // --device asks for the device grant; a session where no browser can be opened (not an
    // explicit --no-browser) gets it when the provider has a device endpoint.
    let flow = match (device, opener) {
        (true, _) => SignInFlow::Device,
        (false, Opener::Manual(why)) if why != NO_BROWSER_FLAG => SignInFlow::DeviceIfAvailable,
        _ => SignInFlow::Browser,
    };
    let stdin_tty = stdin_paste && std::io::stdin().is_terminal();
    // Manual: always race stdin (also when the device grant is tried first: without a device
    // endpoint the browser flow runs). System browser: only a terminal (the user may paste after
    // a failure).
    let paste = stdin_paste
        && flow != SignInFlow::Device
        && (matches!(opener, Opener::Manual(_)) || stdin_tty);
    let notice = Notice {
        quiet: ctx.quiet,
        display_name: display_name.clone(),
        first_port: ports.first().copied(),
        opener,
        paste_read: paste,
        implicit,
    };
    let quiet = ctx.quiet;
    let mut options = AuthenticateOptions::new()
        .timeout(timeout)
        .ports(ports)
        .flow(flow)
        .browser(notice)
        .ui(Terminal {
            display_name,
            offer_paste: stdin_tty && !quiet,
            quiet,
        });
    if paste {
        options = options.pasted_redirects(pasted_lines());
    }
    options
}

/// The display name and default ports of `provider`: a named provider is resolved up front (no
/// network), so an unknown name or a missing client id fails before anything starts; an MCP server
/// URL is discovered by the service.
fn identity(
    service: &OAuthService,
    provider: &str,
    client_id: Option<&str>,
) -> anyhow::Result<(String, Vec<u16>)> {
    let (display_name, ports) = if ProviderRef::is_server_url(provider) {
        (provider.to_owned(), DEFAULT_PORTS.to_vec())
    } else {
        let config = service.resolve_config(provider, client_id)?;
        (config.provider.display_name, config.provider.ports)
    };
    // Names come from providers.toml or the command line: printed through the sanitiser.
    Ok((terminal_text(&display_name), ports))
}

/// The options of the sign-in a command that needs tokens starts on its own (`mcp token`, `mcp
/// headers`, `git-credential`, `exec`), as `mcp auth <provider>` would run it with its defaults and
/// `--timeout timeout`; `None` when nobody can be reached: no browser can be opened here and stderr
/// is not a terminal (a script or a service: it gets "not signed in" at once instead of a sign-in
/// nobody sees). Stdin is never read (it may be the command's own input).
pub(crate) fn implicit_sign_in(
    ctx: &Context,
    service: &OAuthService,
    provider: &str,
    timeout: Duration,
) -> anyhow::Result<Option<AuthenticateOptions>> {
    let opener = choose_opener(false);
    if matches!(opener, Opener::Manual(_)) && !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let (display_name, ports) = identity(service, provider, None)?;
    let account_flag = ctx.account_flag_of(service.account_for(provider)?.as_str());
    Ok(Some(interactive_options(
        ctx,
        Interaction {
            display_name,
            ports,
            timeout,
            opener,
            device: false,
            implicit: Some(format!(
                "context-harness mcp auth {}{} --no-browser",
                terminal_text(provider),
                account_flag
            )),
        },
    )))
}

pub(crate) fn run(ctx: &Context, args: AuthArgs) -> anyhow::Result<u8> {
    tracing::info!(
        provider = %context_harness_providers::protocol::without_user_info(&args.provider),
        "starting the sign-in"
    );
    let service = ctx.service()?;
    // `--account NAME --default` for an account signed in already: only the default changes.
    if crate::accounts::switch_default_only(ctx, &service, &args)? {
        return Ok(exit::OK);
    }
    let (display_name, default_ports) =
        identity(&service, &args.provider, args.sign_in.client_id.as_deref())?;
    let ports = if args.sign_in.ports.is_empty() {
        default_ports
    } else {
        args.sign_in.ports.clone()
    };
    let mut options = interactive_options(
        ctx,
        Interaction {
            display_name: display_name.clone(),
            ports,
            timeout: Duration::from_secs(args.sign_in.timeout),
            opener: choose_opener(args.no_browser),
            device: args.device,
            implicit: None,
        },
    );
    if let Some(id) = &args.sign_in.client_id {
        options = options.client_id(id.clone());
    }
    if !args.sign_in.scopes.is_empty() {
        options = options.scopes(args.sign_in.scopes.clone());
    }
    options = options.without_resource(args.sign_in.no_resource);
    options = options.without_dpop(args.sign_in.no_dpop);
    options = options.grant(
        args.sign_in
            .grant_options(Some(GrantType::AuthorizationCode))?,
    );

    let started = std::time::Instant::now();
    let outcome = ctx.block_on(service.authenticate(&args.provider, options))??;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "sign-in finished"
    );

    let where_ = if outcome.location.starts_with("system keyring") {
        format!("in the {}", outcome.location)
    } else {
        format!("in the file {}", outcome.location)
    };
    if outcome.by_other_process {
        ctx.say(format!(
            "Signed in to {display_name} by the sign-in another context-harness process completed while this one waited (no browser opened here). Tokens stored {where_}."
        ));
    } else {
        ctx.say(format!(
            "Signed in to {display_name}. Tokens stored {where_}."
        ));
    }
    let tokens = &outcome.tokens;
    // `expires_in` 0 or negative: the server says the token has expired already (kept as such).
    let born_expired = tokens.expires_in == Some(0);
    let expiry = if born_expired {
        "already expired (the server gave it no lifetime: expires_in 0 or less)".to_owned()
    } else {
        tokens.expires_at().map_or_else(
            || "no expiry given".to_owned(),
            |at| format!("valid until {}", timefmt::human(at, SystemTime::now())),
        )
    };
    let scopes = tokens.scopes();
    let scopes = if scopes.is_empty() {
        "-".to_owned()
    } else {
        scopes.join(" ")
    };
    // The device flow has no redirect: no empty `redirect:` field then.
    let redirect = if outcome.redirect_uri.is_empty() {
        String::new()
    } else {
        format!("; redirect: {}", outcome.redirect_uri)
    };
    let grant = GrantType::of_tokens(tokens);
    let renewal = if grant.renews_itself() {
        // No refresh token: the grant runs again when the token nears its expiry.
        format!("renewed with the {} grant", grant.as_str())
    } else if tokens.refresh_token.is_some() {
        "refresh token: yes".to_owned()
    } else {
        "refresh token: no".to_owned()
    };
    ctx.say(format!(
        "Access token {expiry}; scopes: {scopes}; {renewal}{redirect}"
    ));
    if born_expired {
        ctx.say(if tokens.refresh_token.is_some() {
            "The sign-in is kept; the access token is refreshed when it is first used."
        } else {
            "The sign-in is kept, but without a refresh token the access token cannot be renewed: commands that need it will ask for a new sign-in."
        });
    }
    crate::accounts::after_sign_in(ctx, &service, &args)?;
    Ok(exit::OK)
}
