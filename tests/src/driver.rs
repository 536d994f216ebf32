//! What pamdriver and sessiondriver share: the common part of their command line (the
//! PAM configuration directory, service, user and items) and the transaction it starts.

use std::ffi::CString;

use twofold_pam_client::{Converser, Item, Transaction};

/// Whom a driver's transaction is for and how it is configured: `--confdir DIR`,
/// `--service NAME`, `--user USER` (or `--user-hex HEX`, for bytes that are not UTF-8),
/// and the items `--tty`, `--rhost`, `--ruser`.
pub struct Target {
    confdir: CString,
    service: CString,
    user: CString,
    items: Vec<(Item, CString)>,
}

impl Target {
    /// Reads the command line: the flags above, and every other one through
    /// `other(flag, value)`, where `value()` takes the flag's value.
    pub fn from_args(mut other: impl FnMut(&str, &mut dyn FnMut() -> String)) -> Target {
        let (mut confdir, mut service, mut user) = (String::new(), String::new(), Vec::new());
        let mut items = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--confdir" => confdir = value(),
                "--service" => service = value(),
                "--user" => user = value().into_bytes(),
                "--user-hex" => user = hex(&value()),
                "--tty" => items.push((Item::Tty, c_string(value()))),
                "--rhost" => items.push((Item::Rhost, c_string(value()))),
                "--ruser" => items.push((Item::Ruser, c_string(value()))),
                _ => other(&flag, &mut value),
            }
        }
        Target {
            confdir: c_string(confdir),
            service: c_string(service),
            user: c_string(user),
            items,
        }
    }

    /// Starts the transaction (`pam_start_confdir`) and sets the items.
    pub fn start<'a, C: Converser>(&self, converser: &'a mut C) -> Transaction<'a, C> {
        let mut tx = Transaction::start(&self.service, &self.user, Some(&self.confdir), converser)
            .expect("pam_start_confdir failed");
        for (item, value) in &self.items {
            tx.set_item(*item, value).expect("pam_set_item");
        }
        tx
    }
}

fn c_string(text: impl Into<Vec<u8>>) -> CString {
    CString::new(text).expect("no NUL in a driver's argument")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
