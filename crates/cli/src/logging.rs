//! Diagnostics on stderr through `tracing`: `-v` info, `-vv` debug, `-vvv` trace, `-q` errors only,
//! warnings by default; a non-empty `RUST_LOG` replaces all of that with its own directives.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::context::color_enabled;

/// Installs the global subscriber (cheap: no filter parsing unless `RUST_LOG` is set).
pub(crate) fn init(verbose: u8, quiet: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled())
        .with_target(verbose >= 2);
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let _ = match rust_log {
        Some(directives) => builder
            .with_env_filter(EnvFilter::builder().parse_lossy(directives))
            .try_init(),
        None => {
            let level = match (quiet, verbose) {
                (true, _) => LevelFilter::ERROR,
                (false, 0) => LevelFilter::WARN,
                (false, 1) => LevelFilter::INFO,
                (false, 2) => LevelFilter::DEBUG,
                (false, _) => LevelFilter::TRACE,
            };
            builder.with_max_level(level).try_init()
        }
    };
}
