//! Text files other tools may have re-saved: one decoder for every file this workspace reads
//! (token files, `mcp/*.json` records, registrations, `providers.toml`).

use std::borrow::Cow;
use std::fmt;

/// Why [`decode_text`] refused a file's bytes: a few fixed words, never the file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextError(&'static str);

impl TextError {
    /// What is wrong, e.g. `"not UTF-8 (nor UTF-16 with a byte-order mark)"`.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
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
/// [`TextError`] for UTF-32 (a UTF-32 BOM), UTF-16 with an odd byte count or an unpaired
/// surrogate, NUL bytes outside UTF-16 (UTF-16 without a BOM, binary), and anything else that is
/// not valid UTF-8 (Latin-1).
pub fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>, TextError> {
    const NOT_TEXT: TextError = TextError("not UTF-8 (nor UTF-16 with a byte-order mark)");
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) || bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Err(TextError("UTF-32 is not supported; save the file as UTF-8"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|_| NOT_TEXT);
    }
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| -> Result<Cow<'_, str>, TextError> {
        let (units, odd) = rest.as_chunks::<2>();
        if !odd.is_empty() {
            return Err(TextError("UTF-16 text with an odd number of bytes"));
        }
        char::decode_utf16(units.iter().map(|pair| from(*pair)))
            .collect::<Result<String, _>>()
            .map(Cow::Owned)
            .map_err(|_| TextError("UTF-16 text with an unpaired surrogate"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    if bytes.contains(&0) {
        // Never in a text file; typical of UTF-16 saved without a BOM.
        return Err(TextError(
            "not text: it holds NUL bytes (UTF-16 without a byte-order mark?)",
        ));
    }
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|_| NOT_TEXT)
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

    #[test]
    fn every_supported_encoding_decodes_to_the_same_text() {
        let text = "{\r\n  \"name\": \"Zoë 🔑\"\r\n}\r\n";
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert!(matches!(decode_text(text.as_bytes()), Ok(Cow::Borrowed(t)) if t == text));
        assert_eq!(decode_text(&bom).unwrap(), text);
        assert_eq!(decode_text(&utf16(text, false)).unwrap(), text);
        assert_eq!(decode_text(&utf16(text, true)).unwrap(), text);
        assert_eq!(decode_text(b"").unwrap(), "");
        assert_eq!(decode_text(b"\xEF\xBB\xBF").unwrap(), "");
    }

    #[test]
    fn other_encodings_are_refused_with_a_reason() {
        let latin1 = b"name = \"Zo\xEB\"";
        assert_eq!(
            decode_text(latin1).unwrap_err().reason(),
            "not UTF-8 (nor UTF-16 with a byte-order mark)"
        );
        let mut bom_latin1 = b"\xEF\xBB\xBF".to_vec();
        bom_latin1.extend_from_slice(latin1);
        assert!(decode_text(&bom_latin1).is_err());
        // UTF-16 without a BOM is not guessed.
        let no_bom = &utf16("{}", false)[2..];
        assert!(decode_text(no_bom).unwrap_err().reason().contains("NUL"));
        let mut odd = utf16("{}", false);
        odd.push(b'x');
        assert!(decode_text(&odd).unwrap_err().reason().contains("odd"));
        let lone = [0xFF, 0xFE, 0x00, 0xD8, b'a', 0];
        assert!(
            decode_text(&lone)
                .unwrap_err()
                .reason()
                .contains("surrogate")
        );
        assert!(
            decode_text(&[0xFF, 0xFE, 0, 0, b'{', 0, 0, 0])
                .unwrap_err()
                .reason()
                .contains("UTF-32")
        );
        assert!(decode_text(&[0, 0, 0xFE, 0xFF]).is_err());
    }
}
