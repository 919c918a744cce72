//! The one sanitiser for outside text (server answers, metadata, configuration) that reaches a
//! terminal, and the RFC 6749 §3.3 scope-token check.
//!
//! A server controls many strings this project prints: OAuth error descriptions, the device flow's
//! `user_code` and `verification_uri`, scopes, names from metadata. Printed raw, an escape sequence in
//! them can clear the screen (`ESC [2J`), set the window title, write the clipboard (OSC 52), show a
//! link whose target differs from its text (OSC 8), or reorder what the user reads (bidi overrides).
//! [`terminal_text`] neutralises all of these; every crate of the workspace uses it (the providers
//! crate re-exports it for the CLI).

use std::fmt;

/// The most characters of one piece of outside text that [`terminal_text`] keeps (longer text is cut
/// and ends with `…`).
pub const MAX_TERMINAL_CHARS: usize = 300;

/// The character that stands in for a control, format or bidi character.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is a Unicode format character (general category Cf: zero-width characters, bidi
/// embeddings, overrides and isolates, the byte-order mark, invisible operators, tags, …), the Arabic
/// letter mark included.
///
/// The table follows Unicode 16's Cf list; a character added to Cf later is at worst printed.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Whether `c` may not reach a terminal as it is: a C0 or C1 control character or DEL (ESC, BEL,
/// CSI, OSC, …), a format character ([`is_format_char`]), or a line or paragraph separator.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control() || is_format_char(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Outside text made safe to print on a terminal, on one line: tab, newline, carriage return and
/// the Unicode line separators become a space, every other control, format or bidi character
/// ([`is_unsafe_for_terminal`]) becomes `U+FFFD`, and the text is cut to [`MAX_TERMINAL_CHARS`]
/// characters (then ending with `…`).
///
/// ```
/// use context_harness_tokens::terminal_text;
///
/// assert_eq!(terminal_text("ok\x1b]52;c;aGk=\x07"), "ok\u{FFFD}]52;c;aGk=\u{FFFD}");
/// assert_eq!(terminal_text("abc\u{202E}fed"), "abc\u{FFFD}fed");
/// assert_eq!(terminal_text("two\nlines"), "two lines");
/// ```
pub fn terminal_text(text: &str) -> String {
    TerminalText(text).to_string()
}

/// [`terminal_text`] with another length cap, for a whole message that already embeds outside text
/// (an error message with its URLs and paths) where [`MAX_TERMINAL_CHARS`] would cut too early.
///
/// ```
/// use context_harness_tokens::terminal_text_max;
///
/// assert_eq!(terminal_text_max("abc\x1b[2Jdef", 5), "abc\u{FFFD}[…");
/// ```
pub fn terminal_text_max(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        out.push(safe_char(c));
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// One character as [`terminal_text`] prints it.
fn safe_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => ' ',
        c if is_unsafe_for_terminal(c) => REPLACEMENT,
        c => c,
    }
}

/// [`terminal_text`] as a `Display` adapter, for `format!` without an intermediate `String`.
#[derive(Clone, Copy)]
pub struct TerminalText<'a>(pub &'a str);

impl fmt::Display for TerminalText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_TERMINAL_CHARS) {
            fmt::Write::write_char(f, safe_char(c))?;
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TerminalText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// Whether `token` is a valid RFC 6749 §3.3 scope token: one or more of `%x21 / %x23-5B / %x5D-7E`
/// (printable ASCII except space, `"` and `\`).
///
/// ```
/// use context_harness_tokens::is_scope_token;
///
/// assert!(is_scope_token("repo:read"));
/// assert!(!is_scope_token(""));
/// assert!(!is_scope_token("a\u{1b}[2J"));
/// assert!(!is_scope_token("caf\u{e9}"));
/// ```
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Whether `text` is one or more RFC 6749 Appendix A `VSCHAR`s (`%x20-7E`: printable ASCII, space
/// included) — the grammar of `client_id` (Appendix A.1) and `client_secret` (A.2). Text that
/// passes cannot carry a control, format or bidi character, so it is safe on a terminal as is.
///
/// ```
/// use context_harness_tokens::is_vschar;
///
/// assert!(is_vschar("s6BhdRkqt3"));
/// assert!(is_vschar("my client"));
/// assert!(!is_vschar(""));
/// assert!(!is_vschar("id\u{1b}]0;title\u{7}"));
/// assert!(!is_vschar("caf\u{e9}"));
/// ```
pub fn is_vschar(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| matches!(b, 0x20..=0x7E))
}

/// A server's `scope` value with every token that is not a valid RFC 6749 §3.3 scope token dropped
/// (tokens are split on ASCII whitespace and re-joined with one space), and how many were dropped.
///
/// Dropping rather than refusing the whole answer: `scope` only informs (the server decides what a
/// token grants), so a sign-in is not lost over it, while nothing outside the scope grammar is kept,
/// stored or printed.
pub fn valid_scope(scope: &str) -> (String, usize) {
    let mut dropped = 0;
    let kept: Vec<&str> = scope
        .split(|c: char| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .filter(|t| {
            let ok = is_scope_token(t);
            if !ok {
                dropped += 1;
            }
            ok
        })
        .collect();
    (kept.join(" "), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_are_neutralised() {
        let attacks = [
            "\x1b]52;c;ZXZpbA==\x07",
            "\x1b]8;;https://evil.example\x1b\\good.example\x1b]8;;\x1b\\",
            "\x1b[2J\x1b[H",
            "\u{9b}2J",
            "\u{9d}0;title\u{9c}",
            "user\u{202E}edoc",
            "\u{2066}a\u{2069}\u{200E}\u{200F}\u{061C}\u{200B}\u{FEFF}",
            "\u{E0041}tag",
        ];
        for attack in attacks {
            let out = terminal_text(attack);
            assert!(
                !out.chars().any(is_unsafe_for_terminal),
                "{attack:?} -> {out:?}"
            );
            assert!(!out.contains('\x1b') && !out.contains('\u{202E}'));
        }
    }

    #[test]
    fn ordinary_text_is_kept_and_long_text_is_cut() {
        assert_eq!(terminal_text("Grüße, 世界 — ok"), "Grüße, 世界 — ok");
        let long = "x".repeat(MAX_TERMINAL_CHARS + 5);
        let out = terminal_text(&long);
        assert_eq!(out.chars().count(), MAX_TERMINAL_CHARS + 1);
        assert!(out.ends_with('…'));
        assert_eq!(
            terminal_text(&"y".repeat(MAX_TERMINAL_CHARS))
                .chars()
                .count(),
            MAX_TERMINAL_CHARS
        );
    }

    #[test]
    fn vschar_is_printable_ascii_only() {
        for b in 0u8..=0x7F {
            let s = format!("a{}", b as char);
            assert_eq!(is_vschar(&s), (0x20..=0x7E).contains(&b), "{b:#x}");
        }
        for bad in [
            "",
            "\u{9b}2J",
            "x\u{202E}y",
            "\u{85}",
            "\u{a0}",
            "\u{1F600}",
        ] {
            assert!(!is_vschar(bad), "{bad:?}");
        }
        // What passes needs no sanitising.
        assert_eq!(terminal_text("a b~!"), "a b~!");
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert_eq!(
            valid_scope("openid  profile\trepo,gist"),
            ("openid profile repo,gist".into(), 0)
        );
        assert_eq!(
            valid_scope("ok \x1b]52;c;x\x07 b\u{202E}d fine \"q\" back\\slash"),
            ("ok fine".into(), 4)
        );
        assert_eq!(valid_scope(""), (String::new(), 0));
        for b in 0u8..=0x7F {
            let s = (b as char).to_string();
            let want = b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
            assert_eq!(is_scope_token(&s), want, "{b:#x}");
        }
    }
}
