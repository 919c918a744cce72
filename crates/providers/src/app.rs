//! [`App`]: the names a program that embeds this library signs in under.
//!
//! Every name the library would otherwise fix to `context-harness` is read from here: the keyring
//! service, the home directory and its environment variable, the storage-mode variable, the HTTP
//! `User-Agent`, the RFC 7591 `client_name` and the MCP `clientInfo`. The default is
//! context-harness itself, so the `context-harness` binary changes nothing.

use std::fmt;
use std::path::{Path, PathBuf};

use context_harness_tokens::ClientSecret;

use crate::env::{Environment, env_prefix, read_secret_file};
use crate::error::{Error, ErrorCode, Result};

/// The longest accepted application name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// The longest accepted application version, in bytes.
const MAX_VERSION_LEN: usize = 64;

/// The identity of the program using the library (set with
/// [`OAuthServiceBuilder::app`](crate::OAuthServiceBuilder::app)).
///
/// | what | `App::new("my-tool")` | default (`context-harness`) |
/// |---|---|---|
/// | keyring service ([`keyring_service`](Self::keyring_service)) | `my-tool` | `context-harness` |
/// | home variable ([`home_env`](Self::home_env)) | `MY_TOOL_HOME` | `CONTEXT_HARNESS_HOME` |
/// | default home ([`home_dir`](Self::home_dir)) | `~/.my-tool` | `~/.context-harness` |
/// | storage variable ([`storage_env`](Self::storage_env)) | `MY_TOOL_STORAGE` | `CONTEXT_HARNESS_STORAGE` |
/// | client secret ([`client_secret_env`](Self::client_secret_env)) | `MY_TOOL_CLIENT_SECRET` | `CONTEXT_HARNESS_CLIENT_SECRET` |
/// | client secret file ([`client_secret_file_env`](Self::client_secret_file_env)) | `MY_TOOL_CLIENT_SECRET_FILE` | `CONTEXT_HARNESS_CLIENT_SECRET_FILE` |
/// | IdP client secret ([`idp_client_secret_env`](Self::idp_client_secret_env)) | `MY_TOOL_IDP_CLIENT_SECRET` | `CONTEXT_HARNESS_IDP_CLIENT_SECRET` |
/// | IdP client secret file ([`idp_client_secret_file_env`](Self::idp_client_secret_file_env)) | `MY_TOOL_IDP_CLIENT_SECRET_FILE` | `CONTEXT_HARNESS_IDP_CLIENT_SECRET_FILE` |
/// | client metadata document URL ([`client_metadata_url_env`](Self::client_metadata_url_env)) | `MY_TOOL_CLIENT_METADATA_URL` | `CONTEXT_HARNESS_CLIENT_METADATA_URL` |
/// | `User-Agent` ([`user_agent`](Self::user_agent)) | `my-tool/<version>` | `context-harness/0.1.0` |
/// | RFC 7591 `client_name`, MCP `clientInfo.name` | `my-tool` | `context-harness` |
///
/// The home holds `tokens/` (token files and refresh locks), `mcp/`, `registrations/`, `cache/`
/// and `providers.toml`; the per-provider variables `{SERVICE}_CLIENT_ID` / `_SECRET` do not
/// depend on the application (see [`client_secret`](Self::client_secret) for how they combine).
///
/// ```
/// use context_harness_providers::{App, Environment};
///
/// let app = App::new("my-tool")?.with_version("2.1.0")?;
/// assert_eq!(app.home_env(), "MY_TOOL_HOME");
/// assert_eq!(app.user_agent(), "my-tool/2.1.0");
/// let env = Environment::from_pairs([("HOME", "/home/u")]);
/// assert_eq!(app.home_dir(&env), Some("/home/u/.my-tool".into()));
/// assert!(App::new("My Tool").is_err());
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    name: String,
    version: String,
    /// The URL of the application's Client ID Metadata Document, when set in code.
    client_metadata_url: Option<String>,
}

impl Default for App {
    /// context-harness itself, at this crate's version.
    fn default() -> Self {
        Self {
            name: "context-harness".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            client_metadata_url: None,
        }
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "App({}/{})", self.name, self.version)
    }
}

impl App {
    /// An application called `name`, at this crate's version until
    /// [`with_version`](Self::with_version) says otherwise.
    ///
    /// `name` is 1 to 64 bytes of lowercase ASCII letters, digits and `-`, starting with a letter
    /// and not ending with `-` (so it is a valid keyring service, directory name, environment
    /// variable stem and HTTP product token, RFC 9110 §10.1.5).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] for any other name.
    pub fn new(name: &str) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "invalid application name {:?}",
                    crate::terminal_text_max(name, MAX_NAME_LEN)
                ),
            )
            .with_hint(
                "use 1 to 64 lowercase letters, digits and '-', starting with a letter, e.g. \"my-tool\"",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            client_metadata_url: None,
        })
    }

    /// Sets the HTTPS URL of the application's Client ID Metadata Document (see
    /// [`client_metadata_url`](Self::client_metadata_url)); it wins over the environment variable.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] unless `url` is a usable document URL
    /// ([`check_client_metadata_url`](crate::protocol::check_client_metadata_url): `https`, a
    /// path, no fragment, user info or dot segments).
    pub fn with_client_metadata_url(mut self, url: &str) -> Result<Self> {
        context_harness_protocol::check_client_metadata_url(url)?;
        self.client_metadata_url = Some(url.to_owned());
        Ok(self)
    }

    /// The environment variable naming the application's Client ID Metadata Document URL:
    /// `{NAME}_CLIENT_METADATA_URL` (`MY_TOOL_CLIENT_METADATA_URL`).
    pub fn client_metadata_url_env(&self) -> String {
        format!("{}_CLIENT_METADATA_URL", env_prefix(&self.name))
    }

    /// The HTTPS URL of the application's Client ID Metadata Document (MCP 2026-07-28 "Client ID
    /// Metadata Documents"), used as the `client_id` at MCP authorization servers that announce
    /// `client_id_metadata_document_supported`, after a pre-registered client and before dynamic
    /// registration: the one set with [`with_client_metadata_url`](Self::with_client_metadata_url),
    /// else [`client_metadata_url_env`](Self::client_metadata_url_env), else `None` (an empty value
    /// counts as unset). The document it names is the one
    /// [`client_metadata_document`](crate::client_metadata_document) renders.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when the variable holds an unusable URL (it is named).
    pub fn client_metadata_url(&self, env: &Environment) -> Result<Option<String>> {
        if let Some(url) = &self.client_metadata_url {
            return Ok(Some(url.clone()));
        }
        let var = self.client_metadata_url_env();
        let Some(url) = env.get(&var).map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        context_harness_protocol::check_client_metadata_url(url).map_err(|e| {
            Error::from(e).with_hint(format!(
                "set {var} to the https URL where the client metadata document is published, or unset it"
            ))
        })?;
        Ok(Some(url.to_owned()))
    }

    /// Sets the version sent in the `User-Agent` and the MCP `clientInfo` (default: this crate's).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] unless `version` is 1 to 64 HTTP token characters
    /// (RFC 9110 §5.6.2: letters, digits and ``!#$%&'*+-.^_`|~``).
    pub fn with_version(mut self, version: &str) -> Result<Self> {
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if version.is_empty() || version.len() > MAX_VERSION_LEN || !version.chars().all(tchar) {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "invalid application version {:?}",
                    crate::terminal_text_max(version, MAX_VERSION_LEN)
                ),
            )
            .with_hint("use a version such as \"1.2.3\" (no spaces or slashes)"));
        }
        version.clone_into(&mut self.version);
        Ok(self)
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The application's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The keyring service of every entry the application stores: its name.
    pub fn keyring_service(&self) -> &str {
        &self.name
    }

    /// The environment variable naming the home directory: `{NAME}_HOME` (`MY_TOOL_HOME`).
    pub fn home_env(&self) -> String {
        format!("{}_HOME", env_prefix(&self.name))
    }

    /// The environment variable naming the storage mode (`auto`, `keyring`, `file`):
    /// `{NAME}_STORAGE` (`MY_TOOL_STORAGE`). Read when the builder is given no storage mode.
    pub fn storage_env(&self) -> String {
        format!("{}_STORAGE", env_prefix(&self.name))
    }

    /// The environment variable holding the client secret of the pre-registered confidential
    /// client the one command (or call) at hand uses, whatever provider or MCP server it targets:
    /// `{NAME}_CLIENT_SECRET` (`MY_TOOL_CLIENT_SECRET`). See [`client_secret`](Self::client_secret).
    pub fn client_secret_env(&self) -> String {
        format!("{}_CLIENT_SECRET", env_prefix(&self.name))
    }

    /// The environment variable naming a file that holds that client secret instead:
    /// `{NAME}_CLIENT_SECRET_FILE` (`MY_TOOL_CLIENT_SECRET_FILE`). See
    /// [`client_secret`](Self::client_secret).
    pub fn client_secret_file_env(&self) -> String {
        format!("{}_CLIENT_SECRET_FILE", env_prefix(&self.name))
    }

    /// The client secret of a pre-registered confidential client (RFC 6749 §2.3.1), from the
    /// environment only, never a command-line argument (which other local users can read):
    ///
    /// 1. `service_var` (a provider's `{SERVICE}_CLIENT_SECRET`, e.g. `GITHUB_CLIENT_SECRET`), when
    ///    given and set;
    /// 2. else [`client_secret_env`](Self::client_secret_env) (`CONTEXT_HARNESS_CLIENT_SECRET`);
    /// 3. else the file named by [`client_secret_file_env`](Self::client_secret_file_env)
    ///    (`CONTEXT_HARNESS_CLIENT_SECRET_FILE`), read with
    ///    [`read_secret_file`](crate::read_secret_file) (yours, no symbolic link, mode 0600), its
    ///    trailing line break removed;
    /// 4. else `None` (a public client).
    ///
    /// The application-wide variables apply to whatever single provider or MCP server the command
    /// targets: set them only in the environment of that command. An MCP server URL has no
    /// `{SERVICE}` variable, only these. Empty values count as unset.
    ///
    /// ```
    /// use context_harness_providers::{App, Environment};
    ///
    /// let env = Environment::from_pairs([
    ///     ("CONTEXT_HARNESS_CLIENT_SECRET", "general"),
    ///     ("ACME_CLIENT_SECRET", "acme's own"),
    /// ]);
    /// let app = App::default();
    /// let secret = app.client_secret(&env, Some("ACME_CLIENT_SECRET"))?;
    /// assert_eq!(secret.as_ref().map(|s| s.secret()), Some("acme's own"));
    /// let secret = app.client_secret(&env, None)?;
    /// assert_eq!(secret.as_ref().map(|s| s.secret()), Some("general"));
    /// # Ok::<(), context_harness_providers::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when both application-wide variables are set, or the file
    /// cannot be used (see [`read_secret_file`](crate::read_secret_file)) or holds nothing but a
    /// line break. Messages never contain the secret.
    pub fn client_secret(
        &self,
        env: &Environment,
        service_var: Option<&str>,
    ) -> Result<Option<ClientSecret>> {
        if let Some(secret) = service_var.and_then(|var| env.get(var)) {
            return Ok(Some(ClientSecret::new(secret)));
        }
        secret_from(
            env,
            &self.client_secret_env(),
            &self.client_secret_file_env(),
        )
    }

    /// The environment variable holding this client's secret at the enterprise identity provider
    /// of Enterprise-Managed Authorization (`--grant-type id_jag`), when the IdP wants one:
    /// `{NAME}_IDP_CLIENT_SECRET` (`MY_TOOL_IDP_CLIENT_SECRET`).
    pub fn idp_client_secret_env(&self) -> String {
        format!("{}_IDP_CLIENT_SECRET", env_prefix(&self.name))
    }

    /// The environment variable naming a file that holds the IdP client secret instead:
    /// `{NAME}_IDP_CLIENT_SECRET_FILE` (`MY_TOOL_IDP_CLIENT_SECRET_FILE`).
    pub fn idp_client_secret_file_env(&self) -> String {
        format!("{}_IDP_CLIENT_SECRET_FILE", env_prefix(&self.name))
    }

    /// This client's secret at the enterprise IdP (RFC 6749 §2.3.1), from
    /// [`idp_client_secret_env`](Self::idp_client_secret_env), else the file named by
    /// [`idp_client_secret_file_env`](Self::idp_client_secret_file_env) (read as
    /// [`client_secret`](Self::client_secret) reads its file); `None` for a public client at the
    /// IdP. Only ever sent to the IdP's token endpoint.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] as for [`client_secret`](Self::client_secret).
    pub fn idp_client_secret(&self, env: &Environment) -> Result<Option<ClientSecret>> {
        secret_from(
            env,
            &self.idp_client_secret_env(),
            &self.idp_client_secret_file_env(),
        )
    }

    /// The home directory: `${NAME}_HOME`, else `$HOME/.{name}` (`%USERPROFILE%` on Windows).
    /// `None` when neither is set.
    pub fn home_dir(&self, env: &Environment) -> Option<PathBuf> {
        if let Some(home) = env.get(&self.home_env()) {
            return Some(PathBuf::from(home));
        }
        env.get("HOME")
            .or_else(|| env.get("USERPROFILE"))
            .map(|home| PathBuf::from(home).join(format!(".{}", self.name)))
    }

    /// The HTTP `User-Agent` (RFC 9110 §10.1.5): `{name}/{version}`.
    pub fn user_agent(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    /// The `client_name` of a dynamic client registration (RFC 7591 §2).
    pub fn client_name(&self) -> &str {
        &self.name
    }

    /// The MCP `initialize` request's `clientInfo` (`name`, `version`) sent when probing a server.
    pub fn client_info(&self) -> (&str, &str) {
        (&self.name, &self.version)
    }
}

/// A secret from the variable `var`, else from the file named by `file_var` (see
/// [`App::client_secret`]); both set is an error.
fn secret_from(env: &Environment, var: &str, file_var: &str) -> Result<Option<ClientSecret>> {
    match (env.get(var), env.get(file_var)) {
        (Some(_), Some(_)) => Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!("both {var} and {file_var} are set"),
        )
        .with_hint(format!("set only one of {var} and {file_var}"))),
        (Some(secret), None) => {
            tracing::debug!(variable = %var, "using the client secret from the environment");
            Ok(Some(ClientSecret::new(secret)))
        }
        (None, Some(path)) => {
            let secret = read_secret_file(Path::new(path), file_var)?;
            let secret = secret.secret().trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!("{file_var} {path}: the file is empty"),
                )
                .with_hint("write the client secret into the file"));
            }
            tracing::debug!(variable = %file_var, "using the client secret from a file");
            Ok(Some(ClientSecret::new(secret)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_context_harness() {
        let app = App::default();
        assert_eq!(app.keyring_service(), "context-harness");
        assert_eq!(app.keyring_service(), crate::storage::KEYRING_SERVICE);
        assert_eq!(app.home_env(), crate::HOME_ENV);
        assert_eq!(app.storage_env(), "CONTEXT_HARNESS_STORAGE");
        assert_eq!(
            app.user_agent(),
            concat!("context-harness/", env!("CARGO_PKG_VERSION"))
        );
        let env = Environment::from_pairs([("HOME", "/home/u")]);
        assert_eq!(env.home_dir(), app.home_dir(&env));
    }

    #[test]
    fn names_follow_the_app() {
        let app = App::new("my-tool").and_then(|a| a.with_version("2.0.0-beta.1"));
        let Ok(app) = app else {
            panic!("valid app refused: {app:?}");
        };
        let env = Environment::from_pairs([("HOME", "/home/u"), ("CONTEXT_HARNESS_HOME", "/ch")]);
        assert_eq!(app.home_dir(&env), Some(PathBuf::from("/home/u/.my-tool")));
        let env = Environment::from_pairs([("HOME", "/home/u"), ("MY_TOOL_HOME", "/mt")]);
        assert_eq!(app.home_dir(&env), Some(PathBuf::from("/mt")));
        assert_eq!(app.home_dir(&Environment::empty()), None);
        assert_eq!(app.storage_env(), "MY_TOOL_STORAGE");
        assert_eq!(app.user_agent(), "my-tool/2.0.0-beta.1");
        assert_eq!(app.client_name(), "my-tool");
        assert_eq!(app.client_info(), ("my-tool", "2.0.0-beta.1"));
    }

    #[test]
    fn idp_client_secret_variables_follow_the_app() {
        let app = App::new("my-tool").unwrap_or_default();
        assert_eq!(app.idp_client_secret_env(), "MY_TOOL_IDP_CLIENT_SECRET");
        assert_eq!(
            App::default().idp_client_secret_env(),
            "CONTEXT_HARNESS_IDP_CLIENT_SECRET"
        );
        let env = Environment::from_pairs([
            ("MY_TOOL_CLIENT_SECRET", "the MCP client's"),
            ("MY_TOOL_IDP_CLIENT_SECRET", "the IdP's"),
        ]);
        let idp = app
            .idp_client_secret(&env)
            .map(|s| s.map(|s| s.secret().to_owned()));
        assert_eq!(idp.ok().flatten().as_deref(), Some("the IdP's"));
        // Neither secret stands in for the other.
        let only_client = Environment::from_pairs([("MY_TOOL_CLIENT_SECRET", "the MCP client's")]);
        assert!(matches!(app.idp_client_secret(&only_client), Ok(None)));
        let both = Environment::from_pairs([
            ("MY_TOOL_IDP_CLIENT_SECRET", "a"),
            ("MY_TOOL_IDP_CLIENT_SECRET_FILE", "/nonexistent"),
        ]);
        assert_eq!(
            app.idp_client_secret(&both).map_err(|e| e.code()).err(),
            Some(ErrorCode::ConfigInvalid)
        );
    }

    #[test]
    fn client_secret_variables_follow_the_app() {
        let app = App::new("my-tool").unwrap_or_default();
        assert_eq!(app.client_secret_env(), "MY_TOOL_CLIENT_SECRET");
        assert_eq!(app.client_secret_file_env(), "MY_TOOL_CLIENT_SECRET_FILE");
        assert_eq!(
            App::default().client_secret_env(),
            "CONTEXT_HARNESS_CLIENT_SECRET"
        );
        let secret = |env: &Environment, var: Option<&str>| {
            app.client_secret(env, var)
                .map(|s| s.map(|s| s.secret().to_owned()))
                .map_err(|e| e.code())
        };
        let env = Environment::from_pairs([
            ("MY_TOOL_CLIENT_SECRET", "general"),
            ("ACME_CLIENT_SECRET", "acme"),
            ("CONTEXT_HARNESS_CLIENT_SECRET", "not this app's"),
        ]);
        assert_eq!(
            secret(&env, Some("ACME_CLIENT_SECRET")),
            Ok(Some("acme".into()))
        );
        assert_eq!(
            secret(&env, Some("OTHER_CLIENT_SECRET")),
            Ok(Some("general".into()))
        );
        assert_eq!(secret(&env, None), Ok(Some("general".into())));
        let env = Environment::from_pairs([("CONTEXT_HARNESS_CLIENT_SECRET", "other app")]);
        assert_eq!(secret(&env, None), Ok(None));
        // Both application-wide forms: refused, without either value in the message.
        let env = Environment::from_pairs([
            ("MY_TOOL_CLIENT_SECRET", "s3cret"),
            ("MY_TOOL_CLIENT_SECRET_FILE", "/nonexistent/s3cret"),
        ]);
        let err = app.client_secret(&env, None).err();
        assert_eq!(
            err.as_ref().map(Error::code),
            Some(ErrorCode::ConfigInvalid)
        );
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    }

    #[cfg(unix)]
    #[test]
    fn client_secret_file_is_read_the_trusted_way() {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let path = dir.path().join("secret");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        let env = Environment::from_pairs([(
            "CONTEXT_HARNESS_CLIENT_SECRET_FILE",
            path.to_string_lossy().into_owned(),
        )]);
        let app = App::default();
        let read = || {
            app.client_secret(&env, None)
                .map(|s| s.map(|s| s.secret().to_owned()))
        };
        let read_ok = || read().map_err(|e| e.to_string());
        write("s3cret with  spaces \r\n", 0o600);
        assert_eq!(read_ok(), Ok(Some("s3cret with  spaces ".into())));
        write("\u{FEFF}s3cret\n", 0o400);
        assert_eq!(read_ok(), Ok(Some("s3cret".into())));
        for (text, mode, says) in [
            ("s3cret\n", 0o644, "chmod 600"),
            ("s3cret\n", 0o640, "chmod 600"),
            ("s3cret\n", 0o620, "chmod 600"),
            ("\n", 0o600, "write the client secret"),
        ] {
            write(text, mode);
            let err = read().err();
            assert_eq!(
                err.as_ref().map(Error::code),
                Some(ErrorCode::ConfigInvalid),
                "{mode:o}"
            );
            let shown = format!(
                "{err:?} {}",
                err.as_ref().and_then(Error::hint).unwrap_or_default()
            );
            assert!(shown.contains(says), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        // A symbolic link to a good file, a missing file, an oversized one.
        write("s3cret\n", 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap_or_else(|e| panic!("{e}"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 64 * 1024 + 1]).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        for (file, says) in [
            (link, "symbolic link"),
            (dir.path().join("missing"), "no such file"),
            (big, "larger than 64 KiB"),
        ] {
            let err = read_secret_file(&file, "X_FILE").err();
            assert_eq!(
                err.as_ref().map(Error::code),
                Some(ErrorCode::ConfigInvalid)
            );
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains(says) && message.starts_with("X_FILE "),
                "{message}"
            );
        }
    }

    #[test]
    fn client_metadata_url_from_code_else_the_variable() {
        let app = App::new("my-tool").unwrap_or_default();
        assert_eq!(app.client_metadata_url_env(), "MY_TOOL_CLIENT_METADATA_URL");
        let url = |app: &App, env: &Environment| app.client_metadata_url(env).map_err(|e| e.code());
        let env = Environment::from_pairs([
            (
                "MY_TOOL_CLIENT_METADATA_URL",
                " https://env.example/c.json ",
            ),
            (
                "CONTEXT_HARNESS_CLIENT_METADATA_URL",
                "https://other-app.example/c.json",
            ),
        ]);
        assert_eq!(
            url(&app, &env),
            Ok(Some("https://env.example/c.json".into()))
        );
        assert_eq!(url(&app, &Environment::empty()), Ok(None));
        let set = app
            .clone()
            .with_client_metadata_url("https://code.example/c.json");
        let Ok(set) = set else {
            panic!("a good URL refused: {set:?}");
        };
        assert_eq!(
            url(&set, &env),
            Ok(Some("https://code.example/c.json".into()))
        );
        for bad in [
            "http://env.example/c.json",
            "https://env.example/",
            "not a url",
        ] {
            let env = Environment::from_pairs([("MY_TOOL_CLIENT_METADATA_URL", bad)]);
            assert_eq!(url(&app, &env), Err(ErrorCode::ConfigInvalid), "{bad}");
            assert!(app.clone().with_client_metadata_url(bad).is_err(), "{bad}");
        }
        let env = Environment::from_pairs([("MY_TOOL_CLIENT_METADATA_URL", "")]);
        assert_eq!(url(&app, &env), Ok(None));
    }

    #[test]
    fn bad_names_and_versions_are_refused() {
        for bad in [
            "",
            "My-Tool",
            "-x",
            "x-",
            "1tool",
            "my tool",
            "my_tool",
            "a/b",
            "../x",
            "é",
            "x\u{1b}[2J",
        ] {
            let err = App::new(bad).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some(ErrorCode::ConfigInvalid),
                "{bad:?}"
            );
        }
        assert!(App::new(&"a".repeat(64)).is_ok());
        assert!(App::new(&"a".repeat(65)).is_err());
        for bad in ["", "1 2", "1/2", "v\r\nX-Evil: 1", &"1".repeat(65)] {
            assert!(App::default().with_version(bad).is_err(), "{bad:?}");
        }
    }
}
