//! What a client does when a protected resource refuses its request — HTTP 401 or 403 with a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750 §3, RFC 9728 §5) — as a state machine without
//! I/O: [`AuthRecovery`] is told what the server answered ([`Refusal`]) and what each action it
//! asked for came to ([`Outcome`]), and answers with the next [`Decision`]: retry with the token now
//! in hand, refresh, read the store again, sign in, fetch `scopes_supported`, step up, or give up.
//!
//! One [`Exchange`] is one request (or one long-lived stream) of the client; the [`AuthRecovery`]
//! is shared by every exchange with the same resource. Bounds that hold whatever a server answers:
//!
//! - **Refresh**: at most one per token generation caused by refusals, and at most one per
//!   exchange: a 401 right after the exchange's refresh ends it (a background exchange, such as a
//!   stream no request waits on) or goes on to a sign-in — never a second refresh (RFC 6750 §3.1
//!   `invalid_token`).
//! - **Sign-in** after a 401: at most one per exchange. None once a sign-in failed or a fresh
//!   sign-in's token was refused at once, and at most one because the server refused a token that
//!   had just been refreshed, until a token from elsewhere is observed ([`Outcome::TokenObserved`]:
//!   the store holds one the user got with the sign-in command in a terminal). Background exchanges
//!   never sign in.
//! - **Step-up** after a 403 `insufficient_scope` (RFC 6750 §3.1; MCP authorization "Step-Up
//!   Authorization Flow"): at most one interactive sign-in per token lineage, whatever scope names
//!   the server invents. A token obtained by a step-up, or refreshed from one, is never stepped up
//!   again: the next 403 gives up, naming the scopes to sign in with ([`GiveUp::hint`]).
//! - **Scopes**: a step-up asks for the union of the scopes already requested or granted and those
//!   the challenge names (at most [`MAX_CHALLENGE_SCOPES`] of them), never every scope the server
//!   lists: the protected-resource metadata's `scopes_supported` (RFC 9728 §2) stand in only when the
//!   challenge names none, as the MCP "Scope Selection Strategy" says, and under the same one-step-up
//!   bound.
//! - **Retries**: at most [`MAX_RETRIES`] per exchange.
//!
//! ```
//! use context_harness_protocol::{AuthRecovery, Decision, Exchange, Outcome, Refusal, RefusalStatus, Sent};
//!
//! let mut recovery = AuthRecovery::new(Vec::new(), Vec::new());
//! let mut exchange = Exchange::request();
//! let sent = Sent { generation: 1, bearer: true, granted: Vec::new() };
//! let refusal = Refusal::from_header_values(RefusalStatus::Unauthorized, [r#"Bearer error="invalid_token""#]);
//! assert_eq!(recovery.on_refusal(&mut exchange, &refusal, &sent, 1), Decision::Refresh);
//! assert_eq!(recovery.on_outcome(&mut exchange, Outcome::Refreshed), Decision::Retry);
//! // The refreshed token (generation 2) is refused too: no second refresh, a sign-in.
//! let sent = Sent { generation: 2, ..sent };
//! assert_eq!(recovery.on_refusal(&mut exchange, &refusal, &sent, 2), Decision::Reload);
//! assert_eq!(
//!     recovery.on_outcome(&mut exchange, Outcome::NothingNew),
//!     Decision::SignIn { scopes: Vec::new() }
//! );
//! ```

use crate::www_authenticate::{Challenge, parse_www_authenticate};

/// The most scope tokens taken from one challenge's `scope` or one `scopes_supported` list; the
/// rest are ignored (a server cannot make a request of unbounded size).
pub const MAX_CHALLENGE_SCOPES: usize = 32;

/// The most times one [`Exchange`] is sent again after a refusal ([`Decision::Retry`]).
pub const MAX_RETRIES: u32 = 6;

/// The longest `error` code kept from a challenge, in characters.
const MAX_ERROR_CHARS: usize = 64;

/// Which refusal a [`Refusal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalStatus {
    /// HTTP 401: no token, or the token is not accepted (RFC 6750 §3.1 `invalid_token`).
    Unauthorized,
    /// HTTP 403: the token is accepted but not enough (`insufficient_scope`), or refused outright.
    Forbidden,
}

impl RefusalStatus {
    /// The refusal an HTTP status code stands for: 401 and 403; `None` for any other.
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            401 => Some(Self::Unauthorized),
            403 => Some(Self::Forbidden),
            _ => None,
        }
    }

    /// The HTTP status code: 401 or 403.
    pub fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
        }
    }
}

/// A refusal and what its `WWW-Authenticate: Bearer` challenge says (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 or 403.
    pub status: RefusalStatus,
    /// The challenge's `error` code (RFC 6750 §3.1), made printable and at most 64 characters.
    pub error: Option<String>,
    /// The valid scope tokens (RFC 6749 §3.3) of the challenge's `scope`, at most
    /// [`MAX_CHALLENGE_SCOPES`]; empty when it names none.
    pub scopes: Vec<String>,
    /// The challenge's `resource_metadata` URL (RFC 9728 §5.1), unchecked.
    pub resource_metadata: Option<String>,
}

impl Refusal {
    /// A refusal without a Bearer challenge.
    pub fn new(status: RefusalStatus) -> Self {
        Self {
            status,
            error: None,
            scopes: Vec::new(),
            resource_metadata: None,
        }
    }

    /// Reads the Bearer (or DPoP, RFC 9449 §7.1) challenge of a refusal: the first one with
    /// `error="insufficient_scope"`, else the first with an `error`, else the first. Other schemes
    /// are not ours to read.
    pub fn from_challenges(status: RefusalStatus, challenges: &[Challenge]) -> Self {
        let bearer = || challenges.iter().filter(|c| c.is_oauth());
        let chosen = bearer()
            .find(|c| c.param("error") == Some("insufficient_scope"))
            .or_else(|| bearer().find(|c| c.param("error").is_some()))
            .or_else(|| bearer().next());
        let Some(challenge) = chosen else {
            return Self::new(status);
        };
        let scope = challenge
            .param("scope")
            .map(|s| context_harness_tokens::valid_scope(s).0)
            .unwrap_or_default();
        Self {
            status,
            error: challenge
                .param("error")
                .map(|e| context_harness_tokens::terminal_text_max(e, MAX_ERROR_CHARS)),
            scopes: capped(scope.split_whitespace().map(str::to_owned)),
            resource_metadata: challenge.param("resource_metadata").map(str::to_owned),
        }
    }

    /// [`from_challenges`](Self::from_challenges) of the `WWW-Authenticate` header values of an
    /// answer (each parsed with [`parse_www_authenticate`]).
    pub fn from_header_values<'a>(
        status: RefusalStatus,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let challenges: Vec<Challenge> = values
            .into_iter()
            .flat_map(parse_www_authenticate)
            .collect();
        Self::from_challenges(status, &challenges)
    }

    /// A 403 `insufficient_scope` (RFC 6750 §3.1): the token lacks a scope the request needs.
    pub fn is_insufficient_scope(&self) -> bool {
        self.status == RefusalStatus::Forbidden
            && self.error.as_deref() == Some("insufficient_scope")
    }
}

/// The token a refused request carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The generation of the token in hand when the request was built. The embedding program
    /// bumps it at every change of the token (a refresh within its margin too).
    pub generation: u64,
    /// Whether the request carried a bearer token at all.
    pub bearer: bool,
    /// The scopes that token was granted (its `scope`, RFC 6749 §5.1); empty when unknown.
    pub granted: Vec<String>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Send the request again with the token now in hand.
    Retry,
    /// Refresh the token (RFC 6749 §6), then report [`Outcome::Refreshed`] or
    /// [`Outcome::RefreshFailed`].
    Refresh,
    /// Look at the token store: report [`Outcome::TokenObserved`] when it holds a usable token other
    /// than the one in hand (one got meanwhile, e.g. in a terminal), else [`Outcome::NothingNew`].
    Reload,
    /// Sign in interactively, then report [`Outcome::SignedIn`] or [`Outcome::SignInFailed`].
    SignIn {
        /// The scopes to request; empty: the sign-in's own discovery chooses (MCP "Scope Selection
        /// Strategy": the 401 challenge's `scope`, else `scopes_supported`).
        scopes: Vec<String>,
    },
    /// Fetch the resource's protected-resource metadata (RFC 9728 §3) and report its
    /// `scopes_supported` ([`Outcome::ScopesSupported`], empty when there is none).
    FetchScopes {
        /// The challenge's `resource_metadata` URL (RFC 9728 §5.1), to try first if the
        /// embedding program's address policy allows it.
        resource_metadata: Option<String>,
    },
    /// Sign in interactively for more scope (MCP "Step-Up Authorization Flow"), then report
    /// [`Outcome::SignedIn`] or [`Outcome::SignInFailed`].
    StepUp {
        /// The union of the scopes granted, requested before and named now.
        scopes: Vec<String>,
    },
    /// Stop: the request fails with this.
    GiveUp(GiveUp),
}

/// Why an exchange ends without a usable answer, and the scopes a sign-in should ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// What happened.
    pub reason: GiveUpReason,
    /// For the scope reasons: the scopes to sign in with (empty: none is known).
    pub scopes: Vec<String>,
}

impl GiveUp {
    fn new(reason: GiveUpReason) -> Self {
        Self {
            reason,
            scopes: Vec::new(),
        }
    }

    /// The command that fixes it, from the embedding program's sign-in `command` (e.g.
    /// `context-harness mcp auth https://mcp.example/mcp`): for the scope reasons, followed by
    /// ` --scope <s>` for each scope (` --scope <scope>` when none is known); else `command`.
    pub fn hint(&self, command: &str) -> String {
        let mut hint = command.to_owned();
        if self.reason.is_scope() {
            if self.scopes.is_empty() {
                hint.push_str(" --scope <scope>");
            }
            for scope in &self.scopes {
                hint.push_str(" --scope ");
                hint.push_str(scope);
            }
        }
        hint
    }
}

/// The reason of a [`GiveUp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// 401 and nothing left to try: the token of a fresh sign-in was refused, a sign-in is not
    /// allowed now (a background exchange, or the server already refused a new token), or a
    /// background exchange's refresh did not help.
    Unauthorized,
    /// The refresh failed for a reason a sign-in would not fix (the authorization server or the
    /// store is unreachable).
    RefreshFailed,
    /// An interactive sign-in failed, now or earlier (no second browser until a token is observed).
    SignInFailed,
    /// A 403 that is not `insufficient_scope` (or is one on a background exchange).
    Forbidden {
        /// The challenge's `error` code, if any.
        error: Option<String>,
    },
    /// A 403 `insufficient_scope` naming no scope the token lacks (and the metadata names none).
    NoScopeLacking,
    /// The step-up sign-in for this token failed, now or earlier.
    StepUpFailed,
    /// The server still refuses the token of the step-up (or one refreshed from it) for scope.
    StillInsufficient,
    /// The token kept changing while the server kept refusing ([`MAX_RETRIES`]), or an outcome
    /// came that no decision asked for.
    Unsettled,
}

impl GiveUpReason {
    /// Whether a sign-in for other scopes is the fix (then [`GiveUp::scopes`] names them).
    pub fn is_scope(&self) -> bool {
        matches!(
            self,
            Self::NoScopeLacking | Self::StepUpFailed | Self::StillInsufficient
        )
    }
}

/// What the action of a [`Decision`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The refresh gave a new token.
    Refreshed,
    /// The refresh failed; `transient` when a sign-in would not fix it (the authorization server
    /// or the store is unreachable), else (no refresh token, `invalid_grant`) a sign-in may.
    RefreshFailed {
        /// See the variant.
        transient: bool,
    },
    /// The sign-in (or step-up) gave a new token.
    SignedIn,
    /// The sign-in (or step-up) failed: refused, timed out, no browser, unreachable.
    SignInFailed,
    /// A usable token other than the one in hand was found (the store): it is now in hand. Starts
    /// a new lineage: the sign-in and step-up bounds count afresh.
    TokenObserved,
    /// The store holds nothing new.
    NothingNew,
    /// The metadata's `scopes_supported` (empty when there is no metadata or it lists none).
    ScopesSupported(Vec<String>),
}

/// The action an exchange waits on, and what it needs afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Refresh,
    SignIn,
    StepUp,
    /// The store is read before a sign-in (with the 401 challenge's scopes and whether the server
    /// refused a just-refreshed token), or before giving up.
    Reload(AfterReload),
    /// The metadata is fetched for a step-up of a token granted these scopes.
    Fetch {
        granted: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterReload {
    SignIn {
        challenge: Vec<String>,
        after_refresh: bool,
    },
    GiveUp(GiveUp),
}

/// One request (or long-lived stream) of the client, from its first refusal to its answer or
/// give-up. Keep it across the resends of the same request (a stream: across its reconnections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// No one waits on it interactively: never a sign-in or step-up.
    background: bool,
    refreshed: bool,
    signed_in: bool,
    stepped_up: bool,
    reloaded: bool,
    fetched: bool,
    retries: u32,
    pending: Option<Pending>,
    refused: Option<RefusalStatus>,
}

impl Exchange {
    fn new(background: bool) -> Self {
        Self {
            background,
            refreshed: false,
            signed_in: false,
            stepped_up: false,
            reloaded: false,
            fetched: false,
            retries: 0,
            pending: None,
            refused: None,
        }
    }

    /// An exchange someone waits on (a request): it may sign in and step up.
    pub fn request() -> Self {
        Self::new(false)
    }

    /// An exchange no one waits on (a stream of server-initiated messages): it may refresh once,
    /// never sign in or step up.
    pub fn background() -> Self {
        Self::new(true)
    }

    /// The last refusal this exchange saw, if any.
    pub fn refused(&self) -> Option<RefusalStatus> {
        self.refused
    }

    fn retry(&mut self) -> Decision {
        if self.retries >= MAX_RETRIES {
            return Decision::GiveUp(GiveUp::new(GiveUpReason::Unsettled));
        }
        self.retries = self.retries.saturating_add(1);
        Decision::Retry
    }
}

/// Why no more 401-driven sign-in opens a browser (until a token is observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    /// A sign-in failed.
    Failed,
    /// The server refused the token of a fresh sign-in, or a just-refreshed token after the
    /// sign-in this lineage allows for that.
    Refused,
}

/// The step-up of the current token lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StepUp {
    asked: Vec<String>,
    /// `None` while running (or when its exchange went away before the outcome).
    succeeded: Option<bool>,
}

/// The recovery state of one resource, shared by all its [`Exchange`]s. Decide under one lock
/// (the action included) so that concurrent exchanges see each other's renewals; see the module
/// documentation for the bounds it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecovery {
    /// The scopes asked for explicitly: the configured ones, then each step-up's union.
    requested: Vec<String>,
    /// The scopes the stored sign-in record asked for.
    recorded: Vec<String>,
    /// The generation a refusal last caused a refresh of.
    refreshed_generation: Option<u64>,
    blocked: Option<Blocked>,
    /// A sign-in happened because the server refused a just-refreshed token (this lineage).
    refused_refresh_sign_in: bool,
    step_up: Option<StepUp>,
}

impl AuthRecovery {
    /// A recovery that knows the scopes configured for the client (`requested`, asked for by
    /// every sign-in when not empty) and those the stored sign-in record asked for (`recorded`,
    /// part of a step-up's union).
    pub fn new(requested: Vec<String>, recorded: Vec<String>) -> Self {
        Self {
            requested: union([requested]),
            recorded: union([recorded]),
            refreshed_generation: None,
            blocked: None,
            refused_refresh_sign_in: false,
            step_up: None,
        }
    }

    /// Replaces the scopes of the stored sign-in record (after a sign-in wrote a new one).
    pub fn set_recorded(&mut self, recorded: Vec<String>) {
        self.recorded = union([recorded]);
    }

    /// The scopes asked for explicitly so far (configured, then each step-up's union).
    pub fn requested(&self) -> &[String] {
        &self.requested
    }

    /// The server refused the request `exchange` sent with `sent`; `current` is the generation of
    /// the token in hand now.
    pub fn on_refusal(
        &mut self,
        exchange: &mut Exchange,
        refusal: &Refusal,
        sent: &Sent,
        current: u64,
    ) -> Decision {
        exchange.pending = None;
        exchange.refused = Some(refusal.status);
        if sent.generation != current {
            // Another exchange renewed the token meanwhile.
            return exchange.retry();
        }
        match refusal.status {
            RefusalStatus::Unauthorized => self.unauthorized(exchange, refusal, sent),
            RefusalStatus::Forbidden if refusal.is_insufficient_scope() => {
                self.insufficient_scope(exchange, refusal, sent)
            }
            RefusalStatus::Forbidden => Decision::GiveUp(GiveUp::new(GiveUpReason::Forbidden {
                error: refusal.error.clone(),
            })),
        }
    }

    /// What the action of the last decision for `exchange` came to.
    pub fn on_outcome(&mut self, exchange: &mut Exchange, outcome: Outcome) -> Decision {
        let pending = exchange.pending.take();
        match (pending, outcome) {
            (_, Outcome::TokenObserved) => {
                self.blocked = None;
                self.refused_refresh_sign_in = false;
                self.step_up = None;
                exchange.retry()
            }
            (Some(Pending::Refresh), Outcome::Refreshed) => exchange.retry(),
            (Some(Pending::Refresh), Outcome::RefreshFailed { transient: true }) => {
                Decision::GiveUp(GiveUp::new(GiveUpReason::RefreshFailed))
            }
            (Some(Pending::Refresh), Outcome::RefreshFailed { transient: false }) => {
                self.sign_in(exchange, Vec::new(), false)
            }
            (Some(Pending::SignIn), Outcome::SignedIn) => exchange.retry(),
            (Some(Pending::SignIn), Outcome::SignInFailed) => {
                self.blocked = Some(Blocked::Failed);
                Decision::GiveUp(GiveUp::new(GiveUpReason::SignInFailed))
            }
            (Some(Pending::StepUp), Outcome::SignedIn) => {
                if let Some(step) = self.step_up.as_mut() {
                    step.succeeded = Some(true);
                }
                exchange.retry()
            }
            (Some(Pending::StepUp), Outcome::SignInFailed) => {
                let asked = match self.step_up.as_mut() {
                    Some(step) => {
                        step.succeeded = Some(false);
                        step.asked.clone()
                    }
                    None => Vec::new(),
                };
                Decision::GiveUp(GiveUp {
                    reason: GiveUpReason::StepUpFailed,
                    scopes: asked,
                })
            }
            (Some(Pending::Reload(after)), Outcome::NothingNew) => match after {
                AfterReload::SignIn {
                    challenge,
                    after_refresh,
                } => self.sign_in(exchange, challenge, after_refresh),
                AfterReload::GiveUp(give_up) => Decision::GiveUp(give_up),
            },
            (Some(Pending::Fetch { granted }), Outcome::ScopesSupported(listed)) => {
                self.step_up(exchange, &granted, capped(listed))
            }
            _ => Decision::GiveUp(GiveUp::new(GiveUpReason::Unsettled)),
        }
    }

    fn unauthorized(
        &mut self,
        exchange: &mut Exchange,
        refusal: &Refusal,
        sent: &Sent,
    ) -> Decision {
        if exchange.signed_in {
            // The token of a fresh sign-in refused at once: another sign-in would be refused the
            // same way, so no browser per request from now on.
            self.blocked = Some(Blocked::Refused);
            return Decision::GiveUp(GiveUp::new(GiveUpReason::Unauthorized));
        }
        if sent.bearer && !exchange.refreshed && self.refreshed_generation != Some(sent.generation)
        {
            exchange.refreshed = true;
            self.refreshed_generation = Some(sent.generation);
            exchange.pending = Some(Pending::Refresh);
            return Decision::Refresh;
        }
        // No token; or this exchange refreshed and the new token is refused too (the server's
        // word: a loop a server could drive); or another exchange's refresh of it failed.
        self.sign_in(exchange, refusal.scopes.clone(), exchange.refreshed)
    }

    /// A sign-in after a 401, where one is allowed; `after_refresh` when the server refused a
    /// token that had just been refreshed.
    fn sign_in(
        &mut self,
        exchange: &mut Exchange,
        challenge: Vec<String>,
        after_refresh: bool,
    ) -> Decision {
        if exchange.background {
            return Decision::GiveUp(GiveUp::new(GiveUpReason::Unauthorized));
        }
        if !exchange.reloaded {
            exchange.reloaded = true;
            exchange.pending = Some(Pending::Reload(AfterReload::SignIn {
                challenge,
                after_refresh,
            }));
            return Decision::Reload;
        }
        match self.blocked {
            Some(Blocked::Failed) => {
                return Decision::GiveUp(GiveUp::new(GiveUpReason::SignInFailed));
            }
            Some(Blocked::Refused) => {
                return Decision::GiveUp(GiveUp::new(GiveUpReason::Unauthorized));
            }
            None => {}
        }
        if after_refresh {
            if self.refused_refresh_sign_in {
                self.blocked = Some(Blocked::Refused);
                return Decision::GiveUp(GiveUp::new(GiveUpReason::Unauthorized));
            }
            self.refused_refresh_sign_in = true;
        }
        exchange.signed_in = true;
        exchange.pending = Some(Pending::SignIn);
        let scopes = if self.requested.is_empty() {
            Vec::new()
        } else {
            union([self.requested.clone(), challenge])
        };
        self.requested.clone_from(&scopes);
        Decision::SignIn { scopes }
    }

    fn insufficient_scope(
        &mut self,
        exchange: &mut Exchange,
        refusal: &Refusal,
        sent: &Sent,
    ) -> Decision {
        if exchange.background {
            return Decision::GiveUp(GiveUp::new(GiveUpReason::Forbidden {
                error: refusal.error.clone(),
            }));
        }
        if exchange.stepped_up && self.step_up.is_none() {
            // A token observed since this exchange's step-up is refused too: one step-up per
            // exchange all the same.
            return Decision::GiveUp(GiveUp {
                reason: GiveUpReason::StillInsufficient,
                scopes: self.requested.clone(),
            });
        }
        if let Some(step) = &self.step_up {
            // This lineage stepped up already: no second browser, whatever the scope named.
            let give_up = GiveUp {
                reason: if step.succeeded == Some(true) {
                    GiveUpReason::StillInsufficient
                } else {
                    GiveUpReason::StepUpFailed
                },
                scopes: step.asked.clone(),
            };
            if exchange.stepped_up || exchange.reloaded {
                return Decision::GiveUp(give_up);
            }
            // A sign-in done meanwhile in a terminal counts.
            exchange.reloaded = true;
            exchange.pending = Some(Pending::Reload(AfterReload::GiveUp(give_up)));
            return Decision::Reload;
        }
        if refusal.scopes.is_empty() && !exchange.fetched {
            exchange.fetched = true;
            exchange.pending = Some(Pending::Fetch {
                granted: sent.granted.clone(),
            });
            return Decision::FetchScopes {
                resource_metadata: refusal.resource_metadata.clone(),
            };
        }
        self.step_up(exchange, &sent.granted, refusal.scopes.clone())
    }

    fn step_up(
        &mut self,
        exchange: &mut Exchange,
        granted: &[String],
        named: Vec<String>,
    ) -> Decision {
        let scopes = union([
            granted.to_vec(),
            self.requested.clone(),
            self.recorded.clone(),
            named,
        ]);
        let lacking = scopes
            .iter()
            .any(|s| grants_access(s) && !granted.contains(s));
        if !lacking {
            return Decision::GiveUp(GiveUp::new(GiveUpReason::NoScopeLacking));
        }
        self.step_up = Some(StepUp {
            asked: scopes.clone(),
            succeeded: None,
        });
        self.requested.clone_from(&scopes);
        exchange.stepped_up = true;
        exchange.pending = Some(Pending::StepUp);
        Decision::StepUp { scopes }
    }
}

/// Scopes that say nothing about access to a resource: a step-up for only these cannot help.
fn grants_access(scope: &str) -> bool {
    !matches!(scope, "offline_access" | "openid")
}

/// The first [`MAX_CHALLENGE_SCOPES`] distinct valid scope tokens of `scopes`.
fn capped(scopes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        if out.len() >= MAX_CHALLENGE_SCOPES {
            break;
        }
        if context_harness_tokens::is_scope_token(&scope) && !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

/// The lists in order, each scope once.
fn union<const N: usize>(lists: [Vec<String>; N]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in lists.into_iter().flatten() {
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

#[cfg(test)]
mod tests;
