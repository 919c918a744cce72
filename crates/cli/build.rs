//! Build script: link the Linux binary as a non-PIE executable.
//!
//! `mcp token` sits on hot paths (shell prompts, credential helpers), where process start-up dominates.
//! A position-independent executable makes the dynamic loader apply one relocation per pointer in the
//! binary (~10k here) at every start; linking without PIE resolves them at link time instead. ASLR of
//! the stack, heap and shared libraries is unaffected.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
