//! Several devices per user, end to end: the real daemon, the real PAM stack (pamtester
//! through the module) and codes from oathtool. A user adds a second device with the
//! CLI (proof from the first), a code of either passes a login, each device's codes
//! once; removing one needs a code of another device or a backup code, and the last one
//! is not removed (`twofold disable` is). A user enrolled before devices existed (a
//! database of schema 7) still logs in with the same secret, as device "default".

use std::process::Output;

use twofold_tests::root_only;
use twofold_tests::{json, pam, stderr, stdout, totp, wait_for_fresh_step, Login, TestEnv, NOBODY};

const ME: Option<u32> = Some(NOBODY);

/// Fails, saying `words` on standard error.
fn refused(out: &Output, words: &str) {
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(out).contains(words), "{words:?} not in: {out:?}");
}

/// The names of the user's devices, as `devices --json` lists them (as the user).
fn device_names(env: &TestEnv) -> Vec<String> {
    json(&env.cli(&["devices", "--json"], ME, ""))
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `devices add NAME --begin --json` (as `as_uid`, the proof on standard input when
/// given); the new secret, or the refusal.
fn add_begin(env: &TestEnv, name: &str, as_uid: Option<u32>, proof: Option<&str>) -> Output {
    let mut args = vec!["devices", "add", name, "--begin", "--json"];
    if as_uid.is_none() {
        args.extend(["--user", "nobody"]);
    }
    if proof.is_some() {
        args.extend(["--proof", "-"]);
    }
    env.cli(&args, as_uid, &format!("{}\n", proof.unwrap_or("")))
}

/// Confirms the device being added with the code of the previous step (the current
/// step's stays unused for a login); its secret.
fn add_confirm(env: &TestEnv, name: &str, begun: &Output, as_uid: Option<u32>) -> String {
    let secret = json(begun)["secret"].as_str().unwrap().to_owned();
    let mut args = vec!["devices", "add", name, "--confirm", "-", "--json"];
    if as_uid.is_none() {
        args.extend(["--user", "nobody"]);
    }
    let out = env.cli(&args, as_uid, &format!("{}\n", totp(&secret, -1)));
    let added = json(&out);
    assert_eq!(added["device"], name, "{added}");
    secret
}

fn login(env: &TestEnv, code: &str) -> i32 {
    env.pam(&Login::new("nobody", code)).result
}

#[test]
fn two_devices_work_independently_and_each_ones_code_once() {
    root_only!();
    let (env, first) = TestEnv::with_enrolled("nobody");
    assert_eq!(device_names(&env), ["default"]);
    wait_for_fresh_step(20);

    // Adding needs proof from a device the user has (or a backup code).
    refused(&add_begin(&env, "spare", ME, None), "--proof -");
    refused(
        &add_begin(&env, "spare", ME, Some("000000")),
        "did not match",
    );
    refused(
        &add_begin(&env, "my phone", ME, Some("000000")),
        "device name",
    );
    let begun = add_begin(&env, "spare", ME, Some(&totp(&first.secret, 0)));
    let spare = add_confirm(&env, "spare", &begun, ME);
    assert_ne!(spare, first.secret);
    assert_eq!(device_names(&env), ["default", "spare"]);

    // The first device's code of this step was the proof: used. The spare's code of
    // the same step is its own, and passes once.
    assert_eq!(login(&env, &totp(&first.secret, 0)), pam::AUTH_ERR);
    assert_eq!(login(&env, &totp(&spare, 0)), pam::SUCCESS);
    assert_eq!(login(&env, &totp(&spare, 0)), pam::AUTH_ERR, "replayed");
    // The next step: each device's code passes once, independently.
    assert_eq!(login(&env, &totp(&spare, 1)), pam::SUCCESS);
    assert_eq!(login(&env, &totp(&first.secret, 1)), pam::SUCCESS);
    assert_eq!(
        login(&env, &totp(&first.secret, 1)),
        pam::AUTH_ERR,
        "replayed"
    );
    assert_eq!(login(&env, &totp(&spare, 1)), pam::AUTH_ERR, "replayed");

    // The listing, the status and the audit trail name the devices.
    let listed = json(&env.cli(&["devices", "--json"], ME, ""));
    for device in listed.as_array().unwrap() {
        assert_eq!(device["kind"], "totp app", "{listed}");
        assert!(device["added"].is_string(), "{listed}");
        assert!(device["last_used"].is_string(), "{listed}");
    }
    let text = stdout(&env.cli(&["devices"], ME, ""));
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("spare") && text.contains("totp app"),
        "{text}"
    );
    let status = json(&env.cli(&["status", "--json"], ME, ""));
    assert_eq!(status["devices"].as_array().unwrap().len(), 2, "{status}");
    let status = stdout(&env.cli(&["status"], ME, ""));
    assert!(
        status.contains("Devices:") && status.contains("spare"),
        "{status}"
    );
    let log = json(&env.cli(&["admin", "log", "--user", "nobody", "--json"], None, ""));
    let details: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        details.contains(&("device_added", "device: spare")),
        "{details:?}"
    );
    let accepted = |device: &str| {
        details
            .iter()
            .filter(|e| **e == ("verify_ok", &format!("device: {device}")[..]))
            .count()
    };
    // The default's: the proof and one login; the spare's: two logins.
    assert_eq!(
        (accepted("default"), accepted("spare")),
        (2, 2),
        "{details:?}"
    );
}

#[test]
fn removing_needs_another_devices_code_and_the_last_device_stays() {
    root_only!();
    let (env, first) = TestEnv::with_enrolled("nobody");
    // Root adds one without proof.
    let spare = add_confirm(&env, "spare", &add_begin(&env, "spare", None, None), None);
    wait_for_fresh_step(20);

    // The spare's own code does not prove its removal, nor does nothing.
    let remove = |name: &str, code: &str| {
        env.cli(
            &["devices", "remove", name, "--code", "-"],
            ME,
            &format!("{code}\n"),
        )
    };
    refused(&remove("spare", &totp(&spare, 0)), "did not match");
    refused(
        &remove("nope", &first.backup_codes[0]),
        "no device named nope",
    );
    let out = env.cli(&["devices", "remove", "spare"], ME, "");
    refused(&out, "spare was not removed");
    assert_eq!(device_names(&env), ["default", "spare"]);

    // A code of the other device does.
    let out = remove("spare", &totp(&first.secret, 0));
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("Device spare removed"), "{out:?}");
    assert_eq!(device_names(&env), ["default"]);
    assert_eq!(
        login(&env, &totp(&spare, 1)),
        pam::AUTH_ERR,
        "its codes are gone"
    );

    // The last one is not removed, even with a backup code (which stays unspent).
    let out = remove("default", &first.backup_codes[1]);
    refused(&out, "twofold disable");
    assert_eq!(device_names(&env), ["default"]);
    let out = env.cli(
        &["devices", "remove", "default", "--user", "nobody"],
        None,
        "",
    );
    refused(&out, "twofold disable");
    assert_eq!(login(&env, &first.backup_codes[1]), pam::SUCCESS);
    assert_eq!(login(&env, &totp(&first.secret, 1)), pam::SUCCESS);

    // A backup code proves a removal too.
    let spare = add_confirm(&env, "spare", &add_begin(&env, "spare", None, None), None);
    assert_eq!(login(&env, &totp(&spare, 1)), pam::SUCCESS);
    let out = remove("spare", &first.backup_codes[2]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(device_names(&env), ["default"]);
}

#[test]
fn a_user_enrolled_before_devices_still_logs_in_with_the_same_secret() {
    root_only!();
    let mut env = TestEnv::new();
    env.stop_daemon();
    // A database of schema 7 (the last one before devices), with "nobody" enrolled by
    // that version: the secret sealed with this host's key, the current step used.
    wait_for_fresh_step(20);
    let secret_b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY";
    let secret = twofoldd::otp::from_base32(secret_b32).unwrap();
    let keys = twofoldd::secrets::Keys::load_or_create(&env.key).unwrap();
    let sealed: String = keys
        .seal("nobody", &secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let step = now / 30;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", env.db.display()));
    }
    twofoldd::storage::sqlite::SqliteStore::create_at_version(
        &env.db,
        7,
        &format!(
            "INSERT INTO users (name, secret, enrolled_at, last_step, last_used_at, last_method)
             VALUES ('nobody', X'{sealed}', {now}, {step}, {now}, 'totp');"
        ),
    )
    .unwrap();
    env.start_daemon();

    assert_eq!(device_names(&env), ["default"]);
    assert_eq!(
        login(&env, &totp(secret_b32, 0)),
        pam::AUTH_ERR,
        "its used step stays used"
    );
    assert_eq!(login(&env, &totp(secret_b32, 1)), pam::SUCCESS);
    assert_eq!(login(&env, &totp(secret_b32, 1)), pam::AUTH_ERR, "replayed");
}
