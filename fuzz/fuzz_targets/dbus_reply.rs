//! The PAM module's reader of daemon replies (`pam_module/src/wire.rs`): any bytes as a
//! message from a daemon or a bus that went wrong. No panic; lengths are bounded before
//! anything is read; a parsed reply decodes (or refuses) as each reply type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_twofold::wire::{message_len, Reply, FIXED_HEADER_LEN, MAX_MESSAGE_LEN};
use twofold_contract::{LoginState, Verified};

fuzz_target!(|data: &[u8]| {
    if let Some(fixed) = data.get(..FIXED_HEADER_LEN) {
        if let Ok(len) = message_len(fixed.try_into().unwrap()) {
            assert!(len <= MAX_MESSAGE_LEN);
        }
    }
    if let Ok(Some(reply)) = Reply::parse(data.to_vec()) {
        let _ = reply.body::<LoginState>();
        let _ = reply.body::<Verified>();
        let _ = reply.body::<String>();
        let _ = reply.body::<u32>();
        let _ = reply.body::<()>();
        let _ = reply.error_message();
    }
});
