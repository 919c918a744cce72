//! Diagnostics on stderr through `tracing`: `-v` info, `-vv` debug, `-vvv` trace, `-q` errors only,
//! warnings by default; a non-empty `RUST_LOG` replaces all of that with its own directives.
//!
//! Every field of every event and span (the message included) goes through the one terminal
//! sanitiser ([`SanitisedFields`]) before it reaches stderr, whatever the call site logged: a
//! server's `client_id`, an error description or a header value cannot carry an escape sequence,
//! a bidi override or a line break into the terminal, at any level. The rest of a line (time,
//! level, target, span names) is the program's own text.

use std::fmt;
use std::sync::OnceLock;

use context_harness_providers::terminal_text_max;
use tracing::subscriber::{Interest, Subscriber};
use tracing::{Event, Metadata, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

use crate::context::color_enabled;

/// The most characters of one event's (or span's) fields that reach stderr; longer text is cut and
/// ends with `…`.
pub(crate) const MAX_LOG_FIELDS_CHARS: usize = 8000;

/// Installs the global subscriber (cheap: no filter parsing unless `RUST_LOG` is set, and without
/// `RUST_LOG` the formatting subscriber is only built when the first event or span at an enabled
/// level arrives, see [`Deferred`]).
pub(crate) fn init(verbose: u8, quiet: bool) {
    let ansi = color_enabled();
    let builder = move || {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .fmt_fields(SanitisedFields)
            .with_target(verbose >= 2)
    };
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let _ = match rust_log {
        Some(directives) => builder()
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
            tracing::subscriber::set_global_default(Deferred {
                level,
                inner: OnceLock::new(),
                make: move || builder().with_max_level(level).finish(),
            })
            .map_err(Into::into)
        }
    };
}

/// A subscriber that filters by `level` alone (as the formatting subscriber with a maximum level
/// does: a callsite above it is never enabled) and builds that formatting subscriber (`make`) on
/// first use: the first event or span that passes the level. A run that logs nothing (the usual
/// `mcp token`, at the default level `warn`) never builds it, and so never allocates and zeroes
/// its span registry (some 28 KiB) or touches its code: fewer page faults and less resident
/// memory on the fast path. Once built, every call goes to it.
struct Deferred<S, F> {
    level: LevelFilter,
    inner: OnceLock<S>,
    make: F,
}

impl<S, F> Deferred<S, F>
where
    F: Fn() -> S,
{
    fn inner(&self) -> &S {
        self.inner.get_or_init(&self.make)
    }
}

impl<S, F> Subscriber for Deferred<S, F>
where
    S: Subscriber,
    F: Fn() -> S + Send + Sync + 'static,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        match self.inner.get() {
            Some(inner) => inner.register_callsite(metadata),
            None if self.level >= *metadata.level() => Interest::always(),
            None => Interest::never(),
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        match self.inner.get() {
            Some(inner) => inner.enabled(metadata),
            None => self.level >= *metadata.level(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match self.inner.get() {
            Some(inner) => inner.max_level_hint(),
            None => Some(self.level),
        }
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner().event_enabled(event)
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        self.inner().new_span(span)
    }

    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.inner().record(span, values);
    }

    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.inner().record_follows_from(span, follows);
    }

    fn event(&self, event: &Event<'_>) {
        self.inner().event(event);
    }

    fn enter(&self, span: &span::Id) {
        self.inner().enter(span);
    }

    fn exit(&self, span: &span::Id) {
        self.inner().exit(span);
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner().clone_span(id)
    }

    fn try_close(&self, id: span::Id) -> bool {
        self.inner().try_close(id)
    }
}

/// Formats fields as `tracing-subscriber`'s [`DefaultFields`] does (`message name=value …`, without
/// colours), then passes the whole text through
/// [`context_harness_providers::terminal_text_max`]: control, format and bidi
/// characters become `U+FFFD`, line breaks a space (so a field cannot forge another log line), and
/// the text is cut at [`MAX_LOG_FIELDS_CHARS`]. The newline that ends each event is written by the
/// event formatter after the fields, so it stays.
pub(crate) struct SanitisedFields;

impl<'writer> FormatFields<'writer> for SanitisedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut raw = String::new();
        DefaultFields::new().format_fields(Writer::new(&mut raw), fields)?;
        writer.write_str(&terminal_text_max(&raw, MAX_LOG_FIELDS_CHARS))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use context_harness_providers::tokens::is_unsafe_for_terminal;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Hostile(&'static str);

    impl fmt::Display for Hostile {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Hostile {}

    /// Every way a value reaches an event (message text, `%` Display, `?` Debug, a `&str` field, an
    /// error with a source chain, span fields, `record`ed span fields) at TRACE, with colours on
    /// (as on a terminal): no escape, C1 control, bidi or format character in the output, one line
    /// per event.
    #[test]
    fn no_field_at_any_level_carries_terminal_controls() {
        const ATTACK: &str = "id\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{202E}txet\u{2066}\u{200B}\u{FEFF}\r\nERROR forged line";
        let buffer = Buffer::default();
        let make = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || make.clone())
            .with_ansi(true)
            .fmt_fields(SanitisedFields)
            .with_max_level(LevelFilter::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("sign_in", server = %ATTACK, later = tracing::field::Empty);
            let _entered = span.enter();
            span.record("later", ATTACK);
            tracing::trace!(client_id = %ATTACK, "registered {ATTACK}");
            tracing::debug!(header = ?ATTACK, value = ATTACK, "debug");
            tracing::info!(
                error = &Hostile(ATTACK) as &(dyn std::error::Error + 'static),
                "info"
            );
            tracing::warn!("{ATTACK}");
            tracing::error!(message = ATTACK);
        });
        let bytes = buffer.0.lock().map(|v| v.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        // Our own colour codes are the only escapes; strip them, then nothing unsafe may remain.
        let without_colours = strip_sgr(&text);
        for line in without_colours.lines() {
            assert!(
                !line.chars().any(is_unsafe_for_terminal),
                "unsafe character in {line:?}"
            );
        }
        assert_eq!(without_colours.lines().count(), 5, "{without_colours}");
        assert!(
            !without_colours.contains("\nERROR forged"),
            "{without_colours}"
        );
        assert!(
            without_colours.contains("registered id"),
            "{without_colours}"
        );
        assert!(without_colours.contains("txet"), "{without_colours}");
    }

    /// The deferred subscriber builds the formatting one only for an event at an enabled level,
    /// and from then on everything it formats reaches the writer, spans included.
    #[test]
    fn the_subscriber_is_built_on_the_first_enabled_event() {
        let buffer = Buffer::default();
        let make = buffer.clone();
        let built = Arc::new(Mutex::new(0_u32));
        let counter = Arc::clone(&built);
        let subscriber = Deferred {
            level: LevelFilter::WARN,
            inner: OnceLock::new(),
            make: move || {
                if let Ok(mut n) = counter.lock() {
                    *n += 1;
                }
                let make = make.clone();
                tracing_subscriber::fmt()
                    .with_writer(move || make.clone())
                    .with_ansi(false)
                    .with_target(false)
                    .fmt_fields(SanitisedFields)
                    .with_max_level(LevelFilter::WARN)
                    .finish()
            },
        };
        let builds = || built.lock().map(|n| *n).unwrap_or(u32::MAX);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not shown");
            tracing::debug!("not shown either");
            let _quiet = tracing::info_span!("quiet").entered();
            assert_eq!(builds(), 0, "built for a disabled level");
            let _span = tracing::warn_span!("outer", n = 1).entered();
            tracing::warn!(field = "value", "first");
            tracing::error!("second");
            tracing::info!("still not shown");
        });
        assert_eq!(builds(), 1);
        let bytes = buffer.0.lock().map(|v| v.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains("WARN outer{n=1}: first field=\"value\""),
            "{text}"
        );
        assert!(text.contains("ERROR outer{n=1}: second"), "{text}");
        assert!(!text.contains("not shown"), "{text}");
    }

    /// `text` without the SGR colour sequences the formatter writes (`ESC [ digits;… m`).
    fn strip_sgr(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' && chars.peek() == Some(&'[') {
                let mut sequence = String::new();
                for next in chars.by_ref() {
                    sequence.push(next);
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
                // Only colour sequences are stripped; anything else stays and fails the test.
                if sequence.ends_with('m')
                    && sequence[1..sequence.len() - 1]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ';')
                {
                    continue;
                }
                out.push(c);
                out.push_str(&sequence);
                continue;
            }
            out.push(c);
        }
        out
    }
}
