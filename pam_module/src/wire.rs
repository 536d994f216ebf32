//! D-Bus messages, only as many kinds as the module needs: method calls out, method
//! returns and errors in (anything else read is skipped by the caller).
//!
//! Arguments and replies are marshalled by zvariant, the library the daemon's zbus uses,
//! from the contract's types. The header is framed here: its fields are a handful of
//! basic values with fixed codes (D-Bus specification, "Message Format"), and framing
//! them without zvariant's dynamic `Value` keeps that machinery out of a module that sshd
//! and sudo load for every login (its load time is measured by the bench). The tests
//! check every byte against zbus's own messages.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;
use zvariant::serialized::{Context, Data};
use zvariant::{Endian, Type, BE, LE};

/// The largest message the module accepts (its replies are a few hundred bytes).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// The fixed part of a header, up to and including the length of the field array.
pub const FIXED_HEADER_LEN: usize = 16;

/// Message types.
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SENDER: u8 = 7;
const SIGNATURE: u8 = 8;

/// Where a method call goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// A unique or well-known bus name; None on a peer-to-peer connection.
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
}

fn context(endian: Endian, position: usize) -> Context {
    Context::new_dbus(endian, position)
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
    let body = zvariant::to_bytes(context(LE, 0), args)
        .map_err(|e| format!("cannot encode {member}: {e}"))?;
    let signature = A::SIGNATURE.to_string_no_parens();
    let body_len = u32::try_from(body.len()).map_err(|_| format!("{member}: body too long"))?;
    let mut w = Writer(Zeroizing::new(Vec::with_capacity(256 + body.len())));
    w.0.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    w.u32(body_len);
    w.u32(serial);
    w.u32(0); // the length of the fields, set below
    w.field(PATH, b'o', to.path);
    w.field(INTERFACE, b's', to.interface);
    w.field(MEMBER, b's', member);
    if let Some(destination) = to.destination {
        w.field(DESTINATION, b's', destination);
    }
    if !signature.is_empty() {
        w.field(SIGNATURE, b'g', &signature);
    }
    let fields_len = u32::try_from(w.0.len() - FIXED_HEADER_LEN).map_err(|e| e.to_string())?;
    w.0[12..16].copy_from_slice(&fields_len.to_le_bytes());
    w.align(8);
    w.0.extend_from_slice(&body);
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
    fn field(&mut self, code: u8, kind: u8, value: &str) {
        self.align(8);
        self.0.extend_from_slice(&[code, 1, kind, 0]);
        if kind == b'g' {
            // Signatures are at most 255 bytes (the callers' are a few).
            self.0.push(value.len() as u8);
        } else {
            self.u32(value.len() as u32);
        }
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(0);
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

/// A method return or an error, as read.
#[derive(Debug)]
pub struct Reply {
    /// The serial of the call it answers.
    pub reply_serial: u32,
    /// The error's name; None for a method return.
    pub error: Option<String>,
    /// Who sent it (on a bus; None peer to peer, where there are no names).
    pub sender: Option<String>,
    signature: String,
    endian: Endian,
    body_start: usize,
    message: Vec<u8>,
}

impl Reply {
    /// Decodes a whole message (as delimited by [`message_len`]). Ok(None) for a message
    /// that is no reply (a signal, a call to us), which the caller skips.
    pub fn parse(message: Vec<u8>) -> Result<Option<Reply>, String> {
        let fixed: &[u8; FIXED_HEADER_LEN] = message
            .get(..FIXED_HEADER_LEN)
            .and_then(|f| f.try_into().ok())
            .ok_or("a truncated message")?;
        let len = message_len(fixed)?;
        if message.len() != len {
            return Err(format!("a message of {} bytes, not {len}", message.len()));
        }
        let endian = endian_of(message[0])?;
        let kind = message[1];
        if kind != METHOD_RETURN && kind != ERROR {
            return Ok(None);
        }
        let fields_end = FIXED_HEADER_LEN + u32_at(&message, 12, endian);
        let mut r = Reader {
            bytes: &message[..fields_end],
            at: FIXED_HEADER_LEN,
            endian,
        };
        let (mut reply_serial, mut error, mut signature) = (None, None, String::new());
        let mut sender = None;
        while r.at < fields_end {
            r.align(8)?;
            let code = r.u8()?;
            let ty = match r.text(true)?.as_bytes() {
                [ty] => *ty,
                other => return Err(format!("a header field of type {other:?}")),
            };
            match (code, ty) {
                (REPLY_SERIAL, b'u') => reply_serial = Some(r.u32()?),
                (ERROR_NAME, b's') => error = Some(r.text(false)?.to_owned()),
                (SIGNATURE, b'g') => signature = r.text(true)?.to_owned(),
                (SENDER, b's') => sender = Some(r.text(false)?.to_owned()),
                (REPLY_SERIAL | ERROR_NAME | SENDER | SIGNATURE, _) => {
                    return Err(format!("header field {code} of type {:?}", ty as char))
                }
                _ => r.skip(ty)?,
            }
        }
        let body_start = fields_end.next_multiple_of(8);
        let reply_serial = reply_serial.ok_or("a reply without REPLY_SERIAL")?;
        if kind == ERROR && error.is_none() {
            return Err("an error without ERROR_NAME".to_owned());
        }
        Ok(Some(Reply {
            reply_serial,
            error,
            sender,
            signature,
            endian,
            body_start,
            message,
        }))
    }

    /// The body as a `T`, whose signature must be the body's (a struct's fields are
    /// the body's arguments, as zbus sends a struct it returns).
    pub fn body<T: DeserializeOwned + Type>(&self) -> Result<T, String> {
        let expected = T::SIGNATURE.to_string_no_parens();
        if self.signature != expected {
            return Err(format!(
                "a reply of signature \"{}\" where \"{expected}\" was expected",
                self.signature
            ));
        }
        let body = &self.message[self.body_start..];
        let data = Data::new(body, context(self.endian, 0));
        let (value, used) = data
            .deserialize::<T>()
            .map_err(|e| format!("a malformed reply: {e}"))?;
        if used != body.len() {
            return Err("a reply with bytes after its value".to_owned());
        }
        Ok(value)
    }

    /// An error's message: its first argument when that is a string, else "".
    pub fn error_message(&self) -> String {
        if !self.signature.starts_with('s') {
            return String::new();
        }
        let data = Data::new(&self.message[self.body_start..], context(self.endian, 0));
        data.deserialize::<String>()
            .map(|(m, _)| m)
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests;
