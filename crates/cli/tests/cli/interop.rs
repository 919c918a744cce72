//! Interoperability through the binary, where the exit code and message are the
//! contract: TLS trust failures naming `SSL_CERT_FILE` / `SSL_CERT_DIR` (which the child's process
//! environment then sets), one provider naming rule checked when `providers.toml` is read,
//! `mcp status NAME` agreeing with the list, and files re-saved by other platforms' tools.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::tls_stub::{hashed_dir, https_stub, private_ca};
use crate::util::Home;

const VALID: &str = r#"
[providers.ok]
auth_url = "https://as.example/authorize"
token_url = "https://as.example/token"
client_id = "x"
"#;

fn write_providers(home: &Home, bytes: &[u8]) {
    let path = home.path().join("providers.toml");
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// `[providers.Acme]` used to load and then fail at sign-in: now exit 13 when the file is read,
/// naming the file, the line, the table and the rule. Neighbours: spaces, non-ASCII, empty, too
/// long, a leading dot, a Windows device name; dotted lower-case names stay valid.
#[test]
fn provider_names_follow_one_rule_when_providers_toml_is_read() {
    let long = "a".repeat(65);
    let cases: [(&str, &str); 8] = [
        ("Acme", "lowercase"),
        ("\"my idp\"", "lowercase"),
        ("\"zoë\"", "lowercase"),
        ("\"\"", "empty"),
        (&long, "longer than 64"),
        ("\".hidden\"", "dot"),
        ("con", "device name"),
        ("\"nul.corp\"", "device name"),
    ];
    for (table, why) in cases {
        let home = Home::new();
        let text = format!(
            "{VALID}\n[providers.{table}]\nauth_url = \"https://as.example/a\"\ntoken_url = \"https://as.example/t\"\n"
        );
        write_providers(&home, text.as_bytes());
        let run = home.run(&["mcp", "providers"]);
        run.expect_code(13);
        let file = home.path().join("providers.toml");
        assert!(
            run.stderr.contains(&format!("{}:7:", file.display())),
            "{table}: file and line: {run:#?}"
        );
        assert!(
            run.stderr.contains("table [providers."),
            "{table}: {run:#?}"
        );
        assert!(
            run.stderr.contains(why),
            "{table}: reason `{why}`: {run:#?}"
        );
        assert!(
            run.stderr
                .contains("provider names are 1-64 characters of a-z"),
            "{table}: the rule in the hint: {run:#?}"
        );
        // The same through sign-in: refused before anything else happens.
        home.run(&["mcp", "status"]).expect_code(13);
    }
    // Dots, digits, `-` and `_` are fine.
    let home = Home::new();
    let text = format!(
        "{VALID}\n[providers.\"acme.v2_x-1\"]\nauth_url = \"https://as.example/a\"\ntoken_url = \"https://as.example/t\"\n"
    );
    write_providers(&home, text.as_bytes());
    home.run(&["mcp", "providers"]).expect_code(0);
}

/// Tokens stored for a name no longer configured: `mcp status NAME --json` shows exactly the row
/// the list shows, readable or not (before: exit 9 for one, an error row in the other).
#[test]
fn status_of_one_unconfigured_name_agrees_with_the_list() {
    let home = Home::new();
    let tokens = home.path().join("tokens");
    fs::create_dir_all(&tokens).unwrap();
    fs::set_permissions(&tokens, fs::Permissions::from_mode(0o700)).unwrap();
    let files = [
        (
            "orphan",
            r#"{"access_token":"at","token_type":"Bearer","expires_in":null,"refresh_token":null,"scope":"a b","issued_at":1700000000}"#,
        ),
        ("broken", "{ not json"),
    ];
    for (name, text) in files {
        let path = tokens.join(format!("{name}.json"));
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let list = home.run(&["mcp", "status", "--json"]);
    list.expect_code(0);
    let list = list.json();
    for (name, _) in files {
        let listed = list["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {list}"))
            .clone();
        let one = home.run(&["mcp", "status", name, "--json"]);
        assert_ne!(one.code, 9, "{name}: {one:#?}");
        let row = one.json()["providers"][0].clone();
        assert_eq!(row, listed, "{name}");
        if listed["status"] == "error" {
            assert_ne!(one.code, 0, "{name}: an unreadable file is a failure");
        } else {
            one.expect_code(0);
        }
    }
    // A name with nothing stored and no configuration is still unknown.
    home.run(&["mcp", "status", "nothing-here", "--json"])
        .expect_code(9);
}

/// `providers.toml` saved with a UTF-8 BOM, CRLF line endings or as UTF-16 (LE/BE, with a BOM)
/// loads; another encoding is refused with exit 13 naming the file.
#[test]
fn providers_toml_from_other_platforms_loads() {
    let crlf = VALID.replace('\n', "\r\n");
    let utf16 = |big: bool| {
        let mut out: Vec<u8> = if big {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in crlf.encode_utf16() {
            out.extend(if big {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    };
    let variants: [(&str, Vec<u8>); 5] = [
        (
            "utf-8 bom",
            [b"\xEF\xBB\xBF".as_slice(), VALID.as_bytes()].concat(),
        ),
        ("crlf", crlf.clone().into_bytes()),
        (
            "bom + crlf",
            [b"\xEF\xBB\xBF".as_slice(), crlf.as_bytes()].concat(),
        ),
        ("utf-16 le", utf16(false)),
        ("utf-16 be", utf16(true)),
    ];
    for (what, bytes) in variants {
        let home = Home::new();
        write_providers(&home, &bytes);
        let run = home.run(&["mcp", "providers", "--json"]);
        run.expect_code(0);
        let names: Vec<String> = run.json()["providers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        assert!(names.iter().any(|n| n == "ok"), "{what}: {names:?}");
    }
    let home = Home::new();
    write_providers(&home, b"[providers.ok]\ndisplay_name = \"Caf\xE9\"\n");
    let run = home.run(&["mcp", "providers"]);
    run.expect_code(13);
    assert!(run.stderr.contains("providers.toml"), "{run:#?}");
    assert!(run.stderr.contains("not UTF-8"), "{run:#?}");
}

/// `response_mode`: `query` and `form_post` reach the loopback listener and load; `fragment` (and
/// JWT modes) never would, so `providers.toml` is refused with exit 13 naming file, table and
/// reason, instead of a sign-in that times out after the user approved.
#[test]
fn response_modes_that_cannot_reach_the_listener_are_refused_at_load() {
    for (mode, code) in [
        ("query", 0),
        ("form_post", 0),
        ("fragment", 13),
        ("query.jwt", 13),
    ] {
        let home = Home::new();
        let text = format!("{VALID}extra_auth_params = {{ response_mode = \"{mode}\" }}\n");
        write_providers(&home, text.as_bytes());
        let run = home.run(&["mcp", "providers"]);
        run.expect_code(code);
        if code == 13 {
            let file = home.path().join("providers.toml");
            assert!(run.stderr.contains(&file.display().to_string()), "{run:#?}");
            assert!(
                run.stderr.contains("providers.ok.extra_auth_params"),
                "{run:#?}"
            );
            assert!(
                run.stderr.contains("never reach the loopback listener"),
                "{run:#?}"
            );
        }
    }
}

/// A token endpoint behind a certificate of a private CA (a **local HTTPS stub** with a
/// certificate of a private CA made by `openssl` at test time, reproducing a corporate CA): `mcp
/// refresh` first fails with exit 11 saying the certificate is not trusted and naming
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`, the stored tokens untouched; then `SSL_CERT_FILE=<cert>`, and
/// a hashed `SSL_CERT_DIR` holding it, each make the same refresh succeed.
#[test]
fn ssl_cert_file_and_dir_make_a_private_ca_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = private_ca(dir.path()) else {
        return;
    };
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let base = https_stub(&pki.cert, &pki.key, move |method, target, body| {
        if method != "POST" || target != "/token" || !body.contains("grant_type=refresh_token") {
            return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned();
        }
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let json = format!(
            r#"{{"access_token":"private-ca-at-{n}","token_type":"Bearer","expires_in":3600}}"#
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
    });
    let home = Home::new();
    let text = format!(
        "[providers.private]\nauth_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nclient_id = \"private-client\"\n"
    );
    write_providers(&home, text.as_bytes());
    let tokens = home.path().join("tokens");
    fs::create_dir_all(&tokens).unwrap();
    fs::set_permissions(&tokens, fs::Permissions::from_mode(0o700)).unwrap();
    let file = home.token_file("private");
    fs::write(
        &file,
        r#"{"access_token":"old-at","token_type":"Bearer","expires_in":1,"refresh_token":"old-rt","scope":null,"issued_at":1}"#,
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

    // Untrusted: said so, with the variables that fix it; nothing reached the stub or the store.
    let run = home.run(&["mcp", "refresh", "private"]);
    run.expect_code(11);
    assert!(run.stderr.contains("certificate"), "{run:#?}");
    assert!(run.stderr.contains("not trusted"), "{run:#?}");
    assert!(
        run.stderr.contains("SSL_CERT_FILE") && run.stderr.contains("SSL_CERT_DIR"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("check your network"), "{run:#?}");
    assert_eq!(served.load(Ordering::SeqCst), 0);
    assert_eq!(home.tokens("private")["access_token"], "old-at");

    // SSL_CERT_FILE naming the CA's certificate: the refresh goes through.
    let cert_file = pki.ca.display().to_string();
    let run = home.run_env(
        &["mcp", "refresh", "private"],
        &[("SSL_CERT_FILE", &cert_file)],
    );
    run.expect_code(0);
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(home.tokens("private")["access_token"], "private-ca-at-1");
    // The refresh answer had no refresh_token: the stored one is kept.
    assert_eq!(home.tokens("private")["refresh_token"], "old-rt");

    // SSL_CERT_DIR in `openssl rehash` form: the same.
    let Some(certs) = hashed_dir(&pki.ca, dir.path()) else {
        return;
    };
    let cert_dir = certs.display().to_string();
    let run = home.run_env(
        &["mcp", "refresh", "private"],
        &[("SSL_CERT_DIR", &cert_dir)],
    );
    run.expect_code(0);
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert_eq!(home.tokens("private")["access_token"], "private-ca-at-2");
}
