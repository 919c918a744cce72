//! Crash safety (SIGKILL during writes) and cross-process concurrency under the provider lock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use context_harness_storage::{FileStore, TokenStore};

use crate::util::{
    COUNTER_CYCLES, CRASH_PAD, TestResult, child_command, name, number_of, numbered, wait_for,
    watch_for_line,
};

/// How many times the writer is killed.
const KILLS: u32 = 220;

/// A tiny xorshift generator: random kill moments without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_during_writes_leaves_old_or_new_tokens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = FileStore::new(dir.path().to_path_buf());
    let github = name("github");
    store.save(&github, &numbered(0, CRASH_PAD)?)?;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut last = 0;
    for kill in 0..KILLS {
        let mut child = child_command("crash-writer", dir.path())?.spawn()?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let ready = wait_for(
            &watch_for_line(stdout, "READY"),
            "READY",
            Duration::from_secs(20),
        );
        if let Err(err) = ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err);
        }
        // Kill at a random moment within the next few writes (0–4 ms, in 50 µs steps).
        std::thread::sleep(Duration::from_micros(rng.next() % 80 * 50));
        child.kill()?; // SIGKILL on Unix
        let status = child.wait()?;
        assert!(!status.success(), "writer exited on its own: {status}");

        let tokens = store
            .load(&github)
            .map_err(|e| format!("kill {kill} (seed {seed}): {e}"))?
            .ok_or(format!("kill {kill}: token file vanished"))?;
        let n =
            number_of(&tokens, CRASH_PAD).map_err(|e| format!("kill {kill} (seed {seed}): {e}"))?;
        // The writer finished at least one save before READY, and never goes backwards.
        assert!(
            n > last,
            "kill {kill} (seed {seed}): token went from {last} to {n}"
        );
        last = n;
    }
    // One clean save removes the temp files the killed writers left behind.
    store.save(&github, &numbered(last + 1, CRASH_PAD)?)?;
    let leftovers = std::fs::read_dir(dir.path())?.count();
    assert_eq!(leftovers, 1, "stale temporary files were not cleaned up");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn eight_processes_increment_under_the_lock_without_losing_updates() -> TestResult {
    const PROCESSES: u64 = 8;
    let dir = tempfile::tempdir()?;
    let store = FileStore::new(dir.path().to_path_buf());
    let shared = name("shared");
    store.save(&shared, &numbered(0, 16)?)?;

    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let mut child = child_command("counter", dir.path())?.spawn()?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        children.push((child, watch_for_line(stdout, "DONE")));
    }
    let mut failures = Vec::new();
    for (mut child, done) in children {
        let done = wait_for(&done, "DONE", Duration::from_secs(120));
        if done.is_err() {
            let _ = child.kill();
        }
        let status = child.wait()?;
        if done.is_err() || !status.success() {
            failures.push(format!("{status}: {done:?}"));
        }
    }
    assert!(failures.is_empty(), "children failed: {failures:?}");
    let last = store.load(&shared)?.ok_or("tokens vanished")?;
    assert_eq!(number_of(&last, 16)?, PROCESSES * COUNTER_CYCLES);
    Ok(())
}
