//! The stdio side of `mcp proxy`: stdin read line by line and dispatched to the [`Bridge`], answers
//! written to stdout one line each, and the signals that end the session.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::jsonrpc::{self, MAX_MESSAGE_BYTES};
use super::{Bridge, MAX_IN_FLIGHT};
use crate::exit;

/// Writes each message as one line, in the order they were queued.
pub(super) async fn write_stdout(mut rx: mpsc::Receiver<String>) {
    let mut stdout = tokio::io::stdout();
    while let Some(line) = rx.recv().await {
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
            // The client is gone; keep draining so nothing blocks.
            continue;
        }
    }
}

/// Reads stdin line by line (each at most [`MAX_MESSAGE_BYTES`]) and dispatches; returns the exit
/// code once stdin ends (answers in flight first) or a signal comes.
pub(super) async fn serve(bridge: Arc<Bridge>) -> u8 {
    // `read_line` keeps a partly read line in its own state, so it is not cancellation-safe: racing
    // it in `select!` against the reaping below would drop the first half of a line that arrived in
    // two pieces (a client writing the message, then its line break). It runs in a task of its own
    // and hands over whole lines; a channel's `recv` is cancellation-safe. Capacity 1 keeps stdin
    // read no faster than messages are dispatched.
    let (line_tx, mut lines) = mpsc::channel::<std::io::Result<Option<Line>>>(1);
    let reader = tokio::spawn(async move {
        let mut stdin = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
        loop {
            let line = read_line(&mut stdin).await;
            let end = !matches!(line, Ok(Some(_)));
            if line_tx.send(line).await.is_err() || end {
                break;
            }
        }
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut previous: Option<oneshot::Receiver<()>> = None;
    let mut terminate = signal_stream();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line.unwrap_or(Ok(None)),
            () = &mut terminate => {
                reader.abort();
                tracing::info!("signal received; closing the session");
                bridge.close().await;
                return exit::OK;
            }
            // Reap finished tasks as they go so the set stays small.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let line = match line {
            Ok(Some(Line::Text(line))) => line,
            Ok(Some(Line::TooLong)) => {
                bridge
                    .send_out(jsonrpc::error_response(
                        &Value::Null,
                        jsonrpc::INVALID_REQUEST,
                        &format!(
                            "message over {} MiB refused",
                            MAX_MESSAGE_BYTES / (1024 * 1024)
                        ),
                        "message_too_large",
                        None,
                    ))
                    .await;
                continue;
            }
            Ok(None) | Err(_) => break,
        };
        if line.trim().is_empty() {
            continue;
        }
        let Some(kind) = jsonrpc::classify(&line) else {
            bridge
                .send_out(jsonrpc::error_response(
                    &Value::Null,
                    jsonrpc::PARSE_ERROR,
                    "not a JSON message",
                    "parse_error",
                    None,
                ))
                .await;
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (accepted_tx, accepted_rx) = oneshot::channel();
        let wait_for = previous.replace(accepted_rx);
        let bridge = Arc::clone(&bridge);
        tasks.spawn(async move {
            if let Some(earlier) = wait_for {
                let _ = earlier.await;
            }
            bridge.handle(line, kind, accepted_tx).await;
            drop(permit);
        });
    }
    reader.abort();
    // End of input: the answers in flight first (a signal cuts that short), then the DELETE.
    tokio::select! {
        () = async { while tasks.join_next().await.is_some() {} } => {}
        () = &mut terminate => {}
    }
    bridge.close().await;
    exit::OK
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C elsewhere).
fn signal_stream() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => Box::pin(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }),
            _ => Box::pin(std::future::pending()),
        }
    }
    #[cfg(not(unix))]
    {
        Box::pin(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

enum Line {
    Text(String),
    TooLong,
}

/// One line from stdin without its line break; a line over the limit is skipped to its end.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i.saturating_add(1), true),
            None => (available.len(), false),
        };
        if !too_long {
            if line.len().saturating_add(used) > MAX_MESSAGE_BYTES.saturating_add(1) {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&available[..used]);
            }
        }
        reader.consume(used);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Some(Line::TooLong));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(Line::Text(
        String::from_utf8_lossy(&line).into_owned(),
    )))
}
