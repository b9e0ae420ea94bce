//! Unpredictable bytes and names from the operating system's CSPRNG
//! (through rustls's ring provider, already in the tree): secrets and ids
//! the emulator makes, and the token that proves a tunnel reaches the
//! listener.

/// `n` characters from `[A-Za-z0-9]`, from the operating system's CSPRNG
/// (through rustls's ring provider, already in the tree), unbiased.
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in random_bytes::<64>() {
            // 248 = 4 × 62: bytes above it would favour the first letters.
            if byte < 248 && out.len() < n {
                out.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
    }
    out
}

/// A random (version 4) UUID, as Danube's ids are.
pub(crate) fn uuid_v4() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    static RANDOM: std::sync::OnceLock<&'static dyn rustls::crypto::SecureRandom> =
        std::sync::OnceLock::new();
    let random = RANDOM.get_or_init(|| rustls::crypto::ring::default_provider().secure_random);
    let mut bytes = [0u8; N];
    // The system's random source failing is not something to go on from:
    // a predictable secret would be worse than stopping.
    random
        .fill(&mut bytes)
        .expect("the operating system's random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_ids_are_random_and_well_formed() {
        let a = random_alnum(32);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_alnum(32));
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
