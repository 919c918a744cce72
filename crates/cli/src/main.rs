//! The `context-harness` command-line program.

fn main() {}
