// Shared by `crates/cli/build.rs` and `xtask/build.rs` (through `include!`), so the CLI and the
// bench's floor program are linked the same way.

/// The linker argument that packs relative relocations (DT_RELR) when the toolchain supports it.
const PACK_RELATIVE_RELOCS: &str = "-Wl,-z,pack-relative-relocs";

/// Whether a test program linked with `-z pack-relative-relocs` builds and runs here: the linker
/// must know the option (binutils 2.38+, lld 15+) and the C library's loader must read DT_RELR
/// (glibc 2.36+). Only for Linux GNU targets built on the machine they run on.
fn pack_relative_relocs_works() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return false;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(std::path::PathBuf::from) else {
        return false;
    };
    let source = out.join("relr_probe.c");
    let program = out.join("relr_probe");
    if std::fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let linked = std::process::Command::new(cc)
        .args(["-pie", "-fPIE", PACK_RELATIVE_RELOCS, "-o"])
        .arg(&program)
        .arg(&source)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    linked
        && std::process::Command::new(&program)
            .status()
            .is_ok_and(|s| s.success())
}
