//! Properties of the built binary itself.

use crate::util::BIN;

/// The binary is a position-independent executable on Linux: ELF `e_type` (the
/// 2 bytes at offset 16, little-endian on every Linux target we build) is `ET_DYN` (3), not
/// `ET_EXEC` (2), so its code is address-randomised.
#[test]
fn binary_is_pie() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let bytes = std::fs::read(BIN).expect("read the binary");
    assert_eq!(bytes.get(..4), Some(b"\x7fELF".as_slice()), "not ELF");
    assert_eq!(bytes.get(5), Some(&1), "expected a little-endian ELF");
    let e_type = bytes.get(16..18).map(|b| u16::from_le_bytes([b[0], b[1]]));
    assert_eq!(
        e_type,
        Some(3),
        "ELF type is not ET_DYN: the binary is not PIE"
    );
}
