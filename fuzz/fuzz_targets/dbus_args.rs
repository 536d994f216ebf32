//! D-Bus argument handling: hostile message bodies decoded as each method's signature
//! (what zbus does before twofoldd sees a call), then the daemon's pure handling of the
//! decoded strings: code classification, backup-code normalization, TOTP matching, the
//! log escaping and the otpauth URI. No panic, no hang.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use twofold_contract::{limits, OathParams};
use twofoldd::{backup_codes, logging, otp};
use zbus::wire::serialized::{Context, Data};
use zbus::wire::LE;

fn handle(user: &str, code: &str, other: &str) {
    let shown = logging::safe(user);
    assert!(
        !shown.contains('\n') && !shown.contains('\u{1b}'),
        "{shown:?}"
    );
    if otp::looks_like_totp(code) {
        assert_eq!(code.len(), 6);
        let _ = otp::matching_step(
            b"12345678901234567890",
            code,
            55_555_555,
            1,
            Some(55_555_554),
        );
    }
    if otp::looks_like_otp(code) {
        // A hardware token's parameters: 8 digits, SHA-256, 60-second steps; a counter.
        for oath in [otp::Oath::new("SHA256", 8, 60), otp::Oath::new("SHA1", 6, 0)] {
            let oath = oath.expect("supported parameters");
            let _ = oath.matching(b"12345678901234567890", code, 1_666_666_666, 2, Some(7));
        }
    } else if let Some(n) = backup_codes::normalize(code) {
        // Ten symbols of ours, or an imported google-authenticator scratch code.
        let scratch_code = n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit());
        assert!(n.len() == 10 || scratch_code, "{:?}", n.as_str());
    }
    let _ = otp::otpauth_uri(other, user, "JBSWY3DPEHPK3PXP", &otp::Oath::APP);
}

/// The parameters of an enrollment: checked at the door, then only good ones made.
fn handle_oath(oath: &OathParams) {
    if limits::enrollment_oath(oath).is_ok() {
        let made = otp::Oath::from_params(oath).expect("checked parameters make an Oath");
        assert!(!made.is_counter());
        let _ = otp::otpauth_uri("i", "u", "JBSWY3DPEHPK3PXP", &made);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let ctx = Context::new(LE, 0);
    let body = Data::new(&data[1..], ctx);
    match data[0] % 5 {
        // Verify(s user, s code, a{ss} context)
        0 => {
            if let Ok(((u, c, m), _)) =
                body.deserialize::<(String, String, HashMap<String, String>)>()
            {
                handle(&u, &c, m.keys().next().map_or("", |k| k.as_str()));
            }
        }
        // AddDeviceBegin(s user, s name, s issuer, s proof, (suut) oath)
        3 => {
            if let Ok(((u, _name, issuer, proof, oath), _)) =
                body.deserialize::<(String, String, String, String, OathParams)>()
            {
                handle(&u, &proof, &issuer);
                handle_oath(&oath);
            }
        }
        // EnrollBegin(s, s, s, (suut)) / Disable(s, s, s) / RemoveDevice(s, s, s) /
        // AddDeviceConfirm(s, s, s)
        1 => {
            if let Ok(((u, a, b, oath), _)) =
                body.deserialize::<(String, String, String, OathParams)>()
            {
                handle(&u, &a, &b);
                handle_oath(&oath);
            } else if let Ok(((u, a, b), _)) = body.deserialize::<(String, String, String)>() {
                handle(&u, &a, &b);
            }
        }
        // EnrollConfirm(s, s) / RegenerateBackupCodes(s, s)
        2 => {
            if let Ok(((u, c), _)) = body.deserialize::<(String, String)>() {
                handle(&u, &c, "");
            }
        }
        // Anything as text, straight to the handlers.
        _ => {
            let text = String::from_utf8_lossy(&data[1..]);
            let mut parts = text.splitn(3, '\u{0}');
            let (u, c, o) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            handle(u, c, o);
        }
    }
});
