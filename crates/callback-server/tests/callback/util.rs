//! Raw HTTP/1.1 over `std::net::TcpStream`, and helpers to hold and find ports.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use context_harness_callback_server::CallbackConfig;

/// Whether this host has IPv6 loopback. Tests that need it check and say so when it is absent.
pub fn has_ipv6() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

pub fn v4(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

/// An ephemeral-port configuration with a timeout long enough for any test on a busy machine
/// (the tests end the wait themselves; the timeout is only a backstop).
pub fn ephemeral() -> CallbackConfig {
    CallbackConfig::default()
        .with_ports([0])
        .with_timeout(Duration::from_secs(30))
}

/// Holds a port on 127.0.0.1 only.
pub fn hold_v4() -> (TcpListener, u16) {
    let l = TcpListener::bind(v4(0)).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Holds a port on [::1] only, with 127.0.0.1 of the same port free (as far as we know).
pub fn hold_v6() -> (TcpListener, u16) {
    loop {
        let (l4, port) = hold_v4();
        if let Ok(l6) = TcpListener::bind(v6(port)) {
            drop(l4);
            return (l6, port);
        }
    }
}

/// A port free on both families right now.
pub fn free_port() -> u16 {
    loop {
        let (l4, port) = hold_v4();
        if !has_ipv6() || TcpListener::bind(v6(port)).is_ok() {
            drop(l4);
            return port;
        }
    }
}

/// Fails unless `port` can be bound again on both loopback families (the listener is closed).
pub fn assert_port_free(port: u16) {
    TcpListener::bind(v4(port)).unwrap_or_else(|e| panic!("127.0.0.1:{port} still held: {e}"));
    if has_ipv6() {
        TcpListener::bind(v6(port)).unwrap_or_else(|e| panic!("[::1]:{port} still held: {e}"));
    }
}

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(stream)
}

/// Sends `request` as is and reads the response until the server closes the connection.
pub fn send(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut stream = connect(addr)?;
    stream.write_all(request)?;
    read_all(&mut stream)
}

/// Sends `bytes`, closes the write side (so an incomplete request ends), reads what comes.
pub fn send_and_close(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    // The server may close first (say, after a 400 for garbage): a failed write is fine.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(out),
        Err(e) => Err(e),
    }
}

pub fn read_all(stream: &mut TcpStream) -> io::Result<String> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

pub fn request(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
        .into_bytes()
}

/// `GET target` and the full response.
pub fn get(addr: SocketAddr, target: &str) -> String {
    send(addr, &request("GET", target)).unwrap()
}

/// The status code of a raw response, or 0 if there is none.
pub fn status(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The lowercase value of a response header.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Starts blocking client code off the runtime's thread, now; await the handle for its result.
pub fn client<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

/// Form-encodes a value (every byte outside the unreserved set as %XX).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
