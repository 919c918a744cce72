//! Test support: the local authorization server, an HTTP "browser", service construction, and a
//! log capture.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use context_harness_providers::storage::{self, FileStore, ProviderName, TokenStore};
use context_harness_providers::{
    Environment, HttpSettings, OAuthService, OAuthTokens, ProviderRegistry,
};
use serde_json::Value;

/// The repository's `tests/authorization-server` directory.
pub(crate) fn server_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/authorization-server")
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client for test-side requests (no redirects).
pub(crate) fn test_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The local authorization server (started by `context-harness-test-support`), stopped on drop.
pub(crate) struct AuthServer {
    _server: context_harness_test_support::AuthorizationServer,
    pub(crate) issuer: String,
    http: reqwest::Client,
}

impl AuthServer {
    /// Starts the server with extra environment. `None` (after a note on stderr) when node or the
    /// npm packages are missing outside CI; in CI (`CI=true`) that is a failure.
    pub(crate) fn start(env: &[(&str, &str)]) -> Option<Self> {
        use context_harness_test_support as support;
        let root = support::repo_root();
        let ci = support::is_ci();
        if !support::node_modules(&root).join("oidc-provider").is_dir() {
            let msg = format!(
                "the local authorization server is not installed: run `npm ci` in {}",
                server_dir().display()
            );
            assert!(!ci, "{msg}");
            eprintln!("note: skipping: {msg}");
            return None;
        }
        let log = if std::env::var_os("CH_TEST_SERVER_LOGS").is_some() {
            support::ServerLog::Inherit
        } else {
            support::ServerLog::Discard
        };
        // Installed but not starting is a failure everywhere, never a skip.
        let server =
            support::AuthorizationServer::start(&root, env, log).unwrap_or_else(|e| panic!("{e}"));
        Some(Self {
            issuer: server.issuer().to_owned(),
            _server: server,
            http: test_client(),
        })
    }

    /// Merges `patch` into the server's test control state.
    pub(crate) async fn control(&self, patch: Value) {
        let status = self
            .http
            .post(format!("{}/test/control", self.issuer))
            .json(&patch)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }

    /// POSTs `body` as JSON to a test hook (e.g. `/test/device`) and asserts success.
    pub(crate) async fn post(&self, path: &str, body: Value) {
        let status = self
            .http
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// The server's request counters.
    pub(crate) async fn stats(&self) -> Value {
        self.get_json("/test/stats").await
    }

    /// The form fields of the last token request (test hook).
    pub(crate) async fn last_token_request(&self) -> Value {
        self.get_json("/test/last-token-request").await
    }

    async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// RFC 7662 introspection as the `ch-introspector` resource server: is `token` active?
    pub(crate) async fn is_active(&self, token: &str) -> bool {
        let body: Value = self
            .http
            .post(format!("{}/token/introspection", self.issuer))
            .basic_auth("ch-introspector", Some("ch-introspector-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["active"].as_bool().unwrap()
    }

    /// Revokes `token` at the server directly (as the public client), outside the service.
    pub(crate) async fn revoke_directly(&self, token: &str, hint: &str) {
        let status = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .form(&[
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", "ch-public"),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }
}

/// A "browser" that follows the authorization URL with plain HTTP requests (cookies kept) through
/// the server's auto-approve interaction to the loopback callback.
#[derive(Clone, Default)]
pub(crate) struct HttpBrowser {
    /// Every callback URL reached (they carry the authorization code).
    pub(crate) callbacks: Arc<Mutex<Vec<String>>>,
}

impl HttpBrowser {
    pub(crate) fn opener(&self) -> impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static {
        let callbacks = Arc::clone(&self.callbacks);
        move |url: &str| {
            let url = url.to_owned();
            let callbacks = Arc::clone(&callbacks);
            // Called on a blocking thread of the runtime: drive the flow as a task on it.
            tokio::runtime::Handle::current().spawn(async move {
                if let Err(e) = drive(&url, &callbacks).await {
                    eprintln!("http browser: {e}");
                }
            });
            Ok(())
        }
    }
}

pub(crate) async fn drive(start: &str, callbacks: &Mutex<Vec<String>>) -> Result<(), String> {
    let client = test_client();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut url = reqwest::Url::parse(start).map_err(|e| e.to_string())?;
    for _ in 0..20 {
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = client.get(url.clone());
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        for value in response.headers().get_all("set-cookie") {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((name, val)) = pair.split_once('=') {
                if val.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), val.to_owned());
                }
            }
        }
        let status = response.status();
        if url.path().starts_with("/callback") {
            return if status.is_success() {
                Ok(())
            } else {
                Err(format!("callback answered {status}"))
            };
        }
        if !status.is_redirection() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "{url} answered {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or("redirect without location")?;
        url = url.join(location).map_err(|e| e.to_string())?;
        if url.path().starts_with("/callback") {
            callbacks.lock().unwrap().push(url.to_string());
        }
    }
    Err("too many redirects".to_owned())
}

/// `providers.toml` text for the local server as provider `local`.
pub(crate) fn local_providers_toml(issuer: &str, client_id: &str, extra: &str) -> String {
    format!(
        r#"
[providers.local]
display_name = "Local oidc-provider"
auth_url = "{issuer}/auth"
token_url = "{issuer}/token"
revocation_url = "{issuer}/token/revocation"
device_auth_url = "{issuer}/device/auth"
issuer = "{issuer}"
iss_parameter_supported = true
scopes = ["openid", "offline_access"]
extra_auth_params = {{ prompt = "consent" }}
client_id = "{client_id}"
redirect_host = "127.0.0.1"
ports = [0]
{extra}
"#
    )
}

/// A temporary home plus a service wired to the local server.
pub(crate) struct Harness {
    pub(crate) home: tempfile::TempDir,
    pub(crate) browser: HttpBrowser,
    pub(crate) service: OAuthService,
}

impl Harness {
    pub(crate) fn new(issuer: &str) -> Self {
        Self::with(
            issuer,
            "ch-public",
            Environment::empty(),
            HttpSettings::default(),
            "",
        )
    }

    pub(crate) fn with(
        issuer: &str,
        client_id: &str,
        env: Environment,
        http: HttpSettings,
        extra_toml: &str,
    ) -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("providers.toml"),
            local_providers_toml(issuer, client_id, extra_toml),
        )
        .unwrap();
        let browser = HttpBrowser::default();
        let service = service_for(home.path(), env, http, browser.opener());
        Self {
            home,
            browser,
            service,
        }
    }

    /// A second, independent service (as another process would build it) on the same home.
    pub(crate) fn another_service(&self) -> OAuthService {
        service_for(
            self.home.path(),
            Environment::empty(),
            HttpSettings::default(),
            self.browser.opener(),
        )
    }

    /// The raw bytes of the stored token file.
    pub(crate) fn token_file(&self, provider: &str) -> Option<Vec<u8>> {
        let store = FileStore::new(storage::tokens_dir(self.home.path()));
        std::fs::read(store.path_for(&ProviderName::new(provider).unwrap())).ok()
    }

    /// Moves the stored tokens' `issued_at` back by `secs` (as if received that long ago).
    pub(crate) fn backdate(&self, provider: &str, secs: f64) {
        let store = FileStore::new(storage::tokens_dir(self.home.path()));
        let name = ProviderName::new(provider).unwrap();
        let mut tokens = store.load(&name).unwrap().unwrap();
        tokens.issued_at -= secs;
        store.save(&name, &tokens).unwrap();
    }

    /// The stored tokens, read straight from the store.
    pub(crate) fn stored(&self, provider: &str) -> Option<OAuthTokens> {
        FileStore::new(storage::tokens_dir(self.home.path()))
            .load(&ProviderName::new(provider).unwrap())
            .unwrap()
    }
}

pub(crate) fn service_for(
    home: &Path,
    env: Environment,
    http: HttpSettings,
    opener: impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static,
) -> OAuthService {
    let registry = ProviderRegistry::load(home).unwrap();
    OAuthService::builder()
        .home(home)
        .environment(env)
        .store(Arc::new(FileStore::new(storage::tokens_dir(home))))
        .registry(registry)
        .browser(opener)
        .http_settings(http)
        .build()
        .unwrap()
}

/// Everything logged by this test binary (a global TRACE subscriber writing into memory).
pub(crate) fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || CaptureWriter(Arc::clone(&writer)))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`SignInUi`](context_harness_providers::SignInUi) that hands the device flow's code to `F`
/// and keeps every other default.
pub(crate) struct DeviceUi<F>(pub(crate) F);

impl<F> context_harness_providers::SignInUi for DeviceUi<F>
where
    F: Fn(&context_harness_providers::protocol::DeviceAuthorization) + Send + Sync,
{
    fn device_code(&self, device: &context_harness_providers::protocol::DeviceAuthorization) {
        (self.0)(device);
    }
}
