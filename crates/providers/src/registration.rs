//! RFC 7591 dynamic client registration, and registrations persisted per issuer.
//!
//! A registration is stored in `$CONTEXT_HARNESS_HOME/registrations/<issuer-name>.json` (0600,
//! written atomically), keyed by the authorization server's issuer: credentials are never reused at
//! another server (MCP 2026-07-28 "Authorization Server Binding"). Its secrets follow the tokens'
//! backend (see [`RegistrationStore`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::discovery::printable;
use crate::error::{Error, ErrorCode, Result};
use crate::http::{Credentials, Http, Method, Request};
use crate::ssrf::UrlPolicy;

/// The `client_name` sent when registering.
pub(crate) const CLIENT_NAME: &str = "context-harness";

pub(crate) use context_harness_protocol::{ClientRegistration, DEVICE_CODE_GRANT};

/// The token-endpoint authentication method of a registration as this crate knows it (`None` = a
/// public client).
pub(crate) trait RegistrationAuth {
    /// `client_secret_post` or `client_secret_basic` when the registration has a secret.
    fn auth_method(&self) -> Option<crate::TokenAuthMethod>;
}

impl RegistrationAuth for ClientRegistration {
    fn auth_method(&self) -> Option<crate::TokenAuthMethod> {
        self.client_secret.as_ref()?;
        Some(match self.token_endpoint_auth_method.as_str() {
            "client_secret_post" => crate::TokenAuthMethod::ClientSecretPost,
            _ => crate::TokenAuthMethod::ClientSecretBasic,
        })
    }
}

/// The RFC 7591 registration request body for a native public client named [`CLIENT_NAME`] (see
/// [`context_harness_protocol::registration_request`]).
pub(crate) fn registration_request(
    redirect_uris: &[String],
    extra_grant_types: &[&str],
    scope: Option<&str>,
) -> Value {
    context_harness_protocol::registration_request(
        CLIENT_NAME,
        redirect_uris,
        extra_grant_types,
        scope,
    )
}

/// The redirect URIs of a sign-in whose client is a Client ID Metadata Document:
/// `http://127.0.0.1:{port}/callback` for the default ports 8080, 3000 and 57548, in the order the
/// listener tries them. One fixed path, unlike a dynamically registered client's
/// `/callback/<issuer name>`, so that a static document can list every URI the listener uses (an
/// authorization server that compares redirect URIs exactly accepts them all); the mix-up defence
/// that the per-issuer path gives is kept by requiring RFC 9207 `iss` from the servers such a
/// client signs in at.
pub fn client_metadata_redirect_uris() -> Vec<String> {
    let mut cb = context_harness_callback_server::CallbackConfig::default();
    cb.host = crate::RedirectHost::Ipv4;
    cb.ports = crate::DEFAULT_PORTS.to_vec();
    context_harness_callback_server::DEFAULT_PATH.clone_into(&mut cb.path);
    cb.redirect_uris()
}

/// The Client ID Metadata Document that `app` publishes at `url` (MCP 2026-07-28 "Client ID
/// Metadata Documents"): `client_id` = `url`, `client_name` = the application's name, the
/// [`client_metadata_redirect_uris`] the listener uses, `application_type: native`, the
/// `authorization_code` and `refresh_token` grants and `token_endpoint_auth_method: none` (a
/// public client: a document cannot hold a secret). `cargo xtask client-metadata` renders it.
///
/// ```
/// use context_harness_providers::{App, client_metadata_document};
///
/// let url = "https://my-tool.example/oauth/client-metadata.json";
/// let document = client_metadata_document(&App::new("my-tool")?, url)?;
/// assert_eq!(document["client_id"], url);
/// assert_eq!(document["client_name"], "my-tool");
/// assert_eq!(document["redirect_uris"][0], "http://127.0.0.1:8080/callback");
/// # Ok::<(), context_harness_providers::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] when `url` is not a usable document URL
/// ([`check_client_metadata_url`](context_harness_protocol::check_client_metadata_url)).
pub fn client_metadata_document(app: &crate::App, url: &str) -> Result<Value> {
    Ok(context_harness_protocol::client_metadata_document(
        url,
        app.client_name(),
        &client_metadata_redirect_uris(),
    )?)
}

/// Registers a client at `endpoint` (RFC 7591 §3.1) for `issuer`, under `policy` (the endpoint
/// and the answer's `registration_client_uri` were supplied by the server).
///
/// A `registration_client_uri` the policy refuses (loopback, private, link-local or metadata
/// address; plain http; a name that does not resolve) fails the registration: the server asked us to
/// send the `registration_access_token` there later.
pub(crate) async fn register(
    http: &Http,
    endpoint: &Url,
    issuer: &str,
    body: &Value,
    policy: UrlPolicy,
) -> Result<ClientRegistration> {
    let request = Request {
        json: Some(body.to_string()),
        ..Request::new(Method::Post, endpoint)
    };
    let raw = http
        .fetch(request, "registration endpoint", Some(policy))
        .await?;
    let registration = context_harness_protocol::parse_registration_response(
        raw.status,
        raw.content_type.as_deref(),
        &raw.body,
        issuer,
        body,
    )?;
    if let Some(uri) = &registration.registration_client_uri {
        let url = policy.check(uri, "registration_client_uri")?;
        policy
            .check_resolved(&url, "registration_client_uri")
            .await?;
    }
    // The client_id is printable ASCII (checked by the parser); the issuer went through the
    // terminal sanitiser like every server string this crate logs.
    tracing::info!(issuer = %printable(issuer), client_id = %registration.client_id, "registered a client (RFC 7591)");
    Ok(registration)
}

/// Checks a stored registration with RFC 7592 (`GET registration_client_uri`) when the server gave
/// the means, under `policy` (the URI is server-supplied). `Ok(false)` means the server no longer
/// knows the client; `Ok(true)` otherwise (including when it cannot be checked, or `policy` refuses
/// the URI: then no request is sent).
pub(crate) async fn still_registered(
    http: &Http,
    registration: &ClientRegistration,
    policy: UrlPolicy,
) -> bool {
    let (Some(uri), Some(token)) = (
        &registration.registration_client_uri,
        &registration.registration_access_token,
    ) else {
        return true;
    };
    let url = match policy.check(uri, "registration_client_uri") {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "not checking the stored client registration");
            return true;
        }
    };
    let request = Request {
        credentials: Some(Credentials::Bearer(token)),
        ..Request::new(Method::Get, &url)
    };
    match http
        .fetch(request, "registration endpoint", Some(policy))
        .await
    {
        Ok(raw) if matches!(raw.status, 400 | 401 | 403 | 404) => false,
        Ok(raw) if (200..300).contains(&raw.status) => {
            // The answer describes the client: it must be ours.
            serde_json::from_slice::<Value>(&raw.body)
                .ok()
                .and_then(|v| {
                    v.get("client_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .is_none_or(|id| id == registration.client_id)
        }
        _ => true,
    }
}

/// The keyring slot kind of a registration's secrets (user `registration:<issuer-name>`).
const SECRET_KIND: &str = "registration";

/// The value of `secrets` in a registration file whose secrets are in the keyring.
const SECRETS_IN_KEYRING: &str = "keyring";

/// A registration file: the registration, and where its secrets are when not in the file.
#[derive(Serialize, Deserialize)]
struct StoredRegistration {
    #[serde(flatten)]
    registration: ClientRegistration,
    /// `"keyring"` when `client_secret` / `registration_access_token` were moved to the keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secrets: Option<String>,
}

/// The secrets of a registration, as kept in one keyring entry (JSON).
#[derive(Serialize, Deserialize)]
struct RegistrationSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<String>,
}

/// The registrations stored under a home directory.
///
/// Each is `home/registrations/<issuer-name>.json` (0600, atomic). Its secrets (`client_secret`,
/// `registration_access_token`) follow the tokens' backend: with [`with_secrets`](Self::with_secrets)
/// and a store that uses the keyring, they are one keyring entry (service `context-harness`, user
/// `registration:<issuer-name>`) and the file holds only the public part plus `"secrets": "keyring"`;
/// in file storage (or when the keyring cannot be written in auto mode, with a warning) they stay in
/// the 0600 file, like the tokens.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationStore {
    dir: PathBuf,
    secrets: Option<context_harness_storage::SecretSlots>,
}

impl RegistrationStore {
    /// The store in `home/registrations`, keeping secrets in the files.
    #[cfg(test)]
    pub(crate) fn new(home: &Path) -> Self {
        Self::with_secrets(home, None)
    }

    /// The store in `home/registrations`, keeping secrets in `secrets` (the token store's
    /// [`secrets`](context_harness_storage::TokenStore::secrets)) when given.
    pub(crate) fn with_secrets(
        home: &Path,
        secrets: Option<context_harness_storage::SecretSlots>,
    ) -> Self {
        Self {
            dir: home.join("registrations"),
            secrets,
        }
    }

    fn name_for(issuer: &str) -> Result<context_harness_storage::ProviderName> {
        context_harness_storage::ProviderName::from_url(issuer).map_err(|e| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("issuer `{}` is not a URL", printable(issuer)),
            )
            .with_source(e)
        })
    }

    /// The file holding `issuer`'s registration.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when the issuer is not a URL.
    #[cfg(test)]
    pub(crate) fn path_for(&self, issuer: &str) -> Result<PathBuf> {
        let name = Self::name_for(issuer)?;
        Ok(self.dir.join(format!("{}.json", name.as_str())))
    }

    /// The parsed file at `path`, `None` when missing or unparsable.
    fn read(path: &Path) -> Result<Option<StoredRegistration>> {
        let Some(bytes) =
            context_harness_storage::read_trusted(path).map_err(crate::error::storage_error)?
        else {
            return Ok(None);
        };
        let parsed = context_harness_storage::decode_text(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<StoredRegistration>(&text).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(stored) => Ok(Some(stored)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable client registration");
                Ok(None)
            }
        }
    }

    /// The registration for `issuer`. A missing file, one that does not parse or belongs to another
    /// issuer, or one whose keyring secrets are gone counts as none (a new registration replaces it).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when the issuer is not a URL; [`ErrorCode::Storage`] when the
    /// file cannot be read, or is a symbolic link, owned by another user or writable by others, or
    /// when its secrets are in the keyring and the keyring cannot be read (never a fallback).
    pub(crate) fn load(&self, issuer: &str) -> Result<Option<ClientRegistration>> {
        let name = Self::name_for(issuer)?;
        let path = self.dir.join(format!("{}.json", name.as_str()));
        let Some(stored) = Self::read(&path)? else {
            return Ok(None);
        };
        let mut r = stored.registration;
        if r.issuer != issuer || r.client_id.is_empty() {
            return Ok(None);
        }
        if stored.secrets.as_deref() == Some(SECRETS_IN_KEYRING) {
            let Some(slots) = &self.secrets else {
                return Err(Error::new(
                    ErrorCode::Storage,
                    format!(
                        "the secrets of the client registration in {} are in the system keyring, \
                         which this storage mode does not read",
                        path.display()
                    ),
                )
                .with_step(crate::NextStep::UseKeyringStorage));
            };
            let Some(json) = slots
                .load(SECRET_KIND, &name)
                .map_err(crate::error::storage_error)?
            else {
                tracing::warn!(path = %path.display(), "the client registration's secrets are gone from the keyring");
                return Ok(None);
            };
            let Ok(secrets) = serde_json::from_str::<RegistrationSecrets>(&json) else {
                tracing::warn!(path = %path.display(), "ignoring unreadable client registration secrets in the keyring");
                return Ok(None);
            };
            r.client_secret = secrets.client_secret;
            r.registration_access_token = secrets.registration_access_token;
        }
        // A registration stored before client ids were checked (or edited by hand) is not used:
        // a new registration replaces it.
        if let Err(e) = r.check_vschar() {
            tracing::warn!(path = %path.display(), error = %e, "ignoring a stored client registration");
            return Ok(None);
        }
        Ok(Some(r))
    }

    /// Stores `registration`, replacing the issuer's previous one: the file (0600, atomic) and, when
    /// this store has keyring slots, its secrets in the keyring.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`] (including a keyring failure in keyring mode).
    pub(crate) fn save(&self, registration: &ClientRegistration) -> Result<()> {
        let name = Self::name_for(&registration.issuer)?;
        let path = self.dir.join(format!("{}.json", name.as_str()));
        let has_secrets = registration.client_secret.is_some()
            || registration.registration_access_token.is_some();
        let mut stored = StoredRegistration {
            registration: registration.clone(),
            secrets: None,
        };
        if let Some(slots) = &self.secrets {
            if has_secrets {
                let secrets = serde_json::to_string(&RegistrationSecrets {
                    client_secret: registration.client_secret.clone(),
                    registration_access_token: registration.registration_access_token.clone(),
                })
                .map_err(|e| {
                    Error::new(ErrorCode::Storage, "cannot serialise the registration")
                        .with_source(e)
                })?;
                let backend = slots
                    .save(SECRET_KIND, &name, &secrets)
                    .map_err(crate::error::storage_error)?;
                if backend == context_harness_storage::Backend::Keyring {
                    stored.registration.client_secret = None;
                    stored.registration.registration_access_token = None;
                    stored.secrets = Some(SECRETS_IN_KEYRING.to_owned());
                }
            } else {
                self.forget_keyring_secrets(&path, &name);
            }
        }
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| {
            Error::new(ErrorCode::Storage, "cannot serialise the registration").with_source(e)
        })?;
        context_harness_storage::write_private_atomic(&path, &bytes)
            .map_err(crate::error::storage_error)
    }

    /// Removes the keyring secrets the file at `path` points to, if any (failures only warn: the file
    /// that refers to them is replaced or removed next).
    fn forget_keyring_secrets(&self, path: &Path, name: &context_harness_storage::ProviderName) {
        let in_keyring = matches!(Self::read(path), Ok(Some(old)) if old.secrets.as_deref() == Some(SECRETS_IN_KEYRING));
        if !in_keyring {
            return;
        }
        let Some(slots) = &self.secrets else {
            tracing::warn!(path = %path.display(), "the registration's old secrets stay in the system keyring (this storage mode does not touch it)");
            return;
        };
        if let Err(e) = slots.delete(SECRET_KIND, name) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the registration's old secrets from the keyring");
        }
    }

    /// Deletes `issuer`'s registration (and its keyring secrets); returns whether one existed.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`].
    pub(crate) fn delete(&self, issuer: &str) -> Result<bool> {
        let name = Self::name_for(issuer)?;
        let path = self.dir.join(format!("{}.json", name.as_str()));
        self.forget_keyring_secrets(&path, &name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::new(
                ErrorCode::Storage,
                format!("cannot delete {}: {e}", path.display()),
            )
            .with_source(e)),
        }
    }
}

#[cfg(test)]
mod tests {

    use std::time::SystemTime;

    use serde_json::json;

    use super::*;

    /// A confidential client of `issuer` (`ClientRegistration` is non-exhaustive: built from JSON).
    fn registration(
        issuer: &str,
        secret: &str,
        management: Option<(&str, &str)>,
    ) -> ClientRegistration {
        let mut value = json!({
            "issuer": issuer, "client_id": "abc", "client_secret": secret,
            "client_secret_expires_at": 0, "client_id_issued_at": 1, "redirect_uris": uris(),
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        });
        if let (Some((uri, token)), Some(map)) = (management, value.as_object_mut()) {
            map.insert("registration_client_uri".into(), uri.into());
            map.insert("registration_access_token".into(), token.into());
        }
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The loopback redirect URIs of a sign-in on port 8080, both address families.
    fn uris() -> Vec<String> {
        vec![
            "http://127.0.0.1:8080/callback".to_owned(),
            "http://[::1]:8080/callback".to_owned(),
        ]
    }

    /// The request body and the answers are tested in `context-harness-protocol`
    /// (`registration.rs`); here, that the wrappers fill in [`CLIENT_NAME`] and map a refusal to
    /// this crate's error with its next step.
    #[test]
    fn wrappers_name_the_client_and_map_refusals() {
        let request = registration_request(&uris(), &[DEVICE_CODE_GRANT], None);
        assert_eq!(request["client_name"], CLIENT_NAME);
        let issuer = "https://as.example.com";
        let reg = context_harness_protocol::parse_registration_response(
            201,
            Some("application/json"),
            br#"{"client_id":"c1"}"#,
            issuer,
            &request,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reg.client_id, "c1");
        assert!(
            reg.fits(&uris(), "authorization_code", SystemTime::now()),
            "the request's redirect URIs are taken"
        );
        let err = context_harness_protocol::parse_registration_response(
            400,
            Some("application/json"),
            br#"{"error":"invalid_redirect_uri","error_description":"no"}"#,
            issuer,
            &request,
        )
        .map_err(Error::from)
        .err()
        .unwrap_or_else(|| panic!("accepted a refusal"));
        assert_eq!(err.code(), ErrorCode::AuthFailed);
        assert_eq!(err.oauth_error(), Some("invalid_redirect_uri"));
        assert_eq!(
            err.next_step(),
            Some(&crate::NextStep::UsePreRegisteredClient)
        );
        let err = context_harness_protocol::parse_registration_response(
            404,
            None,
            b"<html>no</html>",
            issuer,
            &request,
        );
        assert!(err.is_err());
    }

    #[test]
    fn store_round_trip_is_private_and_keyed_by_issuer() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = RegistrationStore::new(home.path());
        let reg = registration("https://as.example.com/tenant", "s3cret", None);
        assert!(!format!("{reg:?}").contains("s3cret"));
        store.save(&reg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load(&reg.issuer).ok().flatten().as_ref(), Some(&reg));
        assert_eq!(
            store.load("https://as.example.com/other").ok().flatten(),
            None
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = store
                .path_for(&reg.issuer)
                .unwrap_or_else(|e| panic!("{e}"));
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o600));
        }
        assert!(reg.fits(&uris(), "authorization_code", SystemTime::now()));
        assert!(!reg.fits(&uris(), DEVICE_CODE_GRANT, SystemTime::now()));
        assert!(!reg.fits(
            &["http://127.0.0.1:9/callback".to_owned()],
            "authorization_code",
            SystemTime::now()
        ));
        let mut expired = reg.clone();
        expired.client_secret_expires_at = Some(10);
        assert!(!expired.fits(&uris(), "authorization_code", SystemTime::now()));
        assert!(store.delete(&reg.issuer).unwrap_or(false));
        assert_eq!(store.load(&reg.issuer).ok().flatten(), None);
        // A corrupt file counts as none.
        let path = store
            .path_for(&reg.issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load(&reg.issuer).ok().flatten(), None);
    }

    /// A stored registration whose client_id is not printable ASCII (written before the check,
    /// or by hand) counts as none, so it is never used or logged; and the parser refuses one with
    /// an `auth_failed` error whose next step is a pre-registered client.
    #[test]
    fn unprintable_client_ids_are_never_used() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = RegistrationStore::new(home.path());
        let issuer = "https://as.example.com";
        let mut reg = registration(issuer, "s3cret", None);
        reg.client_id = "id\u{1b}]0;title\u{7}\u{1b}[2J".into();
        store.save(&reg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load(issuer).ok().flatten(), None);
        let request = registration_request(&uris(), &[], None);
        let err = context_harness_protocol::parse_registration_response(
            201,
            Some("application/json"),
            br#"{"client_id":"id\u001b]52;c;ZXZpbA==\u0007"}"#,
            issuer,
            &request,
        )
        .map_err(Error::from)
        .err()
        .unwrap_or_else(|| panic!("accepted an unprintable client_id"));
        assert_eq!(err.code(), ErrorCode::AuthFailed);
        assert_eq!(
            err.next_step(),
            Some(&crate::NextStep::UsePreRegisteredClient)
        );
        assert!(
            err.to_string()
                .contains("client_id that is not printable ASCII"),
            "{err}"
        );
    }

    /// With a keyring-backed token store, a registration's secrets go to the keyring
    /// (keyring-core's mock store here; the real Secret Service is exercised by the CLI tests) and never
    /// into the file; a failing keyring read is an error, not a fallback.
    #[cfg(feature = "keyring")]
    #[test]
    fn registration_secrets_follow_the_tokens_into_the_keyring() {
        use context_harness_storage::keyring_core::{CredentialStore, Entry, mock};
        use context_harness_storage::{
            AutoStore, KEYRING_SERVICE, KeyringStore, ProviderName, SecretSlots, TokenStore,
        };
        let ok = |r: Result<()>| r.unwrap_or_else(|e| panic!("{e}"));
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mock: std::sync::Arc<CredentialStore> =
            mock::Store::new().unwrap_or_else(|e| panic!("{e}"));
        let tokens = AutoStore::with_keyring(
            home.path().join("tokens"),
            KeyringStore::with_credential_store(mock.clone()),
        );
        let store = RegistrationStore::with_secrets(home.path(), tokens.secrets());
        let issuer = "https://as.example.com/tenant";
        let user = SecretSlots::user(
            "registration",
            &ProviderName::from_url(issuer).unwrap_or_else(|e| panic!("{e}")),
        );
        let entry =
            Entry::new_in_store(&mock, KEYRING_SERVICE, &user).unwrap_or_else(|e| panic!("{e}"));
        let reg = registration(
            issuer,
            "s3cret-value",
            Some(("https://as.example.com/reg/abc", "rat-value")),
        );
        ok(store.save(&reg));
        let path = store.path_for(issuer).unwrap_or_else(|e| panic!("{e}"));
        let file = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !file.contains("s3cret-value") && !file.contains("rat-value"),
            "{file}"
        );
        assert!(file.contains("\"secrets\": \"keyring\""), "{file}");
        let kept = entry.get_password().unwrap_or_else(|e| panic!("{e}"));
        assert!(kept.contains("s3cret-value") && kept.contains("rat-value"));
        assert_eq!(store.load(issuer).ok().flatten().as_ref(), Some(&reg));

        // File storage cannot read them: an error that says where they are.
        let err = RegistrationStore::new(home.path())
            .load(issuer)
            .err()
            .unwrap_or_else(|| panic!("file mode read keyring secrets"));
        assert_eq!(err.code(), ErrorCode::Storage);
        assert!(err.to_string().contains("system keyring"), "{err}");

        // A locked keyring is an error, never the file without its secrets.
        let cred: &mock::Cred = entry
            .as_any()
            .downcast_ref()
            .unwrap_or_else(|| panic!("mock"));
        cred.set_error(
            context_harness_storage::keyring_core::Error::NoStorageAccess("locked".into()),
        );
        let err = store
            .load(issuer)
            .err()
            .unwrap_or_else(|| panic!("locked read fell back"));
        assert_eq!(err.code(), ErrorCode::Storage);

        // A public client replacing it removes the old keyring secrets.
        let mut public = reg.clone();
        public.client_secret = None;
        public.registration_access_token = None;
        public.token_endpoint_auth_method = "none".into();
        ok(store.save(&public));
        assert!(entry.get_password().is_err());
        assert_eq!(store.load(issuer).ok().flatten().as_ref(), Some(&public));

        // Deleting removes both.
        ok(store.save(&reg));
        assert!(store.delete(issuer).unwrap_or(false));
        assert!(!path.exists());
        assert!(matches!(
            entry.get_password(),
            Err(context_harness_storage::keyring_core::Error::NoEntry)
        ));

        // Auto mode with a keyring that refuses the write: the secrets stay in the 0600 file.
        cred.set_error(
            context_harness_storage::keyring_core::Error::NoStorageAccess("locked".into()),
        );
        ok(store.save(&reg));
        let file = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            file.contains("s3cret-value") && !file.contains("\"secrets\""),
            "{file}"
        );
        assert_eq!(
            RegistrationStore::new(home.path())
                .load(issuer)
                .ok()
                .flatten(),
            Some(reg)
        );
    }
}
