//! A small local HTTPS stub for the TLS-trust tests, shared by this crate's integration tests and
//! the CLI's (`crates/cli/tests/cli/main.rs` includes this file with `#[path]`).
//!
//! The certificate is issued for `localhost` and 127.0.0.1 by a private CA made at test time with
//! the `openssl` command: no trust store accepts it unless `SSL_CERT_FILE` / `SSL_CERT_DIR` name the
//! CA. The stub reproduces "a server with a corporate CA"; it is not any real server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Reads one HTTP/1.1 request (request line, headers, `Content-Length` body) from `stream`:
/// `(method, target, body)`.
pub(crate) fn read_request(stream: &mut impl Read) -> Option<(String, String, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, target, String::from_utf8_lossy(&body).into_owned()))
}

/// Runs `openssl` with `args`; whether it succeeded.
fn openssl(args: &[impl AsRef<std::ffi::OsStr>]) -> bool {
    Command::new("openssl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A private certificate authority and a server certificate it issued for `localhost` and
/// 127.0.0.1 (PEM files).
pub(crate) struct Pki {
    /// The CA's (self-signed) certificate: what `SSL_CERT_FILE` names.
    #[allow(dead_code, reason = "only the CLI's tests set SSL_CERT_FILE")]
    pub(crate) ca: PathBuf,
    /// The server's certificate, issued by the CA (not a CA itself, as WebPKI requires).
    pub(crate) cert: PathBuf,
    /// The server certificate's private key.
    pub(crate) key: PathBuf,
}

/// Makes a private CA and a server certificate it issues, with the `openssl` command, in `dir`;
/// `None` (test skipped, noted) when `openssl` is missing or fails.
pub(crate) fn private_ca(dir: &Path) -> Option<Pki> {
    let p = |name: &str| dir.join(name);
    let (ca, ca_key, csr, ext) = (p("ca.pem"), p("ca-key.pem"), p("leaf.csr"), p("leaf.ext"));
    let (cert, key) = (p("cert.pem"), p("key.pem"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let os = |args: &[&str]| -> Vec<std::ffi::OsString> { args.iter().map(Into::into).collect() };
    let steps: [Vec<std::ffi::OsString>; 3] = [
        [
            os(&["req", "-x509"]),
            os(&ec),
            os(&[
                "-days",
                "2",
                "-subj",
                "/CN=context-harness test CA",
                "-keyout",
            ]),
            vec![ca_key.clone().into()],
            os(&["-out"]),
            vec![ca.clone().into()],
        ]
        .concat(),
        [
            os(&["req", "-new"]),
            os(&ec),
            os(&["-subj", "/CN=localhost", "-keyout"]),
            vec![key.clone().into()],
            os(&["-out"]),
            vec![csr.clone().into()],
        ]
        .concat(),
        [
            os(&["x509", "-req", "-days", "2", "-CAcreateserial", "-in"]),
            vec![csr.into(), "-CA".into(), ca.clone().into(), "-CAkey".into()],
            vec![ca_key.into(), "-extfile".into(), ext.clone().into()],
            vec!["-out".into(), cert.clone().into()],
        ]
        .concat(),
    ];
    let made = std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .is_ok()
        && steps.iter().all(|args| openssl(args));
    if made {
        Some(Pki { ca, cert, key })
    } else {
        eprintln!("note: `openssl` is not available; TLS trust test skipped");
        None
    }
}

/// A directory in `SSL_CERT_DIR` form holding `ca`: a copy plus its `<subject hash>.0` link made
/// by `openssl rehash`. `None` (noted) when that fails.
#[allow(dead_code, reason = "only the CLI's tests set SSL_CERT_DIR")]
pub(crate) fn hashed_dir(ca: &Path, dir: &Path) -> Option<PathBuf> {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).ok()?;
    std::fs::copy(ca, certs.join("stub-ca.pem")).ok()?;
    if openssl(&[std::ffi::OsStr::new("rehash"), certs.as_os_str()]) {
        Some(certs)
    } else {
        eprintln!("note: `openssl rehash` failed; SSL_CERT_DIR case skipped");
        None
    }
}

/// Starts an HTTPS stub on a loopback port serving `cert`/`key`; each request (one per
/// connection) is answered with the raw HTTP response `answer(method, target, body)` returns.
/// Returns the base URL, `https://localhost:PORT`.
pub(crate) fn https_stub(
    cert: &Path,
    key: &Path,
    answer: impl Fn(&str, &str, &str) -> String + Send + 'static,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = vec![CertificateDer::from_pem_file(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            // An untrusting client aborts the handshake here: nothing to answer.
            let Some((method, target, body)) = read_request(&mut tls) else {
                continue;
            };
            let _ = tls.write_all(answer(&method, &target, &body).as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    base
}
