//! Hardware OATH tokens end to end: `twofold admin tokens import` reads a vendor's PSKC
//! file (RFC 6030's own examples, plain and encrypted, and files written here with the
//! RFCs' seeds), `assign` makes a token a user's device, and the real PAM stack accepts
//! the codes oathtool computes from the same seeds: RFC 4226's HOTP codes in order
//! (never one below the counter), again after a resync of a token pressed 50 times
//! ahead, and RFC 6238's TOTP codes for SHA-1, SHA-256 and SHA-512 with 8 digits. The
//! counter stays with the token when it is unassigned and assigned to someone else.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use twofold_tests::flows::{cli_showing_none_of, oathtool, totp_with, RFC4226_SEED_HEX};
use twofold_tests::root_only;
use twofold_tests::{pam, wait_for_fresh_step, Login, TestEnv};

/// Users of the test host (not enrolled when a test starts).
const USER: &str = "daemon";
const OTHER: &str = "bin";
const THIRD: &str = "sys";

/// An RFC's seed: the hash it goes with (oathtool's name and PSKC's suite), and the
/// seed in hex (for oathtool) and base64 (for PSKC files).
struct Seed {
    hash: &'static str,
    suite: &'static str,
    hex: &'static str,
    b64: &'static str,
}

/// RFC 4226's (and RFC 6238's SHA-1) seed "12345678901234567890".
const SHA1: Seed = Seed {
    hash: "sha1",
    suite: "HMAC-SHA1",
    hex: RFC4226_SEED_HEX,
    b64: "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
};
/// RFC 6238's SHA-256 seed (32 bytes of "1234567890…").
const SHA256: Seed = Seed {
    hash: "sha256",
    suite: "HMAC-SHA256",
    hex: "3132333435363738393031323334353637383930313233343536373839303132",
    b64: "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=",
};
/// RFC 6238's SHA-512 seed (64 bytes of "1234567890…").
const SHA512: Seed = Seed {
    hash: "sha512",
    suite: "HMAC-SHA512",
    hex: "31323334353637383930313233343536373839303132333435363738393031323334\
          353637383930313233343536373839303132333435363738393031323334",
    b64: "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4\
          OTAxMjM0NTY3ODkwMTIzNA==",
};

/// RFC 6030 Figure 6's pre-shared key.
const FIGURE6_KEY: &str = "12345678901234567890123456789012";
/// The serial of every RFC 6030 example token.
const RFC6030_SERIAL: &str = "987654321";

fn rfc6030(figure: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cli/tests/data/pskc")
        .join(format!("figure{figure}.pskcxml"))
}

/// RFC 4226's code of counter value `n` (6 digits).
fn hotp(n: u64) -> String {
    oathtool(&["--hotp", "-c", &n.to_string(), SHA1.hex])
}

/// The 8-digit TOTP code of `seed` with its hash, `offset` steps from now.
fn totp8(seed: &Seed, offset: i64) -> String {
    let hash = format!("--totp={}", seed.hash);
    totp_with(&[&hash, "-d", "8"], 30, seed.hex, offset)
}

/// One `KeyPackage`: serial, `hotp` or `totp`, suite, digits, base64 seed, counter.
fn key_package(serial: &str, kind: &str, suite: &str, digits: u32, b64: &str) -> String {
    let counter = if kind == "hotp" {
        "<Counter><PlainValue>0</PlainValue></Counter>"
    } else {
        "<TimeInterval><PlainValue>30</PlainValue></TimeInterval>"
    };
    format!(
        "<KeyPackage>
           <DeviceInfo><Manufacturer>Test</Manufacturer><SerialNo>{serial}</SerialNo>
             <Model>Fob</Model></DeviceInfo>
           <Key Id=\"{serial}\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:{kind}\">
             <AlgorithmParameters><Suite>{suite}</Suite>
               <ResponseFormat Length=\"{digits}\" Encoding=\"DECIMAL\"/></AlgorithmParameters>
             <Data><Secret><PlainValue>{b64}</PlainValue></Secret>{counter}</Data>
           </Key>
         </KeyPackage>"
    )
}

/// A plain PSKC file of `packages` in the test's directory.
fn pskc_file(env: &TestEnv, name: &str, packages: &[String]) -> PathBuf {
    let path = env.dir.path().join(name);
    fs::write(
        &path,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">\n{}\n\
             </KeyContainer>\n",
            packages.join("\n")
        ),
    )
    .unwrap();
    path
}

/// A 0600 file holding `text`.
fn private_file(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `twofold admin tokens ARGS` as root, with `stdin`; stdout and stderr checked for
/// seeds.
fn tokens(env: &TestEnv, args: &[&str], stdin: &str) -> (Output, String, String) {
    let seeds = [SHA1.b64, SHA1.hex, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"];
    cli_showing_none_of(env, &seeds, &["admin", "tokens"], args, stdin)
}

fn listed(env: &TestEnv) -> Vec<serde_json::Value> {
    let (out, stdout, _) = tokens(env, &["--json"], "");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&stdout).unwrap()
}

fn login(env: &TestEnv, user: &str, code: &str) -> i32 {
    env.pam(&Login::new(user, code)).result
}

/// Audit entries of `event` as (user, detail).
fn audited(env: &TestEnv, event: &str) -> Vec<(String, String)> {
    let out = env.cli(&["admin", "log", "--json"], None, "");
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .filter(|r| r["event"] == event)
        .map(|r| {
            (
                r["user"].as_str().unwrap_or("").to_string(),
                r["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn rfc6030_files_import_and_a_wrong_key_imports_nothing() {
    root_only!();
    let env = TestEnv::new();
    let figure6 = rfc6030(6);
    let figure6 = figure6.to_str().unwrap();
    let mut wrong = FIGURE6_KEY.to_string();
    wrong.replace_range(31.., "3");
    let wrong_key = private_file(&env, "wrong.key", &format!("{wrong}\n"));
    let (out, stdout, stderr) = tokens(
        &env,
        &["import", figure6, "--key-file", wrong_key.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "twofold: {figure6}: the pre-shared key does not decrypt this file (it decrypts \
             to garbage). Nothing was imported."
        )
    );
    let (out, _, stderr) = tokens(&env, &["import", figure6], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("give its pre-shared key (--key-file)"),
        "{stderr}"
    );
    // Not through a symbolic link (it could point anywhere), nor from a directory.
    let link = env.dir.path().join("link.pskc");
    std::os::unix::fs::symlink(rfc6030(3), &link).unwrap();
    for (path, why) in [
        (link.as_path(), "the file is a symbolic link"),
        (env.dir.path(), "the file is not a regular file"),
    ] {
        let (out, _, stderr) = tokens(&env, &["import", path.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("twofold: {}: {why}", path.display())),
            "{stderr}"
        );
    }
    assert!(listed(&env).is_empty(), "nothing was imported");

    // The right key: imported, unassigned; a dry run first changes nothing.
    let key = private_file(&env, "vendor.key", &format!("{FIGURE6_KEY}\n"));
    let with_key = ["import", figure6, "--key-file", key.to_str().unwrap()];
    let mut dry = with_key.to_vec();
    dry.push("--dry-run");
    let (out, stdout, _) = tokens(&env, &dry, "");
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("Would import 1 tokens"), "{stdout}");
    assert!(listed(&env).is_empty(), "a dry run imports nothing");
    let (out, stdout, _) = tokens(&env, &with_key, "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!(
            "  {RFC6030_SERIAL}  HOTP SHA1 8 digits, next counter 0"
        )),
        "{stdout}"
    );
    let rows = listed(&env);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["serial"], RFC6030_SERIAL);
    assert_eq!(rows[0]["kind"], "hotp token");
    assert_eq!(rows[0]["manufacturer"], "Manufacturer");
    assert_eq!(rows[0]["counter"], 0);
    assert!(rows[0]["assigned_to"].is_null());

    // Figure 3 (plain) and Figure 7 (a password) hold the same serial: left alone.
    let (out, stdout, _) = tokens(
        &env,
        &["import", rfc6030(3).to_str().unwrap(), "--json"],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["imported"], serde_json::json!([]));
    assert_eq!(json["skipped"], serde_json::json!([RFC6030_SERIAL]));
    let password = private_file(&env, "password", "qwerty\n");
    let figure7 = rfc6030(7);
    let (out, stdout, _) = tokens(
        &env,
        &[
            "import",
            figure7.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!(
            "Left alone (serials known already): {RFC6030_SERIAL}"
        )),
        "{stdout}"
    );
    assert_eq!(audited(&env, "tokens_imported").len(), 3);

    // The decrypted seed is RFC 4226's: its 8-digit codes pass once assigned.
    let (out, _, _) = tokens(&env, &["assign", RFC6030_SERIAL, USER], "");
    assert!(out.status.success(), "{out:?}");
    let code = oathtool(&["--hotp", "-d", "8", "-c", "0", SHA1.hex]);
    assert_eq!(login(&env, USER, &code), pam::SUCCESS, "{}", env.log_text());
    assert_eq!(login(&env, USER, &code), pam::AUTH_ERR, "used once");
}

#[test]
fn hotp_codes_pass_in_order_and_resync_recovers_a_token_pressed_ahead() {
    root_only!();
    let env = TestEnv::new();
    const SERIAL: &str = "HOTP-4226";
    let file = pskc_file(
        &env,
        "hotp.pskc",
        &[key_package(SERIAL, "hotp", SHA1.suite, 6, SHA1.b64)],
    );
    let (out, _, _) = tokens(&env, &["import", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{out:?}");
    // The user has an app; the token becomes their second device.
    env.enroll(USER);
    let (out, stdout, _) = tokens(&env, &["assign", SERIAL, USER], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("now a device of {USER}")),
        "{stdout}"
    );

    // RFC 4226 Appendix D, counter 0 to 9, in order.
    assert_eq!(hotp(0), "755224");
    assert_eq!(hotp(9), "520489");
    for n in 0..10 {
        assert_eq!(
            login(&env, USER, &hotp(n)),
            pam::SUCCESS,
            "counter {n}: {}",
            env.log_text()
        );
    }
    assert_eq!(
        login(&env, USER, &hotp(5)),
        pam::AUTH_ERR,
        "below the counter"
    );
    // Pressed 50 times without a login: beyond the look-ahead.
    assert_eq!(login(&env, USER, &hotp(50)), pam::AUTH_ERR);
    let (out, _, stderr) = tokens(&env, &["resync", SERIAL, "123456", "654321"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("not two consecutive codes of token HOTP-4226"),
        "{stderr}"
    );
    let (out, stdout, _) = tokens(
        &env,
        &["resync", SERIAL],
        &format!("{}\n{}\n", hotp(50), hotp(51)),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("next code is number 52"), "{stdout}");
    assert_eq!(
        login(&env, USER, &hotp(52)),
        pam::SUCCESS,
        "{}",
        env.log_text()
    );
    assert_eq!(
        login(&env, USER, &hotp(51)),
        pam::AUTH_ERR,
        "used by the resync"
    );
    let rows = listed(&env);
    assert_eq!(rows[0]["counter"], 53);
    assert_eq!(rows[0]["assigned_to"], USER);

    // Unassigned and given to someone not enrolled: the counter goes with the token.
    let (out, _, _) = tokens(&env, &["unassign", SERIAL], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        login(&env, USER, &hotp(53)),
        pam::AUTH_ERR,
        "no longer theirs"
    );
    let (out, _, _) = tokens(&env, &["assign", SERIAL, OTHER], "");
    assert!(out.status.success(), "{out:?}");
    assert!(env.is_enrolled(OTHER), "enrolled with the token");
    assert_eq!(login(&env, OTHER, &hotp(52)), pam::AUTH_ERR, "used before");
    assert_eq!(
        login(&env, OTHER, &hotp(53)),
        pam::SUCCESS,
        "{}",
        env.log_text()
    );

    // Their only device: unassigning it would turn 2FA off; that is a reset.
    let (out, stdout, stderr) = tokens(&env, &["unassign", SERIAL], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&format!("run `twofold admin reset {OTHER}`")),
        "{stderr}"
    );
    let assigned = audited(&env, "token_assigned");
    let users: Vec<&str> = assigned.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, [OTHER, USER], "newest first");
    assert!(assigned[0].1.contains(SERIAL), "{assigned:?}");
    assert_eq!(
        audited(&env, "token_unassigned"),
        [(USER.to_string(), format!("device: {SERIAL}"))]
    );
    assert_eq!(audited(&env, "token_resynced").len(), 1);
    assert_eq!(audited(&env, "token_resync_failed").len(), 1);
}

#[test]
fn totp_tokens_with_sha1_sha256_and_sha512_and_8_digits_pass() {
    root_only!();
    let env = TestEnv::new();
    let tokens_of = [
        ("TOTP-SHA1", &SHA1, USER),
        ("TOTP-SHA256", &SHA256, OTHER),
        ("TOTP-SHA512", &SHA512, THIRD),
    ];
    let packages: Vec<String> = tokens_of
        .iter()
        .map(|(serial, seed, _)| key_package(serial, "totp", seed.suite, 8, seed.b64))
        .collect();
    let file = pskc_file(&env, "totp.pskc", &packages);
    let (out, stdout, _) = tokens(&env, &["import", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("TOTP SHA512 8 digits, 30 s steps"),
        "{stdout}"
    );
    let (out, _, stderr) = tokens(&env, &["resync", "TOTP-SHA1", "12345678", "12345679"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("it follows the clock"), "{stderr}");
    // Room for every login within one step.
    wait_for_fresh_step(15);
    for (serial, seed, user) in tokens_of {
        let (out, _, _) = tokens(&env, &["assign", serial, user], "");
        assert!(out.status.success(), "{out:?}");
        // The steps up to the assignment count as used: the next one passes.
        let code = totp8(seed, 1);
        assert_eq!(
            login(&env, user, &code),
            pam::SUCCESS,
            "{serial}: {}",
            env.log_text()
        );
        assert_eq!(login(&env, user, &code), pam::AUTH_ERR, "{serial}: once");
    }
    let rows = listed(&env);
    let assigned: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["serial"].as_str().unwrap(),
                r["assigned_to"].as_str().unwrap(),
                r["digits"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        assigned,
        [
            ("TOTP-SHA1", USER, 8),
            ("TOTP-SHA256", OTHER, 8),
            ("TOTP-SHA512", THIRD, 8)
        ]
    );
}
