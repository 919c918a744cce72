//! Build script: the Linux binary is a position-independent executable (the toolchain's default), so
//! its code is address-randomised like everything else in the process. Where the linker and the C
//! library support it, relative relocations are packed (`-z pack-relative-relocs`, DT_RELR), which
//! makes the loader's start-up work for a PIE close to that of a non-PIE binary.
//!
//! The probe lives in `build/relr.rs`; `xtask/build.rs` includes it too, so the bench's floor program
//! is linked the same way and the bench compares like with like.

include!("build/relr.rs");

fn main() {
    if pack_relative_relocs_works() {
        println!("cargo:rustc-link-arg-bins={PACK_RELATIVE_RELOCS}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/relr.rs");
    println!("cargo:rerun-if-env-changed=CC");
}
