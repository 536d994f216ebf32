//! The D-Bus framing that pam_twofold.so and twofoldd's direct socket share
//! (`contract/src/wire.rs`): any bytes as a message from a daemon, a bus or a client
//! that went wrong. No panic; lengths are bounded before anything is read; a parsed
//! message decodes (or refuses) as each reply type and each call's arguments.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use twofold_contract::wire::{message_len, Message, FIXED_HEADER_LEN, MAX_MESSAGE_LEN};
use twofold_contract::{LoginState, Verified};

type Context = HashMap<String, String>;

fuzz_target!(|data: &[u8]| {
    if let Some(fixed) = data.get(..FIXED_HEADER_LEN) {
        if let Ok(len) = message_len(fixed.try_into().unwrap()) {
            assert!(len <= MAX_MESSAGE_LEN);
        }
    }
    if let Ok(message) = Message::parse(data.to_vec()) {
        let _ = message.body::<LoginState>();
        let _ = message.body::<Verified>();
        let _ = message.body::<String>();
        let _ = message.body::<u32>();
        let _ = message.body::<()>();
        let _ = message.body::<(String, String, Context)>();
        let _ = message.body::<(String, Context, u32)>();
        let _ = message.error_message();
    }
});
