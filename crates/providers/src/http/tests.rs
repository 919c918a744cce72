//! Tests of the HTTP client's error classification: untrusted certificates, host names that do
//! not resolve (whose host: the user's or a server's), connect and answer timeouts.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn certificate_errors_are_found_through_io_errors() {
    let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
    let err = tls_trust_failure(&io, "the token endpoint at x").unwrap();
    assert_eq!(err.code(), ErrorCode::NetworkError);
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert!(
        err.to_string().contains("unknown certificate authority"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("SSL_CERT_FILE"));
    let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert!(tls_trust_failure(&other, "x").is_none());
}

/// A client with short timeouts and no proxy.
fn http(connect_ms: u64, request_ms: u64) -> Http {
    Http::new(
        HttpSettings {
            connect_timeout: Duration::from_millis(connect_ms),
            request_timeout: Duration::from_millis(request_ms),
        },
        ProxyEnv::default(),
    )
}

async fn get(http: &Http, url: &str, policy: Option<UrlPolicy>) -> Error {
    let url = Url::parse(url).unwrap();
    match http
        .fetch(
            Request::new(Method::Get, &url),
            "the token endpoint",
            policy,
        )
        .await
    {
        Ok(answer) => panic!("{url}: an answer, status {}", answer.status),
        Err(e) => e,
    }
}

/// A host name that does not resolve is exit 11 (`NetworkError`) and says so, naming the host,
/// whoever chose it; the advice differs: the user's own host (a configured URL: no policy) gets
/// "check the spelling", a host learnt from a server (a policy client) names the server's metadata.
/// The program's own clients (`http_client_builder`, the MCP bridge's) report it the same way.
#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_network_error_with_advice_for_whose_host_it_is() {
    let name = format!("gone-{}.test", std::process::id());
    crate::register_test_host(&name, &[]).unwrap();
    let url = format!("https://{name}/token");
    let http = http(2_000, 5_000);

    let err = get(&http, &url, None).await;
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("the host name {name} does not resolve"))
            && text.contains("the token endpoint"),
        "{text}"
    );
    assert!(!text.contains("server-supplied"), "{text}");
    assert!(err.hint().unwrap().contains("spelling"), "{err:?}");

    let err = get(&http, &url, Some(UrlPolicy::new(NetworkClass::Public))).await;
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert!(err.to_string().contains("does not resolve"), "{err}");
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("metadata") && !hint.contains("spelling"),
        "{hint}"
    );

    let client = http.builder().build().unwrap();
    let e = client.get(url.as_str()).send().await.unwrap_err();
    let err = unresolved_host(&e, "the MCP server at x").unwrap();
    assert_eq!(err.code(), ErrorCode::NetworkError);
    assert!(err.to_string().contains(&name), "{err}");
}

/// A refused connection and a connect timeout are an unreachable server (exit 11); only an answer
/// that does not come in time is a `Timeout` (exit 10). Nothing here says "does not resolve".
#[tokio::test]
async fn unreachable_is_a_network_error_and_a_silent_server_a_timeout() {
    let http = http(300, 600);
    // Refused: a port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = get(&http, &format!("http://127.0.0.1:{port}/token"), None).await;
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot connect to the token endpoint"),
        "{err}"
    );
    assert!(unresolved_host(&err, "x").is_none(), "{err:?}");

    // Connect timeout: a listener with a backlog of 0 whose one queued connection is taken, so
    // Linux drops the next SYN and the connection is never made.
    let full = tokio::net::TcpSocket::new_v4().unwrap();
    full.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = full.local_addr().unwrap();
    let full = full.listen(0).unwrap();
    let _queued = std::net::TcpStream::connect(addr).unwrap();
    let err = get(&http, &format!("http://{addr}/token"), None).await;
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert!(err.to_string().contains("no connection within"), "{err}");

    // Connected, never answered: the server is slow, not unreachable.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let err = get(&http, &format!("http://{addr}/token"), None).await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    drop((full, silent));
}
