//! twofoldd's config parser (`daemon/src/policy.rs`): any text. No panic (the error
//! path slices the text at the span TOML reports); what it accepts passes validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofoldd::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text) {
        Ok(p) => assert!(
            p.totp_window <= 10,
            "accepted totp_window {}",
            p.totp_window
        ),
        Err(e) => assert!(!e.is_empty()),
    }
});
