//! The extra headers the bridge sends on every request to the server (RFC 9110 §5), from three
//! sources (as `mcp proxy` names them):
//!
//! - `--header 'Name: value'`: on the command line, which every local user can read
//!   (`/proc/<pid>/cmdline`, `ps`): for values that are not secret.
//! - `--header-file PATH`: `Name: value` lines (blank lines and `#` comments skipped) in a file of
//!   your own, mode 0600, read with the providers' [`read_secret_file`] (no symbolic link, owner and
//!   mode checked on the opened file, at most 64 KiB).
//! - `--header-env 'Name: VAR'`: the header's value is the whole value of the environment
//!   variable `VAR`, so no text of the value is ever read as a variable reference.
//!
//! Names must be RFC 9110 tokens and values field values without control characters (no CR, LF
//! or NUL); the headers the bridge sets itself or that describe the connection ([`RESERVED`]) are
//! refused. Values are marked sensitive and never logged; errors about a file's content name the
//! line, never its text.

use std::path::{Path, PathBuf};

use context_harness_providers::{Environment, read_secret_file};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::Error;

/// Header names the bridge sets on its requests itself (`Accept`, `Content-Type`, the MCP session
/// headers, the MCP 2026-07-28 per-request headers `Mcp-Method` and `Mcp-Name`, `Last-Event-ID`) or
/// that belong to the connection (RFC 9110 §7.6.1, §6.4 framing): a second value would contradict
/// the bridge's. Lower case, sorted. `Mcp-Param-*` ([`RESERVED_PREFIX`]) too.
pub(crate) const RESERVED: [&str; 16] = [
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The prefix of the headers the bridge mirrors from `x-mcp-header` tool parameters (MCP 2026-07-28):
/// set per call from the call's arguments, never a fixed value.
pub(crate) const RESERVED_PREFIX: &str = "mcp-param-";

/// Why a header name is refused (the caller shows the name only when it came from the command
/// line).
fn header_name(name: &str) -> Result<HeaderName, &'static str> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| "is not a header name (RFC 9110 token characters only)")?;
    if RESERVED.contains(&name.as_str()) || name.as_str().starts_with(RESERVED_PREFIX) {
        return Err("is set by the bridge itself and cannot be given");
    }
    Ok(name)
}

/// A header value (surrounding whitespace trimmed): an RFC 9110 §5.5 field value (visible ASCII,
/// spaces, tabs and `obs-text` bytes; no other control character), marked sensitive: it may be a
/// key.
fn header_value(value: &str) -> Result<HeaderValue, &'static str> {
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        "the value has characters a header cannot carry (control characters such as CR, LF or NUL)"
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Parses a `--header 'Name: value'` argument: the name (an RFC 9110 token, not one the bridge sets
/// itself) and the value (trimmed, marked sensitive).
///
/// # Errors
///
/// What is wrong, naming the header but never its value (fit for a clap value parser).
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "expected 'Name: value'".to_owned())?;
    let name = header_name(name).map_err(|why| format!("`{}` {why}", name.trim()))?;
    Ok((name, header_value(value).map_err(str::to_owned)?))
}

/// Parses a `--header-env 'Name: VAR'` argument: the header name and the variable's name
/// (letters, digits and `_`, not starting with a digit).
///
/// # Errors
///
/// What is wrong with the name or the variable (fit for a clap value parser).
pub fn parse_header_env(text: &str) -> Result<(HeaderName, String), String> {
    let (name, var) = text
        .split_once(':')
        .ok_or_else(|| "expected 'Name: VARIABLE'".to_owned())?;
    let name = header_name(name).map_err(|why| format!("`{}` {why}", name.trim()))?;
    let var = var.trim();
    let valid = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{var}` is not an environment variable name (letters, digits and _)"
        ));
    }
    Ok((name, var.to_owned()))
}

/// The `Name: value` lines of a header file: blank lines and lines starting with `#` are skipped.
/// An error names the (1-based) line and what is wrong, never the line's text.
fn parse_header_lines(text: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index.saturating_add(1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("line {number}: expected 'Name: value'"));
        };
        let name = header_name(name).map_err(|why| format!("line {number}: the name {why}"))?;
        let value = header_value(value).map_err(|why| format!("line {number}: {why}"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// A configuration error of the extra headers (`config_invalid`).
fn invalid(message: String, hint: &str) -> Error {
    Error::config(message, hint)
}

/// Every extra header, in order: `headers` (parsed by [`parse_header`]), then the lines of each
/// file of `files` (`Name: value`; blank lines and `#` comments skipped), then each of `envs`
/// (parsed by [`parse_header_env`]) with the variable's value read from `env`. A name given more
/// than once is sent with each value. The result goes in [`BridgeConfig::headers`](crate::BridgeConfig::headers).
///
/// # Errors
///
/// [`Error::Provider`] for a header file that cannot be used (see [`read_secret_file`]: a symbolic
/// link, another owner, a mode other than 0600, over 64 KiB); [`Error::Config`] for a malformed
/// line, and for a variable that is unset, empty or not a field value. Messages never contain a
/// value.
pub fn extra_headers(
    headers: &[(HeaderName, HeaderValue)],
    files: &[PathBuf],
    envs: &[(HeaderName, String)],
    env: &Environment,
) -> Result<HeaderMap, Error> {
    let mut extra = HeaderMap::new();
    for (name, value) in headers {
        extra.append(name.clone(), value.clone());
    }
    for path in files {
        for (name, value) in read_header_file(path)? {
            extra.append(name, value);
        }
    }
    for (name, var) in envs {
        let Some(text) = env.get(var) else {
            return Err(invalid(
                format!("--header-env {name}: the variable {var} is not set (or empty)"),
                "set the variable in the environment of `mcp proxy`, e.g. in the `env` block of the MCP client's configuration",
            ));
        };
        let value = header_value(text).map_err(|why| {
            invalid(
                format!("--header-env {name}: {var}: {why}"),
                "the variable must hold the header's value on one line",
            )
        })?;
        extra.append(name.clone(), value);
    }
    if !extra.is_empty() {
        let names: Vec<&str> = extra.keys().map(HeaderName::as_str).collect();
        tracing::debug!(?names, "extra headers on every request (values not shown)");
    }
    Ok(extra)
}

/// The headers of one `--header-file`.
fn read_header_file(path: &Path) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let text = read_secret_file(path, "--header-file")?;
    parse_header_lines(text.secret()).map_err(|why| {
        invalid(
            format!("--header-file {}: {why}", path.display()),
            "write one `Name: value` header per line (blank lines and lines starting with # are skipped)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_arguments() {
        let Ok((name, value)) = parse_header(" X-Api-Key :  k e y ") else {
            panic!("refused a valid header");
        };
        assert_eq!(name.as_str(), "x-api-key");
        assert_eq!(value.as_bytes(), b"k e y");
        assert!(value.is_sensitive());
        // `Authorization` is allowed: sent until the bridge holds OAuth tokens for the server.
        assert!(parse_header("Authorization: Bearer abc").is_ok());
        for bad in [
            "no colon",
            "Bad Name: x",
            "X-Ok: a\rb",
            "X-Ok: a\nb",
            "X-Ok: a\0b",
            "Mcp-Session-Id: forged",
            "content-length: 0",
            "HOST: elsewhere",
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
        let Err(why) = parse_header("X-Ok: secret\u{1b}") else {
            panic!("a control character was accepted");
        };
        assert!(!why.contains("secret"), "{why}");
    }

    #[test]
    fn header_env_arguments() {
        assert_eq!(
            parse_header_env("X-Api-Key: MY_KEY_1").map(|(n, v)| (n.to_string(), v)),
            Ok(("x-api-key".to_owned(), "MY_KEY_1".to_owned()))
        );
        for bad in [
            "X-Api-Key",
            "X-Api-Key: ",
            "X-Api-Key: 1ABC",
            "X-Api-Key: $KEY",
            "X-Api-Key: ${KEY}",
            "X-Api-Key: A B",
            "Accept: KEY",
            "Mcp-Method: KEY",
            "MCP-Name: KEY",
            "Mcp-Param-Region: KEY",
        ] {
            assert!(parse_header_env(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_file_lines() {
        let parsed = parse_header_lines(
            "# a comment\r\n\r\nX-Api-Key: s3cret\r\n  # indented comment\nX-Other:two: colons\n",
        );
        let Ok(parsed) = parsed else {
            panic!("refused a valid file: {parsed:?}");
        };
        let got: Vec<(String, Vec<u8>)> = parsed
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                ("x-api-key".to_owned(), b"s3cret".to_vec()),
                ("x-other".to_owned(), b"two: colons".to_vec())
            ]
        );
        assert!(parsed.iter().all(|(_, v)| v.is_sensitive()));
        for (text, line) in [
            ("X-Ok: 1\ns3cret-without-colon\n", "line 2"),
            ("s3cret name: v\n", "line 1"),
            ("X-Ok: 1\n\nX-Bad: s3cret\u{7f}\n", "line 3"),
            ("Mcp-Session-Id: s3cret\n", "line 1"),
        ] {
            let Err(why) = parse_header_lines(text) else {
                panic!("accepted {text:?}");
            };
            assert!(why.starts_with(line), "{why}");
            assert!(!why.contains("s3cret"), "the content was shown: {why}");
        }
    }

    #[test]
    fn env_values_are_checked_and_never_shown() {
        let Ok(plain) = parse_header("X-Plain: 1") else {
            panic!("refused a valid header");
        };
        let Ok(from_env) = parse_header_env("X-Api-Key: TEST_KEY") else {
            panic!("refused a valid --header-env");
        };
        let (plain, envs) = ([plain], [from_env]);
        let env = Environment::from_pairs([("TEST_KEY", "  s3cret value ")]);
        let headers = extra_headers(&plain, &[], &envs, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            headers.get("x-api-key").map(HeaderValue::as_bytes),
            Some(&b"s3cret value"[..])
        );
        assert_eq!(
            headers.get("x-plain").map(HeaderValue::as_bytes),
            Some(&b"1"[..])
        );
        assert!(!format!("{headers:?}").contains("s3cret"));
        for env in [
            Environment::empty(),
            Environment::from_pairs([("TEST_KEY", "")]),
            Environment::from_pairs([("TEST_KEY", "s3cret\r\nX-Injected: 1")]),
        ] {
            let Err(e) = extra_headers(&plain, &[], &envs, &env) else {
                panic!("accepted {env:?}");
            };
            assert_eq!(
                e.code(),
                Some(context_harness_providers::ErrorCode::ConfigInvalid),
                "{e}"
            );
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
