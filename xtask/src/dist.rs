//! `cargo xtask dist`: a release build of `context-harness` (and `git-credential-context-harness`), stripped, packed as
//! `target/dist/context-harness-<version>-<target>.tar.gz` with a `SHA256SUMS` file `sha256sum -c` accepts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::util::{self, Context};

/// The CLI package and its binary.
const CLI_PACKAGE: &str = "context-harness-cli";
const BINARY: &str = "context-harness";
/// The git credential helper's name (`credential.helper = "context-harness git-credential"` makes git
/// run it), shipped beside [`BINARY`], which it runs.
const GIT_HELPER: &str = "git-credential-context-harness";

/// Files shipped next to the binary.
const DOCS: &[&str] = &["README.md", "CHANGELOG.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// Options of `cargo xtask dist`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DistArgs {
    /// Cargo profile to build with; `release` (stripped, LTO) is what ships. The tests use `dev` to reuse
    /// a debug build.
    #[arg(long, default_value = "release")]
    pub(crate) profile: String,
}

impl Default for DistArgs {
    fn default() -> Self {
        Self {
            profile: "release".to_owned(),
        }
    }
}

/// What `dist` produced.
#[derive(Debug)]
pub(crate) struct Artifacts {
    /// The `.tar.gz` archive.
    pub(crate) archive: PathBuf,
    /// The `SHA256SUMS` file next to it.
    pub(crate) sums: PathBuf,
}

/// ELF `e_type` of a position-independent executable (or shared object).
pub(crate) const ET_DYN: u16 = 3;

/// The ELF `e_type` field of the file at `path` (the 2 bytes at offset 16, in the byte order named
/// by `EI_DATA`), or `None` when it is not an ELF file.
pub(crate) fn elf_type(path: &Path) -> Result<Option<u16>> {
    use std::io::Read as _;
    let mut header = [0u8; 18];
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if file.read_exact(&mut header).is_err() {
        return Ok(None);
    }
    Ok(elf_type_of(&header))
}

/// [`elf_type`] of a header already read.
fn elf_type_of(header: &[u8; 18]) -> Option<u16> {
    if header[..4] != *b"\x7fELF" {
        return None;
    }
    let bytes = [header[16], header[17]];
    match header[5] {
        1 => Some(u16::from_le_bytes(bytes)),
        2 => Some(u16::from_be_bytes(bytes)),
        _ => None,
    }
}

/// Builds, packs and checksums the CLI.
pub(crate) fn run(ctx: &Context, args: &DistArgs) -> Result<Artifacts> {
    let version = util::workspace_version(&ctx.root)?;
    let target = host_triple()?;
    let name = format!("{BINARY}-{version}-{target}");

    util::run(ctx.cargo().args([
        "build",
        "--locked",
        "--profile",
        &args.profile,
        "-p",
        CLI_PACKAGE,
    ]))?;
    let profile_dir = if args.profile == "dev" {
        "debug"
    } else {
        args.profile.as_str()
    };
    let built = ctx.target_dir().join(profile_dir).join(BINARY);
    if !built.is_file() {
        bail!("cargo build did not produce {}", built.display());
    }
    // The shipped binary must be a position-independent executable (ASLR for its code).
    if cfg!(target_os = "linux") && elf_type(&built)? != Some(ET_DYN) {
        bail!(
            "{} is not a position-independent executable (ELF type is not ET_DYN)",
            built.display()
        );
    }

    let dist = ctx.target_dir().join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("cannot clean {}", dist.display()))?;
    }
    let stage = dist.join(&name);
    fs::create_dir_all(&stage).with_context(|| format!("cannot create {}", stage.display()))?;
    let shipped = stage.join(BINARY);
    fs::copy(&built, &shipped).with_context(|| format!("cannot copy {}", built.display()))?;
    strip(&shipped, &args.profile)?;
    let helper = built.with_file_name(GIT_HELPER);
    let shipped_helper = stage.join(GIT_HELPER);
    fs::copy(&helper, &shipped_helper)
        .with_context(|| format!("cannot copy {}", helper.display()))?;
    strip(&shipped_helper, &args.profile)?;
    for doc in DOCS {
        let from = ctx.root.join(doc);
        if from.exists() {
            fs::copy(&from, stage.join(doc)).with_context(|| format!("cannot copy {doc}"))?;
        }
    }

    let archive_name = format!("{name}.tar.gz");
    // GNU tar; fixed owner and order so the archive does not depend on who built it.
    util::run(Command::new("tar").current_dir(&dist).args([
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-czf",
        &archive_name,
        &name,
    ]))?;
    let archive = dist.join(&archive_name);
    let sums = dist.join("SHA256SUMS");
    let digest = sha256_file(&archive)?;
    util::write(&sums, format!("{digest}  {archive_name}\n"))?;
    Ok(Artifacts { archive, sums })
}

/// The release profile strips at link time (`strip = true` in the root manifest). Other profiles are only
/// used by tests; strip those with binutils' `strip` when it exists.
fn strip(binary: &Path, profile: &str) -> Result<()> {
    if profile == "release" {
        return Ok(());
    }
    if util::which("strip").is_some() {
        util::run(Command::new("strip").arg(binary))?;
    } else {
        println!("note: no `strip` on PATH; the {profile} binary ships unstripped");
    }
    Ok(())
}

/// The host target triple from `rustc -vV`.
pub(crate) fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let info = util::output(Command::new(rustc).arg("-vV"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .context("`rustc -vV` printed no host line")
}

/// Lower-case hex SHA-256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_the_standard_vector() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn elf_type_reads_the_header() -> Result<()> {
        let mut header = [0u8; 18];
        header[..4].copy_from_slice(b"\x7fELF");
        header[5] = 1;
        header[16] = 3;
        assert_eq!(elf_type_of(&header), Some(ET_DYN));
        header[16] = 2; // ET_EXEC: a non-PIE executable
        assert_eq!(elf_type_of(&header), Some(2));
        header[5] = 2;
        header[17] = 3;
        assert_eq!(elf_type_of(&header), Some(0x0203));
        header[0] = b'M';
        assert_eq!(elf_type_of(&header), None);
        // The test binary itself, built by the same toolchain, is PIE on Linux.
        if cfg!(target_os = "linux") {
            let me = std::env::current_exe()?;
            assert_eq!(elf_type(&me)?, Some(ET_DYN));
        }
        Ok(())
    }

    #[test]
    fn host_triple_is_a_triple() {
        let triple = host_triple().unwrap_or_default();
        assert!(triple.split('-').count() >= 3, "{triple}");
    }

    /// A real `dist`, with the dev profile and a target directory of its own (a release build of the whole
    /// graph with LTO is too slow for the test suite; the release profile only changes optimisation and
    /// strips at link time, which the dev run replaces with binutils' `strip`).
    #[test]
    fn dist_archive_verifies_with_sha256sum() -> Result<()> {
        let _shared = Context::shared_target_guard();
        let ctx = Context::for_tests(util::project_root());
        let artifacts = run(
            &ctx,
            &DistArgs {
                profile: "dev".to_owned(),
            },
        )?;
        let dist = artifacts.sums.parent().context("SHA256SUMS has a parent")?;
        util::run(
            Command::new("sha256sum")
                .current_dir(dist)
                .args(["-c", "SHA256SUMS"]),
        )?;
        let listing = util::output(Command::new("tar").arg("-tzf").arg(&artifacts.archive))?;
        let version = util::workspace_version(&ctx.root)?;
        let expected = format!("{BINARY}-{version}-{}/{BINARY}", host_triple()?);
        assert!(
            listing.lines().any(|l| l == expected),
            "{expected} not in:\n{listing}"
        );
        let helper = format!("{BINARY}-{version}-{}/{GIT_HELPER}", host_triple()?);
        assert!(
            listing.lines().any(|l| l == helper),
            "{helper} not in:\n{listing}"
        );
        assert!(
            listing.lines().any(|l| l.ends_with("/LICENSE-MIT")),
            "{listing}"
        );
        Ok(())
    }
}
