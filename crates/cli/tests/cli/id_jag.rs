//! Enterprise-Managed Authorization (`--grant-type id_jag`, issue 22) end to end through the binary.
//!
//! The conformance suite's `auth/enterprise-managed-authorization` (run by `conformance.rs`) is the
//! primary proof against independent servers. This test adds what the suite does not check:
//! renewal (the exchange re-run when the MCP token nears expiry, without the options repeated),
//! the IdP client secret (`CONTEXT_HARNESS_IDP_CLIENT_SECRET`, HTTP Basic at the IdP only), a
//! refused ID token not sent again, an answer that is not an ID-JAG refused, and no token or secret
//! at `-vvv`. The repository's oidc-provider has no RFC 8693 token exchange, so the IdP, the MCP
//! authorization server and the MCP server are **a small local stub** (plain `std` threads) that
//! records every request and answers as the ID-JAG draft says; it checks nothing itself — the test
//! asserts on what it recorded.
//!
//! Without an ID token file, the client signs in to the IdP itself: there the IdP is the local
//! oidc-provider (a real OpenID Provider: browser sign-in, PKCE, ID tokens, refresh), whose
//! discovery names the stub's `/idp/token` as its token endpoint; the stub forwards the sign-in's
//! grants to oidc-provider and answers the token exchange itself, checking only that the subject
//! token is there and has a JWT's shape (it does not verify oidc-provider's signature).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::util::{Home, base64};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
const AS_SECRET: &str = "ch-as-secret-9f2c";
const IDP_SECRET: &str = "ch-idp-secret-7d1e";
/// An ID token the stub IdP refuses (`invalid_grant`).
const REFUSED_SUB: &str = "refused";

/// One recorded request: path, `Authorization` header, form fields.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    form: Value,
}

/// The stub: IdP under `/idp`, the MCP authorization server under `/as`, the MCP server at `/mcp`.
struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The IdP answers with an access token instead of an ID-JAG.
    wrong_type: Arc<Mutex<bool>>,
    /// The token endpoint of a real IdP (the local oidc-provider) that `/idp/token` forwards every
    /// request but the token exchange to.
    upstream: Arc<Mutex<Option<String>>>,
}

impl Stub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let wrong_type = Arc::new(Mutex::new(false));
        let upstream = Arc::new(Mutex::new(None));
        let (b, s, w, u) = (
            base.clone(),
            seen.clone(),
            wrong_type.clone(),
            upstream.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, s, w, u) = (b.clone(), s.clone(), w.clone(), u.clone());
                std::thread::spawn(move || serve(stream, &b, &s, &w, &u));
            }
        });
        Self {
            base,
            seen,
            wrong_type,
            upstream,
        }
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

/// A compact JWT with `payload` (unsigned: the stub's parties only read it).
fn jwt(payload: &Value) -> String {
    let part = |v: &str| {
        base64(v)
            .replace('+', "-")
            .replace('/', "_")
            .replace('=', "")
    };
    format!(
        "{}.{}.c2ln",
        part(r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#),
        part(&payload.to_string())
    )
}

fn serve(
    stream: TcpStream,
    base: &str,
    seen: &Mutex<Vec<Seen>>,
    wrong_type: &Mutex<bool>,
    upstream: &Mutex<Option<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let form: serde_json::Map<String, Value> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let count = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen {
            path: path.clone(),
            authorization: authorization.clone(),
            form: Value::Object(form.clone()),
        });
        seen.iter().filter(|s| s.path == path).count()
    };
    let field = |k: &str| form.get(k).and_then(Value::as_str).unwrap_or_default();
    let prm =
        json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/as")]});
    let (status, extra, body) = match (method.as_str(), path.as_str()) {
        (_, "/mcp") => (
            401,
            format!(
                "WWW-Authenticate: Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"\r\n"
            ),
            json!({"error": "invalid_token"}),
        ),
        ("GET", "/.well-known/oauth-protected-resource/mcp") => (200, String::new(), prm),
        ("GET", "/.well-known/oauth-authorization-server/as") => (
            200,
            String::new(),
            json!({
                "issuer": format!("{base}/as"),
                "authorization_endpoint": format!("{base}/as/authorize"),
                "token_endpoint": format!("{base}/as/token"),
                "grant_types_supported": [JWT_BEARER],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }),
        ),
        (
            "GET",
            "/.well-known/oauth-authorization-server/idp" | "/idp/.well-known/openid-configuration",
        ) => (
            200,
            String::new(),
            json!({
                "issuer": format!("{base}/idp"),
                "authorization_endpoint": format!("{base}/idp/authorize"),
                "token_endpoint": format!("{base}/idp/token"),
                "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }),
        ),
        // The browser sign-in's grants (authorization code, refresh) go on to the real IdP.
        ("POST", "/idp/token")
            if field("grant_type") != TOKEN_EXCHANGE && upstream.lock().unwrap().is_some() =>
        {
            let to = upstream.lock().unwrap().clone().unwrap_or_default();
            let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
            if let Some(a) = authorization.as_deref() {
                headers.push(("Authorization", a));
            }
            let (status, text) = crate::util::http("POST", &to, &headers, &raw_body);
            (
                status,
                String::new(),
                serde_json::from_str(&text).unwrap_or(Value::Null),
            )
        }
        ("POST", "/idp/token") => {
            let sub = field("subject_token")
                .split('.')
                .nth(1)
                .and_then(|p| {
                    use base64ct::{Base64UrlUnpadded, Encoding as _};
                    Base64UrlUnpadded::decode_vec(p).ok()
                })
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["sub"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if sub == REFUSED_SUB {
                (400, String::new(), json!({"error": "invalid_grant"}))
            } else if *wrong_type.lock().unwrap() {
                (
                    200,
                    String::new(),
                    json!({"access_token": "idp-access-token", "token_type": "Bearer",
                           "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}),
                )
            } else {
                let id_jag = jwt(&json!({"iss": format!("{base}/idp"), "sub": sub,
                    "aud": field("audience"), "resource": field("resource"), "jti": count}));
                (
                    200,
                    String::new(),
                    json!({"access_token": id_jag, "issued_token_type": ID_JAG_TYPE, "token_type": "N_A"}),
                )
            }
        }
        ("POST", "/as/token") => (
            200,
            String::new(),
            json!({"access_token": format!("mcp-access-{count}"), "token_type": "Bearer", "expires_in": 3600}),
        ),
        _ => (404, String::new(), json!({"error": "not_found"})),
    };
    let body = body.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
}

fn id_token_file(home: &Home, name: &str, sub: &str) -> (String, String) {
    let token =
        jwt(&json!({"iss": "idp", "sub": sub, "aud": "ch-idp-client", "exp": 4_000_000_000u64}));
    let path = home.path().join(name);
    std::fs::write(&path, &token).expect("write the ID token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (path.display().to_string(), token)
}

#[test]
fn the_id_token_is_exchanged_at_the_idp_and_again_when_the_token_expires() {
    let stub = Stub::start();
    let mut home = Home::new();
    home.set("CONTEXT_HARNESS_CLIENT_SECRET", AS_SECRET);
    home.set("CONTEXT_HARNESS_IDP_CLIENT_SECRET", IDP_SECRET);
    let (file, id_token) = id_token_file(&home, "id.jwt", "alice");
    let url = stub.url();
    let idp = format!("{}/idp", stub.base);
    let auth = home.run(&[
        "mcp",
        "auth",
        &url,
        "--grant-type",
        "id_jag",
        "--client-id",
        "ch-mcp-client",
        "--idp-issuer",
        &idp,
        "--idp-client-id",
        "ch-idp-client",
        "--id-token-file",
        &file,
        "--scope",
        "tools:read",
        "-vvv",
    ]);
    auth.expect_code(0);

    // The exchange at the IdP: RFC 8693 with every parameter the draft names, the IdP secret there.
    let exchanges = stub.requests("/idp/token");
    assert_eq!(exchanges.len(), 1, "{exchanges:#?}");
    let form = &exchanges[0].form;
    assert_eq!(form["grant_type"], TOKEN_EXCHANGE);
    assert_eq!(form["requested_token_type"], ID_JAG_TYPE);
    assert_eq!(
        form["subject_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    assert_eq!(form["subject_token"], id_token.as_str());
    assert_eq!(form["audience"], format!("{}/as", stub.base));
    assert_eq!(form["resource"], url.as_str());
    assert_eq!(form["scope"], "tools:read");
    assert_eq!(
        exchanges[0].authorization.as_deref(),
        Some(format!("Basic {}", base64(&format!("ch-idp-client:{IDP_SECRET}"))).as_str())
    );
    // The JWT-bearer grant at the MCP authorization server with the ID-JAG, the client's secret
    // there; the IdP's secret never goes there, and the browser is never used.
    let grants = stub.requests("/as/token");
    assert_eq!(grants.len(), 1, "{grants:#?}");
    assert_eq!(grants[0].form["grant_type"], JWT_BEARER);
    let assertion = grants[0].form["assertion"].as_str().unwrap().to_owned();
    assert_eq!(assertion.split('.').count(), 3);
    assert_ne!(assertion, id_token);
    assert_eq!(
        grants[0].authorization.as_deref(),
        Some(format!("Basic {}", base64(&format!("ch-mcp-client:{AS_SECRET}"))).as_str())
    );
    assert!(stub.requests("/as/authorize").is_empty());
    assert!(stub.requests("/idp/authorize").is_empty());

    // The stored record names the IdP and the file, never a secret or token of the IdP.
    let status = home.run(&["mcp", "status", &url, "--json"]);
    status.expect_code(0);
    assert!(status.stdout.contains("id_jag"), "{status:#?}");
    let stored = std::fs::read_dir(home.path().join("tokens"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(stored.contains("ch-idp-client") && stored.contains("id.jwt"));
    for secret in [IDP_SECRET, AS_SECRET, id_token.as_str(), assertion.as_str()] {
        assert!(!stored.contains(secret), "a secret or token is stored");
    }

    // The MCP token expires: `mcp token` re-runs the exchange, without the options repeated.
    let name = std::fs::read_dir(home.path().join("tokens"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_owned)
        })
        .find(|n| n.starts_with('_'))
        .expect("the server's token file");
    home.backdate(&name, 7200.0);
    let token = home.run(&["mcp", "token", &url, "-vvv"]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "mcp-access-2");
    assert_eq!(stub.requests("/idp/token").len(), 2);
    let renewed = stub.requests("/as/token");
    assert_eq!(renewed.len(), 2);
    assert_ne!(
        renewed[1].form["assertion"],
        assertion.as_str(),
        "a new ID-JAG"
    );

    // No secret or token in any output at -vvv.
    for run in [&auth, &token, &status] {
        for secret in [
            IDP_SECRET,
            AS_SECRET,
            id_token.as_str(),
            assertion.as_str(),
            "mcp-access-1",
        ] {
            assert!(!run.stderr.contains(secret), "a secret at -vvv: {run:#?}");
        }
    }
    assert!(auth.stderr.contains("TRACE"), "{auth:#?}");
}

#[test]
fn a_refused_id_token_is_not_sent_again_and_only_an_id_jag_is_used() {
    let stub = Stub::start();
    let mut home = Home::new();
    home.set("CONTEXT_HARNESS_CLIENT_SECRET", AS_SECRET);
    let url = stub.url();
    let idp = format!("{}/idp", stub.base);
    let (refused, _) = id_token_file(&home, "refused.jwt", REFUSED_SUB);
    let run = |file: &str| {
        home.run(&[
            "mcp",
            "auth",
            &url,
            "--grant-type",
            "id_jag",
            "--client-id",
            "ch-mcp-client",
            "--idp-issuer",
            &idp,
            "--idp-client-id",
            "ch-idp-client",
            "--id-token-file",
            file,
        ])
    };
    // The IdP refuses the ID token: exit 4, a hint, no JWT-bearer request. A public client at the
    // IdP (no IdP secret): its id in the form.
    let first = run(&refused);
    first.expect_code(4);
    assert!(first.stderr.contains("ID token"), "{first:#?}");
    assert_eq!(stub.requests("/idp/token").len(), 1);
    assert_eq!(
        stub.requests("/idp/token")[0].form["client_id"],
        "ch-idp-client"
    );
    assert!(stub.requests("/idp/token")[0].authorization.is_none());
    assert!(stub.requests("/as/token").is_empty());

    // An answer that is not an ID-JAG is never sent on to the MCP authorization server.
    *stub.wrong_type.lock().unwrap() = true;
    let (good, _) = id_token_file(&home, "good.jwt", "bob");
    let wrong = run(&good);
    wrong.expect_code(4);
    assert!(wrong.stderr.contains("not an ID-JAG"), "{wrong:#?}");
    assert!(!wrong.stderr.contains("idp-access-token"));
    assert!(stub.requests("/as/token").is_empty());

    // Options of the grant without it, and a missing ID token file: refused before anything is sent.
    let before = stub.seen.lock().unwrap().len();
    home.run(&["mcp", "auth", &url, "--id-token-file", &good])
        .expect_code(2);
    let missing = home.run(&[
        "mcp",
        "auth",
        &url,
        "--grant-type",
        "id_jag",
        "--client-id",
        "ch-mcp-client",
        "--idp-issuer",
        &idp,
    ]);
    missing.expect_code(8);
    assert!(missing.stderr.contains("--idp-client-id"), "{missing:#?}");
    assert_eq!(stub.seen.lock().unwrap().len(), before);
}

#[test]
fn without_an_id_token_file_the_user_signs_in_to_the_idp_once() {
    if !crate::util::require_server() {
        return;
    }
    let idp = crate::util::AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = Stub::start();
    *stub.upstream.lock().unwrap() = Some(format!("{}/token", idp.issuer));
    // The IdP's metadata: its token endpoint is the stub's (which forwards all but the exchange),
    // and it offers the token exchange.
    let patch = json!({"discovery_patch": {
        "token_endpoint": format!("{}/idp/token", stub.base),
        "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
    }});
    let (status, body) = crate::util::http(
        "POST",
        &format!("{}/test/control", idp.issuer),
        &[("Content-Type", "application/json")],
        &patch.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let mut home = Home::new();
    home.set("CONTEXT_HARNESS_CLIENT_SECRET", AS_SECRET);
    let url = stub.url();
    let follow = crate::util::browser_script("follow.mjs");
    let auth = home.run_env(
        &[
            "mcp",
            "auth",
            &url,
            "--grant-type",
            "id_jag",
            "--client-id",
            "ch-mcp-client",
            "--idp-issuer",
            &idp.issuer,
            "--idp-client-id",
            "ch-public",
            "--port",
            "0",
            "--timeout",
            "60",
            "-vvv",
        ],
        &[("BROWSER", &follow)],
    );
    auth.expect_code(0);
    // One browser sign-in at the IdP, its code redeemed (through the stub) with PKCE.
    assert_eq!(idp.stats()["response_modes"]["query"], 1, "{auth:#?}");
    let grants_at_idp = |grant: &str| {
        stub.requests("/idp/token")
            .into_iter()
            .filter(|s| s.form["grant_type"] == grant)
            .collect::<Vec<_>>()
    };
    let codes = grants_at_idp("authorization_code");
    assert_eq!(codes.len(), 1, "{codes:#?}");
    assert!(codes[0].form["code_verifier"].is_string());

    // The IdP's tokens are stored under the IdP issuer's name, with the ID token of the sign-in;
    // the exchange was sent exactly that ID token.
    let tokens_dir = home.path().join("tokens");
    let idp_tokens: Value = std::fs::read_dir(&tokens_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            serde_json::from_str::<Value>(&std::fs::read_to_string(e.path()).ok()?).ok()
        })
        .find(|t| t["id_token"].is_string())
        .expect("the IdP's tokens with an ID token");
    let id_token = idp_tokens["id_token"].as_str().unwrap().to_owned();
    assert!(
        idp_tokens["refresh_token"].is_string(),
        "offline_access gave a refresh token"
    );
    let exchanges = grants_at_idp(TOKEN_EXCHANGE);
    assert_eq!(exchanges.len(), 1, "{exchanges:#?}");
    assert_eq!(exchanges[0].form["subject_token"], id_token.as_str());
    assert_eq!(exchanges[0].form["client_id"], "ch-public");
    let grants = stub.requests("/as/token");
    assert_eq!(grants.len(), 1, "{grants:#?}");
    assert_eq!(grants[0].form["grant_type"], JWT_BEARER);
    assert!(stub.requests("/as/authorize").is_empty());

    // The MCP token expires: `mcp token` exchanges the stored ID token again, without a browser.
    let name = std::fs::read_dir(&tokens_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
            let text = std::fs::read_to_string(e.path()).ok()?;
            (name.starts_with('_') && text.contains("id_jag")).then_some(name)
        })
        .next()
        .expect("the server's token file");
    home.backdate(&name, 7200.0);
    let token = home.run_env(&["mcp", "token", &url, "-vvv"], &[("BROWSER", "false")]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "mcp-access-2");
    assert_eq!(
        idp.stats()["response_modes"]["query"],
        1,
        "no second browser sign-in"
    );
    let exchanges = grants_at_idp(TOKEN_EXCHANGE);
    assert_eq!(exchanges.len(), 2, "{exchanges:#?}");
    assert_eq!(exchanges[1].form["subject_token"], id_token.as_str());
    assert_eq!(stub.requests("/as/token").len(), 2);

    // Neither the ID token nor the IdP's refresh token in any output at -vvv.
    let refresh_token = idp_tokens["refresh_token"].as_str().unwrap();
    for run in [&auth, &token] {
        for secret in [id_token.as_str(), refresh_token] {
            assert!(!run.stderr.contains(secret), "a token at -vvv: {run:#?}");
            assert!(!run.stdout.contains(secret), "a token on stdout: {run:#?}");
        }
    }
}
