//! Single-use backup codes: 10 per set, 50 bits each, stored only as Argon2id hashes.
//!
//! Printed as `k7qm-x2fp-9d` from Crockford's base32 alphabet (no i, l, o, u), so a code
//! can be read aloud; typed back with or without dashes and spaces, in any case, and with
//! the look-alikes o→0 and i/l→1 forgiven.
//!
//! A keyed 64-bit tag beside each hash finds the one candidate row, so an attempt costs
//! exactly one Argon2 evaluation however many codes remain (a dummy one when nothing
//! matches, so that timing does not tell).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use zeroize::Zeroizing;

/// Codes per set.
pub const CODES_PER_SET: usize = 10;
/// Symbols per code (10 × 5 bits = 50 bits).
pub const CODE_LEN: usize = 10;
/// Digits of a google-authenticator scratch code, imported as a backup code
/// (`twofold admin import google-authenticator`).
pub const SCRATCH_CODE_LEN: usize = 8;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Argon2 evaluations performed by this process (the benchmark reads it).
pub static ARGON2_EVALUATIONS: AtomicU64 = AtomicU64::new(0);

/// A new set of codes, formatted for printing.
pub fn generate_set() -> Vec<Zeroizing<String>> {
    (0..CODES_PER_SET)
        .map(|_| {
            // 32 symbols: the low 5 bits of a random byte pick one uniformly.
            let mut bytes = Zeroizing::new([0u8; CODE_LEN]);
            crate::secrets::os_random(bytes.as_mut_slice());
            let raw: Zeroizing<String> = Zeroizing::new(
                bytes
                    .iter()
                    .map(|b| ALPHABET[usize::from(b & 31)] as char)
                    .collect(),
            );
            Zeroizing::new(format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]))
        })
        .collect()
}

/// The canonical form of a typed code, or `None` when it cannot be a backup code: ten
/// symbols of ours, or the eight digits of an imported google-authenticator scratch code.
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_LEN));
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' | '\t' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        if out.len() == CODE_LEN {
            return None;
        }
        out.push(c);
    }
    let scratch_code = out.len() == SCRATCH_CODE_LEN && out.bytes().all(|b| b.is_ascii_digit());
    (out.len() == CODE_LEN || scratch_code).then_some(out)
}

fn hasher() -> Argon2<'static> {
    // OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Argon2 evaluations allowed at once: each takes 19 MiB, and the machine has few cores;
/// more would only queue in the kernel while holding memory.
const ARGON2_SLOTS: usize = 2;

/// Runs `f` (one Argon2 evaluation) when one of [`ARGON2_SLOTS`] is free.
fn in_argon2_slot<T>(f: impl FnOnce() -> T) -> T {
    static BUSY: Mutex<usize> = Mutex::new(0);
    static FREED: Condvar = Condvar::new();
    let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
    while *busy >= ARGON2_SLOTS {
        busy = FREED.wait(busy).unwrap_or_else(|p| p.into_inner());
    }
    *busy += 1;
    drop(busy);
    ARGON2_EVALUATIONS.fetch_add(1, Ordering::Relaxed);
    let out = f();
    *BUSY.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    FREED.notify_one();
    out
}

/// Argon2id hash (PHC string) of a normalized code.
pub fn hash(normalized: &str) -> String {
    in_argon2_slot(|| {
        hasher()
            .hash_password(normalized.as_bytes())
            .expect("Argon2 hashing with valid parameters cannot fail")
            .to_string()
    })
}

/// Checks a normalized code against a stored hash: one Argon2 evaluation.
pub fn verify(normalized: &str, stored_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    in_argon2_slot(|| {
        hasher()
            .verify_password(normalized.as_bytes(), &parsed)
            .is_ok()
    })
}

/// One Argon2 evaluation that matches nothing, spent when no candidate row exists.
pub fn verify_nothing(normalized: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hasher()
            .hash_password(b"twofold-dummy-backup-code")
            .expect("Argon2 hashing with valid parameters cannot fail")
            .to_string()
    });
    let _ = verify(normalized, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes stored before the move to argon2 0.6 still verify: written by argon2 0.5
    /// with the daemon's parameters, for the code "k7qm-x2fp-9d".
    #[test]
    fn hashes_written_by_argon2_0_5_still_verify() {
        let old = "$argon2id$v=19$m=19456,t=2,p=1$01Pkn1qRmyWlxdUwgei6Qg$\
                   cqFKrDMTs82Qm30nmvEv3URm48onnNH8U7bWLzn+ino";
        assert!(verify("k7qmx2fp9d", old));
        assert!(!verify("k7qmx2fp9e", old));
        let new = hash("k7qmx2fp9d");
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        assert!(verify("k7qmx2fp9d", &new));
    }

    #[test]
    fn codes_have_fifty_bits_and_no_lookalikes() {
        let set = generate_set();
        assert_eq!(set.len(), CODES_PER_SET);
        for code in &set {
            assert_eq!(code.len(), CODE_LEN + 2);
            assert!(!code.contains(['i', 'l', 'o', 'u']));
            assert_eq!(normalize(code).unwrap().len(), CODE_LEN);
        }
        assert_eq!(ALPHABET.len(), 32); // 5 bits per symbol
    }

    /// Asserts that none of `typed` is read as a code.
    fn not_codes(typed: &[&str]) {
        for typed in typed {
            assert!(normalize(typed).is_none(), "{typed:?}");
        }
    }

    #[test]
    fn typed_forms_normalize_alike() {
        let canonical = normalize("k7qm-x2fp-9d").unwrap();
        for typed in [
            "K7QM X2FP 9D",
            "k7qmx2fp9d",
            " k7qm-x2fp-9d ",
            "K7QM-X2FP-9D",
        ] {
            assert_eq!(normalize(typed).unwrap(), canonical, "{typed}");
        }
        assert_eq!(normalize("oIl0-0000-00").unwrap().as_str(), "0110000000");
        not_codes(&[
            "k7qm-x2fp-9",
            "k7qm-x2fp-9dd",
            "k7qm-x2fp-9u",
            "",
            "ü7qm-x2fp-9d",
        ]);
    }

    #[test]
    fn google_authenticator_scratch_codes_are_eight_digits() {
        for typed in ["12345678", " 1234 5678 "] {
            assert_eq!(normalize(typed).unwrap().as_str(), "12345678", "{typed}");
        }
        not_codes(&["1234567", "123456789", "1234567a", "abcdefgh"]);
    }

    #[test]
    fn hash_verifies_only_its_code() {
        let h = hash("k7qmx2fp9d");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("k7qmx2fp9d", &h));
        assert!(!verify("k7qmx2fp9e", &h));
    }
}
