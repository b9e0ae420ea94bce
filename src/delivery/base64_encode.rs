//! Standard base64 with padding (RFC 4648 §4), for the record's
//! `body_b64`: the one encoding on every delivery's path.
//!
//! The `base64` crate's general-purpose engine spends about 7 instructions
//! a byte of body (7,400 for a 1 KiB delivery, the largest single piece of
//! the listener's own work; docs/performance.md). This one
//! looks up two characters at a time, from a table of every 12-bit value
//! (8 KiB, built at compile time), twelve bytes of body a step read as two
//! words: about 4 a byte. Decoding, rare and off the path, stays with the
//! crate, and a property test holds the two to the same text.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two characters of each 12-bit value, the first in the low byte.
static PAIRS: [u16; 4096] = pairs();

const fn pairs() -> [u16; 4096] {
    let mut table = [0u16; 4096];
    let mut value = 0;
    while value < 4096 {
        table[value] = ALPHABET[value >> 6] as u16 | (ALPHABET[value & 63] as u16) << 8;
        value += 1;
    }
    table
}

/// The length of `len` bytes in padded base64, or `None` past `usize`.
fn encoded_len(len: usize) -> Option<usize> {
    len.div_ceil(3).checked_mul(4)
}

/// Append `bytes` in standard padded base64 to `out`.
///
/// # Panics
/// When the encoded length overflows `usize`: no body in memory is that long.
pub(crate) fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = encoded_len(bytes.len()).expect("a body in memory has a base64 length");
    let start = out.len();
    out.resize(start + len, 0);
    // Twelve bytes are sixteen characters, read as two big-endian words
    // with no branch but the loop's; what is left (at most eleven bytes)
    // goes six, then three at a time.
    let (dest, tail) = out[start..].split_at_mut(bytes.len() / 12 * 16);
    let mut twelves = bytes.chunks_exact(12);
    for (source, target) in twelves.by_ref().zip(dest.chunks_exact_mut(16)) {
        let first = u64::from_be_bytes(source[..8].try_into().expect("eight bytes"));
        // Bytes 4 to 11, less the two already read, which fall off the top.
        let second = u64::from_be_bytes(source[4..].try_into().expect("eight bytes")) << 16;
        eight(&mut target[..8], first);
        eight(&mut target[8..], second);
    }
    let rest = twelves.remainder();
    let (whole, rest) = rest.split_at(rest.len() / 6 * 6);
    let (dest, tail) = tail.split_at_mut(whole.len() / 6 * 8);
    for (source, target) in whole.chunks_exact(6).zip(dest.chunks_exact_mut(8)) {
        let bits = u64::from_be_bytes([
            source[0], source[1], source[2], source[3], source[4], source[5], 0, 0,
        ]);
        eight(target, bits);
    }
    for (source, target) in rest.chunks(3).zip(tail.chunks_exact_mut(4)) {
        let bits = source.iter().enumerate().fold(0u32, |bits, (at, &byte)| {
            bits | u32::from(byte) << (16 - 8 * at)
        });
        target[..2].copy_from_slice(&PAIRS[(bits >> 12) as usize].to_le_bytes());
        target[2..].copy_from_slice(&PAIRS[bits as usize & 0xfff].to_le_bytes());
        // One byte leaves two characters and `==`; two leave three and `=`.
        for pad in &mut target[source.len() + 1..] {
            *pad = b'=';
        }
    }
}

/// The eight characters of the six bytes at the top of `bits`, into
/// `target`: four 12-bit lookups, each pair stored as it is looked up.
#[inline]
fn eight(target: &mut [u8], bits: u64) {
    target[..2].copy_from_slice(&PAIRS[(bits >> 52) as usize].to_le_bytes());
    target[2..4].copy_from_slice(&PAIRS[(bits >> 40) as usize & 0xfff].to_le_bytes());
    target[4..6].copy_from_slice(&PAIRS[(bits >> 28) as usize & 0xfff].to_le_bytes());
    target[6..8].copy_from_slice(&PAIRS[(bits >> 16) as usize & 0xfff].to_le_bytes());
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;

    fn encoded(bytes: &[u8]) -> String {
        let mut out = b"before:".to_vec();
        encode_into(&mut out, bytes);
        String::from_utf8(out).expect("base64 is ASCII")
    }

    #[test]
    fn rfc_4648_test_vectors() {
        for (bytes, text) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                encoded(bytes.as_bytes()),
                format!("before:{text}"),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn every_byte_value_in_every_position_of_a_group() {
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for skip in 0..6 {
            let bytes = &bytes[skip..];
            assert_eq!(encoded(bytes), format!("before:{}", STANDARD.encode(bytes)));
        }
    }

    /// Every length up to a few steps: each way the word-wide steps, the
    /// six-byte group and the three-byte rests can share a body.
    #[test]
    fn every_short_length() {
        let bytes: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
        for len in 0..=bytes.len() {
            let bytes = &bytes[..len];
            assert_eq!(encoded(bytes), format!("before:{}", STANDARD.encode(bytes)));
        }
    }

    proptest! {
        #[test]
        fn the_same_text_as_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
            prop_assert_eq!(encoded(&bytes), format!("before:{}", STANDARD.encode(&bytes)));
        }
    }
}
