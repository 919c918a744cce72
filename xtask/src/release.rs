//! `cargo xtask release <version> [--dry-run]`: refuse a dirty tree or a version that is not greater; bump the
//! workspace version (the `#:version` line) and the internal `version = "=X"` requirements; move the CHANGELOG's
//! "Unreleased" section under the new version with today's date; refresh `Cargo.lock`; run the full check
//! (as `cargo xtask test`); `cargo package --workspace` (packages and verifies every publishable crate in
//! dependency order, using a local overlay for the unpublished internal crates); commit `Release v<version>`
//! and tag `v<version>`. Nothing is pushed. `--dry-run` prints every step and changes nothing.

use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use crate::check::{self, TestArgs};
use crate::util::{self, Context};

/// Options of `cargo xtask release`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// The new version (semver, greater than the current one), e.g. `0.2.0`.
    pub(crate) version: String,
    /// Print every step and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Skip the full check (`cargo xtask test`); `cargo package` still runs. For the xtask tests only.
    #[arg(long, hide = true)]
    pub(crate) skip_checks: bool,
    /// `cargo package --no-verify`: package every crate but do not compile the packaged copies. For the xtask
    /// tests only (verifying rebuilds the graph once per crate: 5+ minutes on 2 cores).
    #[arg(long, hide = true)]
    pub(crate) no_verify_package: bool,
}

/// A semantic version `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, ordered by semver precedence (build ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
    build: String,
}

impl Version {
    /// Parses a version; rejects leading zeros, empty identifiers and missing parts.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        let (rest, build) = s.split_once('+').unwrap_or((s, ""));
        let (core, pre) = rest
            .split_once('-')
            .map_or((rest, None), |(c, p)| (c, Some(p)));
        let nums: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = nums.as_slice() else {
            bail!("`{s}` is not a semantic version MAJOR.MINOR.PATCH");
        };
        let num = |n: &str| -> Result<u64> {
            if n.is_empty()
                || !n.bytes().all(|b| b.is_ascii_digit())
                || (n.len() > 1 && n.starts_with('0'))
            {
                bail!("`{s}`: `{n}` is not a valid version number");
            }
            n.parse()
                .with_context(|| format!("`{s}`: `{n}` is too large"))
        };
        let ident_ok =
            |i: &str| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let pre: Vec<String> = match pre {
            Some(p) => p.split('.').map(str::to_owned).collect(),
            None => Vec::new(),
        };
        if pre
            .iter()
            .any(|i| !ident_ok(i) || (is_numeric(i) && i.len() > 1 && i.starts_with('0')))
        {
            bail!("`{s}` has an invalid pre-release part");
        }
        if !build.is_empty() && !build.split('.').all(ident_ok) || s.ends_with('+') {
            bail!("`{s}` has an invalid build part");
        }
        Ok(Self {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
            pre,
            build: build.to_owned(),
        })
    }

    /// Semver precedence (§11): numbers, then a release outranks its pre-releases, then identifiers in order.
    pub(crate) fn precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (is_numeric(x), is_numeric(y)) {
            // Leading zeros are rejected, so length then text compares numerically without overflow.
            (true, true) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Rewrites the root manifest: the `#:version` line and every internal (`path = …`) dependency's
/// `version = "=OLD"`. Fails if the marked line is missing.
pub(crate) fn bump_manifest(manifest: &str, old: &str, new: &str) -> Result<String> {
    let mut marked = 0;
    let old_req = format!("version = \"={old}\"");
    let new_req = format!("version = \"={new}\"");
    let mut out = String::with_capacity(manifest.len() + 64);
    for line in manifest.split_inclusive('\n') {
        if line.contains("#:version") {
            marked += 1;
            let from = format!("\"{old}\"");
            if !line.contains(&from) {
                bail!(
                    "the `#:version` line does not hold {from}: `{}`",
                    line.trim_end()
                );
            }
            out.push_str(&line.replacen(&from, &format!("\"{new}\""), 1));
        } else if line.contains("path = ") && line.contains(&old_req) {
            out.push_str(&line.replacen(&old_req, &new_req, 1));
        } else {
            out.push_str(line);
        }
    }
    if marked != 1 {
        bail!("root Cargo.toml must have exactly one line marked `#:version` (found {marked})");
    }
    Ok(out)
}

/// Moves the body of `## Unreleased` under `## [<version>] - <date>` and leaves an empty Unreleased heading.
pub(crate) fn move_unreleased(changelog: &str, version: &str, date: &str) -> Result<String> {
    let is_unreleased = |l: &str| {
        let h = l.trim_end();
        h.eq_ignore_ascii_case("## unreleased") || h.eq_ignore_ascii_case("## [unreleased]")
    };
    let heading = format!("## [{version}] - {date}");
    if changelog
        .lines()
        .any(|l| l.trim_end().starts_with(&format!("## [{version}]")))
    {
        bail!("CHANGELOG.md already has a section for {version}");
    }
    let mut out = String::with_capacity(changelog.len() + 64);
    let mut found = false;
    for line in changelog.split_inclusive('\n') {
        if !found && is_unreleased(line) {
            found = true;
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push('\n');
            out.push_str(&heading);
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    if !found {
        bail!("CHANGELOG.md has no `## Unreleased` heading");
    }
    Ok(out)
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub(crate) fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Runs (or, under `--dry-run`, prints) a command.
fn step(dry_run: bool, cmd: &mut Command) -> Result<()> {
    if dry_run {
        println!("[dry-run] would run: {}", util::render(cmd));
        Ok(())
    } else {
        util::run(cmd)
    }
}

/// Prints the lines that differ between two texts (a small diff for the log).
fn show_changes(file: &str, before: &str, after: &str) {
    println!("--- {file}");
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_mid, new_mid) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    // Within the changed block, show line pairs only where they differ (the manifest keeps its line count).
    if old_mid.len() == new_mid.len() {
        for (a, b) in old_mid.iter().zip(new_mid) {
            if a != b {
                println!("-{a}\n+{b}");
            }
        }
    } else {
        old_mid.iter().for_each(|l| println!("-{l}"));
        new_mid.iter().for_each(|l| println!("+{l}"));
    }
}

/// The release.
pub(crate) fn run(ctx: &Context, args: &ReleaseArgs) -> Result<()> {
    let dry = args.dry_run;
    let new = Version::parse(&args.version)?;
    let tag = format!("v{new}");
    if dry {
        println!("[dry-run] release {tag}: printing every step, changing nothing");
    }

    println!("\n==> check the working tree is clean");
    let porcelain = util::output(ctx.git().args(["status", "--porcelain"]))?;
    if !porcelain.trim().is_empty() {
        bail!("the working tree is not clean; commit or stash first:\n{porcelain}");
    }
    let tag_exists = util::succeeds(ctx.git().args([
        "rev-parse",
        "-q",
        "--verify",
        &format!("refs/tags/{tag}"),
    ]));
    if tag_exists {
        bail!("tag {tag} already exists");
    }

    println!("\n==> compare versions");
    let current_text = util::workspace_version(&ctx.root)?;
    let current = Version::parse(&current_text)?;
    if new.precedence(&current) != Ordering::Greater {
        bail!("{new} is not greater than the current version {current}");
    }
    println!("{current} -> {new}");

    println!("\n==> bump versions in Cargo.toml");
    let manifest_path = ctx.root.join("Cargo.toml");
    let manifest = util::read(&manifest_path)?;
    let bumped = bump_manifest(&manifest, &current_text, &new.to_string())?;
    show_changes("Cargo.toml", &manifest, &bumped);

    println!("\n==> move the CHANGELOG's Unreleased section under {new}");
    let changelog_path = ctx.root.join("CHANGELOG.md");
    let changelog = util::read(&changelog_path)?;
    let moved = move_unreleased(&changelog, &new.to_string(), &today_utc())?;
    show_changes("CHANGELOG.md", &changelog, &moved);
    if dry {
        println!("[dry-run] would write Cargo.toml and CHANGELOG.md");
    } else {
        util::write(&manifest_path, &bumped)?;
        util::write(&changelog_path, &moved)?;
    }

    println!("\n==> refresh Cargo.lock");
    step(dry, ctx.cargo().args(["update", "--workspace"]))?;

    println!("\n==> full check (cargo xtask test)");
    if args.skip_checks {
        println!("skipped (--skip-checks)");
    } else if dry {
        println!("[dry-run] would run the full check: cargo xtask test");
    } else {
        check::run(ctx, &TestArgs::default())?;
    }

    // xtask is `publish = false`: nothing to verify for crates.io.
    println!("\n==> cargo package --workspace");
    let mut package = ctx.cargo();
    package.args([
        "package",
        "--workspace",
        "--exclude",
        "xtask",
        "--locked",
        "--allow-dirty",
    ]);
    if args.no_verify_package {
        package.arg("--no-verify");
    } else if !dry {
        forget_extracted_packages(ctx, &args.version)?;
    }
    step(dry, &mut package)?;

    println!("\n==> commit and tag");
    let message = format!("Release {tag}");
    step(
        dry,
        ctx.git()
            .args(["add", "Cargo.toml", "Cargo.lock", "CHANGELOG.md"]),
    )?;
    step(dry, ctx.git().args(["commit", "-m", &message]))?;
    step(dry, ctx.git().args(["tag", "-a", &tag, "-m", &message]))?;
    if dry {
        println!("\n[dry-run] nothing was changed");
    } else {
        println!("\nreleased {tag} locally; push with `git push && git push origin {tag}`");
    }
    Ok(())
}

/// Removes cargo's extracted copies of our own crates at `version` (`$CARGO_HOME/registry/src/*/
/// context-harness-*-VERSION`). `cargo package` verifies each crate against the ones packaged before
/// it through a local overlay registry, and cargo does not extract a registry crate again when a
/// directory of that name and version exists: a second packaging of the same version (a release
/// retried after a fix, or the release test run twice on one machine) would otherwise compile
/// against the sources of the first. For the same reason the build fingerprints of our crates are
/// dropped: cargo never rebuilds a registry crate whose name and version it has built before.
fn forget_extracted_packages(ctx: &Context, version: &str) -> Result<()> {
    for profile in ["debug", "release"] {
        let dir = ctx.target_dir().join(profile).join(".fingerprint");
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("context-harness-"))
            {
                fs::remove_dir_all(entry.path())
                    .with_context(|| format!("remove {}", entry.path().display()))?;
            }
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(src) = cargo_home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = fs::read_dir(&src) else {
        return Ok(());
    };
    let suffix = format!("-{version}");
    for registry in registries.flatten() {
        let Ok(entries) = fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("context-harness-") && name.ends_with(&suffix) {
                fs::remove_dir_all(entry.path())
                    .with_context(|| format!("remove {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::util::TempDir;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn semver_precedence_follows_the_spec_example() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                v(pair[0]).precedence(&v(pair[1])),
                Ordering::Less,
                "{pair:?}"
            );
        }
        assert_eq!(v("1.0.0+a").precedence(&v("1.0.0+b")), Ordering::Equal);
        assert_eq!(v("0.2.0-rc.1+build.5").to_string(), "0.2.0-rc.1+build.5");
    }

    #[test]
    fn bad_versions_are_rejected() {
        for bad in [
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.x",
            "v1.0.0",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0+",
            "",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_bump_touches_only_the_marked_line_and_internal_requirements() -> Result<()> {
        let before = "[workspace.package]\nversion = \"0.1.0\" #:version\n\n[workspace.dependencies]\n\
                      a = { path = \"crates/a\", version = \"=0.1.0\" }\nserde = { version = \"=0.1.0\" }\n";
        let after = bump_manifest(before, "0.1.0", "0.2.0")?;
        assert_eq!(
            after,
            "[workspace.package]\nversion = \"0.2.0\" #:version\n\n[workspace.dependencies]\n\
             a = { path = \"crates/a\", version = \"=0.2.0\" }\nserde = { version = \"=0.1.0\" }\n"
        );
        assert!(bump_manifest("version = \"0.1.0\"\n", "0.1.0", "0.2.0").is_err());
        Ok(())
    }

    #[test]
    fn changelog_moves_unreleased_under_the_version() -> Result<()> {
        let before =
            "# Changelog\n\n## Unreleased\n\n### Added\n- x\n\n## [0.1.0] - 2020-01-01\n- y\n";
        let after = move_unreleased(before, "0.2.0", "2026-05-01")?;
        assert_eq!(
            after,
            "# Changelog\n\n## Unreleased\n\n## [0.2.0] - 2026-05-01\n\n### Added\n- x\n\n\
             ## [0.1.0] - 2020-01-01\n- y\n"
        );
        assert!(move_unreleased(&after, "0.2.0", "2026-05-02").is_err());
        assert!(move_unreleased("# Changelog\n", "0.2.0", "2026-05-01").is_err());
        Ok(())
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(today_utc().len(), 10);
    }

    /// Copies the working tree's files (tracked and untracked-but-not-ignored) into a fresh git repository
    /// with one commit, so the release runs on a clean tree exactly like a clean clone of this checkout.
    fn copy_of_repository() -> Result<(TempDir, Context)> {
        let root = util::project_root();
        let tmp = TempDir::new("xtask-release")?;
        let files = util::output(Command::new("git").current_dir(&root).args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ]))?;
        for rel in files.split('\0').filter(|f| !f.is_empty()) {
            let skip = Path::new(rel)
                .components()
                .any(|c| matches!(c.as_os_str().to_str(), Some("target" | "node_modules")));
            let from = root.join(rel);
            if skip || !from.is_file() {
                continue;
            }
            let to = tmp.path().join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::copy(&from, &to).with_context(|| format!("copy {rel}"))?;
        }
        let git = |args: &[&str]| util::run(Command::new("git").current_dir(tmp.path()).args(args));
        git(&["init", "-q", "-b", "main"])?;
        git(&["config", "user.name", "xtask test"])?;
        git(&["config", "user.email", "xtask-test@example.invalid"])?;
        git(&["config", "commit.gpgsign", "false"])?;
        git(&["config", "tag.gpgsign", "false"])?;
        git(&["add", "-A"])?;
        git(&["commit", "-q", "-m", "snapshot"])?;
        let ctx = Context::for_tests(tmp.path().to_path_buf());
        Ok((tmp, ctx))
    }

    fn next_minor(current: &str) -> Result<String> {
        let c = Version::parse(current)?;
        Ok(format!("{}.{}.0", c.major, c.minor + 1))
    }

    #[test]
    fn dry_run_changes_nothing() -> Result<()> {
        let (_tmp, ctx) = copy_of_repository()?;
        let before_manifest = util::read(&ctx.root.join("Cargo.toml"))?;
        let before_changelog = util::read(&ctx.root.join("CHANGELOG.md"))?;
        let version = next_minor(&util::workspace_version(&ctx.root)?)?;
        run(
            &ctx,
            &ReleaseArgs {
                version,
                dry_run: true,
                skip_checks: false,
                no_verify_package: false,
            },
        )?;
        assert_eq!(util::read(&ctx.root.join("Cargo.toml"))?, before_manifest);
        assert_eq!(
            util::read(&ctx.root.join("CHANGELOG.md"))?,
            before_changelog
        );
        assert_eq!(util::output(ctx.git().args(["status", "--porcelain"]))?, "");
        assert_eq!(util::output(ctx.git().args(["tag", "--list"]))?, "");
        // The shared target directory is also used by the real-release test, so look at git, not at .crate files.
        let commits = util::output(ctx.git().args(["rev-list", "--count", "HEAD"]))?;
        assert_eq!(commits.trim(), "1", "no commit was made");
        Ok(())
    }

    #[test]
    fn refuses_dirty_tree_and_older_versions() -> Result<()> {
        let (_tmp, ctx) = copy_of_repository()?;
        let current = util::workspace_version(&ctx.root)?;
        let same = ReleaseArgs {
            version: current,
            dry_run: true,
            skip_checks: true,
            no_verify_package: true,
        };
        assert!(run(&ctx, &same).is_err_and(|e| e.to_string().contains("not greater")));
        let older = ReleaseArgs {
            version: "0.0.1-alpha".to_owned(),
            dry_run: true,
            skip_checks: true,
            no_verify_package: true,
        };
        assert!(run(&ctx, &older).is_err());
        util::write(&ctx.root.join("scratch.txt"), "dirty")?;
        let next = ReleaseArgs {
            version: "99.0.0".to_owned(),
            dry_run: true,
            skip_checks: true,
            no_verify_package: true,
        };
        assert!(run(&ctx, &next).is_err_and(|e| e.to_string().contains("not clean")));
        Ok(())
    }

    /// A real release on a copy. The full check is skipped (it is what runs this test); `cargo package
    /// --workspace` runs for real and verifies: every manifest is normalised, the `=<version>` internal
    /// requirements resolve through cargo's local overlay registry in dependency order, and each packaged
    /// copy compiles (into the shared `target/xtask-test`, so a warm run takes about two minutes here).
    #[test]
    fn real_release_bumps_moves_packages_commits_and_tags() -> Result<()> {
        let _shared = Context::shared_target_guard();
        let (_tmp, ctx) = copy_of_repository()?;
        let old = util::workspace_version(&ctx.root)?;
        let version = next_minor(&old)?;
        run(
            &ctx,
            &ReleaseArgs {
                version: version.clone(),
                dry_run: false,
                skip_checks: true,
                no_verify_package: false,
            },
        )?;

        let manifest = util::read(&ctx.root.join("Cargo.toml"))?;
        assert_eq!(util::workspace_version(&ctx.root)?, version);
        assert!(!manifest.contains(&format!("\"={old}\"")), "{manifest}");
        assert!(
            manifest.contains(&format!("version = \"={version}\"")),
            "{manifest}"
        );
        let lock = util::read(&ctx.root.join("Cargo.lock"))?;
        assert!(
            lock.contains(&format!(
                "name = \"context-harness-pkce\"\nversion = \"{version}\""
            )),
            "Cargo.lock not refreshed"
        );

        let changelog = util::read(&ctx.root.join("CHANGELOG.md"))?;
        let unreleased = changelog.find("## Unreleased").context("Unreleased kept")?;
        let released = changelog
            .find(&format!("## [{version}] - {}", today_utc()))
            .context("new section")?;
        assert!(unreleased < released);
        assert!(
            changelog[unreleased..released].trim() == "## Unreleased",
            "Unreleased is left empty"
        );

        let crate_file = ctx
            .target_dir()
            .join("package")
            .join(format!("context-harness-pkce-{version}.crate"));
        assert!(
            crate_file.is_file(),
            "cargo package produced {}",
            crate_file.display()
        );

        assert_eq!(util::output(ctx.git().args(["status", "--porcelain"]))?, "");
        let subject = util::output(ctx.git().args(["log", "-1", "--format=%s"]))?;
        assert_eq!(subject.trim(), format!("Release v{version}"));
        let tags = util::output(ctx.git().args(["tag", "--list", "--points-at", "HEAD"]))?;
        assert_eq!(tags.trim(), format!("v{version}"));
        Ok(())
    }
}
