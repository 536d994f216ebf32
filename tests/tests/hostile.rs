//! Hostile conditions: twofoldd killed under load, a full disk, its files swapped for
//! links or loosened, a thousand verifications of one code at once, every D-Bus method
//! called by every kind of caller, hostile arguments, and a short fuzzing run.
//!
//! Every test is bounded in time and needs root (private buses, other uids, tmpfs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use twofold_tests::client::{connect, enroll_dbus, runtime};
use twofold_tests::contract::{OathParams, TwofoldError, BUS_NAME, INTERFACE, OBJECT_PATH};
use twofold_tests::root_only;
use twofold_tests::uid_of;
use twofold_tests::{pam, repo_root, sqlite_integrity, totp, unix_now, Login, PolkitMock, TestEnv};

/// The user that the tests enroll (uid 1 on Debian).
const USER: &str = "daemon";
/// Another non-root user with a name (uid 2 on Debian).
const OTHER: &str = "bin";
/// A third one, whom the matrix makes an administrator through polkit (uid 3 on Debian).
const ADMIN: &str = "sys";

/// The D-Bus error name of a reply, without `org.twofold.Error.` (transport errors are
/// reported as `transport: ...`).
fn error_name(e: &TwofoldError) -> String {
    match e {
        TwofoldError::ZBus(e) => format!("transport: {e}"),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Fires `calls` concurrent Verify calls of one code over `conns` connections; returns
/// the count of each answer.
async fn fire(
    address: &str,
    conns: usize,
    calls: usize,
    user: &str,
    code: &str,
) -> BTreeMap<String, usize> {
    let mut proxies = Vec::new();
    for _ in 0..conns {
        proxies.push(connect(address).await);
    }
    let mut set = tokio::task::JoinSet::new();
    for i in 0..calls {
        let proxy = proxies[i % conns].1.clone();
        let (user, code) = (user.to_string(), code.to_string());
        set.spawn(async move {
            match proxy.verify(&user, &code, HashMap::new()).await {
                Ok(v) => format!("ok:{}", v.method),
                Err(e) => error_name(&e),
            }
        });
    }
    let mut counts = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        *counts.entry(r.expect("verify task")).or_insert(0) += 1;
    }
    counts
}

fn exactly_one_success(counts: &BTreeMap<String, usize>, method: &str) {
    let ok: usize = counts
        .iter()
        .filter(|(k, _)| k.starts_with("ok:"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(ok, 1, "exactly one success expected: {counts:?}");
    assert_eq!(counts.get(&format!("ok:{method}")), Some(&1), "{counts:?}");
    for name in counts.keys() {
        assert!(
            name.starts_with("ok:") || name == "InvalidCode" || name == "Locked",
            "unexpected answer {name}: {counts:?}"
        );
    }
}

#[test]
fn thousand_parallel_verifications_of_one_totp_code_yield_one_success() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let code = enrolled.code_lasting(5);
    let counts = runtime().block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120),
            fire(&env.address, 20, 1000, USER, &code),
        )
        .await
        .expect("1,000 verifications took over 120 s")
    });
    eprintln!("answers: {counts:?}");
    exactly_one_success(&counts, "totp");
}

#[test]
fn thousand_parallel_verifications_of_one_backup_code_yield_one_success() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let code = enrolled.backup_codes[0].clone();
    let counts = runtime().block_on(async {
        tokio::time::timeout(
            Duration::from_secs(180),
            fire(&env.address, 20, 1000, USER, &code),
        )
        .await
        .expect("1,000 verifications took over 180 s")
    });
    eprintln!("answers: {counts:?}");
    exactly_one_success(&counts, "backup_code");
    let status = env.cli(&["status", "--json", "--user", USER], None, "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["backup_codes_left"], 9, "{status}");
}

/// What the load recorded, shared by its tasks.
#[derive(Default)]
struct Ledger {
    /// user -> secret of the last acknowledged enrollment.
    acked: HashMap<String, String>,
    /// user -> secret whose confirmation was sent but not answered.
    in_flight: HashMap<String, String>,
    /// (user, step) -> accepted codes, and the code itself.
    accepted: HashMap<(String, u64), (usize, String)>,
}

#[test]
fn kill_9_under_mixed_load_loses_no_acknowledged_enrollment_and_accepts_no_code_twice() {
    root_only!();
    let mut env = TestEnv::new();
    let pool: Vec<&str> = [
        "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
    ]
    .into_iter()
    .filter(|u| uid_of(u).is_some())
    .collect();
    assert!(pool.len() >= 6, "need 6 system users, have {pool:?}");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = runtime();
    rt.block_on(async {
        // Two users enrolled before the load starts.
        let (_c, proxy) = connect(&env.address).await;
        for user in &pool[..2] {
            let (secret, _) = enroll_dbus(&proxy, user).await;
            ledger
                .lock()
                .unwrap()
                .acked
                .insert(user.to_string(), secret);
        }
        let mut tasks = tokio::task::JoinSet::new();
        // Enrollers: each re-enrolls its own users in a loop.
        for mine in [&pool[2..4], &pool[4..6]] {
            let mine: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
            let (ledger, stop, address) = (ledger.clone(), stop.clone(), env.address.clone());
            tasks.spawn(async move {
                let (_c, proxy) = connect(&address).await;
                let app = OathParams::app();
                'load: while !stop.load(Ordering::SeqCst) {
                    for user in &mine {
                        let Ok(e) = proxy.enroll_begin(user, "hostile", "", &app).await else {
                            break 'load;
                        };
                        ledger
                            .lock()
                            .unwrap()
                            .in_flight
                            .insert(user.clone(), e.secret.clone());
                        match proxy.enroll_confirm(user, &totp(&e.secret, -1)).await {
                            Ok(_) => {
                                let mut l = ledger.lock().unwrap();
                                l.in_flight.remove(user);
                                l.acked.insert(user.clone(), e.secret);
                            }
                            Err(TwofoldError::InvalidCode(_)) => {}
                            Err(_) => break 'load,
                        }
                    }
                }
            });
        }
        // Verifiers: each (user, step) gets its code twice at once: one must win. Each
        // user has one verifier, so that failures never add up to a lockout.
        for k in 0..3u32 {
            let (ledger, stop, address) = (ledger.clone(), stop.clone(), env.address.clone());
            tasks.spawn(async move {
                let (_c, proxy) = connect(&address).await;
                let mut tried: HashSet<(String, u64)> = HashSet::new();
                while !stop.load(Ordering::SeqCst) {
                    let users: Vec<(String, String)> = ledger
                        .lock()
                        .unwrap()
                        .acked
                        .iter()
                        .filter(|(u, _)| u.bytes().map(u32::from).sum::<u32>() % 3 == k)
                        .map(|(u, s)| (u.clone(), s.clone()))
                        .collect();
                    let step = unix_now() / 30;
                    for (user, secret) in users {
                        if !tried.insert((user.clone(), step)) {
                            continue;
                        }
                        let code = totp(&secret, 0);
                        let (a, b) = tokio::join!(
                            proxy.verify(&user, &code, HashMap::new()),
                            proxy.verify(&user, &code, HashMap::new())
                        );
                        let wins = [a, b].into_iter().filter(Result::is_ok).count();
                        if wins > 0 {
                            let mut l = ledger.lock().unwrap();
                            let e = l
                                .accepted
                                .entry((user.clone(), step))
                                .or_insert((0, code.clone()));
                            e.0 += wins;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(12)).await;
        env.signal_daemon(libc::SIGKILL);
        stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .expect("load tasks did not end after the kill");
    });
    env.stop_daemon(); // reaps the killed process

    let integrity = sqlite_integrity(&env.db);
    assert_eq!(integrity, "ok", "integrity_check after kill -9");
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    for (key, (wins, _)) in &ledger.accepted {
        assert!(*wins <= 1, "{key:?} accepted {wins} times before the kill");
    }
    assert!(
        ledger.acked.len() > 2,
        "no enrollment was acknowledged during the load: {:?}",
        ledger.acked.keys()
    );
    env.start_daemon();
    rt.block_on(async {
        let (_c, proxy) = connect(&env.address).await;
        // Every acknowledged enrollment is there: its secret (or a later one whose
        // confirmation was in flight at the kill) gives a fresh code that passes.
        for (user, secret) in &ledger.acked {
            let status = proxy.status(user).await.expect("Status");
            assert!(status.enrolled, "{user} lost its enrollment: {status:?}");
            let mut candidates = vec![secret.clone()];
            candidates.extend(ledger.in_flight.get(user).cloned());
            let mut answers = Vec::new();
            for s in &candidates {
                match proxy.verify(user, &totp(s, 1), HashMap::new()).await {
                    Ok(_) => break,
                    Err(e) => answers.push(error_name(&e)),
                }
            }
            assert!(
                answers.len() < candidates.len(),
                "{user}: the acknowledged secret no longer works: {answers:?}"
            );
        }
        // No acknowledged code passes again after the restart.
        let step = unix_now() / 30;
        for ((user, at), (_, code)) in &ledger.accepted {
            if *at + 1 < step {
                continue; // outside the window anyway
            }
            let again = proxy.verify(user, code, HashMap::new()).await;
            assert!(
                again.is_err(),
                "{user}'s code of step {at} was accepted again after kill -9"
            );
        }
    });
    eprintln!(
        "acknowledged enrollments: {}, accepted codes: {}",
        ledger.acked.len(),
        ledger.accepted.len()
    );
}

#[test]
fn full_disk_fails_closed_corrupts_nothing_and_recovers() {
    root_only!();
    let (mut env, enrolled) = TestEnv::with_enrolled(USER);
    let (state, mounted) = env.state_on_a_small_tmpfs();

    // Fill the disk to the last byte.
    let filler = twofold_tests::fill(&state);
    let code = enrolled.code_lasting(5);
    let full = env.pam(&Login::new(USER, &code));
    let log = env.log_text();
    assert_eq!(
        full.result,
        pam::AUTHINFO_UNAVAIL,
        "a full disk must fail closed: {full:?}\n{log}"
    );
    assert!(
        log.contains("full"),
        "the daemon's log must say the disk is full:\n{log}"
    );

    // Space returns: the same, never accepted, code now passes.
    fs::remove_file(&filler).unwrap();
    let ok = env.pam(&Login::new(USER, &code));
    assert_eq!(
        ok.result,
        pam::SUCCESS,
        "after space returns: {ok:?}\n{}",
        env.log_text()
    );
    let replay = env.pam(&Login::new(USER, &code));
    assert_eq!(replay.result, pam::AUTH_ERR, "{replay:?}");
    env.stop_daemon();
    assert_eq!(sqlite_integrity(&env.db), "ok");
    drop(mounted);
}

#[test]
fn unsafe_database_or_key_file_stops_the_start_naming_the_file() {
    root_only!();
    let mut env = TestEnv::new();
    env.stop_daemon();
    let nobody = twofold_tests::NOBODY;
    let elsewhere = env.dir.path().join("elsewhere");
    for file in [env.db.clone(), env.key.clone()] {
        let name = file.display().to_string();
        let pristine = fs::read(&file).unwrap();

        // A symbolic link to a private copy (the CVE-2024-47191 shape).
        fs::copy(&file, &elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(&file).unwrap();
        symlink(&elsewhere, &file).unwrap();
        let said = env.expect_refusal("symlink");
        assert!(
            said.contains(&name) && said.contains("symbolic link"),
            "symlink {name}: {said}"
        );
        assert_eq!(
            fs::read(&elsewhere).unwrap(),
            pristine,
            "written through a link"
        );
        fs::remove_file(&file).unwrap();

        // A dangling link where the file would be created.
        symlink(env.dir.path().join("nowhere"), &file).unwrap();
        let said = env.expect_refusal("dangling symlink");
        assert!(said.contains(&name), "dangling symlink {name}: {said}");
        assert!(
            !env.dir.path().join("nowhere").exists(),
            "created through a dangling link"
        );
        fs::remove_file(&file).unwrap();
        fs::rename(&elsewhere, &file).unwrap();

        // Owned by someone else.
        std::os::unix::fs::chown(&file, Some(nobody), Some(nobody)).unwrap();
        let said = env.expect_refusal("wrong owner");
        assert!(
            said.contains(&name) && said.contains(&nobody.to_string()),
            "owner {name}: {said}"
        );
        std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();

        // Readable by others.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let said = env.expect_refusal("mode 0644");
        assert!(
            said.contains(&name) && said.contains("0644"),
            "mode {name}: {said}"
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(fs::read(&file).unwrap(), pristine);
    }

    // The database's -wal side file as a link to a file the daemon must not touch.
    let mut wal = env.db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let victim = env.dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let _ = fs::remove_file(&wal);
    symlink(&victim, &wal).unwrap();
    let said = env.expect_refusal("-wal symlink");
    assert!(said.contains(&wal.display().to_string()), "-wal: {said}");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    fs::remove_file(&wal).unwrap();

    // A state directory that others may write into (they could swap files for links).
    let state = env.db.parent().unwrap().to_path_buf();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let said = env.expect_refusal("world-writable directory");
    assert!(
        said.contains(&state.display().to_string()),
        "state dir: {said}"
    );
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();

    // And with everything restored, it starts.
    env.start_daemon();
    let mode = fs::metadata(&env.db).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

const DENIED: &str = "PermissionDenied";

/// The answers of a method that root, the user itself and an administrator may call.
const fn self_or_admin(answer: &'static str) -> [&'static str; 4] {
    [answer, answer, DENIED, answer]
}

/// The answers of a method that root and the user itself may call.
const fn self_or_root(answer: &'static str) -> [&'static str; 4] {
    [answer, answer, DENIED, DENIED]
}

/// The answers of a method that root and an administrator may call.
const fn admin_alone(answer: &'static str) -> [&'static str; 4] {
    [answer, DENIED, DENIED, answer]
}

/// The answers of a method that root alone may call.
const fn root_alone(answer: &'static str) -> [&'static str; 4] {
    [answer, DENIED, DENIED, DENIED]
}

/// Expected answers per method for a target user who is not enrolled, for callers
/// {root, the user itself, another non-root user}; `ok` or an `org.twofold.Error.*`
/// name. Every method the daemon introspects must be here, with its input signature.
const AUTHZ: &[(&str, &str, [&str; 4])] = &[
    // method, input signature, answers as [root, the user itself, another user,
    // another user whom polkit allows org.twofold.administer]
    ("Status", "s", self_or_admin("ok")),
    ("Verify", "ssa{ss}", self_or_root("NotEnrolled")),
    ("BeginLogin", "sa{ss}", self_or_root("ok")),
    ("EnrollBegin", "sss(suut)", self_or_admin("ok")),
    ("EnrollConfirm", "ss", self_or_admin("InvalidCode")),
    ("RegenerateBackupCodes", "ss", self_or_admin("NotEnrolled")),
    ("Disable", "sss", self_or_admin("NotEnrolled")),
    // Devices of a user who is not enrolled: none to list, none to add to or remove.
    ("ListDevices", "s", self_or_admin("ok")),
    ("AddDeviceBegin", "ssss(suut)", self_or_admin("NotEnrolled")),
    // After EnrollBegin above: a pending secret, and a wrong first code for it.
    ("AddDeviceConfirm", "sss", self_or_admin("InvalidCode")),
    ("RemoveDevice", "sss", self_or_admin("NotEnrolled")),
    ("AdminUsers", "", admin_alone("ok")),
    // An empty reason: refused before anything is reset.
    ("AdminReset", "ssu", admin_alone("InvalidArgument")),
    // An empty secret: refused before anything is imported.
    (
        "AdminImport",
        "ssasss(suut)",
        admin_alone("InvalidArgument"),
    ),
    ("AdminUnlock", "s", admin_alone("ok")),
    ("AuditLog", "sxu", admin_alone("ok")),
    // Session registration is the PAM module's, inside sshd/sudo/login: root only.
    ("OpenSession", "sa{ss}", root_alone("ok")),
    ("CloseSession", "sa{ss}", root_alone("ok")),
    ("CheckGrace", "sa{ss}u", root_alone("ok")),
    ("ListSessions", "sb", self_or_admin("ok")),
    // An id that names no session: only root learns that; others cannot tell it from
    // another user's session.
    ("RevokeSession", "s", root_alone("InvalidArgument")),
    ("RevokeOtherSessions", "s", self_or_admin("ok")),
    ("SetSessionTimeout", "st", self_or_admin("ok")),
    // Hardware tokens: an empty import, an unknown serial: refused at the door.
    (
        "AdminImportTokens",
        "a(sss(suut)s)",
        admin_alone("InvalidArgument"),
    ),
    ("AdminTokens", "", admin_alone("ok")),
    ("AdminAssignToken", "ss", admin_alone("InvalidArgument")),
    ("AdminUnassignToken", "s", admin_alone("InvalidArgument")),
    ("AdminResyncToken", "sss", admin_alone("InvalidArgument")),
    ("ForgetRemembered", "s", self_or_admin("ok")),
];
/// Readable properties and who may read them (everyone).
const AUTHZ_PROPERTIES: &[(&str, [&str; 4])] = &[("Version", ["ok", "ok", "ok", "ok"])];

/// (method, input signature) and (property) of the daemon's interface, from its
/// introspection XML.
fn introspected(xml: &str) -> (Vec<(String, String)>, Vec<String>) {
    let start = xml
        .find(&format!("<interface name=\"{INTERFACE}\">"))
        .expect("interface in the introspection");
    let body = &xml[start..];
    let body = &body[..body.find("</interface>").unwrap()];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let mut methods = Vec::new();
    for chunk in body.split("<method ").skip(1) {
        let name = attr(chunk, "name").unwrap();
        let end = chunk.find("</method>").unwrap_or(chunk.len());
        let mut sig = String::new();
        for arg in chunk[..end].split("<arg ").skip(1) {
            let tag = &arg[..arg.find('>').unwrap()];
            if attr(tag, "direction").as_deref() != Some("out") {
                sig.push_str(&attr(tag, "type").unwrap());
            }
        }
        methods.push((name, sig));
    }
    let properties = body
        .split("<property ")
        .skip(1)
        .map(|p| attr(p, "name").unwrap())
        .collect();
    (methods, properties)
}

/// Calls `method` the way the matrix does; `ok` or the error name.
async fn matrix_call(conn: &zbus::Connection, method: &str, user: &str) -> String {
    let dest = Some(BUS_NAME);
    let iface = Some(INTERFACE);
    let reply = match method {
        "Status" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user,))
                .await
        }
        "Verify" => {
            let ctx: HashMap<String, String> = HashMap::new();
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, "12345x", ctx))
                .await
        }
        "EnrollBegin" => {
            let args = (user, "", "", OathParams::app());
            conn.call_method(dest, OBJECT_PATH, iface, method, &args)
                .await
        }
        // Six digits, so that it is judged as a code (and, but for a 3-in-a-million
        // chance, refused as a wrong one).
        "EnrollConfirm" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, "000000"))
                .await
        }
        "RegenerateBackupCodes" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, ""))
                .await
        }
        "Disable" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, "", ""))
                .await
        }
        "ListDevices" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user,))
                .await
        }
        "AddDeviceBegin" => {
            let args = (user, "spare", "", "", OathParams::app());
            conn.call_method(dest, OBJECT_PATH, iface, method, &args)
                .await
        }
        "AddDeviceConfirm" => {
            let args = (user, "spare", "000000");
            conn.call_method(dest, OBJECT_PATH, iface, method, &args)
                .await
        }
        "RemoveDevice" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, "spare", ""))
                .await
        }
        "BeginLogin" | "OpenSession" | "CloseSession" => {
            let ctx: HashMap<String, String> = HashMap::new();
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, ctx))
                .await
        }
        "CheckGrace" => {
            let ctx: HashMap<String, String> = HashMap::new();
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, ctx, 60u32))
                .await
        }
        "AdminUsers" | "AdminTokens" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &())
                .await
        }
        "AdminImportTokens" => {
            let none: Vec<twofold_contract::TokenSeed> = Vec::new();
            conn.call_method(dest, OBJECT_PATH, iface, method, &(none,))
                .await
        }
        "AdminAssignToken" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &("nosuch", user))
                .await
        }
        "AdminUnassignToken" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &("nosuch",))
                .await
        }
        "AdminResyncToken" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &("nosuch", "1", "2"))
                .await
        }
        "AdminReset" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, "", 0u32))
                .await
        }
        "AdminImport" => {
            let codes: Vec<&str> = Vec::new();
            let args = (
                user,
                "",
                codes,
                "google-authenticator",
                "",
                OathParams::app(),
            );
            conn.call_method(dest, OBJECT_PATH, iface, method, &args)
                .await
        }
        "AdminUnlock" | "RevokeOtherSessions" | "ForgetRemembered" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user,))
                .await
        }
        "AuditLog" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, 0i64, 10u32))
                .await
        }
        "ListSessions" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, false))
                .await
        }
        "RevokeSession" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &("00000000",))
                .await
        }
        "SetSessionTimeout" => {
            conn.call_method(dest, OBJECT_PATH, iface, method, &(user, 0u64))
                .await
        }
        "property:Version" => {
            conn.call_method(
                dest,
                OBJECT_PATH,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(INTERFACE, "Version"),
            )
            .await
        }
        other => return format!("no call for {other}: add it to matrix_call"),
    };
    match reply {
        Ok(_) => "ok".into(),
        Err(zbus::Error::MethodError(name, _, _)) => name
            .as_str()
            .trim_start_matches("org.twofold.Error.")
            .to_string(),
        Err(e) => format!("transport: {e}"),
    }
}

/// Runs inside a re-executed copy of this test binary, as another uid: makes every call
/// of the matrix and prints one `RESULT method answer` line each.
#[test]
fn authz_helper() {
    let Ok(spec) = std::env::var("TWOFOLD_AUTHZ_CALLS") else {
        return; // not a helper run
    };
    let mut parts = spec.split('\t');
    let (address, user) = (parts.next().unwrap(), parts.next().unwrap());
    let methods: Vec<&str> = parts.collect();
    runtime().block_on(async {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .unwrap();
        for m in methods {
            println!("RESULT {m} {}", matrix_call(&conn, m, user).await);
        }
    });
}

#[test]
fn authorization_matrix_covers_every_method_of_the_interface() {
    root_only!();
    let env = TestEnv::new();
    // Three unprivileged uids, so that no column spends another's rate limit.
    let (self_uid, other_uid, admin_uid) = (
        uid_of(USER).expect("user daemon"),
        uid_of(OTHER).expect("user bin"),
        uid_of(ADMIN).expect("user sys"),
    );
    let xml: String = runtime().block_on(async {
        let conn = zbus::connection::Builder::address(env.address.as_str())
            .build()
            .await
            .unwrap();
        conn.call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some("org.freedesktop.DBus.Introspectable"),
            "Introspect",
            &(),
        )
        .await
        .expect("Introspect")
        .body()
        .deserialize()
        .unwrap()
    });
    let (methods, properties) = introspected(&xml);
    let table: HashMap<&str, (&str, [&str; 4])> =
        AUTHZ.iter().map(|(m, s, e)| (*m, (*s, *e))).collect();
    let mut missing = Vec::new();
    for (m, sig) in &methods {
        match table.get(m.as_str()) {
            None => missing.push(format!("{m}({sig}) has no row in AUTHZ")),
            Some((s, _)) if s != sig => missing.push(format!(
                "{m} takes ({sig}) but AUTHZ expects ({s}): review its row"
            )),
            Some(_) => {}
        }
    }
    for p in &properties {
        if !AUTHZ_PROPERTIES.iter().any(|(n, _)| n == p) {
            missing.push(format!("property {p} has no row in AUTHZ_PROPERTIES"));
        }
    }
    for (m, _, _) in AUTHZ {
        if !methods.iter().any(|(n, _)| n == m) {
            missing.push(format!("AUTHZ lists {m}, which the daemon no longer has"));
        }
    }
    assert!(
        missing.is_empty(),
        "the authorization matrix is out of date:\n{}",
        missing.join("\n")
    );

    let mut calls: Vec<String> = AUTHZ.iter().map(|(m, _, _)| m.to_string()).collect();
    calls.extend(
        AUTHZ_PROPERTIES
            .iter()
            .map(|(p, _)| format!("property:{p}")),
    );
    let exe = std::env::current_exe().unwrap();
    let mut failures = Vec::new();
    let mut polkit = None;
    for (col, (who, uid)) in [
        ("root", 0),
        ("the user itself", self_uid),
        ("another user", other_uid),
        ("an administrator through polkit", admin_uid),
    ]
    .into_iter()
    .enumerate()
    {
        if col == 3 {
            let mock = PolkitMock::start(&env);
            mock.allow(&["org.twofold.administer"]);
            polkit = Some(mock);
        }
        let mut spec = format!("{}\t{USER}", env.address);
        for c in &calls {
            spec.push('\t');
            spec.push_str(c);
        }
        let mut cmd = Command::new(&exe);
        cmd.args(["--exact", "authz_helper", "--nocapture", "--test-threads=1"])
            .env("TWOFOLD_AUTHZ_CALLS", spec);
        if uid != 0 {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, uid);
        }
        let out = cmd.output().expect("re-run the test binary as another uid");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answers: HashMap<&str, &str> = stdout
            .lines()
            // libtest may print "test authz_helper ... " in front of the first line.
            .filter_map(|l| l.find("RESULT ").map(|at| &l[at + 7..]))
            .filter_map(|l| l.split_once(' '))
            .collect();
        for c in &calls {
            let expected = match c.strip_prefix("property:") {
                Some(p) => AUTHZ_PROPERTIES.iter().find(|(n, _)| *n == p).unwrap().1[col],
                None => table[c.as_str()].1[col],
            };
            let got = answers.get(c.as_str()).copied().unwrap_or("<no answer>");
            eprintln!("{c:<24} as {who:<16} -> {got}");
            if got != expected {
                failures.push(format!("{c} as {who}: expected {expected}, got {got}"));
            }
        }
        if answers.is_empty() {
            failures.push(format!(
                "helper as {who} printed nothing: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    drop(polkit);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Denied and refused calls must not have counted as failed logins.
    let status = runtime().block_on(async {
        let (_c, proxy) = connect(&env.address).await;
        proxy.status(USER).await.expect("Status")
    });
    assert_eq!(status.failures, 0, "{status:?}");
}

/// A small deterministic generator for hostile arguments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn string(&mut self) -> String {
        let len = match self.next() % 10 {
            0 => 0,
            1 => 70_000,
            2 => 257,
            3 => 6,
            4 => 12,
            _ => (self.next() % 40) as usize,
        };
        let pools: [&[char]; 4] = [
            &['0', '1', '9', '-', ' ', 'a', 'z', 'o', 'l'],
            &['\u{1}', '\n', '\t', '\u{1b}', '\u{7f}', '%', '\'', '"', ':'],
            &['é', '\u{202e}', '\u{fffd}', '０', '𝟘', '\u{200b}'],
            &['.', '/', '$', '{', '}', '[', '\\', '*'],
        ];
        let pool = pools[(self.next() % 4) as usize];
        (0..len)
            .map(|_| pool[(self.next() % pool.len() as u64) as usize])
            .collect()
    }
}

#[test]
fn hostile_arguments_get_typed_errors_and_the_daemon_survives() {
    root_only!();
    let env = TestEnv::new();
    runtime().block_on(async {
        let (conn, proxy) = connect(&env.address).await;
        let mut rng = Rng(0x2f0f_1d5e_9a3b_c771);
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..600 {
            if Instant::now() > deadline {
                break;
            }
            let user = if i % 3 == 0 {
                USER.to_string()
            } else {
                rng.string()
            };
            let (a, b) = (rng.string(), rng.string());
            let mut ctx = HashMap::new();
            ctx.insert(rng.string(), rng.string());
            let r = match i % 6 {
                0 => proxy.status(&user).await.map(|_| ()),
                1 => proxy.verify(&user, &a, ctx).await.map(|_| ()),
                2 => proxy
                    .enroll_begin(&user, &a, &b, &OathParams::app())
                    .await
                    .map(|_| ()),
                3 => proxy.enroll_confirm(&user, &a).await.map(|_| ()),
                4 => proxy.regenerate_backup_codes(&user, &a).await.map(|_| ()),
                _ => proxy.disable(&user, &a, &b).await.map(|_| ()),
            };
            let name = match r {
                Ok(()) => "ok".to_string(),
                Err(e) => error_name(&e),
            };
            assert!(
                !name.starts_with("transport") && name != "Internal",
                "call {i} got {name}; log:\n{}",
                env.log_text()
            );
            *answers.entry(name).or_insert(0) += 1;
        }
        // Wrongly typed bodies are refused by the bus layer, not by a crash.
        for (method, body) in [("Verify", (1u32, 2u32)), ("Status", (3u32, 4u32))] {
            let r = conn
                .call_method(Some(BUS_NAME), OBJECT_PATH, Some(INTERFACE), method, &body)
                .await;
            assert!(r.is_err(), "{method} with a wrong signature was accepted");
        }
        eprintln!("answers: {answers:?}");
        proxy.status(USER).await.expect("daemon still answers");
    });
    let log = env.log_text();
    assert!(!log.contains('\u{1b}'), "raw escape sequence in the log");
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

/// Builds the cargo-fuzz targets in `fuzz/` with libFuzzer's coverage instrumentation
/// (plain cargo on the stable toolchain, no cargo-fuzz needed) and runs each for a few
/// seconds: no crash, no hang. `TWOFOLD_FUZZ_SECONDS` sets the time per target.
#[test]
fn fuzz_targets_run_briefly_without_crash_or_hang() {
    root_only!();
    let fuzz = repo_root().join("fuzz");
    let seconds: u64 = std::env::var("TWOFOLD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    // With --target, RUSTFLAGS reach the targets but not build scripts or proc macros
    // (which must not be instrumented): what cargo-fuzz does too.
    let host = String::from_utf8(
        Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc")
            .stdout,
    )
    .unwrap()
    .lines()
    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
    .expect("rustc -vV names the host");
    let status = Command::new(env!("CARGO"))
        .current_dir(&fuzz)
        // --locked: a stale fuzz/Cargo.lock fails here instead of being rewritten in the
        // work tree (CI's clone must stay clean).
        .args([
            "build",
            "--locked",
            "--release",
            "--bins",
            "--target",
            &host,
        ])
        .args(["--target-dir", "target/suite"])
        .env("RUSTFLAGS", fuzz_rustflags())
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cargo");
    assert!(
        status.success(),
        "building the fuzz targets failed (after a dependency change: cargo update \
         --workspace in fuzz/, and commit fuzz/Cargo.lock)"
    );
    let targets = fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    assert!(targets.len() >= 3, "{targets:?}");
    let mut failed = Vec::new();
    for t in targets {
        let bin = fuzz
            .join("target/suite")
            .join(&host)
            .join("release")
            .join(&t);
        let corpus = std::env::temp_dir().join(format!("twofold-fuzz-{t}"));
        fs::create_dir_all(&corpus).unwrap();
        let seeds = fuzz.join("seeds").join(&t);
        let mut cmd = Command::new(&bin);
        cmd.arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        let out = cmd
            .arg(format!("-max_total_time={seconds}"))
            .arg("-timeout=5")
            .arg("-rss_limit_mb=1024")
            .arg(format!(
                "-artifact_prefix={}/",
                std::env::temp_dir().display()
            ))
            .output()
            .expect("run fuzz target");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().take(3).collect::<Vec<_>>().join("\n");
        eprintln!("{t}: {last}");
        if !out.status.success() {
            let crash: Vec<&str> = err
                .lines()
                .filter(|l| {
                    l.contains("panicked") || l.contains("control") || l.contains("Test unit")
                })
                .take(4)
                .collect();
            failed.push(format!("{t}:\n  {}", crash.join("\n  ")));
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz targets failed:\n{}",
        failed.join("\n")
    );
}

/// The coverage flags cargo-fuzz passes to rustc (all stable `-C` options).
fn fuzz_rustflags() -> String {
    [
        "--cfg fuzzing",
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "-Cdebug-assertions",
        "-Coverflow-checks",
    ]
    .join(" ")
}

#[test]
fn a_login_does_not_wait_behind_backup_code_hashes() {
    root_only!();
    let env = TestEnv::new();
    let pool: Vec<&str> = ["daemon", "bin", "sys", "sync", "games", "man", "lp", "mail"]
        .into_iter()
        .filter(|u| uid_of(u).is_some())
        .collect();
    assert!(pool.len() >= 7, "need 7 system users, have {pool:?}");
    runtime().block_on(async {
        let (_c, proxy) = connect(&env.address).await;
        let mut codes = Vec::new();
        for user in &pool[..6] {
            let (_, backup) = enroll_dbus(&proxy, user).await;
            codes.push((user.to_string(), backup[0].clone()));
        }
        let (_c2, login) = connect(&env.address).await;
        // 24 backup-code attempts: one Argon2 evaluation each, at most two at once, so
        // they take a while; four per user stay under the lockout. A login must not wait
        // behind all of them (it would if hashing held a lock the bus loop needs).
        let mut hashing = tokio::task::JoinSet::new();
        let mut conns = Vec::new();
        for (user, code) in codes {
            // A connection per user, as logins come: the daemon gets them all at once.
            let (conn, proxy) = connect(&env.address).await;
            conns.push(conn);
            for _ in 0..4 {
                let (proxy, user, code) = (proxy.clone(), user.clone(), code.clone());
                hashing.spawn(async move {
                    let _ = proxy.verify(&user, &code, HashMap::new()).await;
                    Instant::now()
                });
            }
        }
        let fired = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let state = login
            .begin_login(pool[6], HashMap::new())
            .await
            .expect("BeginLogin");
        let answered = Instant::now();
        assert!(!state.enrolled);
        let mut after = 0;
        while let Some(done) = hashing.join_next().await {
            if done.expect("verify task") > answered {
                after += 1;
            }
        }
        eprintln!(
            "{after} of 24 backup-code answers came after the login's ({:?} after the first \
             was sent; all took {:?})",
            answered - fired,
            fired.elapsed()
        );
        assert!(
            after >= 12,
            "a login waited behind the hashes: only {after} of 24 answers came after it"
        );
    });
}
