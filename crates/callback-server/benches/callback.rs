//! Criterion benchmarks: binding the listener until it is ready, and one callback round trip
//! (connect, request, page received, `wait` returned, listener closed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use context_harness_callback_server::{CallbackConfig, CallbackServer};
use context_harness_pkce::State;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn ephemeral() -> CallbackConfig {
    CallbackConfig::default()
        .with_ports([0])
        .with_timeout(Duration::from_secs(30))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bind_ready(c: &mut Criterion) {
    let rt = runtime();
    c.bench_function("bind_ready", |b| {
        b.iter(|| {
            let server = rt.block_on(CallbackServer::bind(ephemeral())).unwrap();
            black_box(server.redirect_uri());
        });
    });
}

fn callback_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let state = State::generate().unwrap();
    let request = format!(
        "GET /callback?code=bench&state={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        state.as_str()
    );
    c.bench_function("callback_round_trip", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Binding is measured above; time from the browser's connect to `wait` done.
                let server = rt.block_on(CallbackServer::bind(ephemeral())).unwrap();
                let port = server.port();
                let started = Instant::now();
                rt.block_on(async {
                    let browser = async {
                        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .unwrap();
                        stream.write_all(request.as_bytes()).await.unwrap();
                        let mut page = Vec::new();
                        stream.read_to_end(&mut page).await.unwrap();
                        page
                    };
                    let (response, page) = tokio::join!(server.wait(&state), browser);
                    assert_eq!(response.unwrap().code.secret(), "bench");
                    assert!(page.starts_with(b"HTTP/1.1 200"));
                });
                total += started.elapsed();
            }
            total
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bind_ready, callback_round_trip
}
criterion_main!(benches);
