//! RFC 6238 codes (SHA1, 6 digits, 30 s), computed here so that the timed loop does not
//! spawn oathtool; checked against oathtool once at start.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

/// Seconds since the epoch, fractional.
pub fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A fresh 20-byte TOTP secret (for the anchors' users).
pub fn random_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    twofoldd::secrets::os_random(&mut s);
    s
}

/// The current 30-second step.
pub fn step_now() -> u64 {
    now_f64() as u64 / 30
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha1::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    let mut out = [0u8; 20];
    out.copy_from_slice(&outer.finalize());
    out
}

/// The 6-digit code of `secret` at `step`.
pub fn code(secret: &[u8], step: u64) -> String {
    let mac = hmac_sha1(secret, &step.to_be_bytes());
    let off = (mac[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([mac[off] & 0x7f, mac[off + 1], mac[off + 2], mac[off + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// Decodes an RFC 4648 base32 secret (as the daemon hands it out).
pub fn decode_base32(secret: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(secret.trim_end_matches('=').as_bytes())
        .expect("base32 secret")
}

/// Checks [`code`] against oathtool, an independent implementation.
pub fn self_check() -> Result<(), String> {
    let secret = b"12345678901234567890";
    let b32 = data_encoding::BASE32_NOPAD.encode(secret);
    let at = 1_111_111_109u64;
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "--now", &format!("@{at}"), &b32])
        .output()
        .map_err(|e| format!("oathtool: {e}"))?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ours = code(secret, at / 30);
    if theirs != ours || ours != "081804" {
        return Err(format!("TOTP self-check: ours {ours}, oathtool {theirs}"));
    }
    Ok(())
}
