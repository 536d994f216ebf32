//! `twofold admin tokens`: hardware OATH tokens. Import reads a vendor's PSKC file here
//! (the daemon never reads files of the caller's) and sends the seeds; list, assign,
//! unassign and resync ask the daemon, which decides (administrators only).

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use twofold_contract::{limits, OathParams, TokenInfo, TokenSeed, TwofoldError};
use zeroize::Zeroizing;

use crate::commands::admin::{admin_call, admin_failure};
use crate::commands::cx::Cx;
use crate::error::Failure;
use crate::options::tokens::{KeySource, TokensAction, TokensImport};
use crate::output::write_out;
use crate::prompt::{terminal_password, without_newline};
use crate::pskc::{self, Hash, Protection, PskcToken, TokenKind};
use crate::secret_file::{self, Owner, Rules, Unreadable};
use crate::text::{cell, table_of};
use crate::time::{human_time_or_never, iso8601, optional_iso8601};

/// Largest key or password file read, in bytes.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Runs the action.
pub async fn run(cx: &mut Cx<'_>, action: &TokensAction) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let proxy = daemon.proxy();
    match action {
        TokensAction::List => {
            let tokens = admin_call(daemon, proxy.admin_tokens()).await?;
            let rows = tokens.iter().map(TokenJson::from);
            cx.out.list(rows, || tokens_table(&tokens))
        }
        TokensAction::Import(import) => import_file(cx, import).await,
        TokensAction::Assign { serial, user } => {
            admin_call(daemon, proxy.admin_assign_token(serial, user)).await?;
            let assigned = json!({ "serial": serial, "user": user });
            cx.out.answer(&assigned, || {
                format!(
                    "Token {serial} is now a device of {user}, named {serial}: its codes \
                     pass their logins.\n"
                )
            })
        }
        TokensAction::Unassign { serial } => {
            let user = admin_call(daemon, proxy.admin_unassign_token(serial)).await?;
            let unassigned = json!({ "serial": serial, "user": user });
            cx.out.answer(&unassigned, || {
                format!(
                    "Token {serial} is no longer a device of {user}; it keeps its counter \
                     and can be assigned again.\n"
                )
            })
        }
        TokensAction::Resync { serial, codes } => {
            let (first, second) = match codes.as_slice() {
                [first, second] => (
                    Zeroizing::new(first.clone()),
                    Zeroizing::new(second.clone()),
                ),
                _ => (
                    read_code(cx.input, &format!("A code of token {serial}: "))?,
                    read_code(cx.input, "The next code (press the button again): ")?,
                ),
            };
            let next = match daemon
                .call(proxy.admin_resync_token(serial, &first, &second))
                .await?
            {
                Ok(next) => next,
                // The daemon's words: which token, and what to do (not a login's).
                Err(TwofoldError::InvalidCode(why)) => {
                    return Err(Failure::coded("invalid_code", why))
                }
                Err(e) => return Err(admin_failure(daemon, &e)),
            };
            cx.out
                .answer(&json!({ "serial": serial, "counter": next }), || {
                    format!("Token {serial} is in step again: its next code is number {next}.\n")
                })
        }
    }
}

/// One code, from a line of standard input (asked for on standard error at a terminal,
/// so that standard output stays for the result).
fn read_code(input: &mut dyn BufRead, prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if io::stdin().is_terminal() {
        write_out(&mut io::stderr(), prompt)?;
    }
    let mut line = Zeroizing::new(String::new());
    match input.read_line(&mut line) {
        Ok(0) => Err(Failure::new(
            "Standard input ended before two codes were read; give two consecutive codes of \
             the token, one per line. Nothing was changed.",
        )),
        Ok(_) => Ok(Zeroizing::new(line.trim().to_owned())),
        Err(e) => Err(Failure::new(format!("Could not read the code: {e}"))),
    }
}

// ---- import ----

/// A PSKC file's text: a regular file, not followed through a symbolic link, at most
/// [`limits::MAX_PSKC_FILE_LEN`] bytes; wiped when dropped (a plain file holds seeds).
fn read_pskc_file(path: &Path) -> Result<Zeroizing<String>, Failure> {
    let refused =
        |why: String| Failure::new(format!("{}: {why}. Nothing was imported.", path.display()));
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(
                "the file is a symbolic link, which is not followed (it could point anywhere)"
                    .into(),
            ),
            _ => refused(format!("cannot open the file: {e}")),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| refused(format!("cannot read the file's metadata: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(refused("the file is not a regular file".into()));
    }
    let max = limits::MAX_PSKC_FILE_LEN;
    let too_large = || {
        refused(format!(
            "the file is larger than {} KiB: split it",
            max / 1024
        ))
    };
    if meta.len() > max {
        return Err(too_large());
    }
    // Room for all of it up front: no reallocation leaves a copy of a seed behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(max as usize + 1));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(refused("the file is not text (PSKC is XML)".into())),
    }
}

/// The text of a key or password file: the caller's or root's, closed to others.
fn read_key_file(path: &Path, what: &str) -> Result<Zeroizing<String>, Failure> {
    let rules = Rules {
        owner: Owner::UserOrRoot(nix::unistd::geteuid().as_raw()),
        max_len: MAX_KEY_FILE_LEN,
        mode_rule: "a key or password file must be 0600 or stricter",
    };
    match secret_file::read(path, rules) {
        Ok((text, _)) => Ok(text),
        Err(Unreadable::Missing) => Err(Failure::new(format!(
            "{what} {}: no such file. Nothing was imported.",
            path.display()
        ))),
        Err(Unreadable::Refused(why)) => Err(Failure::new(format!(
            "{what} {}: {why}. Nothing was imported.",
            path.display()
        ))),
    }
}

/// What decrypts the file: the key or password given, or a password asked for.
enum Secret {
    None,
    Key(Zeroizing<Vec<u8>>),
    Password(Zeroizing<String>),
}

fn key_of(import: &TokensImport, xml: &str) -> Result<Secret, Failure> {
    match &import.key {
        KeySource::KeyFile(path) => {
            let text = read_key_file(path, "--key-file")?;
            let hex: Zeroizing<String> =
                Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
            let key = data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .map_err(|_| {
                    Failure::new(format!(
                        "--key-file {}: the pre-shared key is not hex (0-9, a-f). Nothing was \
                         imported.",
                        path.display()
                    ))
                })?;
            Ok(Secret::Key(Zeroizing::new(key)))
        }
        KeySource::PasswordFile(path) => {
            let text = read_key_file(path, "--password-file")?;
            let first = text.lines().next().unwrap_or("");
            Ok(Secret::Password(Zeroizing::new(
                without_newline(first).to_owned(),
            )))
        }
        KeySource::None if pskc::wants_password(xml) => {
            let prompt = format!("Password of {}: ", import.file.display());
            match terminal_password(&prompt) {
                Ok(password) => Ok(Secret::Password(Zeroizing::new(password))),
                Err(e) => Err(Failure::new(format!(
                    "{} is encrypted with a password and there is no terminal to ask for it \
                     ({e}); give --password-file. Nothing was imported.",
                    import.file.display()
                ))),
            }
        }
        KeySource::None => Ok(Secret::None),
    }
}

fn hash_name(hash: Hash) -> &'static str {
    match hash {
        Hash::Sha1 => "SHA1",
        Hash::Sha256 => "SHA256",
        Hash::Sha512 => "SHA512",
    }
}

/// The seed as the daemon takes it.
fn seed_of(token: &PskcToken) -> TokenSeed {
    let hotp = token.kind == TokenKind::Hotp;
    TokenSeed {
        serial: token.serial.clone(),
        manufacturer: token.manufacturer.clone().unwrap_or_default(),
        model: token.model.clone().unwrap_or_default(),
        oath: OathParams {
            algorithm: hash_name(token.hash).into(),
            digits: token.digits,
            period: if hotp { 0 } else { token.period },
            counter: if hotp { token.counter } else { 0 },
        },
        secret: data_encoding::BASE32_NOPAD.encode(&token.secret).into(),
    }
}

/// `admin tokens import --json`.
#[derive(Debug, Serialize)]
struct ImportJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    imported: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    would_import: Option<&'a [&'a str]>,
    skipped: &'a [String],
}

async fn import_file(cx: &mut Cx<'_>, import: &TokensImport) -> Result<(), Failure> {
    let xml = read_pskc_file(&import.file)?;
    let secret = key_of(import, &xml)?;
    let protection = match &secret {
        Secret::None => Protection::None,
        Secret::Key(key) => Protection::PreSharedKey(key),
        Secret::Password(password) => Protection::Password(password),
    };
    let tokens = pskc::read(&xml, protection).map_err(|e| {
        Failure::new(format!(
            "{}: {e}. Nothing was imported.",
            import.file.display()
        ))
    })?;
    drop(xml);
    let seeds: Vec<TokenSeed> = tokens.iter().map(seed_of).collect();
    drop(tokens);
    let daemon = cx.daemon;
    let proxy = daemon.proxy();
    let (imported, skipped): (Vec<&str>, Vec<String>) = if import.dry_run {
        // What the daemon would leave alone: the serials it knows.
        let known = admin_call(daemon, proxy.admin_tokens()).await?;
        let (skip, new): (Vec<&TokenSeed>, Vec<&TokenSeed>) = seeds
            .iter()
            .partition(|s| known.iter().any(|k| k.serial == s.serial));
        (
            new.iter().map(|s| s.serial.as_str()).collect(),
            skip.iter().map(|s| s.serial.clone()).collect(),
        )
    } else {
        let done = admin_call(daemon, proxy.admin_import_tokens(&seeds)).await?;
        let new = seeds
            .iter()
            .map(|s| s.serial.as_str())
            .filter(|s| !done.skipped.iter().any(|k| k == s))
            .collect();
        (new, done.skipped)
    };
    let (done, would) = if import.dry_run {
        (None, Some(imported.as_slice()))
    } else {
        (Some(imported.as_slice()), None)
    };
    let summary = ImportJson {
        imported: done,
        would_import: would,
        skipped: &skipped,
    };
    cx.out.answer(&summary, || {
        import_text(&seeds, &imported, &skipped, import.dry_run)
    })
}

fn import_text(
    seeds: &[TokenSeed],
    imported: &[&str],
    skipped: &[String],
    dry_run: bool,
) -> String {
    let mut text = String::new();
    let verb = if dry_run { "Would import" } else { "Imported" };
    text += &format!("{verb} {} tokens (unassigned):\n", imported.len());
    for serial in imported {
        if let Some(seed) = seeds.iter().find(|s| s.serial == *serial) {
            text += &format!("  {serial}  {}\n", describe(&seed.oath));
        }
    }
    if !skipped.is_empty() {
        text += &format!(
            "Left alone (serials known already): {}\n",
            skipped.join(", ")
        );
    }
    if !dry_run && !imported.is_empty() {
        text += "Assign each to its user: twofold admin tokens assign SERIAL USER\n";
    }
    text
}

/// "HOTP SHA1 6 digits, next counter 0" or "TOTP SHA256 8 digits, 60 s steps".
fn describe(oath: &OathParams) -> String {
    match oath.period {
        0 => format!(
            "HOTP {} {} digits, next counter {}",
            oath.algorithm, oath.digits, oath.counter
        ),
        period => format!(
            "TOTP {} {} digits, {period} s steps",
            oath.algorithm, oath.digits
        ),
    }
}

// ---- list ----

/// One row of `admin tokens --json`.
#[derive(Debug, Serialize)]
struct TokenJson<'a> {
    serial: &'a str,
    kind: &'a str,
    manufacturer: Option<&'a str>,
    model: Option<&'a str>,
    algorithm: &'a str,
    digits: u32,
    period: Option<u32>,
    counter: Option<u64>,
    assigned_to: Option<&'a str>,
    imported_at: String,
    last_used: Option<String>,
}

impl<'a> From<&'a TokenInfo> for TokenJson<'a> {
    fn from(t: &'a TokenInfo) -> Self {
        let hotp = t.period == 0;
        let some = |s: &'a str| (!s.is_empty()).then_some(s);
        TokenJson {
            serial: &t.serial,
            kind: &t.kind,
            manufacturer: some(&t.manufacturer),
            model: some(&t.model),
            algorithm: &t.algorithm,
            digits: t.digits,
            period: (!hotp).then_some(t.period),
            counter: hotp.then_some(t.counter),
            assigned_to: some(&t.assigned_to),
            imported_at: iso8601(t.imported_at),
            last_used: optional_iso8601(t.last_used),
        }
    }
}

fn tokens_table(tokens: &[TokenInfo]) -> String {
    let none = "No tokens imported yet: twofold admin tokens import FILE.pskc\n";
    let header = [
        "SERIAL",
        "KIND",
        "CODES",
        "STEP",
        "ASSIGNED TO",
        "LAST USE",
        "MADE BY",
    ];
    table_of(tokens, none, &header, |t| {
        [
            cell(&t.serial),
            cell(&t.kind),
            format!("{} {}", t.algorithm, t.digits),
            match t.period {
                0 => format!("counter {}", t.counter),
                p => format!("{p} s"),
            },
            cell(&t.assigned_to),
            human_time_or_never(t.last_used),
            cell([t.manufacturer.as_str(), t.model.as_str()].join(" ").trim()),
        ]
    })
}
