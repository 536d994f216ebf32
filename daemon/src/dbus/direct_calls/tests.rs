use twofold_contract::wire::{method_call, Target};
use twofold_contract::ErrorKind;

use super::*;

/// Every daemon error goes out under its kind's name in the contract's namespace, as
/// the module sorts them.
#[test]
fn errors_carry_the_names_and_messages_the_bus_gives_them() {
    let all = [
        TwofoldError::PermissionDenied("m".into()),
        TwofoldError::NotEnrolled("m".into()),
        TwofoldError::InvalidCode("m".into()),
        TwofoldError::Locked("m".into()),
        TwofoldError::InvalidArgument("m".into()),
        TwofoldError::RateLimited("m".into()),
        TwofoldError::UnknownUser("m".into()),
        TwofoldError::AlreadyEnrolled("m".into()),
        TwofoldError::NoPendingEnrollment("m".into()),
        TwofoldError::InvalidPassword("m".into()),
        TwofoldError::Internal("m".into()),
    ];
    assert_eq!(all.len(), ErrorKind::ALL.len());
    for e in all {
        let Refusal(name, message) = refusal_of(&e);
        assert_eq!(ErrorKind::from_error_name(&name), e.kind(), "{name}");
        assert_eq!(message, "m");
    }
}

#[test]
fn arguments_of_another_shape_are_invalid_args() {
    let to = Target {
        destination: None,
        path: OBJECT_PATH,
        interface: INTERFACE,
    };
    let call = method_call(1, to, "Verify", &("alice", 5u32)).expect("encode");
    let call = Message::parse(call.to_vec()).expect("parse");
    let Err(Refusal(name, message)) = args::<(String, String, HashMap<String, String>)>(&call)
    else {
        panic!("decoded");
    };
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(message.contains("signature"), "{message}");
}
