//! Dynamic client registration for an MCP server's sign-in (RFC 7591): the stored registration of
//! the server's issuer while it still fits, else a new one.
//!
//! - **Scope.** The registration request carries the scope the sign-in asks for (RFC 7591 §2
//!   `scope`; some servers refuse a registration without one), joined with the scope of the stored
//!   registration it replaces. Only values the authorization server lists in its metadata's
//!   `scopes_supported` are sent when it lists any (the resource's own scopes, e.g. `mcp:tools`, are
//!   often unknown to it, and a server may refuse a registration naming them). A stored
//!   registration whose registered scope does not cover a sign-in's is replaced, since a server may
//!   refuse a client other scopes than it registered.
//! - **`--port 0`.** The loopback listener is bound before registering, so the registration names
//!   the port the listener actually has (a server that compares redirect URIs exactly accepts it);
//!   a port that the stored registration already names is tried first, so that one keeps fitting.
//!   The bound listener is the one the browser sign-in then waits on: no port is given up between.

use std::time::{Duration, SystemTime};

use context_harness_callback_server::{CallbackConfig, CallbackServer};

use super::mcp::{McpServerRecord, Prepared, config_from_registration, issuer_redirect_path};
use super::{AuthenticateOptions, OAuthService};
use crate::discovery::{McpServerInfo, printable};
use crate::error::{Error, ErrorCode, Result, callback_error};
use crate::provider::{DEFAULT_PORTS, OAuthConfig, RedirectHost};
use crate::provider_ref::ProviderRef;
use crate::registration::{self, ClientRegistration};

impl OAuthService {
    /// The client registration of the server's issuer for a sign-in asking for `scopes`: the stored
    /// one if it still fits (redirect URIs, grant, scope; and the server still knows it, when RFC
    /// 7592 lets us ask), else a new one. `force` registers anew. With `--port 0` among
    /// `options.ports`, also the loopback listener bound for the sign-in (see the module
    /// documentation).
    pub(super) async fn registration_for(
        &self,
        info: &McpServerInfo,
        options: &AuthenticateOptions,
        scopes: &[String],
        force: bool,
    ) -> Result<(ClientRegistration, Option<CallbackServer>)> {
        let metadata = &info.authorization_server;
        let issuer = &metadata.issuer;
        let scopes: Vec<String> = match metadata.scopes_supported.as_deref() {
            Some(supported) if !supported.is_empty() => scopes
                .iter()
                .filter(|s| supported.contains(s))
                .cloned()
                .collect(),
            _ => scopes.to_vec(),
        };
        let store = self.registrations();
        let existing = if force { None } else { store.load(issuer)? };
        let listener = match options.ports.as_deref() {
            Some(ports) if ports.contains(&0) => {
                Some(bind_any_port(issuer, ports, existing.as_ref(), options.timeout).await?)
            }
            _ => None,
        };
        let ports: Option<Vec<u16>> = options.ports.as_ref().map(|ports| {
            let bound = listener.as_ref().map_or(0, CallbackServer::port);
            ports
                .iter()
                .map(|&p| if p == 0 { bound } else { p })
                .collect()
        });
        let redirect_uris = registration_redirect_uris(ports.as_deref(), issuer)?;
        let mut scope = scopes.clone();
        if let Some(existing) = existing {
            if existing.fits(&redirect_uris, "authorization_code", SystemTime::now())
                && existing.covers_scopes(&scopes)
                && registration::still_registered(&self.http, &existing, info.policy).await
            {
                return Ok((existing, listener));
            }
            tracing::info!(issuer = %printable(issuer), "the stored client registration no longer fits; registering again");
            for s in existing
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_ascii_whitespace()
            {
                if !scope.iter().any(|have| have == s) {
                    scope.push(s.to_owned());
                }
            }
        }
        let Some(endpoint) = &metadata.registration_endpoint else {
            let cimd = if metadata.client_id_metadata_document_supported == Some(true) {
                format!(
                    "; it accepts a client metadata document: publish one (`cargo xtask client-metadata`) and give its https URL with --client-metadata-url or {}",
                    self.app.client_metadata_url_env()
                )
            } else {
                String::new()
            };
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                format!(
                    "{} supports no dynamic client registration and no client id is configured{cimd}",
                    printable(issuer)
                ),
            )
            .with_step(crate::NextStep::RegisterClient));
        };
        let endpoint = info.policy.check(endpoint, "registration_endpoint")?;
        let mut extra = Vec::new();
        let device_ok = metadata.device_authorization_endpoint.is_some()
            && metadata
                .grant_types_supported
                .as_ref()
                .is_none_or(|g| g.iter().any(|g| g == registration::DEVICE_CODE_GRANT));
        if device_ok {
            extra.push(registration::DEVICE_CODE_GRANT);
        }
        let scope = scope.join(" ");
        let mut body = registration::registration_request(
            &redirect_uris,
            &extra,
            Some(scope.as_str()).filter(|s| !s.is_empty()),
        );
        // RFC 7591 §2 `client_name`: the embedding application's name.
        if let Some(map) = body.as_object_mut() {
            map.insert("client_name".to_owned(), self.app.client_name().into());
        }
        let registration =
            registration::register(&self.http, &endpoint, issuer, &body, info.policy).await?;
        store.save(&registration)?;
        Ok((registration, listener))
    }

    /// Drops the registration that was refused and registers again (once per sign-in): the
    /// configuration of the new client, and with `--port 0` its listener (see
    /// [`registration_for`](Self::registration_for)).
    pub(super) async fn reregister(
        &self,
        target: &ProviderRef,
        prepared: &Prepared,
        options: &AuthenticateOptions,
    ) -> Result<(OAuthConfig, Option<CallbackServer>)> {
        let (Some(info), Some(issuer)) = (&prepared.info, &prepared.dynamic_issuer) else {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                "cannot re-register this client",
            ));
        };
        tracing::info!(issuer = %printable(issuer), "the server refused the registered client (invalid_client); registering again");
        self.registrations().delete(issuer)?;
        let scopes = registration_scopes(options, prepared.record.as_ref());
        let (registration, listener) = self.registration_for(info, options, &scopes, true).await?;
        let name = target.name();
        let mut record = McpServerRecord::from_info(info, true)?;
        record.no_resource = prepared.record.as_ref().is_some_and(|r| r.no_resource);
        let mut provider = record.to_provider(name.as_str());
        provider.url_policy = Some(info.policy);
        Ok((config_from_registration(&provider, &registration), listener))
    }
}

/// The scopes a sign-in asks for: the caller's, else the server's defaults from discovery.
pub(super) fn registration_scopes(
    options: &AuthenticateOptions,
    record: Option<&McpServerRecord>,
) -> Vec<String> {
    options
        .scopes
        .clone()
        .or_else(|| record.map(|r| r.scopes.clone()))
        .unwrap_or_default()
}

/// Binds the loopback listener of a sign-in at `issuer` whose `ports` include `0` (any port): each
/// `0` is tried as the ports `registered` names beyond the defaults first (an earlier `--port 0`
/// sign-in's), then as an ephemeral port. The path and host are those of a dynamically registered
/// client ([`issuer_redirect_path`], `127.0.0.1`); `timeout` is the wait for the callback.
async fn bind_any_port(
    issuer: &str,
    ports: &[u16],
    registered: Option<&ClientRegistration>,
    timeout: Duration,
) -> Result<CallbackServer> {
    let path = issuer_redirect_path(issuer)?;
    let known: Vec<u16> = registered
        .map(|r| registered_ports(r, &path))
        .unwrap_or_default();
    let mut candidates: Vec<u16> = Vec::new();
    for &port in ports {
        let expanded = if port == 0 {
            let mut any: Vec<u16> = known
                .iter()
                .copied()
                .filter(|p| !DEFAULT_PORTS.contains(p))
                .collect();
            any.push(0);
            any
        } else {
            vec![port]
        };
        for p in expanded {
            if !candidates.contains(&p) {
                candidates.push(p);
            }
        }
    }
    let mut config = CallbackConfig::default();
    config.host = RedirectHost::Ipv4;
    config.path = path;
    config.ports = candidates;
    config.timeout = timeout;
    CallbackServer::bind(config).await.map_err(callback_error)
}

/// The ports of `registration`'s loopback redirect URIs on `path` (`http://127.0.0.1:{port}{path}`).
fn registered_ports(registration: &ClientRegistration, path: &str) -> Vec<u16> {
    registration
        .redirect_uris
        .iter()
        .filter_map(|uri| {
            let url = url::Url::parse(uri).ok()?;
            (url.scheme() == "http" && url.host_str() == Some("127.0.0.1") && url.path() == path)
                .then(|| url.port())
                .flatten()
        })
        .collect()
}

/// The redirect URIs to register at `issuer`: `http://127.0.0.1:{port}/callback/<issuer name>` for
/// 8080, 3000, 57548 and any other fixed port asked for (with `--port 0`, the one the listener was
/// bound on), so the listener's port fallback still matches.
fn registration_redirect_uris(ports: Option<&[u16]>, issuer: &str) -> Result<Vec<String>> {
    let mut all: Vec<u16> = DEFAULT_PORTS.to_vec();
    for p in ports.unwrap_or_default() {
        if *p != 0 && !all.contains(p) {
            all.push(*p);
        }
    }
    let mut cb = CallbackConfig::default();
    cb.host = RedirectHost::Ipv4;
    cb.ports = all;
    cb.path = issuer_redirect_path(issuer)?;
    Ok(cb.redirect_uris())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_uris_cover_every_fallback_port() -> Result<()> {
        assert_eq!(
            registration_redirect_uris(None, "https://as.example.com")?,
            [
                "http://127.0.0.1:8080/callback/as.example.com",
                "http://127.0.0.1:3000/callback/as.example.com",
                "http://127.0.0.1:57548/callback/as.example.com"
            ]
        );
        assert_eq!(
            registration_redirect_uris(Some(&[0, 9999, 8080]), "https://as.example.com")?.len(),
            4
        );
        Ok(())
    }

    #[tokio::test]
    async fn port_zero_listens_first_and_prefers_a_registered_port() -> Result<()> {
        let issuer = "https://as.example.com";
        let first = bind_any_port(issuer, &[0], None, Duration::from_secs(5)).await?;
        let port = first.port();
        assert_ne!(port, 0);
        assert_eq!(
            first.redirect_uri(),
            format!("http://127.0.0.1:{port}/callback/as.example.com")
        );
        // The registration an earlier `--port 0` sign-in made names that port: it is tried first.
        let uris = registration_redirect_uris(Some(&[port]), issuer)?;
        assert!(uris.contains(&first.redirect_uri().to_owned()));
        let registered: ClientRegistration = serde_json::from_value(serde_json::json!({
            "issuer": issuer, "client_id": "abc", "redirect_uris": uris,
        }))
        .map_err(|e| Error::new(ErrorCode::AuthFailed, e.to_string()))?;
        assert_eq!(
            registered_ports(&registered, "/callback/as.example.com"),
            [8080, 3000, 57548, port]
        );
        drop(first);
        let again = bind_any_port(issuer, &[0], Some(&registered), Duration::from_secs(5)).await?;
        assert_eq!(again.port(), port);
        // While it is taken, another port is bound instead.
        let other = bind_any_port(issuer, &[0], Some(&registered), Duration::from_secs(5)).await?;
        assert_ne!(other.port(), port);
        Ok(())
    }
}
