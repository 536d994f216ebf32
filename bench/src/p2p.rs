//! The barest client of twofoldd's direct socket: D-Bus peer to peer written by hand
//! over a blocking `UnixStream` (`AUTH EXTERNAL`, `BEGIN`, one method call, its reply),
//! for the Ping baseline of the throughput phase. Nothing a real client could skip is
//! left in, and nothing more is done, so the baseline is the transport's cost alone.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// `org.freedesktop.DBus.Peer.Ping` sent to twofold's object.
const PEER_INTERFACE: &str = "org.freedesktop.DBus.Peer";

/// An authenticated connection to the direct socket.
pub struct Conn {
    stream: UnixStream,
    serial: u32,
    /// `BEGIN` not yet sent: it goes out with the first call (as sd-bus sends it).
    begin_pending: bool,
}

impl Conn {
    /// Connects and authenticates as this process's uid (`AUTH EXTERNAL`).
    pub fn open(path: &Path) -> io::Result<Conn> {
        let mut stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        stream.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = Vec::with_capacity(64);
        let mut buf = [0u8; 128];
        while !line.ends_with(b"\r\n") {
            let n = stream.read(&mut buf)?;
            if n == 0 || line.len() > 512 {
                return Err(io::Error::other("no answer to AUTH"));
            }
            line.extend_from_slice(&buf[..n]);
        }
        if !line.starts_with(b"OK ") {
            return Err(io::Error::other(format!(
                "AUTH refused: {}",
                String::from_utf8_lossy(&line).trim()
            )));
        }
        Ok(Conn {
            stream,
            serial: 0,
            begin_pending: true,
        })
    }

    /// `Peer.Ping` to `object`; Ok once the method return has been read.
    pub fn ping(&mut self, object: &str) -> io::Result<()> {
        self.serial += 1;
        let mut out = Vec::with_capacity(160);
        if self.begin_pending {
            out.extend_from_slice(b"BEGIN\r\n");
            self.begin_pending = false;
        }
        out.extend_from_slice(&method_call(self.serial, object, PEER_INTERFACE, "Ping"));
        self.stream.write_all(&out)?;
        let kind = self.read_message()?;
        match kind {
            2 => Ok(()), // METHOD_RETURN
            3 => Err(io::Error::other("Ping answered with an error")),
            other => Err(io::Error::other(format!("unexpected message type {other}"))),
        }
    }

    /// Reads one whole message; returns its type.
    fn read_message(&mut self) -> io::Result<u8> {
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed)?;
        let le = match fixed[0] {
            b'l' => true,
            b'B' => false,
            _ => return Err(io::Error::other("bad endianness mark")),
        };
        let word = |at: usize| {
            let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let (body, fields) = (word(4) as usize, word(12) as usize);
        let rest = align8(16 + fields) - 16 + body;
        if rest > 1 << 20 {
            return Err(io::Error::other("reply too large"));
        }
        let mut tail = vec![0u8; rest];
        self.stream.read_exact(&mut tail)?;
        Ok(fixed[1])
    }
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// A little-endian METHOD_CALL without body and without destination (peer to peer).
fn method_call(serial: u32, path: &str, interface: &str, member: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (code, sig, value) in [(1u8, b'o', path), (2, b's', interface), (3, b's', member)] {
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        // (BYTE code, VARIANT): signature "o"/"s", then UINT32 length, text, NUL.
        fields.extend_from_slice(&[code, 1, sig, 0]);
        fields.extend_from_slice(&(value.len() as u32).to_le_bytes());
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    let mut msg = vec![b'l', 1, 0, 1];
    msg.extend_from_slice(&0u32.to_le_bytes()); // body length
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    msg.extend_from_slice(&fields);
    while msg.len() % 8 != 0 {
        msg.push(0);
    }
    msg
}

/// `Peer.Ping` latency on the direct socket: 500 on one open connection, then 500 each
/// on a fresh connection (connect + AUTH + BEGIN + Ping + close).
pub fn latency(socket: &Path) -> (crate::logins::Samples, crate::logins::Samples) {
    let object = twofold_contract::OBJECT_PATH;
    let (mut kept, mut fresh) = (
        crate::logins::Samples::default(),
        crate::logins::Samples::default(),
    );
    match Conn::open(socket) {
        Ok(mut conn) => {
            for _ in 0..500 {
                let t = std::time::Instant::now();
                match conn.ping(object) {
                    Ok(()) => kept.push(t.elapsed()),
                    Err(_) => kept.failures += 1,
                }
            }
        }
        Err(e) => {
            eprintln!("  direct socket {}: {e}", socket.display());
            kept.failures += 1;
        }
    }
    for _ in 0..500 {
        let t = std::time::Instant::now();
        match Conn::open(socket).and_then(|mut c| c.ping(object)) {
            Ok(()) => fresh.push(t.elapsed()),
            Err(_) => fresh.failures += 1,
        }
    }
    (kept, fresh)
}
