//! Text files other tools may have re-saved: one decoder for every file this workspace reads
//! (token files, `mcp/*.json` records, registrations, `providers.toml`).

use std::borrow::Cow;
use std::fmt;

/// UTF-8's byte-order mark (U+FEFF encoded).
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// U+FEFF, the byte-order mark, as a character.
const BOM_CHAR: char = '\u{FEFF}';

/// Why [`decode_text`] refused a file's bytes. `Display` is a short lowercase phrase that reads after
/// "cannot be read as text: " and never quotes the file's content (only a byte offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// Neither UTF-8 (with or without a byte-order mark) nor UTF-16 with a byte-order mark, e.g.
    /// Latin-1.
    NotText,
    /// A UTF-32 byte-order mark: UTF-32 is not supported.
    Utf32,
    /// UTF-16 (by its byte-order mark) with an odd number of bytes.
    OddUtf16,
    /// UTF-16 (by its byte-order mark) with an unpaired surrogate.
    UnpairedSurrogate,
    /// The text holds U+0000 (NUL), which no JSON or TOML file this workspace reads may contain.
    Nul {
        /// Where the first NUL starts, in bytes from the start of the file (byte-order mark
        /// included).
        byte: usize,
        /// Whether the file started with a byte-order mark. Without one, NUL bytes usually mean UTF-16
        /// saved without a byte-order mark, and the message says so.
        bom: bool,
    },
    /// The file starts with two byte-order marks (U+FEFF twice), as when a tool adds one to a file
    /// that already had one.
    DoubleBom,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotText => f.write_str("not UTF-8 (nor UTF-16 with a byte-order mark)"),
            Self::Utf32 => f.write_str("UTF-32 is not supported; save the file as UTF-8"),
            Self::OddUtf16 => f.write_str("UTF-16 text with an odd number of bytes"),
            Self::UnpairedSurrogate => f.write_str("UTF-16 text with an unpaired surrogate"),
            Self::Nul { byte, bom: true } => {
                write!(f, "it holds a NUL character at byte {byte}")
            }
            Self::Nul { byte, bom: false } => write!(
                f,
                "it holds a NUL character at byte {byte} (UTF-16 saved without a byte-order mark?)"
            ),
            Self::DoubleBom => {
                f.write_str("it starts with two byte-order marks (U+FEFF); remove one")
            }
        }
    }
}

impl std::error::Error for TextError {}

/// Decodes a text file as editors and tools of other platforms save it: UTF-8 with or without a
/// byte-order mark (BOM, U+FEFF), or UTF-16 little- or big-endian **with** a BOM (Windows
/// "Unicode"). The BOM is removed. Line endings are left as they are: JSON and TOML accept both
/// LF and CRLF. Files are always written back as plain UTF-8 without a BOM.
///
/// Borrows when the bytes are already plain UTF-8 (the common case costs no copy).
///
/// # Errors
///
/// [`TextError::Utf32`] for a UTF-32 BOM; [`TextError::OddUtf16`] / [`TextError::UnpairedSurrogate`]
/// for broken UTF-16; [`TextError::Nul`] (with the byte offset) for U+0000 in any encoding;
/// [`TextError::DoubleBom`] when a second BOM follows the first; [`TextError::NotText`] for anything
/// else that is not valid UTF-8 (Latin-1).
pub fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>, TextError> {
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) || bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Err(TextError::Utf32);
    }
    if let Some(rest) = bytes.strip_prefix(&UTF8_BOM) {
        return utf8(rest, UTF8_BOM.len());
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    utf8(bytes, 0)
}

/// `rest` as UTF-8, found after a BOM of `bom_len` bytes (0: none).
fn utf8(rest: &[u8], bom_len: usize) -> Result<Cow<'_, str>, TextError> {
    if let Some(at) = rest.iter().position(|b| *b == 0) {
        return Err(TextError::Nul {
            byte: bom_len.saturating_add(at),
            bom: bom_len > 0,
        });
    }
    let text = std::str::from_utf8(rest).map_err(|_| TextError::NotText)?;
    if bom_len > 0 && text.starts_with(BOM_CHAR) {
        return Err(TextError::DoubleBom);
    }
    Ok(Cow::Borrowed(text))
}

/// `rest` as UTF-16 (after its 2-byte BOM), each unit read with `from`.
fn utf16(rest: &[u8], from: fn([u8; 2]) -> u16) -> Result<Cow<'static, str>, TextError> {
    let (units, odd) = rest.as_chunks::<2>();
    if !odd.is_empty() {
        return Err(TextError::OddUtf16);
    }
    if let Some(at) = units.iter().position(|pair| from(*pair) == 0) {
        return Err(TextError::Nul {
            // The 2-byte BOM, then 2 bytes per unit.
            byte: at.saturating_mul(2).saturating_add(2),
            bom: true,
        });
    }
    let text = char::decode_utf16(units.iter().map(|pair| from(*pair)))
        .collect::<Result<String, _>>()
        .map_err(|_| TextError::UnpairedSurrogate)?;
    if text.starts_with(BOM_CHAR) {
        return Err(TextError::DoubleBom);
    }
    Ok(Cow::Owned(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let mut out = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in text.encode_utf16() {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    fn utf8_bom(text: &str) -> Vec<u8> {
        let mut out = UTF8_BOM.to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn every_supported_encoding_decodes_to_the_same_text() {
        let text = "{\r\n  \"name\": \"Zoë 🔑\"\r\n}\r\n";
        assert!(matches!(decode_text(text.as_bytes()), Ok(Cow::Borrowed(t)) if t == text));
        assert_eq!(decode_text(&utf8_bom(text)).unwrap(), text);
        assert_eq!(decode_text(&utf16(text, false)).unwrap(), text);
        assert_eq!(decode_text(&utf16(text, true)).unwrap(), text);
        assert_eq!(decode_text(b"").unwrap(), "");
        assert_eq!(decode_text(b"\xEF\xBB\xBF").unwrap(), "");
        // U+FEFF inside the text (a zero-width no-break space) is text, not a second mark.
        let inner = "a = \"x\u{FEFF}y\"";
        assert_eq!(decode_text(inner.as_bytes()).unwrap(), inner);
        assert_eq!(decode_text(&utf16(inner, true)).unwrap(), inner);
    }

    #[test]
    fn other_encodings_are_refused_with_a_reason() {
        let latin1 = b"name = \"Zo\xEB\"";
        assert_eq!(decode_text(latin1), Err(TextError::NotText));
        assert_eq!(
            TextError::NotText.to_string(),
            "not UTF-8 (nor UTF-16 with a byte-order mark)"
        );
        let mut bom_latin1 = UTF8_BOM.to_vec();
        bom_latin1.extend_from_slice(latin1);
        assert_eq!(decode_text(&bom_latin1), Err(TextError::NotText));
        // UTF-16 without a BOM is not guessed: its first NUL is named, with the likely cause.
        let no_bom = &utf16("{}", false)[2..];
        let err = decode_text(no_bom).unwrap_err();
        assert_eq!(
            err,
            TextError::Nul {
                byte: 1,
                bom: false
            }
        );
        assert!(err.to_string().contains("NUL character at byte 1"), "{err}");
        assert!(
            err.to_string().contains("without a byte-order mark"),
            "{err}"
        );
        let mut odd = utf16("{}", false);
        odd.push(b'x');
        assert_eq!(decode_text(&odd), Err(TextError::OddUtf16));
        assert!(TextError::OddUtf16.to_string().contains("odd"));
        let lone = [0xFF, 0xFE, 0x00, 0xD8, b'a', 0];
        assert_eq!(decode_text(&lone), Err(TextError::UnpairedSurrogate));
        assert!(
            TextError::UnpairedSurrogate
                .to_string()
                .contains("surrogate")
        );
        assert_eq!(
            decode_text(&[0xFF, 0xFE, 0, 0, b'{', 0, 0, 0]),
            Err(TextError::Utf32)
        );
        assert!(TextError::Utf32.to_string().contains("UTF-32"));
        assert_eq!(decode_text(&[0, 0, 0xFE, 0xFF]), Err(TextError::Utf32));
    }

    #[test]
    fn a_nul_character_is_refused_in_every_encoding_naming_its_byte() {
        let text = "{\"a\":\"x\0y\"}";
        let cases: [(&str, Vec<u8>, usize, bool); 4] = [
            ("utf-8", text.as_bytes().to_vec(), 7, false),
            ("utf-8 with a bom", utf8_bom(text), 10, true),
            ("utf-16 le", utf16(text, false), 16, true),
            ("utf-16 be", utf16(text, true), 16, true),
        ];
        for (form, bytes, byte, bom) in cases {
            let err = decode_text(&bytes).unwrap_err();
            assert_eq!(err, TextError::Nul { byte, bom }, "{form}");
            // The offset is the NUL's own: the byte there (and for UTF-16 its pair) is zero.
            assert_eq!(bytes[byte], 0, "{form}");
            let shown = err.to_string();
            assert!(
                shown.contains(&format!("NUL character at byte {byte}")),
                "{form}: {shown}"
            );
            assert_eq!(
                shown.contains("UTF-16 saved without"),
                !bom,
                "{form}: {shown}"
            );
        }
        // A NUL as the very first character, right after the mark.
        assert_eq!(
            decode_text(&utf16("\0", true)),
            Err(TextError::Nul { byte: 2, bom: true })
        );
    }

    #[test]
    fn two_byte_order_marks_are_refused_in_every_encoding() {
        let doubled = "\u{FEFF}{\"a\": 1}";
        for (form, bytes) in [
            ("utf-8", utf8_bom(doubled)),
            ("utf-16 le", utf16(doubled, false)),
            ("utf-16 be", utf16(doubled, true)),
            ("only two marks", utf8_bom("\u{FEFF}")),
        ] {
            let err = decode_text(&bytes).unwrap_err();
            assert_eq!(err, TextError::DoubleBom, "{form}");
            assert!(err.to_string().contains("two byte-order marks"), "{form}");
        }
        // One mark, then the text: fine (the same text without the second mark).
        assert_eq!(decode_text(&utf8_bom(&doubled[3..])).unwrap(), "{\"a\": 1}");
    }
}
