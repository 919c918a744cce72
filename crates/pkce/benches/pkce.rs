//! Benchmarks generating a PKCE pair (32 bytes from the OS CSPRNG, base64url, SHA-256).

use std::hint::black_box;

use context_harness_pkce::{CodeVerifier, PkceChallenge, State};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    c.bench_function("PkceChallenge::generate", |b| {
        b.iter(|| black_box(PkceChallenge::generate()));
    });
    let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    c.bench_function("CodeVerifier::challenge (SHA-256 + base64url)", |b| {
        b.iter(|| black_box(verifier.as_ref().map(CodeVerifier::challenge)));
    });
    c.bench_function("State::generate", |b| {
        b.iter(|| black_box(State::generate()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
