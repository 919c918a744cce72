//! Integration tests for the storage crate: one test binary (see `util` for the child-process roles).
// The tests use Unix permissions, signals and `/proc`; the library itself builds everywhere.
#![cfg(unix)]

mod accounts;
mod crash;
mod file;
#[cfg(feature = "keyring")]
mod keyring;
mod strict;
mod util;

/// Entry point of child processes: the parent re-runs this test binary with `--exact child_process`
/// and `CH_STORAGE_TEST_CHILD=<role>`. In a normal run the variable is unset and this returns at once.
#[test]
fn child_process() {
    util::run_child_role();
}
