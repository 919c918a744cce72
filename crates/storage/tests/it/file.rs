//! File store, auto store in file mode, memory store, names, atomic writes.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use context_harness_storage::{
    AutoStore, Backend, Error, FileStore, MemoryStore, ProviderName, StorageMode, TokenStore,
    open_store, write_private_atomic,
};
use context_harness_tokens::OAuthTokens;

use crate::util::{SEED_FIXTURE, TestResult, mode, name, numbered};

#[test]
fn file_store_creates_private_dir_and_file() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("nested").join("tokens");
    let store = FileStore::new(dir.clone());
    assert!(
        !dir.exists(),
        "constructing a store must not touch the disk"
    );
    store.save(&name("github"), &numbered(1, 0)?)?;
    assert_eq!(mode(&dir)?, 0o700);
    assert_eq!(mode(&home.path().join("nested"))?, 0o700);
    let file = dir.join("github.json");
    assert_eq!(mode(&file)?, 0o600);
    assert_eq!(store.path_for(&name("github")), file);
    assert_eq!(store.location(&name("github")), file.display().to_string());
    // Overwrite keeps 0600, leaves no temporary files.
    store.save(&name("github"), &numbered(2, 0)?)?;
    assert_eq!(mode(&file)?, 0o600);
    let names: Vec<_> = fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names, ["github.json"]);
    Ok(())
}

#[test]
fn file_store_round_trip_and_delete() -> TestResult {
    let home = tempfile::tempdir()?;
    let store = FileStore::new(home.path().to_path_buf());
    let p = name("google");
    assert!(store.load(&p)?.is_none());
    assert!(!store.delete(&p)?);
    let tokens = numbered(7, 10)?;
    store.save(&p, &tokens)?;
    let back = store.load(&p)?.ok_or("missing")?;
    assert_eq!(back.access_token.secret(), "tok-7");
    assert_eq!(back.to_json()?, tokens.to_json()?);
    assert!(store.contains(&p));
    assert!(store.delete(&p)?);
    assert!(store.load(&p)?.is_none());
    assert!(!store.delete(&p)?);
    Ok(())
}

#[test]
fn seed_fixture_loads_from_file_and_auto_store() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    fs::create_dir(&dir)?;
    fs::write(dir.join("github.json"), SEED_FIXTURE)?;
    for store in [
        Box::new(FileStore::new(dir.clone())) as Box<dyn TokenStore>,
        open_store(StorageMode::Auto, home.path())?,
        open_store(StorageMode::File, home.path())?,
    ] {
        let tokens = store.load(&name("github"))?.ok_or("seed file not found")?;
        assert_eq!(tokens.access_token.secret(), "gho_seedAccess123");
        assert_eq!(
            tokens.refresh_token.as_ref().map(|t| t.secret()),
            Some("ghr_seedRefresh456")
        );
        assert_eq!(tokens.token_type, "bearer");
        assert_eq!(tokens.expires_in, Some(28800));
        assert_eq!(tokens.scope.as_deref(), Some("repo read:org"));
        assert!((tokens.issued_at - 1_718_000_000.123_456).abs() < 1e-6);
    }
    // Reading never rewrote it.
    assert_eq!(fs::read_to_string(dir.join("github.json"))?, SEED_FIXTURE);
    Ok(())
}

#[test]
fn corrupt_file_is_reported_and_left_byte_identical() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    fs::create_dir_all(&dir)?;
    let path = dir.join("github.json");
    let cases: [&[u8]; 4] = [
        br#"{"access_token": "gho_secretValue", "token_type""#,
        b"not json at all",
        br#"{"token_type": "bearer", "issued_at": 1.0}"#,
        b"\xff\xfe{}",
    ];
    for bytes in cases {
        fs::write(&path, bytes)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        for store in [
            Box::new(FileStore::new(dir.clone())) as Box<dyn TokenStore>,
            open_store(StorageMode::Auto, home.path())?,
        ] {
            let err = match store.load(&name("github")) {
                Err(err) => err,
                Ok(t) => return Err(format!("corrupt file loaded: {:?}", t.is_some()).into()),
            };
            assert!(err.is_corrupt(), "{err:?}");
            assert!(matches!(&err, Error::Corrupt { path: p, .. } if *p == path));
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(
                !msg.contains("gho_secretValue") && !format!("{err:?}").contains("gho_secretValue")
            );
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                assert!(!s.to_string().contains("gho_secretValue"));
                source = s.source();
            }
            assert_eq!(fs::read(&path)?, bytes, "the corrupt file was changed");
        }
    }
    Ok(())
}

#[test]
fn traversal_and_bad_names_are_refused() -> TestResult {
    for bad in [
        "../../etc/passwd",
        "..",
        ".",
        "",
        "a/b",
        ".github",
        "GitHub",
        "x\\y",
        "a b",
    ] {
        let err = ProviderName::new(bad)
            .err()
            .ok_or(format!("{bad:?} accepted"))?;
        assert!(err.is_invalid_name());
        assert!(err.to_string().starts_with("invalid provider name"));
    }
    assert!(ProviderName::new(&"a".repeat(65)).is_err());
    assert!("../../etc/passwd".parse::<ProviderName>().is_err());
    // URL-derived names are always safe.
    let derived = ProviderName::from_url("https://evil.example.com/../../etc/passwd")?;
    assert!(!derived.as_str().contains('/'));
    assert_eq!(
        ProviderName::from_url("https://mcp.example.com/mcp")?.as_str(),
        "mcp.example.com-mcp"
    );
    Ok(())
}

#[test]
fn loose_permissions_are_tightened() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    fs::create_dir(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let file = dir.join("github.json");
    fs::write(&file, SEED_FIXTURE)?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;

    let store = FileStore::new(dir.clone());
    assert!(store.load(&name("github"))?.is_some());
    assert_eq!(mode(&dir)?, 0o700);
    assert_eq!(mode(&file)?, 0o600);
    assert_eq!(fs::read_to_string(&file)?, SEED_FIXTURE);

    // Saving into a readable directory tightens it too (a writable one is refused: see `strict`).
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    store.save(&name("google"), &numbered(1, 0)?)?;
    assert_eq!(mode(&dir)?, 0o700);
    Ok(())
}

#[test]
fn write_private_atomic_replaces_with_a_private_file() -> TestResult {
    let home = tempfile::tempdir()?;
    let path = home.path().join("clients").join("registration.json");
    write_private_atomic(&path, b"{\"a\":1}")?;
    assert_eq!(fs::read(&path)?, b"{\"a\":1}");
    assert_eq!(mode(&path)?, 0o600);
    assert_eq!(mode(&home.path().join("clients"))?, 0o700);
    // An existing world-readable file is replaced by a 0600 one.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    write_private_atomic(&path, b"{\"a\":2}")?;
    assert_eq!(fs::read(&path)?, b"{\"a\":2}");
    assert_eq!(mode(&path)?, 0o600);
    // A stale temp file of a dead writer is cleaned up (pid 0 names no process).
    let stale = home
        .path()
        .join("clients")
        .join(".registration.json.tmp.999999999.0");
    fs::write(&stale, b"old secret")?;
    write_private_atomic(&path, b"{\"a\":3}")?;
    assert!(!stale.exists());
    assert_eq!(fs::read_dir(home.path().join("clients"))?.count(), 1);
    Ok(())
}

#[test]
fn memory_store_round_trip() -> TestResult {
    let store = MemoryStore::new();
    let p = name("github");
    assert!(store.load(&p)?.is_none());
    store.save(&p, &numbered(3, 0)?)?;
    assert_eq!(
        store.load(&p)?.ok_or("missing")?.access_token.secret(),
        "tok-3"
    );
    assert!(!format!("{store:?}").contains("tok-3"));
    assert!(store.delete(&p)?);
    assert!(!store.delete(&p)?);
    assert_eq!(store.name(), "memory");
    Ok(())
}

#[test]
fn stores_are_send_and_sync_trait_objects() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn TokenStore>();
    assert_send_sync::<FileStore>();
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<AutoStore>();
}

#[test]
fn file_mode_records_the_file_backend() -> TestResult {
    let home = tempfile::tempdir()?;
    let store = open_store(StorageMode::File, home.path())?;
    assert_eq!(store.name(), "file");
    let p = name("github");
    store.save(&p, &numbered(1, 0)?)?;
    let dir = home.path().join("tokens");
    assert_eq!(
        fs::read_to_string(dir.join("github.backend"))?.trim(),
        "file"
    );
    assert_eq!(mode(&dir.join("github.backend"))?, 0o600);
    let auto = AutoStore::new(dir.clone());
    assert_eq!(auto.backend_for(&p)?, Some(Backend::File));
    // The auto store goes straight to the recorded file.
    assert_eq!(
        auto.load(&p)?.ok_or("missing")?.access_token.secret(),
        "tok-1"
    );
    auto.save(&p, &numbered(2, 0)?)?;
    assert_eq!(
        store.load(&p)?.ok_or("missing")?.access_token.secret(),
        "tok-2"
    );
    assert!(auto.location(&p).ends_with("github.json"));
    assert!(auto.delete(&p)?);
    assert!(!dir.join("github.backend").exists() && !dir.join("github.json").exists());
    assert_eq!(auto.backend_for(&p)?, None);
    Ok(())
}

#[test]
fn storage_mode_parses() -> TestResult {
    assert_eq!("auto".parse::<StorageMode>()?, StorageMode::Auto);
    assert_eq!(" Keyring ".parse::<StorageMode>()?, StorageMode::Keyring);
    assert_eq!("file".parse::<StorageMode>()?, StorageMode::File);
    assert!("plaintext".parse::<StorageMode>().is_err());
    assert_eq!(StorageMode::default(), StorageMode::Auto);
    assert_eq!(StorageMode::File.to_string(), "file");
    Ok(())
}

#[cfg(not(feature = "keyring"))]
#[test]
fn keyring_mode_without_the_feature_is_refused() -> TestResult {
    let home = tempfile::tempdir()?;
    let err = open_store(StorageMode::Keyring, home.path())
        .err()
        .ok_or("keyring mode opened without keyring support")?;
    assert!(matches!(err, Error::KeyringUnsupported));
    // Auto works and is the file store.
    let store = open_store(StorageMode::Auto, home.path())?;
    store.save(&name("github"), &numbered(1, 0)?)?;
    assert!(home.path().join("tokens/github.json").exists());
    Ok(())
}

#[test]
fn unencodable_tokens_are_an_error_not_a_file() -> TestResult {
    let home = tempfile::tempdir()?;
    let store = FileStore::new(home.path().to_path_buf());
    let mut tokens: OAuthTokens = numbered(1, 0)?;
    tokens.issued_at = f64::NAN;
    assert!(matches!(
        store.save(&name("github"), &tokens),
        Err(Error::Encode { .. })
    ));
    assert!(!home.path().join("github.json").exists());
    Ok(())
}

/// Token files re-saved by editors or tools of other platforms (a UTF-8 BOM,
/// CRLF line endings, UTF-16 LE/BE with a BOM) load; saving again writes plain UTF-8 without a
/// BOM; a file in another encoding is refused naming the file and the encoding problem.
#[test]
fn token_files_from_other_tools_load_and_are_saved_as_plain_utf8() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    let store = FileStore::new(dir.clone());
    let expected = OAuthTokens::from_json(SEED_FIXTURE)?;
    let crlf = SEED_FIXTURE.replace("\r\n", "\n").replace('\n', "\r\n");
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
    let variants: Vec<(&str, Vec<u8>)> = vec![
        (
            "utf-8 bom",
            [b"\xEF\xBB\xBF".as_slice(), SEED_FIXTURE.as_bytes()].concat(),
        ),
        ("crlf", crlf.clone().into_bytes()),
        (
            "bom + crlf",
            [b"\xEF\xBB\xBF".as_slice(), crlf.as_bytes()].concat(),
        ),
        ("utf-16 le", utf16(false)),
        ("utf-16 be", utf16(true)),
    ];
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    for (what, bytes) in variants {
        let file = dir.join("github.json");
        fs::write(&file, &bytes)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
        let loaded = store
            .load(&name("github"))
            .map_err(|e| format!("{what}: {e}"))?
            .ok_or(what)?;
        assert_eq!(loaded, expected, "{what}");
        store.save(&name("github"), &loaded)?;
        let saved = fs::read(&file)?;
        assert_eq!(saved.first(), Some(&b'{'), "{what}: saved without a BOM");
        assert!(std::str::from_utf8(&saved).is_ok(), "{what}");
        assert!(!saved.contains(&b'\r'), "{what}");
    }

    // Latin-1 (not UTF-8): refused as corrupt, naming the file and the reason.
    let file = dir.join("latin.json");
    fs::write(&file, b"{\"access_token\":\"caf\xE9\"}")?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
    let Err(err) = store.load(&name("latin")) else {
        return Err("a Latin-1 token file must be refused".into());
    };
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let text = format!(
        "{err} {:?}",
        std::error::Error::source(&err).map(ToString::to_string)
    );
    assert!(text.contains("latin.json"), "{text}");
    assert!(text.contains("not UTF-8"), "{text}");
    Ok(())
}
