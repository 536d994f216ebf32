//! Vendors' PSKC files (RFC 6030, Portable Symmetric Key Container): the seeds of
//! hardware OATH tokens (HOTP and TOTP), read into [`PskcToken`]s to import.
//!
//! A secret is either plain (`PlainValue`, base64) or encrypted with AES-CBC
//! (`EncryptedValue`, XML Encryption) under a pre-shared key or a key derived from a
//! password with PBKDF2. An encrypted file must carry a MAC (`MACMethod` with its key
//! encrypted under the same key, and a `ValueMAC` beside each encrypted value, as RFC
//! 6030 §6.1.1 asks with CBC): it is checked before anything is decrypted, so that a
//! wrong key or a damaged file is refused and never read as a wrong secret.
//!
//! The XML is read with `roxmltree`, a read-only tree that refuses any DTD: no entity is
//! expanded and nothing outside the file is fetched (no XXE, no "billion laughs").
//! Elements are matched by namespace URI and local name, never by prefix.
//!
//! One bad key refuses the whole file, naming the key (its `Id`, or its serial once
//! known); no message here ever holds a secret or a value read from a secret's element.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyIvInit};
use data_encoding::Encoding;
use hmac::{Hmac, KeyInit, Mac};
use roxmltree::{Document, Node, ParsingOptions};
use twofold_contract::limits;
use twofold_contract::tokens::Hidden;
use zeroize::Zeroizing;

use crate::text::one_line;

const PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const DSIG_MORE: &str = "http://www.w3.org/2001/04/xmldsig-more#";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const PKCS5: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#";

const HOTP_ALGORITHM: &str = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
const TOTP_ALGORITHM: &str = "urn:ietf:params:xml:ns:keyprov:pskc:totp";
/// A token's PIN (RFC 6030 §6.1): checked by the token itself or the provisioning
/// system, never part of a code twofold sees; such keys are passed over.
const PIN_ALGORITHM: &str = "urn:ietf:params:xml:ns:keyprov:pskc:pin";

/// Most keys one file may hold.
pub const MAX_KEYS: usize = 10_000;
/// Fewest bytes of a secret (128 bits, RFC 4226 §4 R6).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most bytes of a secret (512 bits, an HMAC-SHA512 block's worth of key).
pub const MAX_SECRET_BYTES: usize = 64;
/// Most PBKDF2 iterations a file may ask for (seconds of work, not hours).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The code lengths and TOTP steps twofold can check.
const DIGITS: [u32; 2] = [6, 8];
const PERIODS: [u32; 2] = [30, 60];
const DEFAULT_DIGITS: u32 = 6;
const DEFAULT_PERIOD: u32 = 30;
/// AES's block, and so CBC's IV, in bytes.
const AES_BLOCK: usize = 16;

/// Base64 as in XML: line breaks and indentation inside a value are not data.
static BASE64_XML: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::BASE64.specification();
    spec.ignore.push_str(" \t\r\n");
    spec.encoding()
        .expect("base64 with white space ignored is a valid encoding")
});

/// One token read from the file (`Debug` shows everything but the secret).
#[derive(Debug)]
pub struct PskcToken {
    /// `DeviceInfo/SerialNo`: valid as a device name (twofold names the device by it).
    pub serial: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub kind: TokenKind,
    pub hash: Hash,
    /// Digits of a code: 6 or 8.
    pub digits: u32,
    /// Seconds of a TOTP step, 30 or 60 (30 for an HOTP token, where it is unused).
    pub period: u32,
    /// The next HOTP counter (0 for a TOTP token unless the file says otherwise).
    pub counter: u64,
    /// `Data/TimeDrift`: the token clock's drift in steps, as the vendor measured it.
    pub time_drift: i64,
    /// The seed: [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`] bytes.
    pub secret: Hidden<Zeroizing<Vec<u8>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Counter-based (RFC 4226).
    Hotp,
    /// Time-based (RFC 6238).
    Totp,
}

/// The hash of the token's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

/// What decrypts the file's secrets. (No `Debug`: it holds the key.)
#[derive(Clone, Copy)]
pub enum Protection<'a> {
    /// The secrets are expected to be plain.
    None,
    /// The AES key shared with the vendor (16, 24 or 32 bytes).
    PreSharedKey(&'a [u8]),
    /// The password the vendor's key derivation (PBKDF2) starts from.
    Password(&'a str),
}

/// Why a file is refused: one line for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskcError(String);

impl fmt::Display for PskcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PskcError {}

fn refuse<T>(message: impl Into<String>) -> Result<T, PskcError> {
    Err(PskcError(message.into()))
}

/// Reads every key of a PSKC file; any key twofold cannot take refuses the whole file.
pub fn read(xml: &str, key: Protection) -> Result<Vec<PskcToken>, PskcError> {
    if u64::try_from(xml.len()).map_or(true, |len| len > limits::MAX_PSKC_FILE_LEN) {
        return refuse(format!(
            "this PSKC file is larger than {} KiB: split it",
            limits::MAX_PSKC_FILE_LEN / 1024
        ));
    }
    // No DTD, hence no entity of the file's own and no external one (no XXE).
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = match Document::parse_with_options(xml, options) {
        Ok(doc) => doc,
        Err(roxmltree::Error::DtdDetected) => {
            return refuse(
                "this PSKC file has a DTD, which twofold refuses (it could read other files)",
            )
        }
        Err(e) => return refuse(format!("this is not a PSKC file: not XML ({e})")),
    };
    let container = doc.root_element();
    if !container.has_tag_name((PSKC, "KeyContainer")) {
        return refuse("this is not a PSKC file: it is XML, but not a PSKC KeyContainer");
    }
    match container.attribute("Version") {
        Some("1.0") => {}
        other => {
            return refuse(format!(
                "PSKC version {} is not supported (only 1.0)",
                one_line(other.unwrap_or("(none)"))
            ))
        }
    }
    let packages: Vec<Node> = children(container, PSKC, "KeyPackage").collect();
    if packages.is_empty() {
        return refuse("this PSKC file holds no keys");
    }
    if packages.len() > MAX_KEYS {
        return refuse(format!(
            "this PSKC file holds {} keys; at most {MAX_KEYS} are read at once: split it",
            packages.len()
        ));
    }
    let crypto = FileCrypto::new(container, key)?;
    let mut serials = HashSet::new();
    let mut tokens = Vec::with_capacity(packages.len());
    for (index, package) in packages.into_iter().enumerate() {
        let Some(token) = read_package(package, index + 1, crypto.as_ref())? else {
            continue;
        };
        if !serials.insert(token.serial.clone()) {
            return refuse(format!(
                "serial {} appears twice in this file (twofold names a token by its serial)",
                token.serial
            ));
        }
        tokens.push(token);
    }
    if tokens.is_empty() {
        return refuse("this PSKC file holds no HOTP or TOTP keys (only PINs)");
    }
    Ok(tokens)
}

/// True when the file's secrets are encrypted under a key derived from a password (the
/// password is to be asked for); false for anything else, unreadable files included
/// ([`read`] says what is wrong with those).
pub fn wants_password(xml: &str) -> bool {
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let Ok(doc) = Document::parse_with_options(xml, options) else {
        return false;
    };
    child(doc.root_element(), PSKC, "EncryptionKey")
        .and_then(|how| child(how, XENC11, "DerivedKey"))
        .is_some()
}

/// The first child element of `node` named `name` in namespace `ns`.
fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.has_tag_name((ns, name)))
}

/// Every child element of `node` named `name` in namespace `ns`.
fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |n| n.is_element() && n.has_tag_name((ns, name)))
}

/// An element's text without the white space around it ("" when it has none).
fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// Base64 into a buffer that is wiped when dropped; `what` names the value, not its text.
fn base64(text: &str, what: &dyn Fn() -> String) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let invalid = || PskcError(format!("{} is not valid base64", what()));
    let len = BASE64_XML.decode_len(text.len()).map_err(|_| invalid())?;
    let mut out = Zeroizing::new(vec![0; len]);
    let written = BASE64_XML
        .decode_mut(text.as_bytes(), &mut out)
        .map_err(|_| invalid())?;
    out.truncate(written);
    Ok(out)
}

/// How a key is called in messages before its serial is known.
fn key_label(key: Node, index: usize) -> String {
    match key.attribute("Id").map(one_line) {
        Some(id) if !id.is_empty() && id.chars().count() <= 64 => format!("key {id}"),
        _ => format!("key number {index} of the file"),
    }
}

/// One `KeyPackage`: its device and its single key; None for a PIN's.
fn read_package(
    package: Node,
    index: usize,
    crypto: Option<&FileCrypto>,
) -> Result<Option<PskcToken>, PskcError> {
    let mut keys = children(package, PSKC, "Key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return refuse(format!(
            "key package number {index} of the file holds no key or more than one"
        ));
    };
    let label = key_label(key, index);
    let algorithm = key.attribute("Algorithm").unwrap_or("(none)");
    let kind = match algorithm {
        HOTP_ALGORITHM => TokenKind::Hotp,
        TOTP_ALGORITHM => TokenKind::Totp,
        PIN_ALGORITHM => return Ok(None),
        other => {
            return refuse(format!(
                "{label}: its algorithm {} is not supported (only HOTP and TOTP)",
                one_line(other)
            ))
        }
    };
    let device = child(package, PSKC, "DeviceInfo");
    let device_text = |name| device.and_then(|d| child(d, PSKC, name)).map(text);
    let serial = match device_text("SerialNo") {
        Some(serial) if !serial.is_empty() => serial.to_owned(),
        _ => {
            return refuse(format!(
                "{label} has no DeviceInfo/SerialNo (twofold names the token by it)"
            ))
        }
    };
    if let Err(invalid) = limits::device_name(&serial) {
        return refuse(format!(
            "{label}: its serial \"{}\" cannot name the token's device: {invalid}",
            one_line(&serial)
        ));
    }
    let label = format!("token {serial}");
    pin_checked_by_the_token(key, &label)?;
    let non_empty = |text: Option<&str>| text.filter(|t| !t.is_empty()).map(one_line);
    let (hash, digits) = algorithm_parameters(key, &label)?;
    let data = child(key, PSKC, "Data");
    let number = |name| data.map_or(Ok(None), |d| plain_number(d, name, &label));
    let counter = number("Counter")?.unwrap_or(0);
    let time_drift = number("TimeDrift")?.unwrap_or(0);
    let period = match kind {
        TokenKind::Hotp => i64::from(DEFAULT_PERIOD),
        TokenKind::Totp => number("TimeInterval")?.unwrap_or(i64::from(DEFAULT_PERIOD)),
    };
    let Some(period) = u32::try_from(period).ok().filter(|p| PERIODS.contains(p)) else {
        return refuse(format!(
            "{label}: a time step of {period} seconds is not supported (only 30 or 60)"
        ));
    };
    let Ok(counter) = u64::try_from(counter) else {
        return refuse(format!("{label}: its counter is negative"));
    };
    let Some(secret) = data.and_then(|d| child(d, PSKC, "Secret")) else {
        return refuse(format!(
            "{label} has no secret (keys derived from a vendor's master key are not supported)"
        ));
    };
    let secret = read_secret(secret, &label, crypto)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
        return refuse(format!(
            "{label}: its secret is {} bytes; twofold takes {MIN_SECRET_BYTES} to \
             {MAX_SECRET_BYTES} (RFC 4226 asks for at least 128 bits)",
            secret.len()
        ));
    }
    Ok(Some(PskcToken {
        manufacturer: non_empty(device_text("Manufacturer")),
        model: non_empty(device_text("Model")),
        serial,
        kind,
        hash,
        digits,
        period,
        counter,
        time_drift,
        secret: Hidden(secret),
    }))
}

/// Refuses a key whose codes carry its PIN (`PINUsageMode` Prepend, Append or
/// Algorithmic): the codes twofold checks are the OTP alone. A PIN the token checks
/// itself (`Local`) is no concern of the server's.
fn pin_checked_by_the_token(key: Node, label: &str) -> Result<(), PskcError> {
    let mode = child(key, PSKC, "Policy")
        .and_then(|p| child(p, PSKC, "PINPolicy"))
        .and_then(|p| p.attribute("PINUsageMode"));
    match mode {
        None | Some("Local") => Ok(()),
        Some(other) => refuse(format!(
            "{label}: its codes carry its PIN (PINUsageMode {}), which twofold does not take",
            one_line(other)
        )),
    }
}

/// The hash (`Suite`, SHA1 when absent) and the digits of a code (`ResponseFormat`).
fn algorithm_parameters(key: Node, label: &str) -> Result<(Hash, u32), PskcError> {
    let Some(params) = child(key, PSKC, "AlgorithmParameters") else {
        return Ok((Hash::Sha1, DEFAULT_DIGITS));
    };
    let hash = match child(params, PSKC, "Suite").map(text) {
        None | Some("") => Hash::Sha1,
        Some(suite) => {
            let name = suite.to_ascii_uppercase().replace('-', "");
            match name.strip_prefix("HMAC").unwrap_or(&name) {
                "SHA1" => Hash::Sha1,
                "SHA256" => Hash::Sha256,
                "SHA512" => Hash::Sha512,
                _ => {
                    return refuse(format!(
                        "{label}: its suite {} is not supported (only HMAC-SHA1, -SHA256 or \
                         -SHA512)",
                        one_line(suite)
                    ))
                }
            }
        }
    };
    let Some(format) = child(params, PSKC, "ResponseFormat") else {
        return Ok((hash, DEFAULT_DIGITS));
    };
    let length = format.attribute("Length").unwrap_or("").trim();
    let Some(digits) = length.parse().ok().filter(|d| DIGITS.contains(d)) else {
        return refuse(format!(
            "{label}: codes of {} digits are not supported (only 6 or 8)",
            one_line(length)
        ));
    };
    let encoding = format.attribute("Encoding").unwrap_or("DECIMAL");
    if encoding.trim() != "DECIMAL" {
        return refuse(format!(
            "{label}: codes encoded as {} are not supported (only DECIMAL)",
            one_line(encoding)
        ));
    }
    if matches!(
        format.attribute("CheckDigits").map(str::trim),
        Some("true" | "1")
    ) {
        return refuse(format!(
            "{label}: codes with a check digit are not supported"
        ));
    }
    Ok((hash, digits))
}

/// `Data/<name>/PlainValue` as a whole number; None when the file does not give it.
fn plain_number(data: Node, name: &str, label: &str) -> Result<Option<i64>, PskcError> {
    let Some(field) = child(data, PSKC, name) else {
        return Ok(None);
    };
    if child(field, PSKC, "EncryptedValue").is_some() {
        return refuse(format!(
            "{label}: its {name} is encrypted; twofold reads only a plain {name}"
        ));
    }
    let value = child(field, PSKC, "PlainValue").map(text).unwrap_or("");
    match value.parse() {
        Ok(n) => Ok(Some(n)),
        Err(_) => refuse(format!("{label}: its {name} is not a whole number")),
    }
}

/// `Data/Secret`: its plain value, or its encrypted value once its MAC is checked.
fn read_secret(
    secret: Node,
    label: &str,
    crypto: Option<&FileCrypto>,
) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    if let Some(encrypted) = child(secret, PSKC, "EncryptedValue") {
        let Some(crypto) = crypto else {
            return refuse(NEEDS_KEY);
        };
        let Some(value_mac) = child(secret, PSKC, "ValueMAC") else {
            return refuse(format!(
                "{label}: its encrypted secret has no ValueMAC (RFC 6030 asks for one with CBC)"
            ));
        };
        let mac = base64(text(value_mac), &|| format!("{label}: its ValueMAC"))?;
        return crypto.decrypt(encrypted, Some(&mac), &|| format!("{label}: its secret"));
    }
    match child(secret, PSKC, "PlainValue") {
        Some(plain) => base64(text(plain), &|| format!("{label}: its secret")),
        None => refuse(format!("{label}: its Secret holds no value")),
    }
}

const NEEDS_KEY: &str =
    "this PSKC file is encrypted: give its pre-shared key (--key-file) or its password \
     (--password-file)";

/// The HMACs of `MACMethod` and of PBKDF2's `PRF`.
#[derive(Clone, Copy)]
enum HmacHash {
    Sha1,
    Sha256,
    Sha512,
}

impl HmacHash {
    /// `…#hmac-sha1` and its kin, under the namespaces that name them.
    fn from_uri(uri: &str) -> Option<Self> {
        let name = [DSIG, DSIG_MORE, PKCS5]
            .iter()
            .find_map(|ns| uri.trim().strip_prefix(ns))?;
        match name {
            "hmac-sha1" => Some(Self::Sha1),
            "hmac-sha256" => Some(Self::Sha256),
            "hmac-sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Whether `tag` is the HMAC of `data` under `key`, compared in constant time.
    fn verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn verify<M: Mac + KeyInit>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
                return false;
            };
            mac.update(data);
            mac.verify_slice(tag).is_ok()
        }
        match self {
            Self::Sha1 => verify::<Hmac<sha1::Sha1>>(key, data, tag),
            Self::Sha256 => verify::<Hmac<sha2::Sha256>>(key, data, tag),
            Self::Sha512 => verify::<Hmac<sha2::Sha512>>(key, data, tag),
        }
    }

    fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            Self::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
        }
    }
}

/// The file's decryption key and MAC key, for a file with encrypted values.
struct FileCrypto {
    key: Zeroizing<Vec<u8>>,
    mac: HmacHash,
    mac_key: Zeroizing<Vec<u8>>,
    /// "the pre-shared key" or "the password", for the wrong-key message.
    given: &'static str,
}

impl FileCrypto {
    /// None when no secret of the file is encrypted.
    fn new(container: Node, protection: Protection) -> Result<Option<Self>, PskcError> {
        let encrypted = container.descendants().any(|n| {
            n.has_tag_name((PSKC, "Secret")) && child(n, PSKC, "EncryptedValue").is_some()
        });
        if !encrypted {
            return Ok(None);
        }
        let how = child(container, PSKC, "EncryptionKey");
        let derived = how.and_then(|h| child(h, XENC11, "DerivedKey"));
        let named = how.is_none_or(|h| child(h, DSIG, "KeyName").is_some());
        let (key, given) = match (protection, derived) {
            (Protection::None, _) => return refuse(NEEDS_KEY),
            (Protection::Password(password), Some(derived)) => {
                (derive_key(derived, password)?, "the password")
            }
            (Protection::PreSharedKey(key), None) if named => {
                (Zeroizing::new(key.to_vec()), "the pre-shared key")
            }
            (Protection::Password(_), None) if named => {
                return refuse(
                    "this PSKC file is encrypted with a pre-shared key, not a password: give \
                     --key-file",
                )
            }
            (Protection::PreSharedKey(_), Some(_)) => {
                return refuse(
                    "this PSKC file is encrypted with a password, not a pre-shared key: give \
                     --password-file",
                )
            }
            (_, None) => {
                return refuse(
                    "this PSKC file is encrypted to a certificate's key; twofold reads only \
                     files encrypted with a pre-shared key or a password",
                )
            }
        };
        let Some(method) = child(container, PSKC, "MACMethod") else {
            return refuse(
                "this PSKC file's encrypted values carry no MAC (MACMethod), which RFC 6030 \
                 asks for with CBC encryption",
            );
        };
        let algorithm = method.attribute("Algorithm").unwrap_or("(none)");
        let Some(mac) = HmacHash::from_uri(algorithm) else {
            return refuse(format!(
                "the MAC algorithm {} is not supported (only HMAC-SHA1, -SHA256 or -SHA512)",
                one_line(algorithm)
            ));
        };
        let Some(mac_key) = child(method, PSKC, "MACKey") else {
            return refuse("this PSKC file's MACMethod holds no MACKey");
        };
        let mut crypto = Self {
            key,
            mac,
            mac_key: Zeroizing::new(Vec::new()),
            given,
        };
        // The MAC key has no MAC of its own: a wrong key shows in the values' MACs.
        crypto.mac_key = crypto.decrypt(mac_key, None, &|| "the MAC key".to_owned())?;
        Ok(Some(crypto))
    }

    fn wrong_key(&self, why: &str) -> PskcError {
        PskcError(format!("{} does not decrypt this file ({why})", self.given))
    }

    /// An XML Encryption value (`EncryptionMethod`, `CipherData/CipherValue` = IV ||
    /// ciphertext): its MAC over IV || ciphertext checked first when given.
    fn decrypt(
        &self,
        encrypted: Node,
        mac: Option<&[u8]>,
        what: &dyn Fn() -> String,
    ) -> Result<Zeroizing<Vec<u8>>, PskcError> {
        let method = child(encrypted, XENC, "EncryptionMethod")
            .and_then(|m| m.attribute("Algorithm"))
            .unwrap_or("(none)");
        let key_len = match method.trim().strip_prefix(XENC) {
            Some("aes128-cbc") => 16,
            Some("aes192-cbc") => 24,
            Some("aes256-cbc") => 32,
            _ => {
                return refuse(format!(
                    "{}: its encryption {} is not supported (only AES-CBC)",
                    what(),
                    one_line(method)
                ))
            }
        };
        if self.key.len() != key_len {
            return refuse(format!(
                "{} is {} bytes, but this file's AES-{} needs {key_len}",
                self.given,
                self.key.len(),
                key_len * 8
            ));
        }
        let Some(cipher_value) =
            child(encrypted, XENC, "CipherData").and_then(|d| child(d, XENC, "CipherValue"))
        else {
            return refuse(format!(
                "{}: its encrypted value has no CipherValue",
                what()
            ));
        };
        let data = base64(text(cipher_value), what)?;
        if data.len() < 2 * AES_BLOCK || data.len() % AES_BLOCK != 0 {
            return refuse(format!(
                "{}: its encrypted value is not an IV and whole AES blocks",
                what()
            ));
        }
        if let Some(tag) = mac {
            if !self.mac.verify(&self.mac_key, &data, tag) {
                return Err(self.wrong_key("its MAC does not match"));
            }
        }
        let plain = match key_len {
            16 => cbc_decrypt::<aes::Aes128>(&self.key, &data),
            24 => cbc_decrypt::<aes::Aes192>(&self.key, &data),
            _ => cbc_decrypt::<aes::Aes256>(&self.key, &data),
        };
        plain.ok_or_else(|| self.wrong_key("it decrypts to garbage"))
    }
}

/// AES-CBC with PKCS#7 padding over IV || ciphertext; None when the padding is wrong.
fn cbc_decrypt<C: BlockCipherDecrypt>(key: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>>
where
    cbc::Decryptor<C>: KeyIvInit + BlockModeDecrypt,
{
    let (iv, ciphertext) = data.split_at(AES_BLOCK);
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = decryptor.decrypt_padded::<Pkcs7>(&mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}

/// The key PBKDF2 derives from `password` (xenc11 `DerivedKey`, PKCS #5 v2.0 params).
fn derive_key(derived: Node, password: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let method = child(derived, XENC11, "KeyDerivationMethod");
    let algorithm = method
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or("(none)");
    if algorithm.trim().strip_prefix(PKCS5) != Some("pbkdf2") {
        return refuse(format!(
            "this PSKC file's key derivation {} is not supported (only PBKDF2)",
            one_line(algorithm)
        ));
    }
    let Some(params) = method.and_then(|m| child(m, PKCS5, "PBKDF2-params")) else {
        return refuse("this PSKC file's PBKDF2 has no PBKDF2-params");
    };
    // RFC 6030's example leaves the parameters' own elements in no namespace.
    let param = |name: &str| {
        params.children().find(|n| {
            n.is_element()
                && n.tag_name().name() == name
                && matches!(n.tag_name().namespace(), None | Some(PKCS5))
        })
    };
    let Some(salt) = param("Salt").and_then(|s| s.first_element_child()) else {
        return refuse("this PSKC file's PBKDF2 has no salt");
    };
    if salt.tag_name().name() != "Specified" {
        return refuse("this PSKC file's PBKDF2 salt is not given in the file (Specified)");
    }
    let salt = base64(text(salt), &|| "the PBKDF2 salt".to_owned())?;
    let number = |name: &str| param(name).map(|n| text(n).parse::<u32>());
    let iterations = match number("IterationCount") {
        Some(Ok(n)) if (1..=MAX_PBKDF2_ITERATIONS).contains(&n) => n,
        _ => {
            return refuse(format!(
                "this PSKC file's PBKDF2 iteration count is not 1 to {MAX_PBKDF2_ITERATIONS}"
            ))
        }
    };
    let key_len = match number("KeyLength") {
        None => 16,
        Some(Ok(n @ (16 | 24 | 32))) => n as usize,
        Some(_) => return refuse("this PSKC file's PBKDF2 key length is not 16, 24 or 32"),
    };
    let prf = param("PRF").and_then(|p| p.attribute("Algorithm"));
    let hash = match prf.map(str::trim) {
        None | Some("") => HmacHash::Sha1,
        Some(uri) => HmacHash::from_uri(uri).ok_or_else(|| {
            PskcError(format!(
                "this PSKC file's PBKDF2 function {} is not supported (only HMAC-SHA1, \
                 -SHA256 or -SHA512)",
                one_line(uri)
            ))
        })?,
    };
    let mut key = Zeroizing::new(vec![0; key_len]);
    hash.pbkdf2(password.as_bytes(), &salt, iterations, &mut key);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6030's examples, as python-pskc ships them (tests/rfc6030*), unchanged.
    const FIGURE2: &str = include_str!("../tests/data/pskc/figure2.pskcxml");
    const FIGURE3: &str = include_str!("../tests/data/pskc/figure3.pskcxml");
    const FIGURE4: &str = include_str!("../tests/data/pskc/figure4.pskcxml");
    const FIGURE5: &str = include_str!("../tests/data/pskc/figure5.pskcxml");
    const FIGURE6: &str = include_str!("../tests/data/pskc/figure6.pskcxml");
    const FIGURE7: &str = include_str!("../tests/data/pskc/figure7.pskcxml");
    /// Made for these tests (see the README beside it).
    const AES256_PBKDF2_SHA256: &str =
        include_str!("../tests/data/pskc/aes256-pbkdf2-sha256.pskcxml");

    /// Figure 6's pre-shared key, and the secret of figures 3, 6 and 7.
    const FIGURE6_KEY: [u8; 16] = [
        0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90,
        0x12,
    ];
    const SECRET: &[u8] = b"12345678901234567890";
    const SECRET_BASE64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=";

    fn error(xml: &str, key: Protection) -> String {
        let message = read(xml, key).expect_err("refused").to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    /// A plain file of one key package per (serial, algorithm, AlgorithmParameters, Data).
    fn plain_file(keys: &[(&str, &str, &str, &str)]) -> String {
        let mut xml = String::from(
            r#"<?xml version="1.0"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">"#,
        );
        for (i, (serial, algorithm, params, data)) in keys.iter().enumerate() {
            xml.push_str(&format!(
                r#"<KeyPackage><DeviceInfo><Manufacturer>Acme</Manufacturer>
<SerialNo>{serial}</SerialNo><Model>T1</Model></DeviceInfo>
<Key Id="k{i}" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:{algorithm}">
<AlgorithmParameters>{params}</AlgorithmParameters><Data>{data}</Data></Key></KeyPackage>"#
            ));
        }
        xml + "</KeyContainer>"
    }

    /// One plain key with these AlgorithmParameters and Data.
    fn one_key(algorithm: &str, params: &str, data: &str) -> String {
        plain_file(&[("SN1", algorithm, params, data)])
    }

    fn plain_secret() -> String {
        format!("<Secret><PlainValue>{SECRET_BASE64}</PlainValue></Secret>")
    }

    #[test]
    fn figure3_is_a_plain_hotp_key_with_its_device() {
        let tokens = read(FIGURE3, Protection::None).unwrap();
        assert_eq!(tokens.len(), 1);
        let t = &tokens[0];
        assert_eq!(t.serial, "987654321");
        assert_eq!(t.manufacturer.as_deref(), Some("Manufacturer"));
        assert_eq!(t.model, None);
        assert_eq!(t.kind, TokenKind::Hotp);
        assert_eq!(t.hash, Hash::Sha1);
        assert_eq!(t.digits, 8);
        assert_eq!(t.counter, 0);
        assert_eq!(t.time_drift, 0);
        assert_eq!(t.secret.as_slice(), SECRET);
    }

    #[test]
    fn figure2_has_no_serial_and_figure4_no_secret() {
        assert_eq!(
            error(FIGURE2, Protection::None),
            "key 12345678 has no DeviceInfo/SerialNo (twofold names the token by it)"
        );
        assert_eq!(
            error(FIGURE4, Protection::None),
            "token 987654321 has no secret (keys derived from a vendor's master key are not \
             supported)"
        );
    }

    #[test]
    fn figure5s_token_imports_and_its_local_pin_is_passed_over() {
        let tokens = read(FIGURE5, Protection::None).unwrap();
        assert_eq!(tokens.len(), 1);
        let token = &tokens[0];
        assert_eq!(
            (token.serial.as_str(), token.kind),
            ("987654321", TokenKind::Hotp)
        );
        assert_eq!((token.digits, token.counter), (8, 0));
        assert_eq!(**token.secret, *b"12345678901234567890");
        // A PIN sent with the codes cannot be taken; a file of PINs alone holds nothing.
        let appended = FIGURE5.replace("PINUsageMode=\"Local\"", "PINUsageMode=\"Append\"");
        assert_eq!(
            error(&appended, Protection::None),
            "token 987654321: its codes carry its PIN (PINUsageMode Append), which twofold \
             does not take"
        );
        let start = FIGURE5.find("<KeyPackage>").unwrap();
        let second = FIGURE5[start + 1..].find("<KeyPackage>").unwrap() + start + 1;
        let pins_only = format!("{}{}", &FIGURE5[..start], &FIGURE5[second..]);
        assert_eq!(
            error(&pins_only, Protection::None),
            "this PSKC file holds no HOTP or TOTP keys (only PINs)"
        );
    }

    #[test]
    fn figure6_decrypts_with_the_pre_shared_key() {
        let tokens = read(FIGURE6, Protection::PreSharedKey(&FIGURE6_KEY)).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].serial, "987654321");
        assert_eq!(tokens[0].digits, 8);
        assert_eq!(tokens[0].secret.as_slice(), SECRET);
    }

    #[test]
    fn figure6_refuses_a_wrong_or_missing_key() {
        let mut wrong = FIGURE6_KEY;
        wrong[15] ^= 1;
        assert_eq!(
            error(FIGURE6, Protection::PreSharedKey(&wrong)),
            "the pre-shared key does not decrypt this file (it decrypts to garbage)"
        );
        assert_eq!(
            error(FIGURE6, Protection::PreSharedKey(&[0x12; 32])),
            "the pre-shared key is 32 bytes, but this file's AES-128 needs 16"
        );
        assert_eq!(error(FIGURE6, Protection::None), NEEDS_KEY);
        assert_eq!(
            error(FIGURE6, Protection::Password("qwerty")),
            "this PSKC file is encrypted with a pre-shared key, not a password: give --key-file"
        );
    }

    /// With the right key, a changed value or MAC is found by the MAC alone: a changed
    /// IV decrypts (to another secret) with a valid padding.
    #[test]
    fn figure6_refuses_a_value_that_does_not_match_its_mac() {
        let key = Protection::PreSharedKey(&FIGURE6_KEY);
        let changed_iv = FIGURE6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AQECAwQFBgcICQoLDA0OD+cI");
        assert_ne!(changed_iv, FIGURE6);
        let changed_mac = FIGURE6.replace(
            "Su+NvtQfmvfJzF6bmQiJqoLRExc=",
            "Su+NvtQfmvfJzF6bmQiJqoLRExY=",
        );
        assert_ne!(changed_mac, FIGURE6);
        for xml in [changed_iv, changed_mac] {
            assert_eq!(
                error(&xml, key),
                "the pre-shared key does not decrypt this file (its MAC does not match)"
            );
        }
        let no_mac = FIGURE6.replace("<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=", "<!--");
        let no_mac = no_mac.replace("</ValueMAC>", "-->");
        assert_eq!(
            error(&no_mac, key),
            "token 987654321: its encrypted secret has no ValueMAC (RFC 6030 asks for one \
             with CBC)"
        );
    }

    #[test]
    fn figure7_decrypts_with_its_password_only() {
        assert!(wants_password(FIGURE7));
        assert!(!wants_password(FIGURE6) && !wants_password(FIGURE3));
        assert!(!wants_password("not xml"));
        let tokens = read(FIGURE7, Protection::Password("qwerty")).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].serial, "987654321");
        assert_eq!(tokens[0].manufacturer.as_deref(), Some("TokenVendorAcme"));
        assert_eq!(tokens[0].secret.as_slice(), SECRET);
        assert_eq!(
            error(FIGURE7, Protection::Password("qwertz")),
            "the password does not decrypt this file (it decrypts to garbage)"
        );
        assert_eq!(
            error(FIGURE7, Protection::PreSharedKey(&FIGURE6_KEY)),
            "this PSKC file is encrypted with a password, not a pre-shared key: give --password-file"
        );
        assert_eq!(error(FIGURE7, Protection::None), NEEDS_KEY);
    }

    #[test]
    fn aes256_under_a_pbkdf2_sha256_password_with_an_hmac_sha256_mac() {
        let tokens = read(AES256_PBKDF2_SHA256, Protection::Password("correct horse")).unwrap();
        assert_eq!(tokens.len(), 1);
        let t = &tokens[0];
        assert_eq!(t.serial, "TOTP-0001");
        assert_eq!(t.model.as_deref(), Some("T6"));
        assert_eq!(
            (t.kind, t.hash, t.digits, t.period),
            (TokenKind::Totp, Hash::Sha256, 6, 30)
        );
        assert_eq!(t.secret.as_slice(), b"12345678901234567890123456789012");
        assert_eq!(
            error(AES256_PBKDF2_SHA256, Protection::Password("correct horse!")),
            "the password does not decrypt this file (it decrypts to garbage)"
        );
    }

    #[test]
    fn a_totp_key_with_its_parameters() {
        let xml = one_key(
            "totp",
            r#"<Suite>HMAC-SHA256</Suite><ResponseFormat Length="8" Encoding="DECIMAL"/>"#,
            "<Secret><PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4\n  OTAxMjM0NTY3ODkwMTI=</PlainValue></Secret>\
             <TimeInterval><PlainValue>60</PlainValue></TimeInterval>\
             <TimeDrift><PlainValue>-2</PlainValue></TimeDrift>",
        );
        let tokens = read(&xml, Protection::None).unwrap();
        let t = &tokens[0];
        assert_eq!(t.serial, "SN1");
        assert_eq!(t.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(t.model.as_deref(), Some("T1"));
        assert_eq!(t.kind, TokenKind::Totp);
        assert_eq!(t.hash, Hash::Sha256);
        assert_eq!(t.digits, 8);
        assert_eq!(t.period, 60);
        assert_eq!(t.time_drift, -2);
        assert_eq!(t.secret.as_slice(), b"12345678901234567890123456789012");
        // Defaults: SHA1, 6 digits, 30 seconds.
        let tokens = read(&one_key("totp", "", &plain_secret()), Protection::None).unwrap();
        assert_eq!(
            (tokens[0].hash, tokens[0].digits, tokens[0].period),
            (Hash::Sha1, 6, 30)
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let tokens = read(FIGURE3, Protection::None).unwrap();
        let shown = format!("{tokens:?}");
        assert!(shown.contains("987654321"), "{shown}");
        assert!(
            !shown.contains("1234567890") && !shown.contains("49, 50"),
            "{shown}"
        );
    }

    #[test]
    fn files_too_large_or_not_pskc_are_refused() {
        let large = " ".repeat(usize::try_from(limits::MAX_PSKC_FILE_LEN).unwrap() + 1);
        assert!(
            error("not xml", Protection::None).starts_with("this is not a PSKC file: not XML (")
        );
        let no_keys = "<KeyContainer Version='1.0' xmlns='urn:ietf:params:xml:ns:keyprov:pskc'/>";
        let version_2 = FIGURE3.replace("Version=\"1.0\"", "Version=\"2.0\"");
        for (file, message) in [
            (
                large.as_str(),
                "this PSKC file is larger than 1024 KiB: split it",
            ),
            (
                "<KeyContainer Version='1.0'/>",
                "this is not a PSKC file: it is XML, but not a PSKC KeyContainer",
            ),
            (no_keys, "this PSKC file holds no keys"),
            (&version_2, "PSKC version 2.0 is not supported (only 1.0)"),
        ] {
            assert_eq!(error(file, Protection::None), message);
        }
    }

    /// An entity of the file's own (or an external one: XXE) needs a DTD, refused.
    #[test]
    fn a_dtd_is_refused() {
        let xxe = FIGURE3.replace(
            "<KeyContainer",
            "<!DOCTYPE KeyContainer [<!ENTITY x SYSTEM \"file:///etc/shadow\">]>\n<KeyContainer",
        );
        let xxe = xxe.replace("<Issuer>Issuer</Issuer>", "<Issuer>&x;</Issuer>");
        assert_eq!(
            error(&xxe, Protection::None),
            "this PSKC file has a DTD, which twofold refuses (it could read other files)"
        );
    }

    #[test]
    fn keys_twofold_cannot_take_are_refused() {
        let secret = plain_secret();
        let cases = [
            (
                one_key(
                    "hotp",
                    r#"<ResponseFormat Length="7" Encoding="DECIMAL"/>"#,
                    &secret,
                ),
                "token SN1: codes of 7 digits are not supported (only 6 or 8)",
            ),
            (
                one_key(
                    "hotp",
                    r#"<ResponseFormat Length="6" Encoding="HEXADECIMAL"/>"#,
                    &secret,
                ),
                "token SN1: codes encoded as HEXADECIMAL are not supported (only DECIMAL)",
            ),
            (
                one_key("hotp", "<Suite>MD5</Suite>", &secret),
                "token SN1: its suite MD5 is not supported (only HMAC-SHA1, -SHA256 or -SHA512)",
            ),
            (
                one_key("ocra", "", &secret),
                "key k0: its algorithm urn:ietf:params:xml:ns:keyprov:pskc:ocra is not \
                 supported (only HOTP and TOTP)",
            ),
            (
                one_key(
                    "totp",
                    "",
                    &format!("{secret}<TimeInterval><PlainValue>45</PlainValue></TimeInterval>"),
                ),
                "token SN1: a time step of 45 seconds is not supported (only 30 or 60)",
            ),
            (
                one_key(
                    "hotp",
                    "",
                    "<Secret><PlainValue>MTIzNA==</PlainValue></Secret>",
                ),
                "token SN1: its secret is 4 bytes; twofold takes 16 to 64 (RFC 4226 asks for at \
                 least 128 bits)",
            ),
            (
                one_key(
                    "hotp",
                    "",
                    "<Secret><PlainValue>not base64!</PlainValue></Secret>",
                ),
                "token SN1: its secret is not valid base64",
            ),
            (
                one_key(
                    "hotp",
                    "",
                    &format!("{secret}<Counter><EncryptedValue/></Counter>"),
                ),
                "token SN1: its Counter is encrypted; twofold reads only a plain Counter",
            ),
            (
                one_key(
                    "hotp",
                    "",
                    &format!("{secret}<Counter><PlainValue>-1</PlainValue></Counter>"),
                ),
                "token SN1: its counter is negative",
            ),
        ];
        for (xml, expected) in cases {
            assert_eq!(error(&xml, Protection::None), expected);
        }
    }

    #[test]
    fn serials_must_be_device_names_and_unique() {
        let secret = plain_secret();
        let bad = plain_file(&[("98 76", "hotp", "", &secret)]);
        let message = error(&bad, Protection::None);
        assert!(
            message.starts_with("key k0: its serial \"98 76\" cannot name the token's device: "),
            "{message}"
        );
        let twice = plain_file(&[("SN1", "hotp", "", &secret), ("SN1", "totp", "", &secret)]);
        assert_eq!(
            error(&twice, Protection::None),
            "serial SN1 appears twice in this file (twofold names a token by its serial)"
        );
        let two = plain_file(&[("SN1", "hotp", "", &secret), ("SN2", "totp", "", &secret)]);
        let tokens = read(&two, Protection::None).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].kind, TokenKind::Totp);
    }

    #[test]
    fn too_many_keys_or_packages_without_one_key_are_refused() {
        let package = "<KeyPackage/>";
        let xml = format!(
            "<KeyContainer Version='1.0' xmlns='urn:ietf:params:xml:ns:keyprov:pskc'>{}\
             </KeyContainer>",
            package.repeat(MAX_KEYS + 1)
        );
        assert_eq!(
            error(&xml, Protection::None),
            "this PSKC file holds 10001 keys; at most 10000 are read at once: split it"
        );
        let empty = FIGURE3.replace("<KeyPackage>", "<KeyPackage/><KeyPackage>");
        assert_eq!(
            error(&empty, Protection::None),
            "key package number 1 of the file holds no key or more than one"
        );
        let two_keys = FIGURE3.replace("</Key>", "</Key><Key/>");
        assert_eq!(
            error(&two_keys, Protection::None),
            "key package number 1 of the file holds no key or more than one"
        );
    }
}
