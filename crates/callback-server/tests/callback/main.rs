//! Integration tests for the callback listener: real loopback sockets, raw HTTP/1.1 requests
//! from `std::net::TcpStream`, ephemeral or test-chosen ports only (never 8080).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    unreachable_pub
)]

mod fuzz;
mod listener;
mod logging;
mod paste_back;
mod util;
