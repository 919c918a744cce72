use super::*;

mod bounds;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn refusal(status: u16, challenge: &str) -> Refusal {
    let Some(status) = RefusalStatus::from_status(status) else {
        panic!("not a refusal: {status}");
    };
    if challenge.is_empty() {
        return Refusal::new(status);
    }
    Refusal::from_header_values(status, [challenge])
}

#[test]
fn reads_the_challenge() {
    let rm = "https://mcp.ex/.well-known/oauth-protected-resource/mcp";
    let scoped = |scopes: &[&str], metadata: Option<&str>| Refusal {
        status: RefusalStatus::Forbidden,
        error: Some("insufficient_scope".to_owned()),
        scopes: strings(scopes),
        resource_metadata: metadata.map(str::to_owned),
    };
    let plain = |error: Option<&str>| Refusal {
        error: error.map(str::to_owned),
        ..Refusal::new(RefusalStatus::Forbidden)
    };
    let table: Vec<(Vec<String>, Refusal)> = vec![
        // The specification's example, and the official Python SDK's (no `scope`).
        (
            vec![format!(
                r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="{rm}""#
            )],
            scoped(&["files:read", "files:write"], Some(rm)),
        ),
        (
            vec![r#"Bearer error="insufficient_scope", error_description="Required scope: mcp:resources""#.to_owned()],
            scoped(&[], None),
        ),
        // An empty `scope`, and one with only invalid tokens, name none; duplicates count once.
        (vec![r#"Bearer error="insufficient_scope", scope="""#.to_owned()], scoped(&[], None)),
        (
            vec![r#"Bearer error="insufficient_scope", scope="a\"b c\\d""#.to_owned()],
            scoped(&[], None),
        ),
        (
            vec![r#"Bearer error="insufficient_scope", scope="x x y""#.to_owned()],
            scoped(&["x", "y"], None),
        ),
        // Case-insensitive scheme; another scheme first; the Bearer one in a second header; the
        // insufficient_scope challenge wins over an earlier Bearer one.
        (vec![r#"bearer error="insufficient_scope", scope="x""#.to_owned()], scoped(&["x"], None)),
        (
            vec![r#"Basic realm="r""#.to_owned(), r#"Bearer error="insufficient_scope", scope="y""#.to_owned()],
            scoped(&["y"], None),
        ),
        (
            vec![r#"Bearer realm="a", Bearer error="insufficient_scope", scope="z""#.to_owned()],
            scoped(&["z"], None),
        ),
        // Plain 403s.
        (vec![], plain(None)),
        (vec![r#"Basic realm="r""#.to_owned()], plain(None)),
        (vec![r#"Bearer error="invalid_token""#.to_owned()], plain(Some("invalid_token"))),
        // DPoP (RFC 9449 §7.1) challenges read as Bearer ones; other schemes are not ours.
        (vec![r#"DPoP error="insufficient_scope", scope="z""#.to_owned()], scoped(&["z"], None)),
        (vec![r#"Mac error="insufficient_scope", scope="z""#.to_owned()], plain(None)),
        // A hostile error code is made printable and short.
        (
            vec![format!("Bearer error=\"\u{1b}[2J{}\"", "e".repeat(500))],
            plain(Some(&context_harness_tokens::terminal_text_max(
                &format!("\u{1b}[2J{}", "e".repeat(500)),
                64,
            ))),
        ),
    ];
    for (values, expected) in table {
        let got = Refusal::from_header_values(
            RefusalStatus::Forbidden,
            values.iter().map(String::as_str),
        );
        assert_eq!(got, expected, "{values:?}");
        assert_eq!(
            got.is_insufficient_scope(),
            got.error.as_deref() == Some("insufficient_scope"),
            "{values:?}"
        );
    }
    // A 401's challenge: its scope and metadata are read too; never insufficient_scope.
    let unauthorized = refusal(
        401,
        &format!(r#"Bearer resource_metadata="{rm}", scope="mcp:tools""#),
    );
    assert_eq!(unauthorized.scopes, ["mcp:tools"]);
    assert_eq!(unauthorized.resource_metadata.as_deref(), Some(rm));
    assert!(!refusal(401, r#"Bearer error="insufficient_scope""#).is_insufficient_scope());
    // At most MAX_CHALLENGE_SCOPES scopes from one challenge.
    let many: Vec<String> = (0..500).map(|i| format!("s{i}")).collect();
    let big = refusal(
        403,
        &format!(
            r#"Bearer error="insufficient_scope", scope="{}""#,
            many.join(" ")
        ),
    );
    assert_eq!(big.scopes, many[..MAX_CHALLENGE_SCOPES]);
    assert_eq!(RefusalStatus::from_status(200), None);
    assert_eq!(RefusalStatus::Forbidden.code(), 403);
}

/// One step of a scripted run: the server's refusal of what was sent, or an action's outcome.
enum Input {
    /// (status, challenge, sent generation, bearer sent, granted, current generation)
    Refused(u16, &'static str, u64, bool, &'static [&'static str], u64),
    Out(Outcome),
    /// Starts a new exchange (`true`: background).
    New(bool),
}
use Input::{New, Out, Refused};

fn give_up(reason: GiveUpReason, scopes: &[&str]) -> Decision {
    Decision::GiveUp(GiveUp {
        reason,
        scopes: strings(scopes),
    })
}

/// Runs `script` on `recovery`, one exchange after another, asserting each decision.
fn run(recovery: &mut AuthRecovery, script: Vec<(Input, Option<Decision>)>) {
    let mut exchange = Exchange::request();
    for (i, (input, expected)) in script.into_iter().enumerate() {
        let got = match input {
            New(background) => {
                exchange = if background {
                    Exchange::background()
                } else {
                    Exchange::request()
                };
                None
            }
            Refused(status, challenge, generation, bearer, granted, current) => {
                let sent = Sent {
                    generation,
                    bearer,
                    granted: strings(granted),
                };
                Some(recovery.on_refusal(
                    &mut exchange,
                    &refusal(status, challenge),
                    &sent,
                    current,
                ))
            }
            Out(outcome) => Some(recovery.on_outcome(&mut exchange, outcome)),
        };
        assert_eq!(got, expected, "step {i}");
    }
}

const INVALID: &str = r#"Bearer error="invalid_token""#;

#[test]
fn unauthorized_rules() {
    let sign_in = |scopes: &[&str]| {
        Some(Decision::SignIn {
            scopes: strings(scopes),
        })
    };
    let retry = || Some(Decision::Retry);
    // A revoked token: one refresh, then the request again.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(401, INVALID, 1, true, &[], 1),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
        ],
    );
    // A 401 right after the refresh: the store, then one sign-in; its token refused at once ends
    // the exchange and blocks the next sign-in (the next exchange refreshes its token once).
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(401, INVALID, 1, true, &[], 1),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(401, INVALID, 2, true, &[], 2),
                Some(Decision::Reload),
            ),
            (Out(Outcome::NothingNew), sign_in(&[])),
            (Out(Outcome::SignedIn), retry()),
            (
                Refused(401, INVALID, 3, true, &[], 3),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
            (New(false), None),
            (
                Refused(401, INVALID, 3, true, &[], 3),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(401, INVALID, 4, true, &[], 4),
                Some(Decision::Reload),
            ),
            (
                Out(Outcome::NothingNew),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
            // A token from the store starts afresh (generation 4 was not refreshed yet).
            (New(false), None),
            (
                Refused(401, INVALID, 4, true, &[], 4),
                Some(Decision::Refresh),
            ),
            (
                Out(Outcome::RefreshFailed { transient: false }),
                Some(Decision::Reload),
            ),
            (Out(Outcome::TokenObserved), retry()),
            // The store was read in this exchange already.
            (Refused(401, INVALID, 5, true, &[], 5), sign_in(&[])),
        ],
    );
    // A server that refuses each just-refreshed token and takes a signed-in one once: one sign-in.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(401, INVALID, 1, true, &[], 1),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(401, INVALID, 2, true, &[], 2),
                Some(Decision::Reload),
            ),
            (Out(Outcome::NothingNew), sign_in(&[])),
            (Out(Outcome::SignedIn), retry()),
            (New(false), None),
            (
                Refused(401, INVALID, 3, true, &[], 3),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(401, INVALID, 4, true, &[], 4),
                Some(Decision::Reload),
            ),
            (
                Out(Outcome::NothingNew),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
        ],
    );
    // No token: the store, then a sign-in for the configured scopes and the challenge's; a failed
    // sign-in opens no second browser until the store holds a token.
    run(
        &mut AuthRecovery::new(strings(&["a"]), vec![]),
        vec![
            (
                Refused(401, r#"Bearer scope="b""#, 0, false, &[], 0),
                Some(Decision::Reload),
            ),
            (Out(Outcome::NothingNew), sign_in(&["a", "b"])),
            (
                Out(Outcome::SignInFailed),
                Some(give_up(GiveUpReason::SignInFailed, &[])),
            ),
            (New(false), None),
            (Refused(401, "", 0, false, &[], 0), Some(Decision::Reload)),
            (
                Out(Outcome::NothingNew),
                Some(give_up(GiveUpReason::SignInFailed, &[])),
            ),
            (New(false), None),
            (Refused(401, "", 0, false, &[], 0), Some(Decision::Reload)),
            (Out(Outcome::TokenObserved), retry()),
            (Refused(401, "", 1, true, &[], 1), Some(Decision::Refresh)),
        ],
    );
    // Nothing configured: the sign-in's discovery chooses the scopes.
    run(
        &mut AuthRecovery::new(vec![], strings(&["r"])),
        vec![
            (
                Refused(401, r#"Bearer scope="b""#, 0, false, &[], 0),
                Some(Decision::Reload),
            ),
            (Out(Outcome::NothingNew), sign_in(&[])),
        ],
    );
    // Refresh failures: transient ends the exchange; otherwise a sign-in may help.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (Refused(401, "", 1, true, &[], 1), Some(Decision::Refresh)),
            (
                Out(Outcome::RefreshFailed { transient: true }),
                Some(give_up(GiveUpReason::RefreshFailed, &[])),
            ),
            // That generation was refreshed once already: no second refresh for it.
            (New(false), None),
            (Refused(401, "", 1, true, &[], 1), Some(Decision::Reload)),
            (Out(Outcome::NothingNew), sign_in(&[])),
        ],
    );
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (Refused(401, "", 1, true, &[], 1), Some(Decision::Refresh)),
            (
                Out(Outcome::RefreshFailed { transient: false }),
                Some(Decision::Reload),
            ),
            (Out(Outcome::NothingNew), sign_in(&[])),
            (Out(Outcome::SignedIn), retry()),
        ],
    );
    // Another exchange renewed the token meanwhile: just retry, at most MAX_RETRIES times.
    let mut script: Vec<(Input, Option<Decision>)> = (0..MAX_RETRIES)
        .map(|i| {
            let generation = u64::from(i);
            (
                Refused(401, "", generation, true, &[], generation + 1),
                retry(),
            )
        })
        .collect();
    script.push((
        Refused(401, "", 50, true, &[], 51),
        Some(give_up(GiveUpReason::Unsettled, &[])),
    ));
    run(&mut AuthRecovery::new(vec![], vec![]), script);
    // A background exchange (a stream): one refresh in its whole life, never a sign-in.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (New(true), None),
            (Refused(401, "", 1, true, &[], 1), Some(Decision::Refresh)),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(401, "", 2, true, &[], 2),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
            (New(true), None),
            (
                Refused(401, "", 0, false, &[], 0),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
            (New(true), None),
            (Refused(401, "", 3, true, &[], 3), Some(Decision::Refresh)),
            (
                Out(Outcome::RefreshFailed { transient: false }),
                Some(give_up(GiveUpReason::Unauthorized, &[])),
            ),
        ],
    );
    // An outcome nothing asked for.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![(
            Out(Outcome::Refreshed),
            Some(give_up(GiveUpReason::Unsettled, &[])),
        )],
    );
}

#[test]
fn forbidden_rules() {
    let retry = || Some(Decision::Retry);
    let step_up = |scopes: &[&str]| {
        Some(Decision::StepUp {
            scopes: strings(scopes),
        })
    };
    // A named scope: one step-up for the union (granted, requested, recorded, named); a 403 on its
    // token for an invented scope gives up naming what was asked, in every later exchange too.
    let mut recovery = AuthRecovery::new(vec![], strings(&["a", "offline_access"]));
    run(
        &mut recovery,
        vec![
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="b""#,
                    1,
                    true,
                    &["a"],
                    1,
                ),
                step_up(&["a", "offline_access", "b"]),
            ),
            (Out(Outcome::SignedIn), retry()),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="c""#,
                    2,
                    true,
                    &["a"],
                    2,
                ),
                Some(give_up(
                    GiveUpReason::StillInsufficient,
                    &["a", "offline_access", "b"],
                )),
            ),
            (New(false), None),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="d""#,
                    2,
                    true,
                    &["a"],
                    2,
                ),
                Some(Decision::Reload),
            ),
            (
                Out(Outcome::NothingNew),
                Some(give_up(
                    GiveUpReason::StillInsufficient,
                    &["a", "offline_access", "b"],
                )),
            ),
            // A refreshed token of that lineage is not stepped up either.
            (New(false), None),
            (
                Refused(401, "", 2, true, &["a"], 2),
                Some(Decision::Refresh),
            ),
            (Out(Outcome::Refreshed), retry()),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="e""#,
                    3,
                    true,
                    &["a"],
                    3,
                ),
                Some(Decision::Reload),
            ),
            (
                Out(Outcome::NothingNew),
                Some(give_up(
                    GiveUpReason::StillInsufficient,
                    &["a", "offline_access", "b"],
                )),
            ),
            // A token from the store (the fix, run in a terminal) may step up once more.
            (New(false), None),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="f""#,
                    3,
                    true,
                    &["a"],
                    3,
                ),
                Some(Decision::Reload),
            ),
            (Out(Outcome::TokenObserved), retry()),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="f""#,
                    4,
                    true,
                    &["a", "b"],
                    4,
                ),
                step_up(&["a", "b", "offline_access", "f"]),
            ),
        ],
    );
    assert_eq!(recovery.requested(), ["a", "b", "offline_access", "f"]);
    // No scope named: the metadata's scopes_supported stand in; none lacking → give up.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", resource_metadata="https://m/prm""#,
                    1,
                    true,
                    &["x"],
                    1,
                ),
                Some(Decision::FetchScopes {
                    resource_metadata: Some("https://m/prm".to_owned()),
                }),
            ),
            (
                Out(Outcome::ScopesSupported(strings(&["x", "y", "bad\"scope"]))),
                step_up(&["x", "y"]),
            ),
            (
                Out(Outcome::SignInFailed),
                Some(give_up(GiveUpReason::StepUpFailed, &["x", "y"])),
            ),
            (New(false), None),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="z""#,
                    1,
                    true,
                    &["x"],
                    1,
                ),
                Some(Decision::Reload),
            ),
            (
                Out(Outcome::NothingNew),
                Some(give_up(GiveUpReason::StepUpFailed, &["x", "y"])),
            ),
        ],
    );
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope""#,
                    1,
                    true,
                    &["x", "offline_access"],
                    1,
                ),
                Some(Decision::FetchScopes {
                    resource_metadata: None,
                }),
            ),
            (
                Out(Outcome::ScopesSupported(strings(&[
                    "offline_access",
                    "openid",
                ]))),
                Some(give_up(GiveUpReason::NoScopeLacking, &[])),
            ),
            // The scope named is held already.
            (New(false), None),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="x""#,
                    1,
                    true,
                    &["x"],
                    1,
                ),
                Some(give_up(GiveUpReason::NoScopeLacking, &[])),
            ),
        ],
    );
    // Other 403s, and any on a background exchange, end the exchange at once.
    run(
        &mut AuthRecovery::new(vec![], vec![]),
        vec![
            (
                Refused(403, INVALID, 1, true, &[], 1),
                Some(give_up(
                    GiveUpReason::Forbidden {
                        error: Some("invalid_token".to_owned()),
                    },
                    &[],
                )),
            ),
            (New(false), None),
            (
                Refused(403, "", 1, true, &[], 1),
                Some(give_up(GiveUpReason::Forbidden { error: None }, &[])),
            ),
            (New(true), None),
            (
                Refused(
                    403,
                    r#"Bearer error="insufficient_scope", scope="q""#,
                    1,
                    true,
                    &[],
                    1,
                ),
                Some(give_up(
                    GiveUpReason::Forbidden {
                        error: Some("insufficient_scope".to_owned()),
                    },
                    &[],
                )),
            ),
        ],
    );
}

#[test]
fn hints_name_the_scopes() {
    let command = "context-harness mcp auth https://mcp.ex/mcp";
    let hint = |reason: GiveUpReason, scopes: &[&str]| {
        GiveUp {
            reason,
            scopes: strings(scopes),
        }
        .hint(command)
    };
    assert_eq!(
        hint(GiveUpReason::StillInsufficient, &["a", "b"]),
        format!("{command} --scope a --scope b")
    );
    assert_eq!(
        hint(GiveUpReason::NoScopeLacking, &[]),
        format!("{command} --scope <scope>")
    );
    assert_eq!(
        hint(GiveUpReason::StepUpFailed, &["x"]),
        format!("{command} --scope x")
    );
    assert_eq!(hint(GiveUpReason::Unauthorized, &["x"]), command);
    assert_eq!(hint(GiveUpReason::SignInFailed, &[]), command);
}
