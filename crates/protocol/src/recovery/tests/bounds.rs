//! The bounds of [`AuthRecovery`] under arbitrary server answers and action outcomes (proptest).

use proptest::prelude::*;

use super::super::*;
use super::strings;

/// What a hostile server answers to one request.
#[derive(Debug, Clone)]
enum Answer {
    Accepted,
    Unauthorized(Vec<String>),
    InsufficientScope(Vec<String>),
    Forbidden,
}

fn scope_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z]{1,3}|offline_access", 0..4)
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        1 => Just(Answer::Accepted),
        3 => scope_list().prop_map(Answer::Unauthorized),
        3 => scope_list().prop_map(Answer::InsufficientScope),
        1 => Just(Answer::Forbidden),
    ]
}

/// What the client's own actions come to: `true` succeeds (or finds a token).
#[derive(Debug, Clone)]
struct World {
    answers: Vec<Answer>,
    successes: Vec<bool>,
    transient: Vec<bool>,
    supported: Vec<Vec<String>>,
    /// Another exchange renews the token between sending and the refusal.
    races: Vec<bool>,
    background: Vec<bool>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(answer(), 1..200),
        prop::collection::vec(any::<bool>(), 1..64),
        prop::collection::vec(any::<bool>(), 1..16),
        prop::collection::vec(scope_list(), 1..8),
        prop::collection::vec(prop::bool::weighted(0.1), 1..64),
        prop::collection::vec(prop::bool::weighted(0.2), 1..16),
    )
        .prop_map(
            |(answers, successes, transient, supported, races, background)| World {
                answers,
                successes,
                transient,
                supported,
                races,
                background,
            },
        )
}

fn pick<T: Clone>(list: &[T], i: &mut usize) -> T {
    let item = list[*i % list.len()].clone();
    *i = i.wrapping_add(1);
    item
}

proptest! {
    /// Whatever a server answers and whatever the client's actions come to: every exchange ends
    /// within a bounded number of steps, does each action at most once, and across exchanges there
    /// is at most one step-up per token lineage, at most one refresh per generation, and at most
    /// one sign-in caused by a refused just-refreshed token per lineage.
    #[test]
    fn bounds_hold_whatever_the_server_answers(world in world(), exchanges in 1usize..12) {
        let mut recovery = AuthRecovery::new(vec![], strings(&["base"]));
        let (mut generation, mut bearer) = (1u64, true);
        let mut granted: Vec<String> = strings(&["base"]);
        let (mut a, mut o, mut t, mut s, mut r, mut b) = (0, 0, 0, 0, 0, 0);
        let mut refreshed_generations: Vec<u64> = Vec::new();
        let (mut step_ups_in_lineage, mut rs_sign_ins_in_lineage) = (0u32, 0u32);
        for _ in 0..exchanges {
            let background = pick(&world.background, &mut b);
            let mut exchange = if background { Exchange::background() } else { Exchange::request() };
            let mut counts = [0u32; 6];
            let mut refreshed_here = false;
            let mut steps = 0;
            let mut decision = None;
            loop {
                steps += 1;
                prop_assert!(steps < 40, "an exchange that does not end");
                let next = match decision.take() {
                    None | Some(Decision::Retry) => {
                        let sent = Sent { generation, bearer, granted: granted.clone() };
                        if pick(&world.races, &mut r) {
                            generation += 1;
                            bearer = true;
                        }
                        let refused = match pick(&world.answers, &mut a) {
                            Answer::Accepted => break,
                            Answer::Unauthorized(scopes) => Refusal { scopes, ..Refusal::new(RefusalStatus::Unauthorized) },
                            Answer::InsufficientScope(scopes) => Refusal {
                                error: Some("insufficient_scope".to_owned()),
                                scopes: capped(scopes),
                                ..Refusal::new(RefusalStatus::Forbidden)
                            },
                            Answer::Forbidden => Refusal::new(RefusalStatus::Forbidden),
                        };
                        let named = refused.scopes.clone();
                        let next = recovery.on_refusal(&mut exchange, &refused, &sent, generation);
                        if let Decision::Refresh = next {
                            prop_assert!(!refreshed_generations.contains(&sent.generation), "two refreshes of one generation");
                            refreshed_generations.push(sent.generation);
                        }
                        if let Decision::StepUp { scopes } = &next {
                            for scope in &named {
                                prop_assert!(scopes.contains(scope), "the named scope is asked for");
                            }
                        }
                        if let Decision::FetchScopes { .. } = next {
                            prop_assert!(named.is_empty(), "scopes_supported only when none is named");
                        }
                        next
                    }
                    Some(Decision::Refresh) => {
                        counts[0] += 1;
                        if pick(&world.successes, &mut o) {
                            generation += 1;
                            refreshed_here = true;
                            recovery.on_outcome(&mut exchange, Outcome::Refreshed)
                        } else {
                            let transient = pick(&world.transient, &mut t);
                            recovery.on_outcome(&mut exchange, Outcome::RefreshFailed { transient })
                        }
                    }
                    Some(Decision::Reload) => {
                        counts[1] += 1;
                        if pick(&world.successes, &mut o) && pick(&world.successes, &mut o) {
                            generation += 1;
                            bearer = true;
                            step_ups_in_lineage = 0;
                            rs_sign_ins_in_lineage = 0;
                            recovery.on_outcome(&mut exchange, Outcome::TokenObserved)
                        } else {
                            recovery.on_outcome(&mut exchange, Outcome::NothingNew)
                        }
                    }
                    Some(Decision::SignIn { .. }) => {
                        counts[2] += 1;
                        prop_assert!(!background, "a background exchange signed in");
                        if refreshed_here {
                            rs_sign_ins_in_lineage += 1;
                            prop_assert!(rs_sign_ins_in_lineage <= 1, "a second sign-in after a refused refresh");
                        }
                        if pick(&world.successes, &mut o) {
                            generation += 1;
                            bearer = true;
                            recovery.on_outcome(&mut exchange, Outcome::SignedIn)
                        } else {
                            recovery.on_outcome(&mut exchange, Outcome::SignInFailed)
                        }
                    }
                    Some(Decision::StepUp { scopes }) => {
                        counts[3] += 1;
                        step_ups_in_lineage += 1;
                        prop_assert!(!background, "a background exchange stepped up");
                        prop_assert!(step_ups_in_lineage <= 1, "a second step-up in one lineage");
                        prop_assert!(union([scopes.clone()]) == scopes, "a scope asked twice");
                        if pick(&world.successes, &mut o) {
                            generation += 1;
                            granted = scopes;
                            recovery.on_outcome(&mut exchange, Outcome::SignedIn)
                        } else {
                            recovery.on_outcome(&mut exchange, Outcome::SignInFailed)
                        }
                    }
                    Some(Decision::FetchScopes { .. }) => {
                        counts[4] += 1;
                        let listed = pick(&world.supported, &mut s);
                        recovery.on_outcome(&mut exchange, Outcome::ScopesSupported(listed))
                    }
                    Some(Decision::GiveUp(_)) => break,
                };
                if let Decision::Retry = next {
                    counts[5] += 1;
                }
                decision = Some(next);
            }
            for (what, count) in ["refresh", "reload", "sign-in", "step-up", "fetch"].iter().zip(counts) {
                prop_assert!(count <= 1, "{what} {count} times in one exchange");
            }
            prop_assert!(counts[5] <= MAX_RETRIES);
        }
    }
}
