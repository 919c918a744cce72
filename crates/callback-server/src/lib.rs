//! A loopback HTTP listener that receives one OAuth authorization response.
//!
//! A CLI signing in with the authorization code flow (OAuth 2.1 + PKCE, RFC 8252 native-app
//! style) [binds](CallbackServer::bind) a [`CallbackServer`] on loopback, sends the user's
//! browser to the authorization endpoint with the server's
//! [`redirect_uri`](CallbackServer::redirect_uri), and [waits](CallbackServer::wait) for the
//! browser to come back with `code` and `state`. The listener is HTTP/1 only (hyper, no HTTP/2),
//! serves that one response, and closes. [`parse_redirect_url`] applies the same rules to a
//! redirect URL the user pastes, for when the browser runs on another machine.
//!
//! # Example
//!
//! ```
//! use std::io::{Read as _, Write as _};
//!
//! use context_harness_callback_server::{CallbackConfig, CallbackServer};
//! use context_harness_pkce::State;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let state = State::generate()?;
//!     // Port 0: an ephemeral port, so the example never collides with another program.
//!     // A real CLI keeps the default ports (8080, 3000, 57548), which users register.
//!     let server = CallbackServer::bind(CallbackConfig::default().with_ports([0])).await?;
//!     assert!(server.redirect_uri().starts_with("http://localhost:"));
//!
//!     // Here the CLI opens the browser at the authorization URL, with
//!     // `redirect_uri=server.redirect_uri()` and `state=state.as_str()`.
//!     // This example plays the browser coming back:
//!     let port = server.port();
//!     let callback = format!("/callback?code=abc&state={}", state.as_str());
//!     let browser = std::thread::spawn(move || -> std::io::Result<String> {
//!         let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
//!         write!(stream, "GET {callback} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n")?;
//!         let mut page = String::new();
//!         stream.read_to_string(&mut page)?;
//!         Ok(page)
//!     });
//!
//!     let response = server.wait(&state).await?;
//!     assert_eq!(response.code.secret(), "abc");
//!     let page = browser.join().map_err(|_| "browser thread panicked")??;
//!     assert!(page.starts_with("HTTP/1.1 200"));
//!     assert!(page.contains("You can close this tab"));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
//!
//! # Security
//!
//! - **Loopback only.** The listener binds `127.0.0.1` and `[::1]`, never `0.0.0.0`: the
//!   authorization code must not be reachable from the network (RFC 8252 §7.3, §8.3), and a
//!   short-lived port on loopback is not exposed to other machines or firewall prompts.
//! - **Both address families.** The default redirect URI says `localhost`, and browsers may
//!   resolve that to `::1` first. If only `127.0.0.1` were bound, another local program could
//!   listen on `[::1]` with the same port and receive the code. So both are bound, and if
//!   `[::1]:port` is held by someone else the port counts as busy and the next is tried. (A
//!   host without IPv6 loopback gets an IPv4 listener only: there is then nothing to take.)
//! - **Keep waiting on a state mismatch.** A response whose `state` is missing or wrong is
//!   answered with a 400 page and otherwise ignored. It is either a forged request (CSRF:
//!   someone else's code pushed into our session) or an old browser tab from an earlier
//!   attempt; ending the flow on it would let any web page, or a stale tab, abort the sign-in
//!   the user is doing. If the wait then times out, [`Error::Timeout`] reports that a mismatch
//!   was seen. Error responses (`error=...`) are believed only with the right `state` too.
//! - **State compared in constant time** ([`State::matches`](context_harness_pkce::State)),
//!   so response timing does not reveal how much of a guessed state was right.
//! - **Strict parsing.** Only `GET` on the exact redirect path counts (`/favicon.ico` gets 404
//!   and the wait goes on). Bad percent-encoding, non-UTF-8, control characters or a repeated
//!   `code`/`state`/`iss`/`error*` parameter get 400 and the wait goes on.
//! - **Secrets stay out of logs.** The code and the state never appear in `tracing` output,
//!   errors or `Debug` ([`AuthorizationCode`] and [`CallbackResponse`] redact them).
//! - **Hardened listener.** Request heads are capped at 16 KiB and 64 headers, headers must
//!   arrive within [`header_read_timeout`](CallbackConfig::header_read_timeout) (slowloris),
//!   at most [`max_connections`](CallbackConfig::max_connections) are served at once (the rest
//!   wait in the backlog), keep-alive is off, and no input makes the server panic.
//! - **Pages.** Small self-contained HTML with every echoed value escaped, served with
//!   `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and a CSP that loads nothing.
//!   The error page does not show `error_description`: until the caller has checked `iss`
//!   (RFC 9207) it may come from a mix-up attacker.
//! - **Short-lived.** The port is held from [`CallbackServer::bind`] (before the browser
//!   opens) until [`CallbackServer::wait`] returns or the server is dropped, whatever the
//!   outcome.
//!
//! This crate returns `iss` but does not validate it: the caller knows the expected issuer.
//!
//! # Performance
//!
//! Measured with `cargo bench -p context-harness-callback-server` (criterion, release build,
//! a shared 2-core Linux machine, both loopback families bound):
//!
//! | step | time |
//! |---|---|
//! | `bind` on an ephemeral port until ready (`bind_ready`) | ≈ 24 µs (22–27 µs) |
//! | one callback: connect, request, page received, `wait` returned, listener closed (`callback_round_trip`) | ≈ 0.21 ms (0.17–0.25 ms) |
//!
//! (The reference figures for this design were ≈ 65 µs and 0.1–0.3 ms.)

mod config;
mod error;
mod page;
mod response;
mod server;

pub use config::{
    CallbackConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PATH,
    DEFAULT_PORTS, DEFAULT_TIMEOUT, RedirectHost,
};
pub use error::{Error, PortAttempt, Result};
pub use response::{AuthorizationCode, CallbackResponse, normalize_pasted_url, parse_redirect_url};
pub use server::{CallbackServer, MAX_FORM_BODY};
