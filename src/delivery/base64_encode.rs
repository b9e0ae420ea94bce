//! Standard base64 with padding (RFC 4648 §4), for the record's
//! `body_b64`: the one encoding on every delivery's path.
//!
//! The `base64` crate's general-purpose engine spends about 7 instructions
//! a byte of body (7,400 for a 1 KiB delivery, once the largest single
//! piece of the listener's own work; docs/performance.md). Its `Simd`
//! engine encodes 24 bytes a step with AVX2 (NEON on ARM) where the CPU
//! has it, chosen once at start, and falls back to the general engine
//! where it has not: under 1 a byte. A property test holds it to the
//! general engine's text.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::PAD;
use base64::engine::simd::Simd;

/// The engine, with the CPU's features detected once.
static ENGINE: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

/// Append `bytes` in standard padded base64 to `out`.
///
/// # Panics
/// When the encoded length overflows `usize`: no body in memory is that long.
pub(crate) fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = base64::encoded_len(bytes.len(), true).expect("a body in memory has a base64 length");
    let start = out.len();
    out.resize(start + len, 0);
    let written = ENGINE
        .encode_slice(bytes, &mut out[start..])
        .expect("the slice is the encoded length");
    debug_assert_eq!(written, len);
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

    /// Every length across the SIMD engine's threshold (128 bytes) and a
    /// few of its 24-byte steps: each way the vector steps and the scalar
    /// rest can share a body.
    #[test]
    fn every_length_across_the_vector_steps() {
        let bytes: Vec<u8> = (0..320u16)
            .map(|b| (b as u8).wrapping_mul(37) ^ 0xa5)
            .collect();
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
