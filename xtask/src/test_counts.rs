//! The test count `cargo xtask test` ends with: passed, failed and skipped tests, summed over the summary lines
//! of every test run in a step's output — libtest's `test result:` line (each test binary and each crate's
//! doc tests under `cargo test`) and cargo-nextest's `Summary` line.

use std::fmt;

/// Tests counted over one or more runs. Ignored tests count as skipped; a test that returns early because a
/// component is missing passes as far as the runner knows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCounts {
    /// Tests that passed.
    pub(crate) passed: u64,
    /// Tests that failed (nextest: also those that timed out).
    pub(crate) failed: u64,
    /// Tests not run: `#[ignore]`d (libtest) or skipped (nextest).
    pub(crate) skipped: u64,
    /// Summary lines found (test binaries and doc-test runs; 0: no run finished).
    pub(crate) runs: u64,
}

impl TestCounts {
    /// Sums every summary line of `output`.
    pub(crate) fn parse(output: &str) -> Self {
        let mut counts = Self::default();
        for line in output.lines() {
            counts.add_line(line);
        }
        counts
    }

    /// Adds the counts of one line if it is a summary line; returns whether it was.
    fn add_line(&mut self, line: &str) -> bool {
        let line = line.trim();
        // libtest: `test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in …`
        if let Some(rest) = line.strip_prefix("test result:") {
            return self.add_parts(rest.split(';'));
        }
        // nextest: `Summary [   1.234s] 620 tests run: 617 passed (2 slow), 1 failed, 2 skipped`
        if line.starts_with("Summary [")
            && let Some((_, rest)) = line
                .split_once(" tests run:")
                .or_else(|| line.split_once(" test run:"))
        {
            return self.add_parts(rest.split(','));
        }
        false
    }

    /// Adds each `N word` pair found in `parts` (`passed`, `failed`, `ignored`, `skipped`, `timed out`).
    fn add_parts<'a>(&mut self, parts: impl Iterator<Item = &'a str>) -> bool {
        for part in parts {
            let words: Vec<&str> = part.split_whitespace().collect();
            for pair in words.windows(2) {
                let (Some(&number), Some(&word)) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                let Ok(n) = number.parse::<u64>() else {
                    continue;
                };
                let slot = match word.trim_end_matches(['.', ',']) {
                    "passed" => &mut self.passed,
                    "failed" | "timed" => &mut self.failed,
                    "ignored" | "skipped" => &mut self.skipped,
                    _ => continue,
                };
                *slot = slot.saturating_add(n);
                break;
            }
        }
        self.runs = self.runs.saturating_add(1);
        true
    }
}

impl fmt::Display for TestCounts {
    /// `N passed, N failed, N skipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of `cargo test --workspace --no-fail-fast` output: two binaries (one failing), doc tests, and
    /// lines that only look like counts.
    const CARGO_TEST: &str = "\
     Running unittests src/lib.rs (target/debug/deps/pkce-0123)

running 3 tests
test a ... ok
test b ... ignored
test c ... ok

test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/it/main.rs (target/debug/deps/it-4567)

running 4 tests
test d ... FAILED
test e ... ok
test f ... ok
test g ... FAILED

failures:

---- d stdout ----
expected 3 passed; got 2 failed

failures:
    d
    g

test result: FAILED. 2 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.20s

error: test failed, to rerun pass `-p it --test it`
   Doc-tests pkce

running 2 tests
test src/lib.rs - (line 5) ... ok
test src/lib.rs - verify (line 40) ... ignored

test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.30s

error: 1 target failed:
    `-p it --test it`
";

    #[test]
    fn cargo_test_summaries_are_summed_across_binaries_and_doc_tests() {
        let counts = TestCounts::parse(CARGO_TEST);
        assert_eq!(
            counts,
            TestCounts {
                passed: 5,
                failed: 2,
                skipped: 2,
                runs: 3
            }
        );
        assert_eq!(counts.to_string(), "5 passed, 2 failed, 2 skipped");
    }

    #[test]
    fn nextest_summaries_are_read() {
        let mut counts = TestCounts::default();
        assert!(counts.add_line(
            "     Summary [  12.345s] 620 tests run: 616 passed (2 slow), 3 failed, 1 timed out, 4 skipped"
        ));
        assert_eq!((counts.passed, counts.failed, counts.skipped), (616, 4, 4));
        assert!(counts.add_line("     Summary [   0.010s] 1 test run: 1 passed, 0 skipped"));
        assert_eq!((counts.passed, counts.failed, counts.skipped), (617, 4, 4));
        assert_eq!(counts.runs, 2);
    }

    #[test]
    fn other_lines_count_nothing() {
        for line in [
            "running 3 tests",
            "test result_of_thing ... ok",
            "expected 3 passed; got 2 failed",
            "        Starting 620 tests across 40 binaries (3 skipped)",
            "Summary of 3 passed",
        ] {
            let mut counts = TestCounts::default();
            assert!(!counts.add_line(line), "{line}");
            assert_eq!(counts, TestCounts::default(), "{line}");
        }
    }

    #[test]
    fn colours_and_huge_numbers_do_not_break_the_sum() {
        let mut counts = TestCounts::default();
        assert!(counts.add_line(
            "test result: \u{1b}[32mok\u{1b}[0m. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
        ));
        assert!(counts.add_line(&format!("test result: ok. {} passed; 0 failed", u64::MAX)));
        assert_eq!(counts.passed, u64::MAX);
    }
}
