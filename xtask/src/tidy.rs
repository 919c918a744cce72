//! Cheap repository rules, enforced by plain `cargo test --workspace` (so CI runs them too):
//! every member inherits the workspace lints, the crates keep their layering, `pkce` keeps its three
//! dependencies, `protocol` does no I/O, xtask never depends on the `cargo`/`git2` crates, no lower
//! module of `providers` imports from its `service` module, and no source file grows past
//! [`MAX_SOURCE_LINES`], and the README's workspace table lists exactly the members, each opening with a
//! `//!` doc. Add new rules as new `#[test]`s here.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::util;

/// Layer of each workspace package: a package may depend only on packages of its own layer or lower.
/// The leaf libraries share layer 1; `providers` sits on them, `mcp-bridge` on `providers`, `cli` on
/// both, and nothing depends on `xtask`.
const LAYERS: &[(&str, u8)] = &[
    ("context-harness-pkce", 1),
    ("context-harness-tokens", 1),
    ("context-harness-callback-server", 1),
    ("context-harness-storage", 1),
    ("context-harness-protocol", 1),
    ("context-harness-test-support", 1),
    ("context-harness-providers", 2),
    ("context-harness-mcp-bridge", 3),
    ("context-harness-cli", 4),
    ("xtask", 5),
];

/// `pkce`'s non-optional normal dependencies, exactly: sha2, base64ct, getrandom, nothing else.
const PKCE_DEPS: &[&str] = &["sha2", "base64ct", "getrandom"];

/// `protocol`'s normal dependencies, at most: the sans-IO protocol crate parses and builds, nothing more.
const PROTOCOL_DEPS: &[&str] = &[
    "url",
    "serde",
    "serde_json",
    "base64ct",
    "context-harness-tokens",
];

/// Crates that do I/O (async runtime, HTTP, TLS): `protocol` lists none of them, of any kind.
const IO_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "hyper-util",
    "rustls",
    "mio",
    "socket2",
];

/// Texts that mean I/O in Rust source: files, sockets, name resolution, processes, an async runtime.
const IO_PATTERNS: &[&str] = &[
    "std::fs",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "ToSocketAddrs",
    "std::process",
    "std::env::var",
    "tokio::",
    "reqwest::",
    "hyper::",
];

fn metadata() -> Result<Value> {
    let root = util::project_root();
    let text = util::output(
        Command::new(util::cargo_program())
            .current_dir(&root)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ]),
    )?;
    serde_json::from_str(&text).context("cargo metadata printed invalid JSON")
}

fn packages(meta: &Value) -> Result<&Vec<Value>> {
    meta["packages"]
        .as_array()
        .context("cargo metadata has no packages")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// `(name, kind, optional)` of each dependency; kind is `normal`, `dev` or `build`.
fn deps(package: &Value) -> Vec<(String, String, bool)> {
    package["dependencies"]
        .as_array()
        .map(|deps| {
            deps.iter()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (
                        str_of(d, "name").to_owned(),
                        kind,
                        d["optional"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_member_inherits_workspace_lints() -> Result<()> {
    let meta = metadata()?;
    let mut offenders = Vec::new();
    for package in packages(&meta)? {
        let manifest = util::read(Path::new(str_of(package, "manifest_path")))?;
        if !has_workspace_lints(&manifest) {
            offenders.push(str_of(package, "name").to_owned());
        }
    }
    if !offenders.is_empty() {
        bail!("members without `[lints]\\nworkspace = true`: {offenders:?}");
    }
    Ok(())
}

/// `true` if the manifest has a `[lints]` table whose body says `workspace = true`.
fn has_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return true;
        }
    }
    manifest
        .lines()
        .any(|l| l.replace(' ', "") == "lints.workspace=true")
}

#[test]
fn lints_table_detection() {
    assert!(has_workspace_lints(
        "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n"
    ));
    assert!(!has_workspace_lints(
        "[lints]\n\n[lints.rust]\nworkspace = true\n"
    ));
    assert!(!has_workspace_lints("[package]\nname = \"a\"\n"));
}

#[test]
fn no_crate_depends_on_a_higher_layer() -> Result<()> {
    let meta = metadata()?;
    let layer = |name: &str| LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let mut offenders = Vec::new();
    let mut members = BTreeSet::new();
    for package in packages(&meta)? {
        let name = str_of(package, "name");
        members.insert(name.to_owned());
        let own = layer(name)
            .with_context(|| format!("new member {name}: give it a layer in tidy.rs"))?;
        for (dep, kind, _) in deps(package) {
            if layer(&dep).is_some_and(|dep_layer| dep_layer > own) {
                offenders.push(format!("{name} -> {dep} ({kind})"));
            }
        }
    }
    if !offenders.is_empty() {
        bail!("dependencies on higher-level crates: {offenders:?}");
    }
    let known: BTreeSet<String> = LAYERS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(members, known, "workspace members changed: update LAYERS");
    Ok(())
}

#[test]
fn pkce_depends_only_on_sha2_base64ct_getrandom() -> Result<()> {
    let meta = metadata()?;
    let pkce = packages(&meta)?
        .iter()
        .find(|p| str_of(p, "name") == "context-harness-pkce")
        .context("context-harness-pkce is a member")?;
    let actual: BTreeSet<String> = deps(pkce)
        .into_iter()
        .filter(|(_, kind, optional)| kind == "normal" && !optional)
        .map(|(name, _, _)| name)
        .collect();
    let expected: BTreeSet<String> = PKCE_DEPS.iter().map(|d| (*d).to_owned()).collect();
    if actual != expected {
        bail!(
            "context-harness-pkce must depend on exactly {PKCE_DEPS:?} (anything else behind a feature); has {actual:?}"
        );
    }
    Ok(())
}

#[test]
fn xtask_never_depends_on_cargo_or_git2() -> Result<()> {
    let meta = metadata()?;
    let xtask = packages(&meta)?
        .iter()
        .find(|p| str_of(p, "name") == "xtask")
        .context("xtask is a member")?;
    let banned: Vec<String> = deps(xtask)
        .into_iter()
        .map(|d| d.0)
        .filter(|n| n == "cargo" || n == "git2")
        .collect();
    assert!(
        banned.is_empty(),
        "xtask shells out instead of depending on {banned:?}"
    );
    Ok(())
}

/// Whether the `providers` module at `rel` (a path under `crates/providers/src`, `/`-separated) may
/// import from `crate::service`: only the crate root and the service's own modules may; the lower
/// modules (device, discovery, registration, http, env, provider, registry, error, ...) must not, so
/// `providers` has no import cycle through the service.
fn may_import_service(rel: &str) -> bool {
    rel == "lib.rs" || rel == "service.rs" || rel.starts_with("service/")
}

/// Whether `text` (Rust source) refers to the `service` module by path.
fn imports_service(text: &str) -> bool {
    text.contains("crate::service") || text.contains("super::service")
}

/// Every `.rs` file under `dir`, recursively, as paths relative to `dir` with `/` separators.
fn rust_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("cannot list {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The modules of `src` (a `providers` source tree) that import from the service but may not.
fn service_importers(src: &Path) -> Result<Vec<String>> {
    let mut offenders = Vec::new();
    for rel in rust_files(src)? {
        if may_import_service(&rel) {
            continue;
        }
        let text =
            fs::read_to_string(src.join(&rel)).with_context(|| format!("cannot read {rel}"))?;
        if imports_service(&text) {
            offenders.push(rel);
        }
    }
    Ok(offenders)
}

#[test]
fn lower_provider_modules_never_import_the_service() -> Result<()> {
    let src = util::project_root().join("crates/providers/src");
    let offenders = service_importers(&src)?;
    assert!(
        offenders.is_empty(),
        "these providers modules import from `crate::service`; move what they need into a lower module (error.rs, provider_ref.rs, http.rs): {offenders:?}"
    );
    Ok(())
}

#[test]
fn service_import_rule_on_a_fixture() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path();
    fs::create_dir_all(src.join("service"))?;
    fs::create_dir_all(src.join("error"))?;
    fs::write(
        src.join("lib.rs"),
        "mod service;\npub use service::OAuthService;\n",
    )?;
    fs::write(src.join("service/mod.rs"), "use crate::service::x;\n")?;
    fs::write(
        src.join("service/mcp.rs"),
        "use super::super::service::y;\n",
    )?;
    fs::write(src.join("device.rs"), "use crate::error::Error;\n")?;
    fs::write(
        src.join("registry.rs"),
        "x.map_err(crate::service::storage_error)\n",
    )?;
    fs::write(
        src.join("error/convert.rs"),
        "use super::super::service::Grant;\n",
    )?;
    fs::write(src.join("notes.txt"), "crate::service\n")?;
    assert_eq!(service_importers(src)?, ["error/convert.rs", "registry.rs"]);
    assert!(may_import_service("service.rs"));
    assert!(!may_import_service("services.rs"));
    Ok(())
}

/// The longest a file under `crates/*/src` may be, in lines, tests included: past it, a file does
/// more than one job and is split by job.
const MAX_SOURCE_LINES: usize = 800;

/// The files of `root` (a checkout) under `crates/*/src` longer than `max` lines and not in `known`,
/// as `path (lines)`.
fn long_sources(root: &Path, max: usize, known: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let crates = root.join("crates");
    let mut members: Vec<PathBuf> = fs::read_dir(&crates)
        .with_context(|| format!("cannot list {}", crates.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    members.sort();
    for src in members {
        for rel in rust_files(&src)? {
            let path = src.join(&rel);
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let lines = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {shown}"))?
                .lines()
                .count();
            if lines > max && !known.contains(&shown.as_str()) {
                out.push(format!("{shown} ({lines})"));
            }
        }
    }
    Ok(out)
}

#[test]
fn no_source_file_is_longer_than_the_limit() -> Result<()> {
    let long = long_sources(&util::project_root(), MAX_SOURCE_LINES, &[])?;
    assert!(
        long.is_empty(),
        "split these files by job (at most {MAX_SOURCE_LINES} lines, tests included): {long:?}"
    );
    Ok(())
}

#[test]
fn long_source_rule_on_a_fixture() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    fs::create_dir_all(root.join("crates/a/src/m"))?;
    fs::create_dir_all(root.join("crates/b/src"))?;
    fs::write(root.join("crates/a/src/lib.rs"), "x\n".repeat(3))?;
    fs::write(root.join("crates/a/src/m/big.rs"), "x\n".repeat(4))?;
    fs::write(root.join("crates/b/src/known.rs"), "x\n".repeat(9))?;
    fs::write(root.join("crates/b/src/notes.md"), "x\n".repeat(9))?;
    assert_eq!(
        long_sources(root, 3, &["crates/b/src/known.rs"])?,
        ["crates/a/src/m/big.rs (4)"]
    );
    Ok(())
}

/// The I/O rule's offences: dependencies outside [`PROTOCOL_DEPS`] (normal ones) or in [`IO_CRATES`]
/// (any kind), and source files mentioning an [`IO_PATTERNS`] text. `sources` are `(path, text)`.
fn io_violations(deps: &[(String, String, bool)], sources: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, kind, _) in deps {
        if IO_CRATES.contains(&name.as_str()) {
            out.push(format!("depends on {name} ({kind})"));
        } else if kind == "normal" && !PROTOCOL_DEPS.contains(&name.as_str()) {
            out.push(format!("depends on {name}, not one of {PROTOCOL_DEPS:?}"));
        }
    }
    for (path, text) in sources {
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for pattern in IO_PATTERNS {
                if code.contains(pattern) {
                    out.push(format!("{path}:{}: `{pattern}`", number + 1));
                }
            }
        }
    }
    out
}

/// The `.rs` files under `dir`, recursively, as `(path, text)` ([`rust_files`] with their text).
fn rust_sources(dir: &Path) -> Result<Vec<(String, String)>> {
    rust_files(dir)?
        .into_iter()
        .map(|rel| Ok((rel.clone(), util::read(&dir.join(&rel))?)))
        .collect()
}

#[test]
fn protocol_does_no_io() -> Result<()> {
    let meta = metadata()?;
    let protocol = packages(&meta)?
        .iter()
        .find(|p| str_of(p, "name") == "context-harness-protocol")
        .context("context-harness-protocol is a member")?;
    let src = util::project_root().join("crates/protocol/src");
    let sources = rust_sources(&src)?;
    assert!(
        sources.iter().any(|(path, _)| path.ends_with("lib.rs")),
        "no sources found under {}",
        src.display()
    );
    let offences = io_violations(&deps(protocol), &sources);
    if !offences.is_empty() {
        bail!("context-harness-protocol must stay sans-IO: {offences:?}");
    }
    Ok(())
}

#[test]
fn io_rule_catches_a_violating_fixture() {
    let dep = |name: &str, kind: &str| (name.to_owned(), kind.to_owned(), false);
    let clean_deps = [
        dep("url", "normal"),
        dep("serde", "normal"),
        dep("proptest", "dev"),
    ];
    let clean = [(
        "lib.rs".to_owned(),
        "use url::Url;\n// a comment may say std::fs::read\nfn f() {}\n".to_owned(),
    )];
    assert_eq!(io_violations(&clean_deps, &clean), Vec::<String>::new());
    let bad_deps = [
        dep("url", "normal"),
        dep("reqwest", "normal"),
        dep("tokio", "dev"),
        dep("context-harness-storage", "normal"),
    ];
    let bad = [(
        "src/fetch.rs".to_owned(),
        "use std::fs::File;\nfn f() { let _ = std::net::TcpStream::connect(\"x:1\"); tokio::spawn(async {}); }\n"
            .to_owned(),
    )];
    let offences = io_violations(&bad_deps, &bad);
    for needle in [
        "reqwest (normal)",
        "tokio (dev)",
        "context-harness-storage",
        "src/fetch.rs:1: `std::fs`",
        "src/fetch.rs:2: `std::net::TcpStream`",
        "src/fetch.rs:2: `tokio::`",
    ] {
        assert!(
            offences.iter().any(|o| o.contains(needle)),
            "{needle} not in {offences:?}"
        );
    }
}

/// The README's "Workspace" table: `(path, package)` of each row.
fn readme_workspace_rows(readme: &str) -> Vec<(String, String)> {
    let Some(start) = readme.find("## Workspace") else {
        return Vec::new();
    };
    readme[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(|c| c.trim().trim_matches('`')).collect();
            match cells.as_slice() {
                ["", path, package, ..] if !path.starts_with('-') && *path != "crate" => {
                    Some(((*path).to_owned(), (*package).to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

/// The shape is said once and kept true: every workspace member is a row of the README's workspace
/// table (path and package), every row is a member, and each crate opens with a `//!` doc.
#[test]
fn readme_workspace_table_matches_the_members() -> Result<()> {
    let meta = metadata()?;
    let root = util::project_root();
    let mut members = BTreeSet::new();
    for package in packages(&meta)? {
        let manifest = PathBuf::from(str_of(package, "manifest_path"));
        let dir = manifest.parent().context("manifest has a directory")?;
        let rel = dir
            .strip_prefix(&root)
            .unwrap_or(dir)
            .to_string_lossy()
            .replace('\\', "/");
        let main = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .with_context(|| format!("{rel} has no src/lib.rs or src/main.rs"))?;
        let text = util::read(&main)?;
        if !text.trim_start().starts_with("//!") {
            bail!(
                "{} must open with a `//!` doc saying its one job",
                main.display()
            );
        }
        members.insert((rel, str_of(package, "name").to_owned()));
    }
    let rows: BTreeSet<(String, String)> =
        readme_workspace_rows(&util::read(&root.join("README.md"))?)
            .into_iter()
            .collect();
    assert_eq!(
        rows, members,
        "README.md's workspace table and the workspace members differ"
    );
    Ok(())
}

#[test]
fn readme_workspace_rows_are_read() {
    let text = "# x\n\n## Workspace\n\n| crate | package | job |\n|---|---|---|\n| `crates/a` | `pkg-a` | does a |\n| `xtask` | `xtask` | tasks |\n\n## Next\n| `crates/b` | `b` | no |\n";
    assert_eq!(
        readme_workspace_rows(text),
        vec![
            ("crates/a".to_owned(), "pkg-a".to_owned()),
            ("xtask".to_owned(), "xtask".to_owned())
        ]
    );
}

/// The `providers` files other than `http.rs` that name the HTTP library (`reqwest`).
fn http_library_outside_http(sources: &[(String, String)]) -> Vec<String> {
    sources
        .iter()
        .filter(|(path, _)| path != "http.rs")
        .filter(|(_, text)| {
            text.lines()
                .any(|l| l.split("//").next().unwrap_or_default().contains("reqwest"))
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// One HTTP boundary: in `providers`, only `http.rs` touches the HTTP library's types.
#[test]
fn only_the_http_module_touches_the_http_library() -> Result<()> {
    let sources = rust_sources(&util::project_root().join("crates/providers/src"))?;
    let offenders = http_library_outside_http(&sources);
    assert!(
        offenders.is_empty(),
        "move these requests into http.rs: {offenders:?}"
    );
    Ok(())
}

#[test]
fn http_library_rule_on_a_fixture() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let sources = [
        file("http.rs", "use reqwest::Client;"),
        file(
            "discovery/mod.rs",
            "// reqwest is mentioned in a comment only\nfn f() {}",
        ),
        file("service/logout.rs", "let m = reqwest::Method::DELETE;"),
    ];
    assert_eq!(
        http_library_outside_http(&sources),
        vec!["service/logout.rs".to_owned()]
    );
}

/// A crate's module graph: for each top-level module (a file or directory beside the crate root
/// `lib.rs`/`main.rs`, its submodules folded in), the other top-level modules it names as
/// `crate::<module>`.
fn module_graph(
    sources: &[(String, String)],
) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let top = |path: &str| {
        let first = path.split('/').next().unwrap_or_default();
        first.strip_suffix(".rs").unwrap_or(first).to_owned()
    };
    let is_root = |m: &str| m == "lib" || m == "main";
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|(path, _)| top(path))
        .filter(|m| !is_root(m))
        .collect();
    let mut graph = std::collections::BTreeMap::new();
    for (path, text) in sources {
        let from = top(path);
        if is_root(&from) {
            continue;
        }
        let deps: &mut BTreeSet<String> = graph.entry(from.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name != from && modules.contains(&name) {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if any, as the modules along it.
fn find_cycle(graph: &std::collections::BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The module trees of every crate of the workspace (libraries, binaries, tests, benches, examples,
/// xtask): the directory of each target whose root is `lib.rs` or `main.rs`, and the `<name>/`
/// directory beside a single-file target `<name>.rs` when it has one. Build scripts are left out.
fn crate_module_trees(meta: &Value) -> Result<BTreeSet<PathBuf>> {
    let mut dirs = BTreeSet::new();
    for package in packages(meta)? {
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds = target["kind"].as_array().into_iter().flatten();
            if kinds.clone().any(|k| k == "custom-build") {
                continue;
            }
            let root = PathBuf::from(str_of(target, "src_path"));
            let (Some(dir), Some(stem)) = (root.parent(), root.file_stem()) else {
                continue;
            };
            if stem == "lib" || stem == "main" {
                dirs.insert(dir.to_path_buf());
            } else if dir.join(stem).is_dir() {
                dirs.insert(dir.join(stem));
            }
        }
    }
    Ok(dirs)
}

/// No crate of the workspace has an import cycle between its top-level modules: each names only
/// lower ones (the `cli` once had `args` ↔ `proxy`).
#[test]
fn no_crate_has_a_module_import_cycle() -> Result<()> {
    let meta = metadata()?;
    let root = util::project_root();
    let trees = crate_module_trees(&meta)?;
    let shown = |dir: &Path| {
        dir.strip_prefix(&root)
            .unwrap_or(dir)
            .to_string_lossy()
            .replace('\\', "/")
    };
    for expected in [
        "crates/providers/src",
        "crates/cli/src",
        "crates/cli/tests/cli",
        "xtask/src",
    ] {
        assert!(
            trees.iter().any(|d| shown(d) == expected),
            "{expected} is not checked: {trees:?}"
        );
    }
    let providers = module_graph(&rust_sources(&root.join("crates/providers/src"))?);
    assert!(
        providers.contains_key("service") && providers.contains_key("http"),
        "{providers:?}"
    );
    let mut cycles = Vec::new();
    for dir in &trees {
        let graph = module_graph(&rust_sources(dir)?);
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(format!("{}: {}", shown(dir), cycle.join(" -> ")));
        }
    }
    if !cycles.is_empty() {
        bail!("import cycles between modules:\n{}", cycles.join("\n"));
    }
    Ok(())
}

#[test]
fn import_cycle_rule_on_a_fixture() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let acyclic = [
        file("lib.rs", "mod a; mod b; use crate::a::Y;"),
        file("main.rs", "use crate::b::Z;"),
        file("a.rs", "use crate::b::X; // crate::a in a comment"),
        file("b/mod.rs", "fn f() {}"),
        file("b/inner.rs", "use crate::error::E;"),
    ];
    assert_eq!(find_cycle(&module_graph(&acyclic)), None);
    let cyclic = [
        file("a.rs", "use crate::b::X;"),
        file("b/inner.rs", "fn g() { crate::a::f(); }"),
    ];
    let cycle = find_cycle(&module_graph(&cyclic)).unwrap_or_default();
    assert_eq!(cycle, vec!["a", "b", "a"]);
}

/// The ways production code may open or read a file other than through storage's trusted helpers
/// (`read_trusted`, `open_trusted`): `(file, pattern, reason)`. Everything under the home directory is
/// read the trusted way (no symbolic link, no FIFO or device, owner and mode checked, size capped);
/// each entry here is a file outside it, or an open that never reads.
const FILE_READ_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "crates/storage/src/trust.rs",
        "OpenOptions",
        "the trusted open itself (lstat, O_NOFOLLOW|O_NONBLOCK|O_NOCTTY, fstat-checked)",
    ),
    (
        "crates/storage/src/quote.rs",
        "fs::read_to_string",
        "/etc/passwd, a system file, for the user name in a `chown` hint; not under the home directory",
    ),
    (
        "crates/storage/src/fs.rs",
        "OpenOptions",
        "create_temp: a new 0600 temporary file (O_CREAT|O_EXCL), only written",
    ),
    (
        "crates/storage/src/fs.rs",
        "File::open",
        "sync_dir: opens a directory to fsync it; reads nothing",
    ),
    (
        "crates/storage/src/lock.rs",
        "OpenOptions",
        "the lock file: O_NOFOLLOW|O_NONBLOCK, fstat-checked, locked and never read",
    ),
    (
        "crates/test-support/src/lib.rs",
        "fs::read_to_string",
        "a test server's own log in a temporary directory, for a failing test's message; test-only crate",
    ),
];

/// Texts that open or read a file wherever they appear (as whole identifiers).
/// The raw `open(2)` wrappers of `rustix`, `nix` and `libc` are here too: they bypass `O_NOFOLLOW`
/// and the `fstat` checks as surely as `File::open`.
const FILE_READ_TEXTS: &[&str] = &[
    "File::open",
    "File::options",
    "OpenOptions",
    "tokio::fs",
    "fs::open",
    "fs::openat",
    "fcntl::open",
    "fcntl::openat",
    "libc::open",
    "libc::openat",
    "libc::fopen",
];

/// Functions of `std::fs` that read a file: flagged as `fs::<name>`, also when imported by name.
const FS_READ_FUNCTIONS: &[&str] = &["read", "read_to_string"];

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The start of each occurrence of `needle` in `code` that is not part of a longer identifier.
fn whole_matches<'a>(code: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(needle).filter_map(move |(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + needle.len()..].chars().next();
        (!before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)).then_some(i)
    })
}

/// The file-reading patterns on one line of code (comments already removed): the
/// [`FILE_READ_TEXTS`], and `fs::read` / `fs::read_to_string` called by path or imported
/// (`use std::fs::{self, read_to_string}`).
fn file_reads_in(code: &str) -> Vec<String> {
    let mut found: Vec<String> = FILE_READ_TEXTS
        .iter()
        .filter(|t| whole_matches(code, t).next().is_some())
        .map(|t| (*t).to_owned())
        .collect();
    for (i, _) in code.match_indices("fs::") {
        let rest = &code[i + "fs::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(list) => list
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                // `read as slurp` imports `read` under another name.
                .filter_map(|name| name.split_whitespace().next())
                .collect(),
            None => vec![rest.split(|c| !is_ident_char(c)).next().unwrap_or_default()],
        };
        for name in names {
            if FS_READ_FUNCTIONS.contains(&name) {
                found.push(format!("fs::{name}"));
            }
        }
    }
    found
}

/// Whether an attribute line makes the item after it test-only: `#[cfg(test)]`,
/// `#[cfg(all(test, unix))]`, but not `#[cfg(not(test))]`.
fn is_test_cfg(line: &str) -> bool {
    line.starts_with("#[cfg(")
        && whole_matches(line, "test").next().is_some()
        && !line.contains("not(test")
}

/// The production lines of a Rust source: `(line number, code)` with comments cut off, without the
/// items under a test-only `cfg` (a test module ends the file: clippy's `items_after_test_module`).
fn production_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if !is_test_cfg(trimmed) {
            out.push((
                index + 1,
                line.split("//").next().unwrap_or_default().to_owned(),
            ));
            continue;
        }
        // Skip the test-only item: its other attributes, then up to its closing brace or `;`.
        let mut depth = 0_i64;
        let mut opened = false;
        for (_, line) in lines.by_ref() {
            let code = line.split("//").next().unwrap_or_default();
            if !opened && code.trim_start().starts_with("mod ") && code.trim_end().ends_with('{') {
                return out;
            }
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let attribute = !opened && code.trim_start().starts_with("#[");
            if !attribute && ((opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')))
            {
                break;
            }
        }
    }
    out
}

/// Whether `rel` (a path under a crate's `src`) is a test module of its own (`tests.rs`, `tests/…`).
fn is_test_file(rel: &str) -> bool {
    rel == "tests.rs"
        || rel.ends_with("/tests.rs")
        || rel.starts_with("tests/")
        || rel.contains("/tests/")
}

/// The reads of files in production code under `root/crates/*/src` that `allowed` does not cover, as
/// `path:line: `pattern``, and the `allowed` entries that matched nothing (stale), as `path: pattern`.
fn file_read_offences(
    root: &Path,
    allowed: &[(&str, &str, &str)],
) -> Result<(Vec<String>, Vec<String>)> {
    production_offences(root, allowed, file_reads_in)
}

/// The patterns `find` reports on production lines under `root/crates/*/src` that `allowed`
/// (`(path, pattern, reason)`) does not cover, as `path:line: `pattern``, and the `allowed` entries
/// that matched nothing (stale), as `path: pattern`.
fn production_offences(
    root: &Path,
    allowed: &[(&str, &str, &str)],
    find: fn(&str) -> Vec<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let crates = root.join("crates");
    let mut members: Vec<PathBuf> = fs::read_dir(&crates)
        .with_context(|| format!("cannot list {}", crates.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    members.sort();
    let mut offences = Vec::new();
    let mut used = BTreeSet::new();
    for src in members {
        for (rel, text) in rust_sources(&src)? {
            if is_test_file(&rel) {
                continue;
            }
            let path = src.join(&rel);
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            for (number, code) in production_lines(&text) {
                for pattern in find(&code) {
                    match allowed
                        .iter()
                        .position(|(file, p, _)| *file == shown && *p == pattern)
                    {
                        Some(entry) => {
                            used.insert(entry);
                        }
                        None => offences.push(format!("{shown}:{number}: `{pattern}`")),
                    }
                }
            }
        }
    }
    let stale = allowed
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, (file, pattern, _))| format!("{file}: {pattern}"))
        .collect();
    Ok((offences, stale))
}

/// Every file under the home directory is read the one trusted way (storage's `read_trusted` /
/// `open_trusted`: no symbolic link, FIFO or device, owner and mode checked, size capped): production
/// code opens or reads no file otherwise, except the few [`FILE_READ_ALLOWED`] reads, each outside the
/// home directory or not a read, each with its reason.
#[test]
fn home_files_are_read_only_the_trusted_way() -> Result<()> {
    let (offences, stale) = file_read_offences(&util::project_root(), FILE_READ_ALLOWED)?;
    assert!(
        offences.is_empty(),
        "read files under the home directory with context_harness_storage::read_trusted (or open_trusted); \
         a file elsewhere that must be read otherwise goes into FILE_READ_ALLOWED in xtask/src/tidy.rs \
         with its reason: {offences:?}"
    );
    assert!(
        stale.is_empty(),
        "FILE_READ_ALLOWED entries that match nothing any more (remove them): {stale:?}"
    );
    Ok(())
}

#[test]
fn file_read_rule_on_a_fixture() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    fs::create_dir_all(root.join("crates/a/src/tests"))?;
    fs::create_dir_all(root.join("crates/b/src"))?;
    fs::write(
        root.join("crates/a/src/lib.rs"),
        "use std::fs::{self, read_to_string};\n\
         // std::fs::read_to_string(p) in a comment is fine\n\
         fn recovery(p: &Path) { let t = std::fs::read_to_string(p); }\n\
         fn data(p: &Path) { let b = fs::read(p); let d = fs::read_dir(p); }\n\
         use std::os::unix::fs::OpenOptionsExt;\n\
         #[cfg(not(test))]\n\
         fn f() { let f = File::open(p); }\n\
         #[cfg(test)]\n\
         fn helper() {\n    let x = std::fs::read(p);\n}\n\
         async fn g() { tokio::fs::read(p).await; }\n\
         use std::fs::{read as slurp, write};\n\
         fn raw(p: &Path) { let fd = rustix::fs::open(p, OFlags::RDONLY, Mode::empty()); }\n\
         fn raw2() { unsafe { libc::open(p, 0) }; nix::fcntl::openat(d, p, f, m); }\n\
         #[cfg(all(test, unix))]\n\
         #[allow(clippy::unwrap_used)]\n\
         mod tests {\n    fn t() { std::fs::read_to_string(p); }\n}\n",
    )?;
    fs::write(
        root.join("crates/a/src/tests/mod.rs"),
        "fn t() { std::fs::read(p); }\n",
    )?;
    fs::write(
        root.join("crates/b/src/trust.rs"),
        "fn open() { std::fs::OpenOptions::new().read(true).open(p); }\n\
         fn user() { std::fs::read_to_string(\"/etc/passwd\"); }\n",
    )?;
    let allowed = [
        ("crates/b/src/trust.rs", "OpenOptions", "the trusted open"),
        ("crates/b/src/gone.rs", "File::open", "no longer there"),
    ];
    let (offences, stale) = file_read_offences(root, &allowed)?;
    assert_eq!(
        offences,
        [
            "crates/a/src/lib.rs:1: `fs::read_to_string`",
            "crates/a/src/lib.rs:3: `fs::read_to_string`",
            "crates/a/src/lib.rs:4: `fs::read`",
            "crates/a/src/lib.rs:7: `File::open`",
            "crates/a/src/lib.rs:12: `tokio::fs`",
            "crates/a/src/lib.rs:12: `fs::read`",
            "crates/a/src/lib.rs:13: `fs::read`",
            "crates/a/src/lib.rs:14: `fs::open`",
            "crates/a/src/lib.rs:15: `fcntl::openat`",
            "crates/a/src/lib.rs:15: `libc::open`",
            "crates/b/src/trust.rs:2: `fs::read_to_string`",
        ]
    );
    assert_eq!(stale, ["crates/b/src/gone.rs: File::open"]);
    Ok(())
}

/// The places production code starts a program, and why each is safe: the browser, whose
/// environment is built from an allowlist (`env_clear()` first), so no secret of this process reaches
/// a child; and `context-harness exec`, whose whole purpose is to run the user's own command with
/// the user's own environment plus the one token variable the user asked for.
const CHILD_PROCESS_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "crates/providers/src/browser.rs",
        "Command::new",
        "the browser, started with env_clear() and an allowlisted environment",
    ),
    (
        "crates/cli/src/exec.rs",
        "Command::new",
        "`context-harness exec -- CMD`: the user's own command, with the environment the user gave \
         this process (unchanged: it is the user's) plus the one token variable the user asked for; \
         on Unix it replaces this process (execvp), so no child outlives or shares it",
    ),
    (
        "crates/cli/src/bin/git-credential-context-harness.rs",
        "Command::new",
        "the git credential helper's name: it runs `context-harness git-credential` (this program's \
         own binary, beside it) with git's environment unchanged, replacing itself on Unix",
    ),
    (
        "crates/test-support/src/lib.rs",
        "Command::new",
        "test-only crate: starts the local test servers",
    ),
];

/// Process spawns on one line of code: `Command::new` (std or tokio) and `process::Command`
/// builders by another name.
fn child_processes_in(code: &str) -> Vec<String> {
    ["Command::new", "Command::from"]
        .iter()
        .filter(|t| whole_matches(code, t).next().is_some())
        .map(|t| (*t).to_owned())
        .collect()
}

/// Children get an allowlisted environment: production code starts programs only where
/// [`CHILD_PROCESS_ALLOWED`] says, and the browser's spawn clears the environment first.
#[test]
fn children_are_started_only_with_an_allowlisted_environment() -> Result<()> {
    let root = util::project_root();
    let (offences, stale) = production_offences(&root, CHILD_PROCESS_ALLOWED, child_processes_in)?;
    assert!(
        offences.is_empty(),
        "start programs only through the browser opener (crates/providers/src/browser.rs), whose \
         environment is an allowlist, or `exec` (crates/cli/src/exec.rs); or add the spawn to \
         CHILD_PROCESS_ALLOWED with its reason: {offences:?}"
    );
    assert!(
        stale.is_empty(),
        "stale CHILD_PROCESS_ALLOWED entries: {stale:?}"
    );
    let browser = fs::read_to_string(root.join("crates/providers/src/browser.rs"))?;
    assert!(
        browser.contains(".env_clear()"),
        "the browser must be started with env_clear() and the allowlist"
    );
    Ok(())
}

#[test]
fn child_process_rule_on_a_fixture() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    fs::create_dir_all(root.join("crates/a/src"))?;
    fs::write(
        root.join("crates/a/src/lib.rs"),
        "fn f() { std::process::Command::new(\"sh\").spawn(); }\n\
         // Command::new in a comment is fine\n\
         fn g() { tokio::process::Command::new(p); }\n\
         #[cfg(test)]\n\
         mod tests {\n    fn t() { Command::new(\"x\"); }\n}\n",
    )?;
    let (offences, stale) = production_offences(
        root,
        &[("crates/a/src/browser.rs", "Command::new", "gone")],
        child_processes_in,
    )?;
    assert_eq!(
        offences,
        [
            "crates/a/src/lib.rs:1: `Command::new`",
            "crates/a/src/lib.rs:3: `Command::new`",
        ]
    );
    assert_eq!(stale, ["crates/a/src/browser.rs: Command::new"]);
    Ok(())
}
