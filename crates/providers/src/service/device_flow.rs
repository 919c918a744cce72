//! The service side of the device authorization grant (RFC 8628).

use std::time::Duration;

use context_harness_storage::ProviderName;
use context_harness_tokens as tokens;

use super::{AuthOutcome, AuthenticateOptions, McpServerRecord, OAuthService, SignInFlow, retry};
use crate::device::{self, DeviceAuthorization, PollOutcome, TokioClock};
use crate::error::{Error, ErrorCode, Grant, Result, classify_response_error, sanitize_code};
use crate::provider::{OAuthConfig, check_endpoint};

impl OAuthService {
    pub(super) fn use_device_flow(
        &self,
        provider: &str,
        config: &OAuthConfig,
        flow: SignInFlow,
    ) -> Result<bool> {
        let has_endpoint = config.provider.device_auth_url.is_some();
        match flow {
            SignInFlow::Browser => Ok(false),
            SignInFlow::DeviceIfAvailable => Ok(has_endpoint),
            SignInFlow::Device if has_endpoint => Ok(true),
            SignInFlow::Device => Err(Error::new(
                ErrorCode::ConfigMissing,
                format!("{provider} has no device authorization endpoint (RFC 8628)"),
            )
            .with_step(crate::NextStep::UseBrowserFlow {
                provider: provider.to_owned(),
            })),
        }
    }

    /// The device flow with a resolved configuration: start, prompt, poll, store.
    pub(super) async fn authenticate_device(
        &self,
        provider: &str,
        name: &ProviderName,
        config: &OAuthConfig,
        record: Option<&McpServerRecord>,
        options: &AuthenticateOptions,
    ) -> Result<AuthOutcome> {
        let p = &config.provider;
        let Some(device_url) = &p.device_auth_url else {
            return Err(Error::new(
                ErrorCode::ConfigMissing,
                format!("{provider} has no device authorization endpoint"),
            ));
        };
        let device_url =
            check_endpoint(device_url, &format!("providers.{provider}.device_auth_url"))?;
        let token_url = check_endpoint(&p.token_url, &format!("providers.{provider}.token_url"))?;
        let scopes = options.scopes.clone().unwrap_or_else(|| p.scopes.clone());
        let scope = scopes.join(" ");

        // Start (RFC 8628 §3.1).
        let mut form: Vec<(&str, &str)> = Vec::new();
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if let Some(resource) = &p.resource {
            form.push(("resource", resource));
        }
        if let Some(audience) = &p.audience {
            form.push(("audience", audience));
        }
        let raw = self
            .post_with_client_auth(config, &device_url, &form, "device authorization endpoint")
            .await?;
        let object =
            tokens::parse_response_object(raw.status, raw.content_type.as_deref(), &raw.body)
                .map_err(|e| {
                    let mut err = classify_response_error(&e, Grant::Exchange);
                    if let Some(code) = e.oauth_error() {
                        err = Error::new(
                            if matches!(code, "invalid_client" | "unauthorized_client") {
                                ErrorCode::AuthFailed
                            } else {
                                err.code()
                            },
                            format!(
                                "the device authorization request was refused (`{}`)",
                                sanitize_code(code)
                            ),
                        )
                        .with_oauth(sanitize_code(code), None, raw.status);
                    }
                    err
                })?;
        let authorization = DeviceAuthorization::from_object(&object)?;

        options.ui_or_default().device_code(&authorization);
        tracing::info!(
            provider,
            expires_in_s = authorization.expires_in.as_secs(),
            interval_s = authorization.interval.as_secs(),
            "waiting for the device sign-in"
        );

        // Poll (RFC 8628 §3.4–3.5).
        let real = TokioClock;
        let clock: &dyn device::DeviceClock = match &options.device_clock {
            Some(c) => c.as_ref(),
            None => &real,
        };
        let device_code = authorization.device_code.clone();
        // The caller's timeout bounds the wait for the user here too, within the code's lifetime.
        let capped = options.timeout < authorization.expires_in;
        let mut bounded = authorization.clone();
        if capped {
            bounded.expires_in = options.timeout;
        }
        // Transient answers (429, 503, `temporarily_unavailable`) are waited out inside one poll,
        // never later than this and never sooner than the poll interval (RFC 8628 §3.5).
        let deadline = clock.now() + bounded.expires_in;
        let min_wait = authorization.interval.max(Duration::from_secs(1));
        let poll = || {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", device::GRANT_TYPE),
                ("device_code", device_code.secret()),
            ];
            if let Some(resource) = &p.resource {
                form.push(("resource", resource.as_str()));
            }
            let token_url = &token_url;
            async move {
                let patience = retry::Patience {
                    clock,
                    deadline,
                    min_wait,
                    what: "polling the token endpoint",
                    log_prefix: "device flow: ",
                };
                let send = || async {
                    match self
                        .post_with_client_auth(config, token_url, &form, "token endpoint")
                        .await
                    {
                        Ok(raw) => Ok(raw),
                        Err(e)
                            if matches!(e.code(), ErrorCode::NetworkError | ErrorCode::Timeout) =>
                        {
                            Err(PollOutcome::Transport(e))
                        }
                        Err(e) => Err(PollOutcome::Fatal(e)),
                    }
                };
                let (raw, sent_at) =
                    match retry::send_until_settled(&patience, send, PollOutcome::Fatal).await {
                        Ok(sent) => sent,
                        Err(outcome) => return outcome,
                    };
                let body = crate::provider::nested_token_answer(
                    &raw.body,
                    config.provider.token_path.as_deref(),
                );
                PollOutcome::from_response(raw.status, raw.content_type.as_deref(), &body, sent_at)
            }
        };
        let tokens = device::poll_until_done(clock, &bounded, poll)
            .await
            .map_err(|e| {
                if capped && e.code() == ErrorCode::Timeout {
                    Error::new(
                        ErrorCode::Timeout,
                        format!(
                            "the device sign-in was not approved within {} s",
                            options.timeout.as_secs()
                        ),
                    )
                    .with_step(crate::NextStep::AllowMoreTime)
                } else {
                    e
                }
            })?;
        let grant = super::grants::GrantRecord::interactive(super::grants::GrantType::DeviceCode);
        let tokens = self
            .store_sign_in(name, config, record, tokens, &grant)
            .await?;
        Ok(self.outcome(name, tokens, String::new(), Vec::new()))
    }
}
