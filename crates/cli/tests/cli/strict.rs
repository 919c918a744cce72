//! StrictModes for the home directory, end to end: another local user's hand in the home
//! directory (a token file swapped for a symbolic link, a group-writable home, directories or files
//! they own) makes every command stop with exit 12 (storage), naming the path and the command that
//! fixes it — and print no token.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::Home;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A valid, unexpired token file for `local` holding `access`.
fn token_json(access: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    format!(
        r#"{{"access_token": "{access}", "token_type": "Bearer", "expires_in": 3600, "scope": "openid", "issued_at": {now}}}"#
    )
}

fn signed_in_home() -> Home {
    let home = Home::with_local("http://127.0.0.1:9", "ch-public");
    let tokens = home.path().join("tokens");
    std::fs::create_dir(&tokens).expect("mkdir tokens");
    chmod(&tokens, 0o700);
    let file = tokens.join("local.json");
    std::fs::write(&file, token_json("victim-access")).expect("write tokens");
    chmod(&file, 0o600);
    home
}

#[test]
fn token_file_swapped_for_a_symlink_exits_12_and_prints_nothing() {
    let home = signed_in_home();
    let ok = home.run(&["mcp", "token", "local"]);
    ok.expect_code(0);
    assert!(ok.stdout.contains("victim-access"), "{ok:#?}");

    // The attacker's file, reached through a link in place of the victim's token file.
    let attacker = home.path().join("planted.json");
    std::fs::write(&attacker, token_json("attacker-access")).expect("write");
    chmod(&attacker, 0o600);
    let file = home.path().join("tokens/local.json");
    std::fs::remove_file(&file).expect("rm");
    symlink(&attacker, &file).expect("symlink");

    assert!(home.run(&["mcp", "token", "local"]).stdout.is_empty());
    for args in [
        &["mcp", "token", "local"][..],
        &["mcp", "status", "local"],
        &["mcp", "refresh", "local"],
    ] {
        let run = home.run(args);
        run.expect_code(12);
        // `status` prints its row with the error; no command prints either token.
        assert!(!run.stdout.contains("-access"), "{run:#?}");
        assert!(!run.stderr.contains("-access"), "{run:#?}");
        assert!(run.stderr.contains("symbolic link"), "{run:#?}");
        assert!(
            run.stderr.contains(&format!("rm {}", file.display())),
            "{run:#?}"
        );
    }
}

#[test]
fn group_writable_home_or_directory_exits_12_with_the_chmod() {
    let home = signed_in_home();
    for (path, mode) in [
        (home.path().to_path_buf(), 0o775),
        (home.path().join("tokens"), 0o770),
        (home.path().join("providers.toml"), 0o666),
    ] {
        let before = std::fs::metadata(&path).expect("stat").mode() & 0o777;
        chmod(&path, mode);
        let run = home.run(&["mcp", "token", "local"]);
        run.expect_code(12);
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert!(
            run.stderr
                .contains(&format!("chmod go-w {}", path.display())),
            "{run:#?}"
        );
        // Nothing was repaired behind the user's back.
        assert_eq!(std::fs::metadata(&path).expect("stat").mode() & 0o777, mode);
        chmod(&path, before);
        home.run(&["mcp", "token", "local"]).expect_code(0);
    }
}

#[test]
fn directories_and_files_owned_by_another_user_exit_12_with_the_chown() {
    let home = signed_in_home();
    let probe = home.path().join("tokens/local.json");
    let me = std::fs::metadata(&probe).expect("stat").uid();
    if me != 0 {
        // Only root can give a file away; CI runs the tests as root.
        return;
    }
    let mcp = home.path().join("mcp");
    std::fs::create_dir(&mcp).expect("mkdir");
    chmod(&mcp, 0o700);
    for path in [probe, mcp, home.path().join("providers.toml")] {
        std::os::unix::fs::lchown(&path, Some(65534), None).expect("chown");
        let run = home.run(&["mcp", "token", "local"]);
        run.expect_code(12);
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert!(
            run.stderr
                .contains(&format!("chown root {}", path.display())),
            "{run:#?}"
        );
        std::os::unix::fs::lchown(&path, Some(0), None).expect("chown back");
    }
    home.run(&["mcp", "token", "local"]).expect_code(0);
}
