//! `cargo xtask bench`: the performance budget as one markdown table, printed last on stdout and
//! written to `target/bench/report.md`.
//!
//! Every comparison is a ratio measured in the same run: the programs are interleaved (a, b, a, b, …, the
//! order flipping every round), each round takes the median of its runs, and the table shows the median
//! over rounds with the min–max. So a compile running next to the bench slows both sides alike.
//!
//! Rows:
//! 1. `context-harness mcp token P` (valid token, file store) vs the floor (`xtask/examples/token-floor.rs`:
//!    read the token JSON, check expiry, print) — goal ≤ 1.3×; peak RSS (`/usr/bin/time -f %M`) ≤ 4 MB.
//! 2. The same with the keyring store against gnome-keyring, in a private D-Bus session (`keyring.rs`) —
//!    goal ≤ 10× the floor.
//! 3. 20 concurrent `mcp token P` on an expired token against the local authorization server: wall time and
//!    the refresh requests the server saw (must be 1).
//! 4. Sign-in overhead without the user and the network, from the CLI's `-vv` log timestamps: process start
//!    → browser opener called, and callback received → tokens stored minus the token request — ≤ 5 ms each.
//! 5. Criterion: PKCE pair generation (≤ 1 µs), callback listener bind → ready and one round trip.
//! 6. Release binary size (≤ 8 MB stripped) and the dependency counts of `pkce` and `storage` alone.
//!
//! Plus `gh auth token` as a peer row when `gh` is installed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};

use crate::install::{self, Tool};
use crate::keyring;
use crate::local_server::{self, AuthServer};
use crate::util::{self, Context, TempDir};

/// The provider name used for the measured sign-ins.
const PROVIDER: &str = "bench";

/// How many processes ask for the expired token at once (row 3).
const CONCURRENT: usize = 20;

/// `/usr/bin/time` for peak RSS.
const TIME_TOOLS: &[Tool] = &[Tool {
    program: "/usr/bin/time",
    package: "time",
    purpose: "bench (peak RSS)",
}];

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// Rounds of each comparison; every round interleaves the programs.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rounds: u32,
    /// Runs of each program per round (the round keeps their median).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) runs: u32,
    /// Leave out the criterion benches (row 5), which take the longest.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Internal: measure the keyring row inside the private Secret Service session, in this directory.
    #[arg(long, hide = true, value_name = "DIR")]
    pub(crate) keyring_row: Option<PathBuf>,
}

/// Whether a row meets its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Met {
    Yes,
    No,
    /// For reference only (no goal).
    Info,
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    id: &'static str,
    what: String,
    result: String,
    goal: &'static str,
    met: Met,
}

impl Row {
    fn new(id: &'static str, what: impl Into<String>, goal: &'static str) -> Self {
        Self {
            id,
            what: what.into(),
            result: String::new(),
            goal,
            met: Met::Info,
        }
    }

    /// Sets the result and whether the goal is met (`None`: reference only).
    fn set(&mut self, result: String, met: Option<bool>) {
        self.result = result;
        self.met = match met {
            Some(true) => Met::Yes,
            Some(false) => Met::No,
            None => Met::Info,
        };
    }

    fn failed(&mut self, err: &anyhow::Error) {
        self.result = format!("error: {}", format!("{err:#}").replace(['\n', '|'], " "));
        self.met = Met::No;
    }
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            f64::midpoint(v[mid - 1], v[mid])
        };
        Self {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `1.08× (1.01–1.15)`.
    fn ratio(&self) -> String {
        format!("{:.2}× ({:.2}–{:.2})", self.median, self.min, self.max)
    }

    /// `1.02 ms (0.98–1.20)`.
    fn ms(&self) -> String {
        format!("{:.2} ms ({:.2}–{:.2})", self.median, self.min, self.max)
    }
}

/// Runs the bench (or, with `--keyring-row`, only the part inside the Secret Service session).
pub(crate) fn run(ctx: &Context, args: &BenchArgs) -> Result<()> {
    if let Some(dir) = &args.keyring_row {
        return keyring_row_inside(ctx, args, dir);
    }
    let started = Instant::now();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();

    eprintln!("==> prerequisites");
    install::ensure_tools(install::NODE_TOOLS)?;
    install::ensure_tools(TIME_TOOLS)?;
    install::ensure_tools(install::KEYRING_TOOLS)?;
    install::ensure_node_modules(&ctx.root)?;

    eprintln!("==> release builds (the CLI as `dist` builds it, and the floor)");
    let bins = build(ctx)?;

    let tmp = TempDir::new("context-harness-bench")?;
    let server = AuthServer::start(
        &ctx.root,
        &[("AS_AUTO_APPROVE", "1")],
        &tmp.path().join("server.log"),
    )?;
    eprintln!("local authorization server at {}", server.issuer);
    let browser = local_server::follow_browser(&ctx.root);
    let toml = server.providers_toml(
        PROVIDER,
        "Bench (local oidc-provider)",
        // A fixed port first, as with the default 8080 (0 only as the fallback).
        &[local_server::free_port()?, 0],
    );

    let mut rows = Vec::new();

    // Row 4 first: its first sign-in leaves the home rows 1 and 3 use.
    eprintln!("==> row 4: sign-in overhead");
    let main_home = tmp.path().join("home");
    let mut open_row = Row::new(
        "4a",
        "sign-in: process start → browser opener called",
        "≤ 5 ms",
    );
    let mut store_row = Row::new(
        "4b",
        "sign-in: callback received → tokens stored, without the token request",
        "≤ 5 ms",
    );
    let logins = if args.quick { 3 } else { 7 };
    match sign_in_overhead(&bins.cli, tmp.path(), &main_home, &toml, &browser, logins) {
        Ok((open, store)) => {
            open_row.set(
                format!("{} over {logins} sign-ins", open.ms()),
                Some(open.median <= 5.0),
            );
            store_row.set(store.ms(), Some(store.median <= 5.0));
        }
        Err(e) => {
            open_row.failed(&e);
            store_row.failed(&e);
        }
    }

    eprintln!("==> row 1: mcp token (file store) vs the floor");
    let mut token_row = Row::new(
        "1",
        format!("`mcp token {PROVIDER}` (valid token, file store) ÷ floor"),
        "≤ 1.3×",
    );
    let mut rss_row = Row::new("1b", "peak RSS of `mcp token` (file store)", "≤ 4 MB");
    match token_vs_floor(&bins, &main_home, args) {
        Ok(m) => {
            token_row.set(
                format!(
                    "{}; {:.2} ms vs floor {:.2} ms",
                    m.ratio.ratio(),
                    m.cli.median,
                    m.floor.median
                ),
                Some(m.ratio.median <= 1.3),
            );
            rss_row.set(
                format!(
                    "{:.1} MB (floor {:.1} MB)",
                    m.cli_rss_kb / 1000.0,
                    m.floor_rss_kb / 1000.0
                ),
                Some(m.cli_rss_kb <= 4000.0),
            );
        }
        Err(e) => {
            token_row.failed(&e);
            rss_row.failed(&e);
        }
    }
    rows.push(token_row);
    rows.push(rss_row);

    eprintln!("==> row 2: mcp token (keyring store, gnome-keyring) vs the floor");
    let mut keyring_row = Row::new(
        "2",
        "`mcp token` (valid token, keyring store: gnome-keyring, private D-Bus session) ÷ floor",
        "≤ 10×",
    );
    match keyring_row_outside(ctx, args, tmp.path(), &main_home, &toml) {
        Ok(m) => keyring_row.set(
            format!(
                "{}; {:.2} ms vs floor {:.2} ms; peak RSS {:.1} MB",
                m.ratio.ratio(),
                m.cli.median,
                m.floor.median,
                m.cli_rss_kb / 1000.0
            ),
            Some(m.ratio.median <= 10.0),
        ),
        Err(e) => keyring_row.failed(&e),
    }
    rows.push(keyring_row);

    eprintln!("==> row 3: {CONCURRENT} concurrent mcp token on an expired token");
    let mut refresh_row = Row::new(
        "3",
        format!(
            "{CONCURRENT} concurrent `mcp token` on an expired token: wall time; refreshes the server saw"
        ),
        "1 refresh",
    );
    match concurrent_refresh(
        &bins.cli,
        &main_home,
        &server,
        if args.quick { 2 } else { 5 },
    ) {
        Ok((wall, refreshes)) => {
            let counts: Vec<String> = refreshes.iter().map(u64::to_string).collect();
            refresh_row.set(
                format!("{}; refreshes per round: {}", wall.ms(), counts.join(", ")),
                Some(refreshes.iter().all(|&n| n == 1)),
            );
        }
        Err(e) => refresh_row.failed(&e),
    }
    rows.push(refresh_row);
    rows.push(open_row);
    rows.push(store_row);
    drop(server);

    eprintln!("==> row 7: mcp proxy (2025-11-25 vs mcp-remote; 2026-07-28)");
    rows.extend(proxy_rows(&bins, &ctx.root, tmp.path(), args));

    if util::which("gh").is_some() {
        eprintln!("==> peer: gh auth token");
        let mut gh_row = Row::new("peer", "`gh auth token` (token in hosts.yml) ÷ floor", "—");
        match gh_vs_floor(&bins, &main_home, tmp.path(), args) {
            Ok(m) => gh_row.set(
                format!(
                    "{}; {:.2} ms; peak RSS {:.1} MB",
                    m.ratio.ratio(),
                    m.cli.median,
                    m.cli_rss_kb / 1000.0
                ),
                None,
            ),
            Err(e) => gh_row.failed(&e),
        }
        rows.push(gh_row);
    }

    if args.quick {
        eprintln!("==> row 5: skipped (--quick)");
    } else {
        eprintln!("==> row 5: criterion benches");
        rows.extend(criterion_rows(ctx));
    }

    eprintln!("==> row 6: size and dependencies");
    rows.extend(size_rows(ctx, &bins));

    let report = render(&rows, args, &load, started.elapsed());
    let dir = ctx.target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    util::write(&dir.join("report.md"), &report)?;
    println!("\n{report}");
    eprintln!("(also written to {})", dir.join("report.md").display());
    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| r.met == Met::No)
        .map(|r| r.id)
        .collect();
    if !missed.is_empty() {
        bail!("goals not met or rows failed: {}", missed.join(", "));
    }
    Ok(())
}

/// Rows 7a–7c (2025-11-25 wire): `mcp proxy` and `mcp-remote` side by side, then rows 7d–7f
/// (2026-07-28 wire, no peer: mcp-remote does not speak it) ([`bench_proxy`](crate::bench_proxy)).
fn proxy_rows(bins: &Bins, root: &Path, tmp: &Path, args: &BenchArgs) -> Vec<Row> {
    let mut start = Row::new(
        "7a",
        "`mcp proxy` 2025-11-25: start → `initialize` answer (stored tokens)",
        "≤ 20 ms",
    );
    let mut added = Row::new(
        "7b",
        "`mcp proxy` 2025-11-25: added per request vs direct HTTP (median of 60)",
        "≤ 0.5 ms",
    );
    let mut rss = Row::new("7c", "`mcp proxy` 2025-11-25: peak RSS", "≤ 15 MB");
    let mut peer = Row::new(
        "peer",
        "`mcp-remote` 0.15.1 (node) 2025-11-25: start; added per request; peak RSS",
        "—",
    );
    match crate::bench_proxy::measure(&bins.cli, root, tmp, args.rounds) {
        Ok((ours, theirs)) => {
            set_proxy_rows(&ours, [&mut start, &mut added, &mut rss]);
            peer.set(
                format!(
                    "{}; {}; {:.1} MB",
                    Summary::of(&theirs.start_ms).ms(),
                    Summary::of(&theirs.added_ms).ms(),
                    theirs.rss_kb / 1000.0
                ),
                None,
            );
        }
        Err(e) => {
            for row in [&mut start, &mut added, &mut rss] {
                row.failed(&e);
            }
            peer.failed(&e);
        }
    }
    let mut start26 = Row::new(
        "7d",
        "`mcp proxy` 2026-07-28: start → `server/discover` answer (no authorization)",
        "≤ 20 ms",
    );
    let mut added26 = Row::new(
        "7e",
        "`mcp proxy` 2026-07-28: added per request vs direct HTTP (median of 60)",
        "≤ 0.5 ms",
    );
    let mut rss26 = Row::new("7f", "`mcp proxy` 2026-07-28: peak RSS", "≤ 15 MB");
    let mut peer26 = Row::new("peer", "`mcp-remote` 0.15.1 (node) 2026-07-28", "—");
    peer26.set(
        "n/a (mcp-remote does not speak 2026-07-28)".to_owned(),
        None,
    );
    match crate::bench_proxy::measure_2026(&bins.cli, root, tmp, args.rounds) {
        Ok(ours) => set_proxy_rows(&ours, [&mut start26, &mut added26, &mut rss26]),
        Err(e) => {
            for row in [&mut start26, &mut added26, &mut rss26] {
                row.failed(&e);
            }
        }
    }
    vec![start, added, rss, peer, start26, added26, rss26, peer26]
}

/// Fills the start, added-latency and RSS rows of one wire revision from `ours`.
fn set_proxy_rows(ours: &crate::bench_proxy::Measured, [start, added, rss]: [&mut Row; 3]) {
    let (s, a, d) = (
        Summary::of(&ours.start_ms),
        Summary::of(&ours.added_ms),
        Summary::of(&ours.direct_ms),
    );
    start.set(s.ms(), Some(s.median <= 20.0));
    added.set(
        format!("{}; direct {:.2} ms", a.ms(), d.median),
        Some(a.median <= 0.5),
    );
    rss.set(
        format!("{:.1} MB", ours.rss_kb / 1000.0),
        Some(ours.rss_kb <= 15_000.0),
    );
}

/// The two release programs under test.
#[derive(Debug)]
struct Bins {
    cli: PathBuf,
    floor: PathBuf,
}

/// Builds the CLI exactly as `dist` does and the floor example, both with the release profile.
fn build(ctx: &Context) -> Result<Bins> {
    util::run(ctx.cargo().args([
        "build",
        "--release",
        "--package",
        "context-harness-cli",
        "--bin",
        "context-harness",
    ]))?;
    // A separate invocation, so xtask's dev-dependencies cannot change the CLI's features.
    util::run(ctx.cargo().args([
        "build",
        "--release",
        "--package",
        "xtask",
        "--example",
        "token-floor",
    ]))?;
    let release = ctx.target_dir().join("release");
    Ok(Bins {
        cli: release.join("context-harness"),
        floor: release.join("examples").join("token-floor"),
    })
}

/// A `context-harness` command isolated in `home`, file store, no colours, no browser.
fn cli_command(cli: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(cli);
    cmd.args(args)
        .env("CONTEXT_HARNESS_HOME", home)
        .env("CONTEXT_HARNESS_STORAGE", "file")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("BENCH_CLIENT_ID")
        .env_remove("BENCH_CLIENT_SECRET")
        .stdin(Stdio::null());
    cmd
}

/// The floor reading `home`'s token file.
fn floor_command(floor: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(floor);
    cmd.arg(PROVIDER)
        .env("CONTEXT_HARNESS_HOME", home)
        .stdin(Stdio::null());
    cmd
}

/// Signs in once (file store unless `storage` says otherwise) with the stand-in browser; returns the `-vv`
/// log and the wall-clock time just before the process was spawned.
fn sign_in(cli: &Path, home: &Path, browser: &str, storage: &str) -> Result<(String, SystemTime)> {
    let mut cmd = cli_command(
        cli,
        home,
        &["-vv", "mcp", "auth", PROVIDER, "--timeout", "60"],
    );
    cmd.env("CONTEXT_HARNESS_STORAGE", storage)
        .env("BROWSER", browser)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    let spawned_at = SystemTime::now();
    let out = cmd
        .output()
        .context("cannot run `context-harness mcp auth`")?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success(),
        "`mcp auth` failed ({}):\n{log}",
        out.status
    );
    Ok((log, spawned_at))
}

/// Row 4: `count` sign-ins, each in a new home (the first one is `first_home`, kept for later rows).
/// Returns (process start → opener, callback → stored minus the token request), in ms.
fn sign_in_overhead(
    cli: &Path,
    tmp: &Path,
    first_home: &Path,
    toml: &str,
    browser: &str,
    count: usize,
) -> Result<(Summary, Summary)> {
    let mut open = Vec::new();
    let mut store = Vec::new();
    for i in 0..count {
        let home = if i == 0 {
            first_home.to_path_buf()
        } else {
            tmp.join(format!("login-{i}"))
        };
        std::fs::create_dir_all(&home)?;
        util::write(&home.join("providers.toml"), toml)?;
        let (log, spawned_at) = sign_in(cli, &home, browser, "file")?;
        let (o, s) = login_phases(&log, spawned_at)?;
        open.push(o);
        store.push(s);
    }
    Ok((Summary::of(&open), Summary::of(&store)))
}

/// The two overheads of one sign-in from its `-vv` log (see the module docs), in ms.
fn login_phases(log: &str, spawned_at: SystemTime) -> Result<(f64, f64)> {
    let at = |needle: &str, after: i64| -> Result<i64> {
        log.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split_whitespace().next().and_then(parse_utc_micros))
            .find(|&t| t >= after)
            .with_context(|| {
                format!("the `-vv` log has no `{needle}` event (is the CLI instrumented?):\n{log}")
            })
    };
    let spawned = spawned_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let opener = at("waiting for the authorization callback", spawned)?;
    let callback = at("authorization response received", opener)?;
    let request = at("http request", callback)?;
    let answer = at("http answer", request)?;
    let stored = at("tokens stored", answer)?;
    let ms = |us: i64| us as f64 / 1000.0;
    Ok((
        ms(opener - spawned),
        ms((request - callback) + (stored - answer)),
    ))
}

/// Unix microseconds of a UTC RFC 3339 timestamp as tracing-subscriber prints it
/// (`2025-11-28T07:38:11.123456Z`).
fn parse_utc_micros(stamp: &str) -> Option<i64> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    let micros: i64 = frac.parse().ok()?;
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

/// One comparison against the floor.
#[derive(Debug)]
struct Comparison {
    /// Per-round ratio program ÷ floor.
    ratio: Summary,
    /// The program's per-round medians, ms.
    cli: Summary,
    /// The floor's per-round medians, ms.
    floor: Summary,
    /// Median peak RSS of the program, kB.
    cli_rss_kb: f64,
    /// Median peak RSS of the floor, kB.
    floor_rss_kb: f64,
}

/// Row 1 (and the core of rows 2 and the gh peer): the CLI's `mcp token` vs the floor, same token file.
fn token_vs_floor(bins: &Bins, home: &Path, args: &BenchArgs) -> Result<Comparison> {
    let mut cli = cli_command(&bins.cli, home, &["mcp", "token", PROVIDER]);
    let floor = floor_command(&bins.floor, home);
    same_output(&mut cli, &mut floor_command(&bins.floor, home))?;
    compare(cli, floor, args)
}

/// Checks that both commands succeed and print the same token.
fn same_output(a: &mut Command, b: &mut Command) -> Result<()> {
    let (a, b) = (a.output()?, b.output()?);
    ensure!(
        a.status.success(),
        "the measured command failed: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    ensure!(b.status.success(), "the floor failed");
    ensure!(
        a.stdout == b.stdout && !a.stdout.is_empty(),
        "the measured command and the floor print different tokens"
    );
    Ok(())
}

/// Interleaved timing of `program` and the floor, plus their peak RSS.
fn compare(mut program: Command, mut floor: Command, args: &BenchArgs) -> Result<Comparison> {
    for cmd in [&mut program, &mut floor] {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        // Warm the page cache and the dynamic loader once.
        time_once(cmd)?;
    }
    let mut ratios = Vec::new();
    let mut program_ms = Vec::new();
    let mut floor_ms = Vec::new();
    for round in 0..args.rounds {
        let mut p = Vec::new();
        let mut f = Vec::new();
        for _ in 0..args.runs {
            if round % 2 == 0 {
                p.push(time_once(&mut program)?);
                f.push(time_once(&mut floor)?);
            } else {
                f.push(time_once(&mut floor)?);
                p.push(time_once(&mut program)?);
            }
        }
        let (p, f) = (Summary::of(&p).median, Summary::of(&f).median);
        program_ms.push(p);
        floor_ms.push(f);
        ratios.push(p / f);
    }
    Ok(Comparison {
        ratio: Summary::of(&ratios),
        cli: Summary::of(&program_ms),
        floor: Summary::of(&floor_ms),
        cli_rss_kb: peak_rss_kb(&program)?,
        floor_rss_kb: peak_rss_kb(&floor)?,
    })
}

/// Runs a command once; its wall time in ms (spawn to exit). Fails on a non-zero exit.
fn time_once(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", util::render(cmd)))?;
    let elapsed = start.elapsed();
    ensure!(
        status.success(),
        "`{}` failed ({status})",
        util::render(cmd)
    );
    Ok(elapsed.as_secs_f64() * 1000.0)
}

/// Median peak RSS (kB) of five runs, from `/usr/bin/time -f %M`.
fn peak_rss_kb(cmd: &Command) -> Result<f64> {
    let tmp = TempDir::new("context-harness-rss")?;
    let out = tmp.path().join("rss");
    let mut samples = Vec::new();
    for _ in 0..5 {
        let mut timed = Command::new("/usr/bin/time");
        timed
            .args(["-f", "%M", "-o"])
            .arg(&out)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        copy_env(cmd, &mut timed);
        let status = timed.status().context("cannot run /usr/bin/time")?;
        ensure!(
            status.success(),
            "`{}` failed ({status})",
            util::render(&timed)
        );
        let text = util::read(&out)?;
        let kb: f64 = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("unexpected /usr/bin/time output: {text:?}"))?;
        samples.push(kb);
    }
    Ok(Summary::of(&samples).median)
}

/// Copies the environment changes of `from` onto `to`.
fn copy_env(from: &Command, to: &mut Command) {
    for (key, value) in from.get_envs() {
        match value {
            Some(v) => to.env(key, v),
            None => to.env_remove(key),
        };
    }
}

/// Row 2, outside: prepares `<tmp>/keyring/home` (the providers.toml) and runs `xtask bench --keyring-row`
/// inside a private D-Bus session with an unlocked gnome-keyring; reads its results.
fn keyring_row_outside(
    ctx: &Context,
    args: &BenchArgs,
    tmp: &Path,
    floor_home: &Path,
    toml: &str,
) -> Result<Comparison> {
    let dir = tmp.join("keyring");
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    util::write(&home.join("providers.toml"), toml)?;
    // The floor keeps reading the file-store home of row 1.
    std::os::unix::fs::symlink(floor_home, dir.join("floor-home"))?;
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg("--keyring-row")
        .arg(&dir)
        .args(["--rounds", &args.rounds.to_string()])
        .args(["--runs", &args.runs.to_string()])
        .current_dir(&ctx.root);
    if let Some(target) = &ctx.target_dir {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = keyring::run_with_secret_service(&mut cmd, &[])?;
    ensure!(
        status.success(),
        "the keyring measurement failed ({status})"
    );
    let text = util::read(&dir.join("result"))?;
    let field = |name: &str| -> Result<Vec<f64>> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("no `{name}` in the keyring result"))?;
        line.split_whitespace()
            .map(|v| v.parse().context("bad number in the keyring result"))
            .collect()
    };
    let (ratio, cli, floor, rss) = (
        field("ratio")?,
        field("cli")?,
        field("floor")?,
        field("rss")?,
    );
    Ok(Comparison {
        ratio: Summary::of(&ratio),
        cli: Summary::of(&cli),
        floor: Summary::of(&floor),
        cli_rss_kb: rss.first().copied().unwrap_or(f64::NAN),
        floor_rss_kb: rss.get(1).copied().unwrap_or(f64::NAN),
    })
}

/// Row 2, inside the session: signs in with the keyring store, then compares against the floor and writes
/// `DIR/result`.
fn keyring_row_inside(ctx: &Context, args: &BenchArgs, dir: &Path) -> Result<()> {
    ensure!(
        std::env::var_os(keyring::MARKER_VAR).is_some(),
        "--keyring-row only runs inside `cargo xtask with-secret-service`"
    );
    let release = ctx.target_dir().join("release");
    let bins = Bins {
        cli: release.join("context-harness"),
        floor: release.join("examples").join("token-floor"),
    };
    let home = dir.join("home");
    let browser = local_server::follow_browser(&ctx.root);
    sign_in(&bins.cli, &home, &browser, "keyring")?;
    ensure!(
        !local_server::token_file(&home, PROVIDER).exists(),
        "`--storage keyring` wrote a token file"
    );
    let mut cli = cli_command(&bins.cli, &home, &["mcp", "token", PROVIDER]);
    cli.env("CONTEXT_HARNESS_STORAGE", "keyring");
    let floor = floor_command(&bins.floor, &dir.join("floor-home"));
    // The two homes hold different tokens, so only check that the keyring one is printed.
    let out = cli.output()?;
    ensure!(
        out.status.success() && !out.stdout.is_empty(),
        "`mcp token` with the keyring store failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = compare(cli, floor, args)?;
    let mut result = String::new();
    let mut line = |name: &str, values: &[f64]| {
        let values: Vec<String> = values.iter().map(f64::to_string).collect();
        let _ = writeln!(result, "{name} {}", values.join(" "));
    };
    line("ratio", &[m.ratio.median, m.ratio.min, m.ratio.max]);
    line("cli", &[m.cli.median, m.cli.min, m.cli.max]);
    line("floor", &[m.floor.median, m.floor.min, m.floor.max]);
    line("rss", &[m.cli_rss_kb, m.floor_rss_kb]);
    util::write(&dir.join("result"), result)
}

/// Row 3: per round, expires the stored token, then `CONCURRENT` processes ask for it at once. Returns the
/// wall times (ms) and the refresh requests the server saw, per round.
fn concurrent_refresh(
    cli: &Path,
    home: &Path,
    server: &AuthServer,
    rounds: usize,
) -> Result<(Summary, Vec<u64>)> {
    let mut walls = Vec::new();
    let mut refreshes = Vec::new();
    for _ in 0..rounds {
        expire_token(home)?;
        server.reset_stats()?;
        let start = Instant::now();
        let children = (0..CONCURRENT)
            .map(|_| {
                cli_command(cli, home, &["mcp", "token", PROVIDER])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .collect::<std::io::Result<Vec<_>>>()
            .context("cannot start `mcp token`")?;
        let mut tokens = Vec::new();
        for child in children {
            let out = child.wait_with_output()?;
            ensure!(
                out.status.success(),
                "a concurrent `mcp token` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            tokens.push(out.stdout);
        }
        walls.push(start.elapsed().as_secs_f64() * 1000.0);
        tokens.dedup();
        ensure!(
            tokens.len() == 1,
            "the concurrent processes printed different tokens"
        );
        refreshes.push(server.refresh_requests()?);
    }
    Ok((Summary::of(&walls), refreshes))
}

/// Moves the stored token's `issued_at` back so it has expired (refresh token untouched).
fn expire_token(home: &Path) -> Result<()> {
    let path = local_server::token_file(home, PROVIDER);
    let text = util::read(&path)?;
    let (issued_at, span) = local_server::json_number_span(&text, "issued_at")
        .with_context(|| format!("no issued_at in {}", path.display()))?;
    let lifetime = local_server::json_number(&text, "expires_in").unwrap_or(3600.0);
    let earlier = (issued_at - lifetime - 600.0).floor();
    let mut text = text;
    text.replace_range(span, &format!("{earlier:.1}"));
    util::write(&path, text)
}

/// The gh peer: a `hosts.yml` holding a token in a private `GH_CONFIG_DIR`, `gh auth token` vs the floor.
fn gh_vs_floor(bins: &Bins, floor_home: &Path, tmp: &Path, args: &BenchArgs) -> Result<Comparison> {
    let config = tmp.join("gh");
    std::fs::create_dir_all(&config)?;
    util::write(
        &config.join("hosts.yml"),
        "github.com:\n    user: bench\n    oauth_token: gho_bench0123456789\n    git_protocol: https\n",
    )?;
    let mut gh = Command::new("gh");
    gh.args(["auth", "token", "--hostname", "github.com"])
        .env("GH_CONFIG_DIR", &config)
        .env("HOME", tmp)
        .env("GH_NO_UPDATE_NOTIFIER", "1")
        .env("GH_PROMPT_DISABLED", "1")
        // No keyring lookup: gh reads hosts.yml, like the file store.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .stdin(Stdio::null());
    let out = gh.output().context("cannot run gh")?;
    ensure!(
        out.status.success(),
        "gh auth token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare(gh, floor_command(&bins.floor, floor_home), args)
}

/// Row 5: criterion estimates (median with its 95 % interval) from the `pkce` and `callback-server` benches.
fn criterion_rows(ctx: &Context) -> Vec<Row> {
    let home = ctx.target_dir().join("criterion");
    let mut pkce = Row::new("5a", "PKCE pair generation (criterion)", "≤ 1 µs");
    let mut bind = Row::new(
        "5b",
        "callback listener bind → ready (criterion)",
        "reference",
    );
    let mut trip = Row::new(
        "5c",
        "callback round trip: connect → page → `wait` returns (criterion)",
        "reference",
    );
    let run_bench = |package: &str, bench: &str| {
        util::run(
            ctx.cargo()
                .args(["bench", "--package", package, "--bench", bench, "--"])
                .args(["--warm-up-time", "1", "--measurement-time", "2"])
                .env("CRITERION_HOME", &home),
        )
    };
    match run_bench("context-harness-pkce", "pkce")
        .and_then(|()| criterion_estimate(&home, "PkceChallenge__generate"))
    {
        Ok(ns) => pkce.set(ns.ns(), Some(ns.median <= 1000.0)),
        Err(e) => pkce.failed(&e),
    }
    match run_bench("context-harness-callback-server", "callback") {
        Ok(()) => {
            for (row, dir) in [
                (&mut bind, "bind_ready"),
                (&mut trip, "callback_round_trip"),
            ] {
                match criterion_estimate(&home, dir) {
                    Ok(ns) => row.set(ns.ns(), None),
                    Err(e) => row.failed(&e),
                }
            }
        }
        Err(e) => {
            bind.failed(&e);
            trip.failed(&e);
        }
    }
    vec![pkce, bind, trip]
}

impl Summary {
    /// A criterion estimate in ns: `681 ns (95 % CI 657–703)`, or µs above 10 µs.
    fn ns(&self) -> String {
        if self.median >= 10_000.0 {
            format!(
                "{:.1} µs (95 % CI {:.1}–{:.1})",
                self.median / 1000.0,
                self.min / 1000.0,
                self.max / 1000.0
            )
        } else {
            format!(
                "{:.0} ns (95 % CI {:.0}–{:.0})",
                self.median, self.min, self.max
            )
        }
    }
}

/// The median estimate (ns) and its confidence interval from `<home>/<dir>/new/estimates.json`.
fn criterion_estimate(home: &Path, dir: &str) -> Result<Summary> {
    let path = home.join(dir).join("new").join("estimates.json");
    let text = util::read(&path)?;
    let median = text
        .find("\"median\"")
        .map(|i| &text[i..])
        .with_context(|| format!("no median in {}", path.display()))?;
    let get = |key: &str| {
        local_server::json_number(median, key)
            .with_context(|| format!("no median {key} in {}", path.display()))
    };
    Ok(Summary {
        median: get("point_estimate")?,
        min: get("lower_bound")?,
        max: get("upper_bound")?,
    })
}

/// Row 6: binary size and dependency counts.
fn size_rows(ctx: &Context, bins: &Bins) -> Vec<Row> {
    let mut size = Row::new(
        "6a",
        "release binary `context-harness` (stripped, `profile.release`)",
        "≤ 8 MB",
    );
    match std::fs::metadata(&bins.cli) {
        Ok(m) => {
            let mb = m.len() as f64 / 1e6;
            size.set(format!("{mb:.2} MB ({} bytes)", m.len()), Some(mb <= 8.0));
        }
        Err(e) => size.failed(&e.into()),
    }
    let mut deps = Row::new(
        "6b",
        "dependencies (normal, host target) of `pkce` / `storage` / `storage --features keyring`",
        "reference",
    );
    let count = |package: &str, features: &[&str]| -> Result<usize> {
        let tree = util::output(
            ctx.cargo()
                .args(["tree", "--package", package, "--edges", "normal"])
                .args(["--prefix", "none"])
                .args(features),
        )?;
        let mut names: Vec<&str> = tree
            .lines()
            .map(|l| l.trim_end_matches(" (*)").trim())
            .filter(|l| !l.is_empty())
            .collect();
        names.sort_unstable();
        names.dedup();
        // Not the package itself.
        Ok(names.len().saturating_sub(1))
    };
    match (
        count("context-harness-pkce", &[]),
        count("context-harness-storage", &[]),
        count("context-harness-storage", &["--features", "keyring"]),
    ) {
        (Ok(p), Ok(s), Ok(k)) => deps.set(format!("{p} / {s} / {k} crates"), None),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => deps.failed(&e),
    }
    vec![size, deps]
}

/// The markdown report.
fn render(rows: &[Row], args: &BenchArgs, load: &str, took: Duration) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mut out = String::new();
    let _ = writeln!(out, "| # | Measurement | Result | Goal | Met |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for row in rows {
        let met = match row.met {
            Met::Yes => "yes",
            Met::No => "**no**",
            Met::Info => "—",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {met} |",
            row.id, row.what, row.result, row.goal
        );
    }
    let _ = writeln!(
        out,
        "\n{cpus} CPUs, load average {load} at the start; {} rounds × {} runs per program, interleaved; \
         median of the per-round medians (min–max over rounds); bench took {}.",
        args.rounds,
        args.runs,
        util::fmt_duration(took)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let s = Summary::of(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!(
            s,
            Summary {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert!((Summary::of(&[1.0, 2.0]).median - 1.5).abs() < 1e-9);
        assert_eq!(s.ratio(), "2.00× (1.00–3.00)");
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_utc_micros("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            parse_utc_micros("2025-11-28T07:38:11.5Z"),
            Some(1_764_315_491_500_000)
        );
        assert_eq!(parse_utc_micros("not a time"), None);
    }

    #[test]
    fn login_log_is_split_into_phases() {
        let log = "\
2025-01-01T00:00:00.002000Z  INFO waiting for the authorization callback provider=\"bench\"
2025-01-01T00:00:00.100000Z  INFO authorization response received
2025-01-01T00:00:00.101000Z DEBUG http request what=\"token endpoint\"
2025-01-01T00:00:00.150000Z DEBUG http answer status=200
2025-01-01T00:00:00.152500Z  INFO signed in; tokens stored
";
        let spawned = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        let phases = login_phases(log, spawned).ok();
        assert_eq!(phases, Some((2.0, 3.5)));
    }
}
