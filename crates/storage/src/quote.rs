//! Paths and user names as they appear in the shell commands of hints (`chmod go-w PATH`,
//! `chown USER PATH`).

use std::path::Path;

/// `path` as one shell word, for hints that name a command: unchanged when it has only safe
/// characters, else in single quotes (control characters escaped, so the hint is one line).
///
/// ```
/// use std::path::Path;
/// use context_harness_storage::shell_quote;
///
/// assert_eq!(shell_quote(Path::new("/home/me/key.pem")), "/home/me/key.pem");
/// assert_eq!(shell_quote(Path::new("/tmp/a b")), "'/tmp/a b'");
/// ```
pub fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if safe {
        return text.into_owned();
    }
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The login name of `uid` from `/etc/passwd`, else the number (which `chown` accepts as well).
pub(crate) fn user_name(uid: u32) -> String {
    #[cfg(unix)]
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut fields = line.split(':');
            let (Some(name), _, Some(id)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            if id.parse::<u32>().ok() == Some(uid)
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return name.to_owned();
            }
        }
    }
    uid.to_string()
}
