//! Calls read from a direct connection (see [`crate::direct`]), answered by the same
//! methods of [`TwofoldInterface`] that zbus's object server calls for the bus: the member
//! names and argument types below are the interface's (a test checks them against its
//! introspection), and every method still goes through [`TwofoldInterface::authorize`].
//!
//! On a direct connection the caller is the socket's peer ([`TwofoldInterface::for_peer`]),
//! never anything in a message; a peer-to-peer message has no sender, and the header the
//! methods receive is only a stand-in without one.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;
use twofold_contract::wire::{self, Kind, Message};
use twofold_contract::{TwofoldError, INTERFACE, OBJECT_PATH};
use zbus::message::Header;
use zbus::{OwnedVariant, Str, Type, Variant};

use super::TwofoldInterface;

const PEER: &str = "org.freedesktop.DBus.Peer";
const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A D-Bus error: its name and message.
struct Refusal(String, String);

impl Refusal {
    fn new(name: &str, message: impl Into<String>) -> Refusal {
        Refusal(name.to_owned(), message.into())
    }
}

/// What a call gets back: a reply's encoded body and signature, or an error.
type Answer = Result<Vec<u8>, Refusal>;

/// Serves the calls of one direct connection: its peer's [`TwofoldInterface`], a stand-in
/// header, and the serials of its replies.
pub struct DirectCalls {
    interface: TwofoldInterface,
    stand_in: zbus::Message,
    /// The serial of the reply being made.
    serial: u32,
}

impl DirectCalls {
    /// For the connection whose peer `interface` was made for (see
    /// [`TwofoldInterface::for_peer`]).
    pub fn new(interface: TwofoldInterface) -> Result<DirectCalls, String> {
        let stand_in = zbus::Message::method_call(OBJECT_PATH, "Direct")
            .build(&())
            .map_err(|e| e.to_string())?;
        Ok(DirectCalls {
            interface,
            stand_in,
            serial: 0,
        })
    }

    /// The encoded reply to `message`; None when it needs none (not a call, or a call
    /// that asked for no reply).
    pub async fn answer(&mut self, message: &Message) -> Option<Vec<u8>> {
        if message.kind != Kind::MethodCall {
            return None;
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        let answer = self.dispatch(message).await;
        if !message.wants_reply() {
            return None;
        }
        let (serial, to) = (self.serial, message.serial);
        let encoded = match answer {
            Ok(reply) => Ok(reply),
            Err(Refusal(name, text)) => wire::error(serial, to, &name, &text),
        };
        // A reply that cannot be encoded (never expected) still gets an answer.
        Some(encoded.unwrap_or_else(|e| {
            log::error!("direct socket: cannot encode a reply: {e}");
            wire::error(serial, to, "org.freedesktop.DBus.Error.Failed", "").unwrap_or_default()
        }))
    }

    async fn dispatch(&self, call: &Message) -> Answer {
        let member = call.member.as_deref().unwrap_or_default();
        if call.path.as_deref() != Some(OBJECT_PATH) {
            return Err(Refusal::new(
                "org.freedesktop.DBus.Error.UnknownObject",
                format!("no object at {}", call.path.as_deref().unwrap_or_default()),
            ));
        }
        let interface = match (call.interface.as_deref(), member) {
            (Some(named), _) => named,
            // Without an interface, the member names the method (none is in two).
            (None, "Ping" | "GetMachineId") => PEER,
            (None, "Introspect") => INTROSPECTABLE,
            (None, "Get" | "GetAll" | "Set") => PROPERTIES,
            (None, _) => INTERFACE,
        };
        match interface {
            PEER => self.peer(call, member),
            INTROSPECTABLE => self.introspect(call, member),
            PROPERTIES => self.properties(call, member),
            INTERFACE => self.twofold(call, member).await,
            other => Err(Refusal::new(
                "org.freedesktop.DBus.Error.UnknownInterface",
                format!("no interface {other}"),
            )),
        }
    }

    /// Encodes a method's result as a reply to `call`, or as its error.
    fn reply<T: Serialize + Type>(
        &self,
        call: &Message,
        result: Result<T, TwofoldError>,
    ) -> Answer {
        match result {
            Ok(value) => wire::method_return(self.serial, call.serial, &value)
                .map_err(|e| Refusal::new("org.freedesktop.DBus.Error.Failed", e)),
            Err(e) => Err(refusal_of(&e)),
        }
    }

    fn header(&self) -> Header<'_> {
        self.stand_in.header()
    }

    fn peer(&self, call: &Message, member: &str) -> Answer {
        match member {
            "Ping" => {
                args::<()>(call)?;
                self.reply(call, Ok(()))
            }
            "GetMachineId" => {
                args::<()>(call)?;
                let id = std::fs::read_to_string("/etc/machine-id")
                    .map(|id| id.trim().to_owned())
                    .map_err(|e| TwofoldError::Internal(format!("no machine id: {e}")));
                self.reply(call, id)
            }
            _ => Err(unknown_method(member)),
        }
    }

    fn introspect(&self, call: &Message, member: &str) -> Answer {
        if member != "Introspect" {
            return Err(unknown_method(member));
        }
        args::<()>(call)?;
        let mut xml = String::from(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
        );
        let _ = write!(
            xml,
            " <interface name=\"{PEER}\">\n  <method name=\"Ping\"/>\n  <method name=\"GetMachineId\">\n   <arg type=\"s\" direction=\"out\"/>\n  </method>\n </interface>\n \
             <interface name=\"{INTROSPECTABLE}\">\n  <method name=\"Introspect\">\n   <arg type=\"s\" direction=\"out\"/>\n  </method>\n </interface>\n \
             <interface name=\"{PROPERTIES}\">\n  <method name=\"Get\">\n   <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n   <arg name=\"property_name\" type=\"s\" direction=\"in\"/>\n   <arg type=\"v\" direction=\"out\"/>\n  </method>\n  \
             <method name=\"GetAll\">\n   <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n   <arg type=\"a{{sv}}\" direction=\"out\"/>\n  </method>\n </interface>\n"
        );
        zbus::object_server::Interface::introspect_to_writer(&self.interface, &mut xml, 1);
        xml.push_str("</node>\n");
        self.reply(call, Ok(xml))
    }

    fn properties(&self, call: &Message, member: &str) -> Answer {
        let version = || OwnedVariant::from(Str::from(env!("CARGO_PKG_VERSION")));
        let no_such = |what: &str| {
            Refusal::new(
                "org.freedesktop.DBus.Error.UnknownProperty",
                format!("no property {what}"),
            )
        };
        match member {
            "Get" => {
                let (interface, name) = args::<(String, String)>(call)?;
                if interface != INTERFACE || name != "Version" {
                    return Err(no_such(&format!("{interface}.{name}")));
                }
                self.reply(call, Ok(Variant::from(version())))
            }
            "GetAll" => {
                let (interface,) = args::<(String,)>(call)?;
                let all: HashMap<&str, OwnedVariant> = if interface == INTERFACE {
                    HashMap::from([("Version", version())])
                } else {
                    HashMap::new()
                };
                self.reply(call, Ok(all))
            }
            "Set" => Err(Refusal::new(
                "org.freedesktop.DBus.Error.PropertyReadOnly",
                "Version is read-only",
            )),
            _ => Err(unknown_method(member)),
        }
    }

    /// The interface's methods: each decodes its arguments and calls the method zbus
    /// calls for the bus.
    async fn twofold(&self, call: &Message, member: &str) -> Answer {
        let (interface, header) = (&self.interface, self.header());
        match member {
            "Status" => {
                let (user,) = args::<(String,)>(call)?;
                self.reply(call, interface.status(header, &user).await)
            }
            "Verify" => {
                let (user, code, context) = args::<(String, String, HashMap<_, _>)>(call)?;
                self.reply(call, interface.verify(header, &user, code, context).await)
            }
            "EnrollBegin" => {
                let (user, issuer, proof, oath) = args::<(String, String, String, _)>(call)?;
                let result = interface
                    .enroll_begin(header, &user, issuer, proof, oath)
                    .await;
                self.reply(call, result)
            }
            "RegenerateBackupCodes" => {
                let (user, proof) = args::<(String, String)>(call)?;
                let result = interface
                    .regenerate_backup_codes(header, &user, proof)
                    .await;
                self.reply(call, result)
            }
            "Disable" => {
                let (user, password, proof) = args::<(String, String, String)>(call)?;
                self.reply(
                    call,
                    interface.disable(header, &user, password, proof).await,
                )
            }
            "EnrollConfirm" => {
                let (user, code) = args::<(String, String)>(call)?;
                self.reply(call, interface.enroll_confirm(header, &user, code).await)
            }
            "ListDevices" => {
                let (user,) = args::<(String,)>(call)?;
                self.reply(call, interface.list_devices(header, &user).await)
            }
            "AddDeviceBegin" => {
                let (user, name, issuer, proof, oath) =
                    args::<(String, String, String, String, _)>(call)?;
                let result = interface
                    .add_device_begin(header, &user, name, issuer, proof, oath)
                    .await;
                self.reply(call, result)
            }
            "AddDeviceConfirm" => {
                let (user, name, code) = args::<(String, String, String)>(call)?;
                let result = interface
                    .add_device_confirm(header, &user, name, code)
                    .await;
                self.reply(call, result)
            }
            "RemoveDevice" => {
                let (user, name, proof) = args::<(String, String, String)>(call)?;
                let result = interface.remove_device(header, &user, name, proof).await;
                self.reply(call, result)
            }
            "BeginLogin" => {
                let (user, context) = args::<(String, HashMap<_, _>)>(call)?;
                self.reply(call, interface.begin_login(header, &user, context).await)
            }
            "AdminUsers" => {
                args::<()>(call)?;
                self.reply(call, interface.admin_users(header).await)
            }
            "AdminReset" => {
                let (user, reason, hours) = args::<(String, String, u32)>(call)?;
                let result = interface.admin_reset(header, &user, reason, hours).await;
                self.reply(call, result)
            }
            "AdminImport" => {
                let (user, secret, codes, source, last_code, oath) =
                    args::<(String, String, Vec<String>, String, String, _)>(call)?;
                let result = interface
                    .admin_import(header, &user, secret, codes, source, last_code, oath)
                    .await;
                self.reply(call, result)
            }
            "AdminUnlock" => {
                let (user,) = args::<(String,)>(call)?;
                self.reply(call, interface.admin_unlock(header, &user).await)
            }
            "AuditLog" => {
                let (user, since, limit) = args::<(String, i64, u32)>(call)?;
                self.reply(call, interface.audit_log(header, &user, since, limit).await)
            }
            _ => self.sessions(call, member).await,
        }
    }

    /// The interface's session methods.
    async fn sessions(&self, call: &Message, member: &str) -> Answer {
        let (interface, header) = (&self.interface, self.header());
        match member {
            "OpenSession" => {
                let (user, info) = args::<(String, HashMap<_, _>)>(call)?;
                self.reply(call, interface.open_session(header, &user, info).await)
            }
            "CloseSession" => {
                let (user, info) = args::<(String, HashMap<_, _>)>(call)?;
                self.reply(call, interface.close_session(header, &user, info).await)
            }
            "CheckGrace" => {
                let (user, context, seconds) = args::<(String, HashMap<_, _>, u32)>(call)?;
                let result = interface.check_grace(header, &user, context, seconds).await;
                self.reply(call, result)
            }
            "ListSessions" => {
                let (user, include_ended) = args::<(String, bool)>(call)?;
                let result = interface.list_sessions(header, &user, include_ended).await;
                self.reply(call, result)
            }
            "RevokeSession" => {
                let (id,) = args::<(String,)>(call)?;
                self.reply(call, interface.revoke_session(header, &id).await)
            }
            "RevokeOtherSessions" => {
                let (user,) = args::<(String,)>(call)?;
                self.reply(call, interface.revoke_other_sessions(header, &user).await)
            }
            "SetSessionTimeout" => {
                let (user, seconds) = args::<(String, u64)>(call)?;
                let result = interface.set_session_timeout(header, &user, seconds).await;
                self.reply(call, result)
            }
            "ForgetRemembered" => {
                let (user,) = args::<(String,)>(call)?;
                self.reply(call, interface.forget_remembered(header, &user).await)
            }
            _ => self.tokens(call, member).await,
        }
    }

    /// The interface's hardware token methods.
    async fn tokens(&self, call: &Message, member: &str) -> Answer {
        let (interface, header) = (&self.interface, self.header());
        match member {
            "AdminImportTokens" => {
                let (tokens,) = args::<(Vec<twofold_contract::TokenSeed>,)>(call)?;
                self.reply(call, interface.admin_import_tokens(header, tokens).await)
            }
            "AdminTokens" => {
                args::<()>(call)?;
                self.reply(call, interface.admin_tokens(header).await)
            }
            "AdminAssignToken" => {
                let (serial, user) = args::<(String, String)>(call)?;
                let result = interface.admin_assign_token(header, serial, &user).await;
                self.reply(call, result)
            }
            "AdminUnassignToken" => {
                let (serial,) = args::<(String,)>(call)?;
                self.reply(call, interface.admin_unassign_token(header, serial).await)
            }
            "AdminResyncToken" => {
                let (serial, first, second) = args::<(String, String, String)>(call)?;
                let result = interface
                    .admin_resync_token(header, serial, first, second)
                    .await;
                self.reply(call, result)
            }
            _ => Err(unknown_method(member)),
        }
    }
}

/// A call's arguments as `T` (a tuple), or `InvalidArgs`.
fn args<T: DeserializeOwned + Type>(call: &Message) -> Result<T, Refusal> {
    call.body::<T>()
        .map_err(|e| Refusal::new("org.freedesktop.DBus.Error.InvalidArgs", e))
}

fn unknown_method(member: &str) -> Refusal {
    Refusal::new(
        "org.freedesktop.DBus.Error.UnknownMethod",
        format!("no method {member}"),
    )
}

/// The daemon's error under the name zbus gives it on the bus (the contract's namespace).
fn refusal_of(e: &TwofoldError) -> Refusal {
    use zbus::DBusError;
    Refusal(e.name().to_string(), e.message())
}

#[cfg(test)]
mod tests;
