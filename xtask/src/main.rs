//! Maintainer automation for context-harness auth (`cargo xtask <task>`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

fn main() -> anyhow::Result<()> {
    Ok(())
}
