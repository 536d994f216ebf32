//! The framing against zbus's own: what is written here is what zbus
//! writes, and what zbus writes is read here; malformed input is refused.

use std::collections::HashMap;
use std::num::NonZeroU32;

use crate::{LoginState, Verified};
use zbus::{Signature, Variant as Value};

use super::*;

const TWOFOLD: Target<'static> = Target {
    destination: Some(":1.42"),
    path: "/org/twofold/Twofold1",
    interface: "org.twofold.Twofold1",
};

fn context_map() -> HashMap<String, String> {
    [("service".to_owned(), "sshd".to_owned())].into()
}

/// Byte for byte what zbus sends for the same call (fields in the same order, same
/// padding, same body).
#[test]
fn a_call_is_encoded_as_zbus_encodes_it() {
    let args = ("alice", "123456", context_map());
    let ours = method_call(5, TWOFOLD, "Verify", &args).expect("encode");
    let theirs = zbus::message::Message::method_call(TWOFOLD.path, "Verify")
        .interface(TWOFOLD.interface)
        .destination(":1.42")
        .serial(NonZeroU32::new(5).unwrap())
        .build(&args)
        .expect("zbus message");
    assert_eq!(ours.as_slice(), theirs.data().bytes());

    // Without arguments and without a destination (peer to peer).
    let p2p = Target {
        destination: None,
        ..TWOFOLD
    };
    let ours = method_call(1, p2p, "Ping", &()).expect("encode");
    let theirs = zbus::message::Message::method_call(TWOFOLD.path, "Ping")
        .interface(TWOFOLD.interface)
        .serial(NonZeroU32::new(1).unwrap())
        .build(&())
        .expect("zbus message");
    assert_eq!(ours.as_slice(), theirs.data().bytes());
}

/// A call of serial `serial` as zbus builds it, for zbus to build replies to.
pub(crate) fn zbus_call(serial: u32) -> zbus::message::Message {
    zbus::message::Message::method_call("/", "Call")
        .serial(NonZeroU32::new(serial).expect("a serial is not 0"))
        .build(&())
        .expect("call")
}

/// A reply of `body` to serial 9, built by zbus, with `extra` header fields spliced in
/// (zbus writes only the fields it knows).
fn reply(endian: Endian, extra: &[(u8, Value<'_>)], body: &LoginState) -> Vec<u8> {
    use zbus::message::Message;
    let call = zbus_call(9);
    let header = call.header();
    let reply = Message::method_return(&header)
        .sender(":1.42")
        .endian(endian)
        .build(body)
        .expect("reply");
    let bytes = reply.data().bytes();
    if extra.is_empty() {
        return bytes.to_vec();
    }
    // Append the extra fields after zbus's (each is an 8-aligned struct).
    let fields_len = u32_at(bytes, 12, endian);
    let fields_end = FIXED_HEADER_LEN + fields_len;
    let mut header = bytes[..fields_end].to_vec();
    for field in extra {
        header.resize(header.len().next_multiple_of(8), 0);
        let at = header.len();
        let encoded = zbus::wire::to_bytes(context(endian, at), field).expect("field");
        header.extend_from_slice(&encoded);
    }
    let new_len = (header.len() - FIXED_HEADER_LEN) as u32;
    let new_len = if endian == LE {
        new_len.to_le_bytes()
    } else {
        new_len.to_be_bytes()
    };
    header[12..16].copy_from_slice(&new_len);
    header.resize(header.len().next_multiple_of(8), 0);
    header.extend_from_slice(&bytes[fields_end.next_multiple_of(8)..]);
    header
}

fn sample() -> LoginState {
    LoginState {
        enrolled: true,
        locked_for: 30,
        message: "hello".into(),
        ..Default::default()
    }
}

/// Replies byte for byte as zbus writes them, with and without a body, and errors.
#[test]
fn replies_are_encoded_as_zbus_encodes_them() {
    use zbus::message::Message as Zbus;
    let call = zbus_call(9);
    let header = call.header();
    let serial = |n| NonZeroU32::new(n).unwrap();
    let ours = method_return(4, 9, &sample()).expect("encode");
    let theirs = Zbus::method_return(&header)
        .serial(serial(4))
        .build(&sample())
        .expect("zbus");
    assert_eq!(ours.as_slice(), theirs.data().bytes());
    let ours = method_return(5, 9, &()).expect("encode");
    let theirs = Zbus::method_return(&header)
        .serial(serial(5))
        .build(&())
        .expect("zbus");
    assert_eq!(ours.as_slice(), theirs.data().bytes());
    let ours = error(6, 9, "org.twofold.Error.Locked", "Try again later.").expect("encode");
    let theirs = Zbus::error(&header, "org.twofold.Error.Locked")
        .serial(serial(6))
        .build(&("Try again later.",))
        .expect("zbus");
    assert_eq!(ours.as_slice(), theirs.data().bytes());
}

#[test]
fn replies_in_either_byte_order_with_any_basic_extra_field_are_read() {
    for endian in [LE, BE] {
        let extra = [
            (9, Value::from(0u32)),
            (42, Value::from(7u8)),
            (43, Value::from(-1i64)),
            (44, Value::from(Signature::try_from("a{ss}").unwrap())),
            (45, Value::from("x")),
        ];
        let bytes = reply(endian, &extra, &sample());
        let len = message_len(bytes[..FIXED_HEADER_LEN].try_into().unwrap()).expect("len");
        assert_eq!(len, bytes.len());
        let r = Message::parse(bytes).expect("parse");
        assert_eq!((r.reply_serial, r.error.as_deref()), (Some(9), None));
        assert_eq!(r.body::<LoginState>().expect("body"), sample());
        let wrong = r.body::<Verified>().expect_err("wrong shape");
        assert!(wrong.contains("signature"), "{wrong}");
    }
}

#[test]
fn an_error_reply_carries_its_name_and_message() {
    let call = zbus_call(3);
    let header = call.header();
    let error = zbus::message::Message::error(&header, "org.twofold.Error.Locked")
        .build(&("Try again in 60 seconds.",))
        .expect("error");
    let r = Message::parse(error.data().bytes().to_vec()).expect("parse");
    assert_eq!(r.reply_serial, Some(3));
    assert_eq!(r.error.as_deref(), Some("org.twofold.Error.Locked"));
    assert_eq!(r.error_message(), "Try again in 60 seconds.");
}

#[test]
fn a_call_is_read_back_with_its_fields_and_arguments() {
    let args = ("alice".to_owned(), "123456".to_owned(), context_map());
    let call = method_call(7, TWOFOLD, "Verify", &args).expect("encode");
    let m = Message::parse(call.to_vec()).expect("parse");
    assert!(!m.is_reply() && m.wants_reply());
    assert_eq!((m.kind, m.serial), (Kind::MethodCall, 7));
    assert_eq!(m.path.as_deref(), Some(TWOFOLD.path));
    assert_eq!(m.interface.as_deref(), Some(TWOFOLD.interface));
    assert_eq!(m.member.as_deref(), Some("Verify"));
    assert_eq!(
        m.body::<(String, String, HashMap<String, String>)>()
            .expect("args"),
        args
    );
    assert!(m.body::<(String, String)>().is_err(), "a shorter signature");
}

#[test]
fn malformed_and_oversized_messages_are_refused() {
    let good = reply(LE, &[], &sample());
    let refused = |bytes: Vec<u8>| {
        let fixed: Option<&[u8; FIXED_HEADER_LEN]> = bytes
            .get(..FIXED_HEADER_LEN)
            .and_then(|f| f.try_into().ok());
        let by_len = fixed.map(message_len);
        matches!(by_len, Some(Err(_))) || Message::parse(bytes).is_err()
    };

    let mut endian = good.clone();
    endian[0] = b'x';
    assert!(refused(endian));
    let mut version = good.clone();
    version[3] = 2;
    assert!(refused(version));
    let mut huge_body = good.clone();
    huge_body[4..8].copy_from_slice(&(MAX_MESSAGE_LEN as u32).to_le_bytes());
    assert!(refused(huge_body));
    let mut huge_fields = good.clone();
    huge_fields[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(refused(huge_fields));
    assert!(refused(good[..good.len() - 1].to_vec()));
    assert!(refused(good[..10].to_vec()));

    // A field of a container type, and a reply without its serial.
    let odd = reply(LE, &[(50, Value::from(vec!["x"]))], &sample());
    assert!(refused(odd));
    // zbus writes REPLY_SERIAL first: its code at 16, its type at 18.
    assert_eq!((good[16], good[18]), (REPLY_SERIAL, b'u'));
    let mut no_serial = good.clone();
    no_serial[16] = 60; // REPLY_SERIAL becomes an unknown code
    assert!(refused(no_serial));
    // REPLY_SERIAL holding a string.
    let mut wrong_type = good.clone();
    wrong_type[18] = b's';
    assert!(refused(wrong_type));
}

/// The fuzzer's seeds (fuzz/seeds/dbus_reply) are replies the module reads.
#[test]
fn the_fuzz_seeds_are_valid_replies() {
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/dbus_reply");
    let read = |name: &str| std::fs::read(format!("{seeds}/{name}")).expect("seed");
    let r = Message::parse(read("login_state")).expect("parse");
    assert_eq!(r.body::<LoginState>().expect("body").message, "hello");
    let e = Message::parse(read("error")).expect("parse");
    assert_eq!(e.error.as_deref(), Some("org.twofold.Error.Locked"));
    assert_eq!(e.error_message(), "Try again in 60 seconds.");
}
