//! The PAM module's argument parser (`pam_module/src/options.rs`): any bytes, split at
//! NUL into arguments as libpam would pass them. No panic; warnings are single log
//! lines without control characters; accepted values stay in their documented ranges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofold_pam::options::{Options, MAX_TIMEOUT, MIN_TIMEOUT};

fuzz_target!(|data: &[u8]| {
    let args: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let (opts, warnings) = Options::parse(&args);
    for w in &warnings {
        assert!(
            !w.chars().any(char::is_control),
            "control character in {w:?}"
        );
        assert!(w.len() < 1024, "over-long warning");
    }
    let t = opts.timeout;
    assert!((MIN_TIMEOUT..=MAX_TIMEOUT).contains(&t), "timeout {t:?}");
    assert!(!opts.prompt.is_empty());
    assert!(opts.bus.starts_with("unix:"), "bus {:?}", opts.bus);
});
