//! Build script: links the bench's floor program (`examples/token-floor.rs`) exactly like the CLI
//! (`crates/cli/build.rs`): PIE, with packed relative relocations where the toolchain supports them.

include!("../crates/cli/build/relr.rs");

fn main() {
    if pack_relative_relocs_works() {
        println!("cargo:rustc-link-arg-examples={PACK_RELATIVE_RELOCS}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../crates/cli/build/relr.rs");
    println!("cargo:rerun-if-env-changed=CC");
}
