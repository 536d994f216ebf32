//! D-Bus messages framed by hand, for the two ends that speak D-Bus without zbus's
//! connection machinery: pam_twofold.so (calls out, replies in) and twofoldd's direct
//! socket (calls in, replies out).
//!
//! Arguments and replies are marshalled by zbus's wire format alone (`zbus::wire`, what
//! the zvariant crate was before zbus 6; without zbus's "comms" feature it has no
//! connection code), from the contract's types. The header is framed here: its fields are
//! a handful of basic values with fixed codes (D-Bus specification, "Message Format"), and
//! framing them without the dynamic `Variant` keeps that machinery out of a module that sshd and sudo
//! load for every login (its load time is measured by the bench) and out of the
//! daemon's per-call path. The tests check every byte against zbus's own messages.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::wire::serialized::{Context, Data};
use zbus::wire::{Endian, BE, LE};
use zbus::Type;
use zeroize::Zeroizing;

/// The largest message read (a login's call or reply is a few hundred bytes; the
/// contract's limits keep every argument far below this).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// The fixed part of a header, up to and including the length of the field array.
pub const FIXED_HEADER_LEN: usize = 16;
/// The header flag of a call whose caller wants no reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

/// Message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall,
    MethodReturn,
    Error,
    Signal,
    /// A type this version of D-Bus does not know: to be ignored (specification).
    Unknown,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::MethodCall => 1,
            Kind::MethodReturn => 2,
            Kind::Error => 3,
            Kind::Signal => 4,
            Kind::Unknown => 0,
        }
    }
    fn of(code: u8) -> Kind {
        match code {
            1 => Kind::MethodCall,
            2 => Kind::MethodReturn,
            3 => Kind::Error,
            4 => Kind::Signal,
            _ => Kind::Unknown,
        }
    }
}

/// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SENDER: u8 = 7;
const SIGNATURE: u8 = 8;
const UNIX_FDS: u8 = 9;

/// Where a method call goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// A unique or well-known bus name; None on a peer-to-peer connection.
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
}

fn context(endian: Endian, position: usize) -> Context {
    Context::new(endian, position)
}

/// Encodes a method call of `member` with the arguments `args` (a tuple, one element per
/// argument). The buffer is wiped when dropped: it may carry a code.
pub fn method_call<A>(
    serial: u32,
    to: Target<'_>,
    member: &str,
    args: &A,
) -> Result<Zeroizing<Vec<u8>>, String>
where
    A: Serialize + Type,
{
    let mut fields = vec![
        (PATH, Text::Str(b'o', to.path)),
        (INTERFACE, Text::Str(b's', to.interface)),
        (MEMBER, Text::Str(b's', member)),
    ];
    if let Some(destination) = to.destination {
        fields.push((DESTINATION, Text::Str(b's', destination)));
    }
    encode(Kind::MethodCall, serial, &fields, args).map_err(|e| format!("{member}: {e}"))
}

/// Encodes the return of the call `reply_serial` with `body` (a struct is sent as its
/// fields, one argument each, as zbus sends a struct a method returns).
pub fn method_return<B>(serial: u32, reply_serial: u32, body: &B) -> Result<Vec<u8>, String>
where
    B: Serialize + Type,
{
    let fields = [(REPLY_SERIAL, Text::U32(reply_serial))];
    encode(Kind::MethodReturn, serial, &fields, body).map(|m| m.to_vec())
}

/// Encodes the error `name` (with a one-line `message`) answering the call `reply_serial`.
pub fn error(serial: u32, reply_serial: u32, name: &str, message: &str) -> Result<Vec<u8>, String> {
    let fields = [
        (ERROR_NAME, Text::Str(b's', name)),
        (REPLY_SERIAL, Text::U32(reply_serial)),
    ];
    encode(Kind::Error, serial, &fields, &(message,)).map(|m| m.to_vec())
}

/// A header field's value: a string-like value of D-Bus type `o`, `s` or `g`, or a u32.
enum Text<'a> {
    Str(u8, &'a str),
    U32(u32),
}

/// A little-endian message: `fields` in order, then the body's signature, then `body`.
fn encode<B>(
    kind: Kind,
    serial: u32,
    fields: &[(u8, Text<'_>)],
    body: &B,
) -> Result<Zeroizing<Vec<u8>>, String>
where
    B: Serialize + Type,
{
    let encoded =
        zbus::wire::to_bytes(context(LE, 0), body).map_err(|e| format!("cannot encode: {e}"))?;
    let signature = B::SIGNATURE.to_string_no_parens();
    let body_len = u32::try_from(encoded.len()).map_err(|_| "body too long".to_owned())?;
    let mut w = Writer(Zeroizing::new(Vec::with_capacity(256 + encoded.len())));
    w.0.extend_from_slice(&[b'l', kind.code(), 0, 1]);
    w.u32(body_len);
    w.u32(serial);
    w.u32(0); // the length of the fields, set below
    for (code, value) in fields {
        match value {
            Text::Str(kind, text) => w.field(*code, *kind, text)?,
            Text::U32(n) => {
                w.align(8);
                w.0.extend_from_slice(&[*code, 1, b'u', 0]);
                w.u32(*n);
            }
        }
    }
    if !signature.is_empty() {
        w.field(SIGNATURE, b'g', &signature)?;
    }
    let fields_len = u32::try_from(w.0.len() - FIXED_HEADER_LEN).map_err(|e| e.to_string())?;
    w.0[12..16].copy_from_slice(&fields_len.to_le_bytes());
    w.align(8);
    w.0.extend_from_slice(&encoded);
    Ok(w.0)
}

/// Little-endian marshalling of the header's basic values.
struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn align(&mut self, n: usize) {
        let len = self.0.len().next_multiple_of(n);
        self.0.resize(len, 0);
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A header field: a struct (code, variant) of a string-like value.
    fn field(&mut self, code: u8, kind: u8, value: &str) -> Result<(), String> {
        self.align(8);
        self.0.extend_from_slice(&[code, 1, kind, 0]);
        if kind == b'g' {
            let len = u8::try_from(value.len()).map_err(|_| "signature too long".to_owned())?;
            self.0.push(len);
        } else {
            let len = u32::try_from(value.len()).map_err(|_| "string too long".to_owned())?;
            self.u32(len);
        }
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(0);
        Ok(())
    }
}

/// Reads the header's basic values.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    endian: Endian,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = (self.at.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or("a truncated header")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }
    fn align(&mut self, n: usize) -> Result<(), String> {
        let pad = self.at.next_multiple_of(n) - self.at;
        self.take(pad).map(drop)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }
    /// A string (`s`, `o`) or, with `short_len`, a signature (`g`).
    fn text(&mut self, short_len: bool) -> Result<&'a str, String> {
        let len = if short_len {
            self.u8()? as usize
        } else {
            self.u32()? as usize
        };
        let text = self.take(len)?;
        if self.u8()? != 0 {
            return Err("a string without its NUL".to_owned());
        }
        std::str::from_utf8(text).map_err(|_| "a string that is not UTF-8".to_owned())
    }
    /// Skips a value of the single basic type `kind`.
    fn skip(&mut self, kind: u8) -> Result<(), String> {
        match kind {
            b'y' => self.take(1).map(drop),
            b'n' | b'q' => self.align(2).and_then(|()| self.take(2).map(drop)),
            b'b' | b'i' | b'u' | b'h' => self.u32().map(drop),
            b'x' | b't' | b'd' => self.align(8).and_then(|()| self.take(8).map(drop)),
            b's' | b'o' => self.text(false).map(drop),
            b'g' => self.text(true).map(drop),
            _ => Err(format!("a header field of type {:?}", kind as char)),
        }
    }
}

/// The total length of the message whose first [`FIXED_HEADER_LEN`] bytes are `fixed`,
/// or why it is refused (a bad endianness byte or version, or over [`MAX_MESSAGE_LEN`]).
pub fn message_len(fixed: &[u8; FIXED_HEADER_LEN]) -> Result<usize, String> {
    let endian = endian_of(fixed[0])?;
    if fixed[3] != 1 {
        return Err(format!("D-Bus protocol version {} is not 1", fixed[3]));
    }
    let (body, fields) = (u32_at(fixed, 4, endian), u32_at(fixed, 12, endian));
    let len = (FIXED_HEADER_LEN + fields.min(MAX_MESSAGE_LEN))
        .next_multiple_of(8)
        .saturating_add(body);
    if len > MAX_MESSAGE_LEN {
        return Err(format!(
            "a message of {len} bytes (the limit is {MAX_MESSAGE_LEN})"
        ));
    }
    Ok(len)
}

/// The u32 at `at` of the fixed header (the body's length at 4, the fields' at 12).
fn u32_at(fixed: &[u8], at: usize, endian: Endian) -> usize {
    let bytes = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
    let n = match endian {
        Endian::Little => u32::from_le_bytes(bytes),
        Endian::Big => u32::from_be_bytes(bytes),
    };
    n as usize
}

fn endian_of(byte: u8) -> Result<Endian, String> {
    match byte {
        b'l' => Ok(LE),
        b'B' => Ok(BE),
        other => Err(format!("bad endianness byte {other:#04x}")),
    }
}

/// A message as read: its header's fields, and its body still encoded. The bytes are
/// wiped when dropped (a call or a reply may carry a code).
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    /// The error's name; None unless the message is an error.
    pub error: Option<String>,
    /// The serial of the call a reply answers.
    pub reply_serial: Option<u32>,
    /// Who sent it (on a bus; None peer to peer, where there are no names).
    pub sender: Option<String>,
    /// The body's signature ("" for no body).
    pub signature: String,
    endian: Endian,
    body_start: usize,
    bytes: Zeroizing<Vec<u8>>,
}

impl Message {
    /// Decodes a whole message (as delimited by [`message_len`]), with the header fields
    /// its type requires. Unknown header fields of basic types are skipped.
    pub fn parse(message: Vec<u8>) -> Result<Message, String> {
        let bytes = Zeroizing::new(message);
        let fixed: &[u8; FIXED_HEADER_LEN] = bytes
            .get(..FIXED_HEADER_LEN)
            .and_then(|f| f.try_into().ok())
            .ok_or("a truncated message")?;
        let len = message_len(fixed)?;
        if bytes.len() != len {
            return Err(format!("a message of {} bytes, not {len}", bytes.len()));
        }
        let endian = endian_of(bytes[0])?;
        let serial = u32_at(&bytes, 8, endian) as u32;
        if serial == 0 {
            return Err("a message with serial 0".to_owned());
        }
        let fields_end = FIXED_HEADER_LEN + u32_at(&bytes, 12, endian);
        let mut m = Message {
            kind: Kind::of(bytes[1]),
            flags: bytes[2],
            serial,
            path: None,
            interface: None,
            member: None,
            error: None,
            reply_serial: None,
            sender: None,
            signature: String::new(),
            endian,
            body_start: fields_end.next_multiple_of(8),
            bytes: Zeroizing::new(Vec::new()),
        };
        m.read_fields(&bytes[..fields_end])?;
        m.check_required()?;
        m.bytes = bytes;
        Ok(m)
    }

    fn read_fields(&mut self, header: &[u8]) -> Result<(), String> {
        let mut r = Reader {
            bytes: header,
            at: FIXED_HEADER_LEN,
            endian: self.endian,
        };
        while r.at < header.len() {
            r.align(8)?;
            let code = r.u8()?;
            let ty = match r.text(true)?.as_bytes() {
                [ty] => *ty,
                other => return Err(format!("a header field of type {other:?}")),
            };
            let text = |r: &mut Reader<'_>| r.text(false).map(|t| Some(t.to_owned()));
            match (code, ty) {
                (PATH, b'o') => self.path = text(&mut r)?,
                (INTERFACE, b's') => self.interface = text(&mut r)?,
                (MEMBER, b's') => self.member = text(&mut r)?,
                (ERROR_NAME, b's') => self.error = text(&mut r)?,
                (REPLY_SERIAL, b'u') => self.reply_serial = Some(r.u32()?),
                (SENDER, b's') => self.sender = text(&mut r)?,
                (SIGNATURE, b'g') => self.signature = r.text(true)?.to_owned(),
                (UNIX_FDS, b'u') if r.u32()? == 0 => {}
                (UNIX_FDS, b'u') => return Err("a message carrying file descriptors".into()),
                (DESTINATION, b's') => r.skip(ty)?,
                (PATH..=UNIX_FDS, _) => {
                    return Err(format!("header field {code} of type {:?}", ty as char))
                }
                _ => r.skip(ty)?,
            }
        }
        Ok(())
    }

    /// The fields each type must have (specification, "Message Types").
    fn check_required(&self) -> Result<(), String> {
        let missing = match self.kind {
            Kind::MethodCall if self.path.is_none() => "a call without PATH",
            Kind::MethodCall if self.member.is_none() => "a call without MEMBER",
            Kind::MethodReturn | Kind::Error if self.reply_serial.is_none() => {
                "a reply without REPLY_SERIAL"
            }
            Kind::Error if self.error.is_none() => "an error without ERROR_NAME",
            _ => return Ok(()),
        };
        Err(missing.to_owned())
    }

    /// Whether this is a method return or an error.
    pub fn is_reply(&self) -> bool {
        matches!(self.kind, Kind::MethodReturn | Kind::Error)
    }

    /// Whether the caller of this method call wants an answer.
    pub fn wants_reply(&self) -> bool {
        self.flags & NO_REPLY_EXPECTED == 0
    }

    /// The body as a `T`, whose signature must be the body's (a struct's fields are the
    /// body's arguments, as zbus sends a struct it returns; a tuple's are a call's).
    pub fn body<T: DeserializeOwned + Type>(&self) -> Result<T, String> {
        let expected = T::SIGNATURE.to_string_no_parens();
        if self.signature != expected {
            return Err(format!(
                "a body of signature \"{}\" where \"{expected}\" was expected",
                self.signature
            ));
        }
        let body = &self.bytes[self.body_start..];
        let data = Data::new(body, context(self.endian, 0));
        let (value, used) = data
            .deserialize::<T>()
            .map_err(|e| format!("a malformed body: {e}"))?;
        if used != body.len() {
            return Err("a body with bytes after its value".to_owned());
        }
        Ok(value)
    }

    /// An error's message: its first argument when that is a string, else "".
    pub fn error_message(&self) -> String {
        if !self.signature.starts_with('s') {
            return String::new();
        }
        let data = Data::new(&self.bytes[self.body_start..], context(self.endian, 0));
        data.deserialize::<String>()
            .map(|(m, _)| m)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
