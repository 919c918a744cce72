//! End-to-end tests of the `context-harness` binary.
