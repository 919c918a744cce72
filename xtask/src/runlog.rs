//! The quiet step runner of `cargo xtask test`: one line per step on the terminal (name, `ok`/`FAILED`,
//! time), every step's full output in one log file, and on a failure the part of that step's output that
//! shows it (each failing test binary's `failures:` section, then the last lines).
//!
//! While a [`Runner`] is active, `util::say` and the commands `util::run`/`util::output`/`util::attach`
//! start write into the log. With `verbose`, a follower thread copies the log to stdout as it grows, so the
//! terminal shows everything (stderr merged into stdout) and the log is still kept.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};

use crate::util;

/// Lines of a failed step's output printed after its `failures:` sections.
const TAIL_LINES: usize = 80;
/// At most this many lines of `failures:` sections are printed (the log has all of them).
const SECTIONS_BUDGET: usize = 300;
/// Width of the step-name column.
const NAME_WIDTH: usize = 40;

/// A step that ran: its name, time, outcome and where its output is in the log (byte offsets).
#[derive(Debug)]
struct Done {
    name: String,
    elapsed: Duration,
    ok: bool,
    output: (u64, u64),
}

/// The runner: the log file, the steps run so far and the follower (verbose only).
#[derive(Debug)]
pub(crate) struct Runner {
    log: PathBuf,
    verbose: bool,
    keep_going: bool,
    follower: Option<Follower>,
    done: Vec<Done>,
    started: Instant,
}

impl Runner {
    /// Creates (or empties) the log at `log`, makes it the destination of `util::say` and of the commands
    /// started through `util`, and says where it is.
    pub(crate) fn start(log: &Path, verbose: bool, keep_going: bool) -> Result<Self> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        util::log_to(Some(file));
        let follower = verbose.then(|| Follower::start(log.to_path_buf()));
        let runner = Self {
            log: log.to_path_buf(),
            verbose,
            keep_going,
            follower,
            done: Vec::new(),
            started: Instant::now(),
        };
        let how = if verbose {
            "streamed here too"
        } else {
            "-v or XTASK_VERBOSE=1 streams it"
        };
        runner.note(&format!(
            "cargo xtask test: full output in {} ({how})",
            display_path(&runner.log)
        ));
        Ok(runner)
    }

    /// A line for the terminal and the log (verbose: the follower copies it from the log).
    pub(crate) fn note(&self, line: &str) {
        util::say(line);
        if !self.verbose {
            println!("{line}");
        }
    }

    /// The log's current length (where the next output starts).
    fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The log's bytes `from..to`, as text (lossy).
    fn read_log(&self, (from, to): (u64, u64)) -> String {
        let mut bytes = Vec::new();
        let read = File::open(&self.log).and_then(|mut f| {
            f.seek(SeekFrom::Start(from))?;
            f.take(to.saturating_sub(from)).read_to_end(&mut bytes)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => format!("(cannot read {}: {err})", self.log.display()),
        }
    }

    /// The output of the last step called `name`, if it ran.
    pub(crate) fn output_of(&self, name: &str) -> Option<String> {
        self.done
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| self.read_log(d.output))
    }

    /// Runs one step: its name on the terminal, its output into the log, then `ok`/`FAILED` and its time. On
    /// a failure, prints the part of its output that shows it and the error. Then, unless `keep_going`, fails
    /// naming the step.
    pub(crate) fn step(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        let from = self.log_len();
        util::say(&format!("\n==> {name}"));
        if !self.verbose {
            print!("  {name:<NAME_WIDTH$} ");
            drop(std::io::stdout().flush());
        }
        let start = Instant::now();
        let result = f();
        let elapsed = start.elapsed();
        let time = util::fmt_duration(elapsed);
        let to = self.log_len();
        match &result {
            Ok(()) => util::say(&format!("<== {name}: ok ({time})")),
            Err(err) => util::say(&format!("<== {name}: FAILED after {time}: {err:#}")),
        }
        self.done.push(Done {
            name: name.to_owned(),
            elapsed,
            ok: result.is_ok(),
            output: (from, to),
        });
        if !self.verbose {
            let mark = if result.is_ok() { "ok" } else { "FAILED" };
            println!("{mark:<6} {time:>7}");
        }
        let Err(err) = result else {
            return Ok(());
        };
        if !self.verbose {
            let output = self.read_log((from, to));
            println!(
                "---- {name}: what failed (full output: {}) ----",
                display_path(&self.log)
            );
            for line in excerpt(&output, TAIL_LINES, SECTIONS_BUDGET) {
                println!("{line}");
            }
            println!("---- {name}: {err:#}");
        }
        if self.keep_going {
            Ok(())
        } else {
            Err(err.context(format!("step `{name}` failed")))
        }
    }

    /// Ends the run: stops the follower, gives the terminal back its output, prints the outcome with the total
    /// time and the log's path, then `tests` as the last line. `result` is the run's own outcome (an error
    /// from a step or before one). Fails with a [`Reported`] error when a step failed or `result` is an
    /// error.
    pub(crate) fn finish(mut self, result: Result<()>, tests: &str) -> Result<()> {
        let failed: Vec<&str> = self
            .done
            .iter()
            .filter(|d| !d.ok)
            .map(|d| d.name.as_str())
            .collect();
        let total = util::fmt_duration(self.started.elapsed());
        let log = display_path(&self.log);
        let outcome = match (&result, failed.is_empty()) {
            (Ok(()), true) => format!("all checks passed in {total}; full output: {log}"),
            (Ok(()), false) => {
                format!("FAILED: {}; {total}; full output: {log}", failed.join(", "))
            }
            (Err(err), _) => {
                // A step's error was printed with its output; one from outside a step was not.
                let step_error = self.done.last().is_some_and(|d| !d.ok);
                if !step_error {
                    self.note(&format!("error: {err:#}"));
                }
                let what = if failed.is_empty() {
                    "cargo xtask test".to_owned()
                } else {
                    failed.join(", ")
                };
                format!("FAILED: {what}; {total}; full output: {log}")
            }
        };
        util::say(&format!(
            "\nstep timings:\n{}\n{outcome}\n{tests}",
            self.timings()
        ));
        util::log_to(None);
        if let Some(follower) = self.follower.take() {
            follower.stop();
        } else {
            println!("{outcome}\n{tests}");
        }
        if result.is_err() || !failed.is_empty() {
            return Err(anyhow!(Reported));
        }
        Ok(())
    }

    /// The time each step took, one line each (for the log).
    fn timings(&self) -> String {
        self.done
            .iter()
            .map(|d| {
                let mark = if d.ok { "" } else { "  FAILED" };
                format!(
                    "  {:<NAME_WIDTH$} {:>8}{mark}\n",
                    d.name,
                    util::fmt_duration(d.elapsed)
                )
            })
            .collect()
    }
}

/// The error of a run whose failure is already on the terminal: `main` exits 1 without printing it again.
#[derive(Debug)]
pub(crate) struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cargo xtask test failed (see the lines above)")
    }
}

impl std::error::Error for Reported {}

/// `path` relative to the current directory when it is inside it (`target/xtask-test.log`), else as is.
fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// The lines of a failed step's output worth printing: each `failures:` section of a test binary, from the
/// line naming the binary (`Running …`, `Doc-tests …`) to its `test result:` line, up to `sections_budget`
/// lines in all, then the last `tail` lines. Left-out stretches are marked `[…]`.
pub(crate) fn excerpt(output: &str, tail: usize, sections_budget: usize) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let mut shown = vec![false; lines.len()];
    let mut budget = sections_budget;
    let mut header: Option<usize> = None;
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let trimmed = line.trim_start();
        if trimmed.starts_with("Running ") || trimmed.starts_with("Doc-tests ") {
            header = Some(index);
        }
        if *line == "failures:" && budget > 0 {
            let end = lines
                .iter()
                .skip(index)
                .position(|l| l.starts_with("test result:"))
                .map_or(lines.len(), |offset| {
                    index.saturating_add(offset).saturating_add(1)
                });
            let section_end = end.min(index.saturating_add(budget));
            budget = budget.saturating_sub(section_end.saturating_sub(index));
            if let Some(flag) = header.and_then(|h| shown.get_mut(h)) {
                *flag = true;
            }
            for flag in shown.get_mut(index..section_end).into_iter().flatten() {
                *flag = true;
            }
            index = end;
            continue;
        }
        index = index.saturating_add(1);
    }
    let tail_start = lines.len().saturating_sub(tail);
    for flag in shown.get_mut(tail_start..).into_iter().flatten() {
        *flag = true;
    }
    let mut out = Vec::new();
    let mut gap = false;
    for (line, show) in lines.iter().zip(&shown) {
        if *show {
            if gap {
                out.push("[…]".to_owned());
            }
            out.push((*line).to_owned());
            gap = false;
        } else {
            gap = true;
        }
    }
    out
}

/// Copies the log to stdout as it grows (verbose mode), from a thread, until stopped.
#[derive(Debug)]
struct Follower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Follower {
    /// How often the follower looks for new output when there was none.
    const POLL: Duration = Duration::from_millis(50);

    fn start(log: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let Ok(mut file) = File::open(&log) else {
                return;
            };
            let mut buf = vec![0_u8; 64 * 1024];
            let mut stdout = std::io::stdout();
            loop {
                // Read the flag before reading: output written before `stop` is still copied.
                let last_round = stopping.load(Ordering::Acquire);
                match file.read(&mut buf) {
                    Ok(0) if last_round => break,
                    Ok(0) => thread::sleep(Self::POLL),
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default();
                        if stdout
                            .write_all(chunk)
                            .and_then(|()| stdout.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Self { stop, thread }
    }

    /// Copies what is left, then ends the thread.
    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        drop(self.thread.join());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_failure_is_shown_whole() {
        let output = "$ cargo fmt --all --check\nDiff in src/lib.rs:\n-a\n+b\n";
        assert_eq!(excerpt(output, 80, 300), output.lines().collect::<Vec<_>>());
    }

    #[test]
    fn test_failures_are_shown_with_their_binary_then_the_tail() {
        let mut output =
            String::from("     Running tests/it.rs (target/debug/deps/it-1)\n\nrunning 2 tests\n");
        output.push_str(
            "test a ... FAILED\ntest b ... ok\n\nfailures:\n\n---- a stdout ----\nboom\n\n",
        );
        output
            .push_str("failures:\n    a\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored\n\n");
        for i in 0..200 {
            output.push_str(&format!("noise {i}\n"));
        }
        output.push_str("error: 1 target failed:\n    `-p x --test it`\n");
        let shown = excerpt(&output, 5, 300);
        let at = |needle: &str| shown.iter().position(|l| l.contains(needle));
        // The binary, the panic and the result line, in order, then a gap, then the tail.
        let (running, boom, result) = (
            at("Running tests/it.rs"),
            at("boom"),
            at("test result: FAILED"),
        );
        assert!(
            running.is_some() && running < boom && boom < result,
            "{shown:#?}"
        );
        assert!(at("test a ... FAILED").is_none(), "{shown:#?}");
        assert!(
            at("noise 100").is_none() && at("noise 197").is_some(),
            "{shown:#?}"
        );
        assert_eq!(
            shown.last().map(String::as_str),
            Some("    `-p x --test it`")
        );
        assert_eq!(
            shown.iter().filter(|l| *l == "[…]").count(),
            2,
            "{shown:#?}"
        );
    }

    #[test]
    fn failure_sections_stop_at_the_budget() {
        let mut output = String::new();
        for bin in 0..10 {
            output.push_str(&format!("     Running bin{bin}\nfailures:\n"));
            for i in 0..50 {
                output.push_str(&format!("line {bin}.{i}\n"));
            }
            output.push_str("test result: FAILED. 0 passed; 1 failed\n");
        }
        let shown = excerpt(&output, 0, 120);
        let section_lines = shown.iter().filter(|l| l.starts_with("line ")).count();
        // 52 lines each for bin0 and bin1 (`failures:`, 50 lines, `test result:`), then 16 of bin2's.
        assert_eq!(section_lines, 50 + 50 + 15);
        assert!(!shown.iter().any(|l| l.contains("bin9")), "{shown:#?}");
    }

    #[test]
    fn the_log_keeps_each_step_and_the_run_fails_on_a_failed_step() {
        let tmp = util::TempDir::new("xtask-runlog").ok();
        let dir = tmp.as_ref().map(util::TempDir::path);
        assert!(dir.is_some());
        let Some(dir) = dir else { return };
        let log = dir.join("sub").join("test.log");
        let mut runner = Runner::start(&log, false, true).ok();
        assert!(runner.is_some());
        let Some(mut runner) = runner.take() else {
            return;
        };
        let ok = runner.step("first", || {
            util::run(
                std::process::Command::new("sh").args(["-c", "echo out-one; echo err-one >&2"]),
            )
        });
        assert!(ok.is_ok());
        // keep_going: the failure is recorded, the run goes on.
        let failed = runner.step("second", || {
            util::run(std::process::Command::new("sh").args(["-c", "echo out-two; exit 3"]))
        });
        assert!(failed.is_ok());
        let first = runner.output_of("first").unwrap_or_default();
        assert!(
            first.contains("out-one") && first.contains("err-one"),
            "{first}"
        );
        assert!(!first.contains("out-two"), "{first}");
        let second = runner.output_of("second").unwrap_or_default();
        assert!(
            second.contains("out-two") && !second.contains("out-one"),
            "{second}"
        );
        let end = runner.finish(Ok(()), "0 passed, 0 failed, 0 skipped");
        assert!(end.is_err_and(|e| e.downcast_ref::<Reported>().is_some()));
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("<== second: FAILED")
                && text.ends_with("0 passed, 0 failed, 0 skipped\n"),
            "{text}"
        );
        // The terminal is the destination again.
        assert!(!util::log_is_set());
    }
}
