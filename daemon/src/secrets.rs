//! The at-rest key and what is derived from it.
//!
//! One random 256-bit master key lives in its own file (default `/etc/twofold/secret.key`,
//! 0600), apart from the database: a stolen database alone reveals no TOTP secret. From it
//! we derive an AEAD key for TOTP secrets and a MAC key for backup-code lookup tags.

use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::TryRng;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::files;

type HmacSha256 = Hmac<Sha256>;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Format byte in front of every sealed blob, so the scheme can change later.
const SEALED_V1: u8 = 1;

/// Keys derived from the master key file; zeroized on drop.
pub struct Keys {
    aead_key: Zeroizing<[u8; KEY_LEN]>,
    tag_key: Zeroizing<[u8; KEY_LEN]>,
}

/// Fills `buf` from the kernel's random source (getrandom(2)): every key, nonce, secret
/// and code comes from here. A kernel that cannot give randomness stops the daemon.
pub fn os_random(buf: &mut [u8]) {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .expect("the kernel's random source failed");
}

fn derive(master: &[u8], label: &str) -> Zeroizing<[u8; KEY_LEN]> {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

impl Keys {
    /// Loads the key file, creating it (0600, fresh random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Keys, String> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                files::ensure_private_dir(dir).map_err(|e| e.0)?;
            }
        }
        let master = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(path)?,
            _ => read_key_file(path)?,
        };
        Ok(Keys::from_master(&master[..]))
    }

    /// Keys from raw master key bytes (tests and the loader above).
    pub fn from_master(master: &[u8]) -> Keys {
        Keys {
            aead_key: derive(master, "twofold/v1/totp-secret-aead"),
            tag_key: derive(master, "twofold/v1/backup-code-tag"),
        }
    }

    /// Encrypts a TOTP secret, bound to its user so that rows cannot be swapped.
    pub fn seal(&self, user: &str, secret: &[u8]) -> Vec<u8> {
        self.seal_for(&aad(user), secret)
    }

    /// Encrypts a hardware token's seed, bound to its serial (no user's: an unassigned
    /// token belongs to no one; a user's device gets its own copy sealed for them).
    pub fn seal_token(&self, serial: &str, secret: &[u8]) -> Vec<u8> {
        self.seal_for(&token_aad(serial), secret)
    }

    /// Decrypts a sealed token seed (see [`Keys::seal_token`]).
    pub fn open_token(&self, serial: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_for(&token_aad(serial), sealed)
    }

    fn seal_for(&self, aad: &[u8], secret: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&(*self.aead_key).into());
        let mut nonce = [0u8; NONCE_LEN];
        os_random(&mut nonce);
        let ct = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: secret, aad })
            .expect("XChaCha20Poly1305 encryption cannot fail for small inputs");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a sealed TOTP secret; fails on a wrong key, a wrong user or tampering.
    pub fn open(&self, user: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_for(&aad(user), sealed)
    }

    fn open_for(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_V1 {
            return Err("stored secret has an unknown format".into());
        }
        let cipher = XChaCha20Poly1305::new(&(*self.aead_key).into());
        cipher
            .decrypt(
                &XNonce::try_from(&sealed[1..1 + NONCE_LEN]).expect("length checked above"),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                "stored secret does not decrypt with this key (wrong key file?)".to_string()
            })
    }

    /// Short keyed tag that finds a backup code's row without trying every hash.
    pub fn backup_code_tag(&self, user: &str, normalized_code: &str) -> Vec<u8> {
        self.tag(user, normalized_code)
    }

    /// The value every host of a fleet derives from the shared key file (a keyed tag,
    /// never the key): the fleet's database refuses a host whose key differs. Fleets
    /// have stored it from the start as the tag of a fixed pair that no user name can
    /// take ("twofold fleet" has a space): these bytes must never change.
    pub fn fleet_check(&self) -> Vec<u8> {
        self.tag("twofold fleet", "key check")
    }

    /// HMAC-SHA256 with the tag key over `first`, a NUL and `second`, cut to 8 bytes.
    fn tag(&self, first: &str, second: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.tag_key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(first.as_bytes());
        mac.update(&[0]);
        mac.update(second.as_bytes());
        mac.finalize().into_bytes()[..8].to_vec()
    }
}

/// A token's: a prefix of its own, so that no user's row opens as a token's or back.
fn token_aad(serial: &str) -> Vec<u8> {
    let mut aad = b"twofold/v1/token-secret\0".to_vec();
    aad.extend_from_slice(serial.as_bytes());
    aad
}

fn aad(user: &str) -> Vec<u8> {
    let mut aad = b"twofold/v1/totp-secret\0".to_vec();
    aad.extend_from_slice(user.as_bytes());
    aad
}

fn create_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    os_random(master.as_mut_slice());
    let mut hex = Zeroizing::new(data_encoding::HEXLOWER.encode(master.as_slice()));
    hex.push('\n');
    let mut file = files::create_private_file(path)
        .map_err(|e| format!("{}: cannot create key file: {e}", path.display()))?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: cannot write key file: {e}", path.display()))?;
    log::info!("created a new at-rest key in {}", path.display());
    Ok(master)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let mut file = files::open_private_file(path).map_err(|e| format!("key file: {e}"))?;
    let mut text = Zeroizing::new(String::new());
    std::io::Read::by_ref(&mut file)
        .take(256)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: cannot read key file: {e}", path.display()))?;
    let mut bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.trim().as_bytes())
        .map_err(|_| format!("{}: key file is not 64 hexadecimal digits", path.display()))?;
    if bytes.len() != KEY_LEN {
        bytes.zeroize();
        return Err(format!(
            "{}: key file must hold 64 hexadecimal digits (256 bits)",
            path.display()
        ));
    }
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    master.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(master)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::temp_path;

    /// What the daemon stored before the move to chacha20poly1305 0.11, hmac 0.13 and
    /// sha2 0.11 still opens and matches: a secret sealed and a backup-code tag made by
    /// the previous versions (master key [7; 32], nonce [9; 24]).
    #[test]
    fn rows_written_with_the_previous_crypto_crates_still_open() {
        let keys = Keys::from_master(&[7u8; 32]);
        let sealed = data_encoding::HEXLOWER
            .decode(
                b"01090909090909090909090909090909090909090909090909\
                  d3a3665a76cbc32edf1cf63d5facda664474d94977159f8c801a96aff76a3d46ab6ffd64",
            )
            .unwrap();
        assert_eq!(
            &keys.open("alice", &sealed).unwrap()[..],
            b"0123456789abcdefghij"
        );
        assert_eq!(
            data_encoding::HEXLOWER.encode(&keys.backup_code_tag("alice", "k7qmx2fp9d")),
            "a540a1051413d348"
        );
        // The fleet's key check, as every fleet database stores it.
        assert_eq!(
            data_encoding::HEXLOWER.encode(&keys.fleet_check()),
            "5a13f1294e7005f3"
        );
    }

    type Seal = fn(&Keys, &str, &[u8]) -> Vec<u8>;
    type Open = fn(&Keys, &str, &[u8]) -> Result<Zeroizing<Vec<u8>>, String>;

    /// A secret sealed for one owner (a user, a token) opens for that owner, under that
    /// key, only; its text does not show.
    #[test]
    fn seal_binds_owner_and_key() {
        let keys = Keys::from_master(&[7u8; 32]);
        let users: (Seal, Open) = (Keys::seal, Keys::open);
        let tokens: (Seal, Open) = (Keys::seal_token, Keys::open_token);
        for ((seal, open), owner, other, secret) in [
            (users, "alice", "bob", b"0123456789abcdefghij"),
            (tokens, "987654321", "987654322", b"12345678901234567890"),
        ] {
            let sealed = seal(&keys, owner, secret);
            assert_eq!(&open(&keys, owner, &sealed).unwrap()[..], secret);
            assert!(open(&keys, other, &sealed).is_err());
            assert!(open(&Keys::from_master(&[8u8; 32]), owner, &sealed).is_err());
            assert!(!sealed.windows(20).any(|w| w == secret));
        }
    }

    #[test]
    fn a_tokens_seed_opens_as_that_tokens_only() {
        let keys = Keys::from_master(&[7u8; 32]);
        let sealed = keys.seal_token("987654321", b"12345678901234567890");
        assert!(keys.open("987654321", &sealed).is_err());
        let users = keys.seal("987654321", b"12345678901234567890");
        assert!(keys.open_token("987654321", &users).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let (_dir, path) = temp_path("sub/secret.key");
        let a = Keys::load_or_create(&path).unwrap();
        files::check_private_file(&path).unwrap();
        let b = Keys::load_or_create(&path).unwrap();
        let sealed = a.seal("u", b"secretsecretsecret12");
        assert!(b.open("u", &sealed).is_ok());
    }
}
