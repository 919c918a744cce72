//! Opening the authorization URL: the system browser by default, anything else by injection.

use std::io;

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
    /// URL through [`AuthenticateOptions::on_browser_error`](crate::AuthenticateOptions) (or a
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

/// The system's default browser via the `webbrowser` crate (`$BROWSER` first when set).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBrowser;

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> io::Result<()> {
        webbrowser::open(url)
    }
}
