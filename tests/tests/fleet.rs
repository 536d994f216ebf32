//! Fleet mode end to end: three twofoldd daemons, each on its own private bus and with
//! its own host name, sharing one real PostgreSQL server (Debian's, started by the test
//! with `pg_ctl` on a temporary data directory, TLS on) — and the storage suite run
//! against both backends.
//!
//! Host 1 connects without TLS, host 2 with `verify-full` against the test CA, host 3
//! with `require`: every TLS mode the daemon offers carries real logins.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use twofold_tests::contract::{TwofoldError, TwofoldProxy};
use twofold_tests::flows::admin_reset;
use twofold_tests::root_only;
use twofold_tests::{
    assert_failed_saying, built, json, opened_session, pam, require_root, totp, wrong_code,
    Enrolled, Login, PgServer, TestEnv,
};
use twofoldd::storage::postgres::{PostgresStore, Settings, SslMode};

const USER: &str = "daemon";

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// Each operation's time limit for the storage suite: its concurrency cases put 16
/// threads on one row, which a loaded 2-core machine may keep waiting past the
/// daemon's [`twofoldd::storage::postgres::OP_TIMEOUT`]. What they check is the outcome
/// (one winner, every failure counted), never the time.
const LOADED_MACHINE_LIMIT: Duration = Duration::from_secs(30);

/// A PostgreSQL store whose connections run on a runtime of the test's (the daemon's
/// own, in the daemon).
fn open_store(settings: &Settings, key_check: Option<Vec<u8>>) -> Result<PostgresStore, String> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    PostgresStore::open(settings, key_check, runtime.handle().clone())
}

/// A fresh database on `pg`.
fn new_database(pg: &PgServer) -> String {
    let name = format!(
        "fleet_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    pg.create_database(&name);
    name
}

/// A key file for the fleet (every host uses the same one).
fn fleet_key(dir: &Path) -> PathBuf {
    let key = dir.join("fleet.key");
    // 64 hexadecimal digits, as twofoldd writes them.
    let hex: String = (0..32u8)
        .map(|i| format!("{:02x}", i.wrapping_mul(37).wrapping_add(11)))
        .collect();
    std::fs::write(&key, hex).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    key
}

struct Fleet {
    pg: PgServer,
    hosts: Vec<TestEnv>,
    _keydir: tempfile::TempDir,
}

/// `n` hosts on one new database of a new server; None (the test skips, with a
/// message) when the test may not run as root or PostgreSQL is not installed.
fn fleet(test: &str, n: usize) -> Option<Fleet> {
    if !require_root(test) {
        return None;
    }
    let pg = PgServer::start(test)?;
    let db = new_database(&pg);
    let keydir = tempfile::tempdir().unwrap();
    let key = fleet_key(keydir.path());
    let modes = ["disable", "verify-full", "require"];
    let hosts = (0..n)
        .map(|i| {
            let config = pg.storage_config(&db, &format!("host{}", i + 1), modes[i % 3]);
            TestEnv::fleet_host(&config, &key)
        })
        .collect();
    Some(Fleet {
        pg,
        hosts,
        _keydir: keydir,
    })
}

/// A [`fleet`] of `n` hosts with USER enrolled on the first.
fn fleet_with_user(test: &str, n: usize) -> Option<(Fleet, Enrolled)> {
    let f = fleet(test, n)?;
    let enrolled = f.hosts[0].enroll(USER);
    Some((f, enrolled))
}

fn settings(pg: &PgServer, db: &str, sslmode: SslMode, rootcert: bool) -> Settings {
    Settings {
        url: pg.url(db),
        password_file: Some(pg.password_file.clone()),
        sslmode,
        sslrootcert: rootcert.then(|| pg.ca_cert.clone()),
        application_name: "fleet-test".into(),
    }
}

// ------------------------------------------------------------------ storage suite

/// The same storage suite against SQLite and against PostgreSQL (concurrency included:
/// racing verifications of one step, racing failure counts).
#[test]
fn storage_suite_passes_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = twofoldd::storage::sqlite::SqliteStore::open(&dir.path().join("s/t.db")).unwrap();
    twofoldd::storage::conformance::run_all(&sqlite);

    let Some(pg) = PgServer::start(module_path!()) else {
        return;
    };
    let db = new_database(&pg);
    let store = open_store(&settings(&pg, &db, SslMode::Disable, false), None)
        .unwrap()
        .with_time_limit(LOADED_MACHINE_LIMIT);
    twofoldd::storage::conformance::run_all(&store);
    // Over TLS, checked against the test CA, the same.
    let tls = open_store(&settings(&pg, &db, SslMode::VerifyFull, true), None)
        .unwrap()
        .with_time_limit(LOADED_MACHINE_LIMIT);
    twofoldd::storage::conformance::run_all(&tls);
    let tls_connections: u32 = pg
        .psql(&db, "SELECT count(*) FROM pg_stat_ssl WHERE ssl")
        .trim()
        .parse()
        .unwrap();
    assert!(tls_connections > 0, "the verify-full store uses TLS");
}

/// A fleet database of the schema before devices (2), with enrolled users, migrated by
/// the store that opens it: each user's secret becomes their first device, its
/// watermark and last use kept (SQLite's own migration is checked in the daemon's unit
/// tests).
#[test]
fn an_enrolled_users_secret_becomes_their_first_device_in_the_fleet() {
    let Some(pg) = PgServer::start(module_path!()) else {
        return;
    };
    let db = new_database(&pg);
    let old = twofoldd::storage::postgres::schema_at(2);
    pg.psql(
        &db,
        &format!(
            "SET ROLE {}; {old}
             INSERT INTO users (name, secret, enrolled_at, last_step, last_used_at, last_method)
             VALUES ('alice', '\\x010203', 1000, 77, 2000, 'totp'),
                    ('bob', '\\x0405', 1100, NULL, 2100, 'backup_code');",
            pg.user
        ),
    );
    let store = open_store(&settings(&pg, &db, SslMode::Disable, false), None).unwrap();
    use twofoldd::storage::{Acceptance, Store};
    let alice = store.devices("alice").unwrap();
    assert_eq!(alice.len(), 1);
    let first = &alice[0];
    assert_eq!(first.name, "default");
    assert_eq!(first.secret_sealed, [1, 2, 3]);
    assert_eq!(
        (first.added_at, first.last_step, first.last_used_at),
        (1000, Some(77), Some(2000))
    );
    let bob = &store.devices("bob").unwrap()[0];
    assert_eq!((bob.last_step, bob.last_used_at), (None, None));
    let rec = store.user("alice").unwrap().unwrap();
    assert_eq!((rec.enrolled_at, rec.last_used_at), (1000, Some(2000)));
    // The watermark holds: its step is used, the next passes once.
    let ev = twofoldd::storage::AuditEvent {
        at: 3000,
        user: "alice".into(),
        event: "test",
        ..Default::default()
    };
    let local = [twofoldd::lockout::Source::in_a_row("local".into(), 5)];
    assert!(!store
        .accept_code("alice", "default", Acceptance::totp(77), &local, &ev)
        .unwrap());
    assert!(store
        .accept_code("alice", "default", Acceptance::totp(78), &local, &ev)
        .unwrap());
    assert_eq!(
        pg.psql(&db, "SELECT version FROM schema_version").trim(),
        "5"
    );
}

/// Bad settings fail with a message that says what is wrong, before anything is done.
#[test]
fn store_settings_are_checked() {
    let Some(pg) = PgServer::start(module_path!()) else {
        return;
    };
    let db = new_database(&pg);
    // The server's certificate is not signed by a CA the system trusts.
    let untrusted = open_store(&settings(&pg, &db, SslMode::VerifyFull, false), None).unwrap();
    let e = untrusted.check().unwrap_err().to_string();
    assert!(e.contains("certificate"), "{e}");
    // A wrong password.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "nope\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut s = settings(&pg, &db, SslMode::Require, false);
    s.password_file = Some(wrong.clone());
    let e = open_store(&s, None)
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    // A password file others can read is refused at once.
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = open_store(&s, None).err().unwrap();
    assert!(
        e.contains("storage_password_file") && e.contains("0600"),
        "{e}"
    );
    // A password in the URL never gets that far.
    let mut s = settings(&pg, &db, SslMode::Require, false);
    s.url = format!("postgres://twofold:secret@127.0.0.1:{}/{db}", pg.port);
    let e = open_store(&s, None).err().unwrap();
    assert!(
        e.contains("storage_password_file") && !e.contains("secret@"),
        "{e}"
    );
    // Several servers in the URL: the first that accepts writes is used.
    let mut s = settings(&pg, &db, SslMode::Disable, false);
    s.url = format!(
        "postgres://twofold@127.0.0.1:1,127.0.0.1:{}/{db}?target_session_attrs=read-write",
        pg.port
    );
    open_store(&s, None).unwrap().check().unwrap();
    // Two key files in one fleet: the second host is refused.
    let a = open_store(
        &settings(&pg, &db, SslMode::Disable, false),
        Some(vec![1; 8]),
    )
    .unwrap();
    a.check().unwrap();
    let b = open_store(
        &settings(&pg, &db, SslMode::Disable, false),
        Some(vec![2; 8]),
    )
    .unwrap();
    let e = b.check().unwrap_err();
    assert!(
        matches!(e, twofoldd::storage::StoreError::Misconfigured(_)),
        "{e}"
    );
    assert!(e.to_string().contains("key file"), "{e}");
}

// ------------------------------------------------------------------ fleet behaviour

#[test]
fn enroll_on_one_host_log_in_on_another_replay_refused_on_a_third() {
    let Some((f, enrolled)) = fleet_with_user(module_path!(), 3) else {
        return;
    };
    let code = totp(&enrolled.secret, 0);
    let ok = f.hosts[1].pam(&Login::new(USER, &code));
    assert_eq!(
        ok.result,
        pam::SUCCESS,
        "host 2: {ok:?}\n{}",
        f.hosts[1].log_text()
    );
    let replay = f.hosts[2].pam(&Login::new(USER, &code));
    assert_eq!(replay.result, pam::AUTH_ERR, "host 3 replay: {replay:?}");
    // Same on host 1, and with a backup code used on host 3.
    assert_eq!(
        f.hosts[0].pam(&Login::new(USER, &code)).result,
        pam::AUTH_ERR
    );
    let backup = &enrolled.backup_codes[0];
    assert_eq!(
        f.hosts[2].pam(&Login::new(USER, backup)).result,
        pam::SUCCESS
    );
    assert_eq!(
        f.hosts[1].pam(&Login::new(USER, backup)).result,
        pam::AUTH_ERR
    );
    let status = json(&f.hosts[1].cli(&["status", "--json", "--user", USER], None, ""));
    assert_eq!(status["enrolled"], true, "{status}");
    assert_eq!(status["backup_codes_left"], 9, "{status}");
    // The audit trail shows the whole fleet, each event with its host.
    let log = json(&f.hosts[2].cli(&["admin", "log", "--user", USER, "--json"], None, ""));
    let hosts_of = |event: &str| -> Vec<String> {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["host"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(hosts_of("enroll_confirm"), ["host1"], "{log}");
    assert_eq!(hosts_of("verify_ok"), ["host2"], "{log}");
    assert_eq!(hosts_of("backup_code_used"), ["host3"], "{log}");
    assert!(
        hosts_of("verify_failed").contains(&"host3".to_string()),
        "{log}"
    );
    let table = f.hosts[0].cli(&["admin", "log", "--user", USER], None, "");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().next().unwrap().contains("HOST"), "{text}");
    assert!(text.contains("host2"), "{text}");
}

#[test]
fn a_thousand_parallel_verifications_of_one_code_over_three_hosts_pass_once() {
    let Some((f, enrolled)) = fleet_with_user(module_path!(), 3) else {
        return;
    };
    let code = enrolled.code_lasting(20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes = runtime.block_on(async {
        // Several connections per host, so that no bus limit on pending calls of one
        // connection is what serializes them.
        let mut proxies = Vec::new();
        for env in &f.hosts {
            for _ in 0..8 {
                let conn = zbus::connection::Builder::address(env.address.as_str())
                    .build()
                    .await
                    .unwrap();
                proxies.push(TwofoldProxy::new(&conn).await.unwrap());
            }
        }
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..1000 {
            let proxy = proxies[i % proxies.len()].clone();
            let code = code.clone();
            calls.spawn(async move {
                let ctx = HashMap::from([("service".to_string(), "fleet-test".to_string())]);
                proxy.verify(USER, &code, ctx).await
            });
        }
        let mut outcomes = Vec::new();
        while let Some(r) = calls.join_next().await {
            outcomes.push(r.unwrap());
        }
        outcomes
    });
    assert_eq!(outcomes.len(), 1000);
    let wins = outcomes.iter().filter(|o| o.is_ok()).count();
    let broken: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .filter(|e| !matches!(e, TwofoldError::InvalidCode(_) | TwofoldError::Locked(_)))
        .map(|e| format!("{e:?}"))
        .take(5)
        .collect();
    assert!(broken.is_empty(), "unexpected errors: {broken:?}");
    assert_eq!(wins, 1, "exactly one verification of the code passes");
    let log = json(&f.hosts[0].cli(&["admin", "log", "--user", USER, "--json"], None, ""));
    let oks = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "verify_ok")
        .count();
    assert_eq!(oks, 1, "{log}");
}

#[test]
fn failures_spread_over_hosts_lock_the_user_everywhere() {
    let Some((f, enrolled)) = fleet_with_user(module_path!(), 3) else {
        return;
    };
    let good = totp(&enrolled.secret, 0);
    let wrong = wrong_code(&enrolled.secret);
    let from = |code: &str| Login {
        rhost: Some("203.0.113.9".into()),
        ..Login::new(USER, code)
    };
    for attempt in 0..4 {
        let out = f.hosts[attempt % 3].pam(&from(&wrong));
        assert_eq!(out.result, pam::AUTH_ERR, "attempt {attempt}: {out:?}");
    }
    let fifth = f.hosts[1].pam(&from(&wrong));
    assert_eq!(
        fifth.result,
        pam::MAXTRIES,
        "the fifth failure, on host 2, locks: {fifth:?}"
    );
    for (i, env) in f.hosts.iter().enumerate() {
        let locked = env.pam(&from(&good));
        assert_eq!(locked.result, pam::MAXTRIES, "host {}: {locked:?}", i + 1);
        assert_eq!(locked.prompts(), 0);
    }
    let status = json(&f.hosts[2].cli(&["status", "--json", "--user", USER], None, ""));
    assert!(!status["locked_until"].is_null(), "{status}");
    // An administrator on any host unlocks everywhere.
    let out = f.hosts[2].cli(&["admin", "unlock", USER], None, "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(f.hosts[0].pam(&from(&good)).result, pam::SUCCESS);
}

/// sessiondriver (the session leader) with `pam_twofold.so`'s session hook on `env`.
fn open_session(env: &TestEnv, user: &str) -> Child {
    let stack = format!(
        "session optional {} bus={} daemon_uid=0 timeout=3\n",
        built("libpam_twofold.so").display(),
        env.address
    );
    opened_session(
        env.session_driver(&stack, user, &["--tty", "/dev/pts/77"])
            .process_group(0),
    )
}

#[test]
fn revoke_on_host_one_ends_a_session_of_host_two() {
    let Some(f) = fleet(module_path!(), 2) else {
        return;
    };
    let mut leader = open_session(&f.hosts[1], USER);
    let listed = json(&f.hosts[0].cli(&["sessions", "--user", USER, "--json"], None, ""));
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    assert_eq!(sessions[0]["host"], "host2", "{listed}");
    let id = sessions[0]["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let out = f.hosts[0].cli(&["sessions", "revoke", &id], None, "");
    assert!(
        out.status.success(),
        "{out:?}\nhost 2:\n{}",
        f.hosts[1].log_text()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = leader.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the session's leader on host 2 lives on"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "ended by a signal: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let all = json(&f.hosts[1].cli(&["sessions", "--all", "--user", USER, "--json"], None, ""));
    let reason = all[0]["end_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("revoked by uid 0 from host1"), "{all}");
    let log = json(&f.hosts[0].cli(&["admin", "log", "--user", USER, "--json"], None, ""));
    let event_host = |event: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == event)
            .map(|e| e["host"].clone())
    };
    assert_eq!(
        event_host("session_revoke_requested"),
        Some("host1".into()),
        "{log}"
    );
    assert_eq!(event_host("session_revoked"), Some("host2".into()), "{log}");
    // An ended session cannot be revoked again, from anywhere.
    let again = f.hosts[0].cli(&["sessions", "revoke", &id], None, "");
    assert!(!again.status.success());
}

#[test]
fn revoke_others_on_host_one_ends_sessions_on_every_host() {
    let Some(f) = fleet(module_path!(), 2) else {
        return;
    };
    let mut remote = open_session(&f.hosts[1], USER);
    let mut local = open_session(&f.hosts[0], USER);
    let out = f.hosts[0].cli(
        &["sessions", "revoke", "--others", "--user", USER],
        None,
        "",
    );
    assert!(
        out.status.success(),
        "{out:?}\nhost 2:\n{}",
        f.hosts[1].log_text()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for leader in [&mut remote, &mut local] {
        while leader.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "a session lives on after --others"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let live = json(&f.hosts[0].cli(&["sessions", "--user", USER, "--json"], None, ""));
    assert_eq!(live.as_array().unwrap().len(), 0, "{live}");
}

/// Pids of the server's processes: the postmaster (first line of postmaster.pid) and
/// its children.
fn server_pids(pg: &PgServer) -> Vec<i32> {
    let text = std::fs::read_to_string(pg.dir.path().join("data/postmaster.pid")).unwrap();
    let main: i32 = text.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![main];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(main) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn database_down_or_hung_fails_closed_in_time_then_recovers() {
    let Some((f, enrolled)) = fleet_with_user(module_path!(), 1) else {
        return;
    };
    let env = &f.hosts[0];
    // A login with `code` and a 5 s timeout, and how long it took.
    let timed_login = |code: &str| {
        let started = Instant::now();
        let out = env.pam(&Login::new(USER, code).args("timeout=5"));
        (out, started.elapsed())
    };
    let used = enrolled.code_lasting(25);
    assert_eq!(env.pam(&Login::new(USER, &used)).result, pam::SUCCESS);

    // Stopped: refused at once.
    f.pg.stop_server();
    let (down, took) = timed_login(&totp(&enrolled.secret, 1));
    assert_eq!(down.result, pam::AUTHINFO_UNAVAIL, "{down:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(down.prompts(), 0);

    // Back: the daemon reconnects by itself; what it acknowledged is still there.
    f.pg.start_server();
    let replay = env.pam(&Login::new(USER, &used));
    assert_eq!(
        replay.result,
        pam::AUTH_ERR,
        "the code used before stays used: {replay:?}"
    );
    let backup = env.pam(&Login::new(USER, &enrolled.backup_codes[0]));
    assert_eq!(
        backup.result,
        pam::SUCCESS,
        "{backup:?}\n{}",
        env.log_text()
    );

    // Hung (every server process stopped): the daemon gives up within its deadline.
    let pids = server_pids(&f.pg);
    for pid in &pids {
        twofold_tests::signal(*pid, libc::SIGSTOP);
    }
    let (hung, took) = timed_login(&enrolled.backup_codes[1]);
    // Any SIGCONT continues a stopped process (CI once saw twofoldd continued by one
    // not ours): a server running again by now makes this run say nothing.
    let continued: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|pid| twofold_tests::process_state(*pid).is_some_and(|s| s != 'T'))
        .collect();
    for pid in &pids {
        twofold_tests::signal(*pid, libc::SIGCONT);
    }
    assert!(
        continued.is_empty(),
        "PostgreSQL processes {continued:?} were continued by someone else during the login"
    );
    assert_eq!(hung.result, pam::AUTHINFO_UNAVAIL, "{hung:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // And recovers once the server runs again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.pam(&Login::new(USER, &enrolled.backup_codes[1]));
        if out.result == pam::SUCCESS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {out:?}\n{}",
            env.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = json(&env.cli(&["status", "--json", "--user", USER], None, ""));
    assert_eq!(status["backup_codes_left"], 8, "{status}");
}

#[test]
fn migrate_from_sqlite_keeps_every_user_and_their_used_codes() {
    root_only!();
    let Some(pg) = PgServer::start(module_path!()) else {
        return;
    };
    // A host on SQLite, with two users who used codes (nobody, in nogroup, is required to
    // enroll: the host records when it first saw them).
    let mut old = TestEnv::with_config("hostname = \"oldhost\"\nrequire_groups = [\"nogroup\"]\n");
    let daemon = old.enroll(USER);
    let bin = old.enroll("bin");
    let used = daemon.code_lasting(25);
    assert_eq!(old.pam(&Login::new(USER, &used)).result, pam::SUCCESS);
    assert_eq!(
        old.pam(&Login::new("bin", &bin.backup_codes[3])).result,
        pam::SUCCESS
    );
    // A hardware token of USER's whose first code was used.
    let pskc = old.dir.path().join("tokens.pskc");
    std::fs::write(
        &pskc,
        "<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">
           <KeyPackage><DeviceInfo><SerialNo>FOB-1</SerialNo></DeviceInfo>
             <Key Id=\"1\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\">
               <Data><Secret><PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue></Secret>
                 <Counter><PlainValue>0</PlainValue></Counter></Data></Key></KeyPackage>
         </KeyContainer>",
    )
    .unwrap();
    let out = old.cli(
        &["admin", "tokens", "import", pskc.to_str().unwrap()],
        None,
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let out = old.cli(&["admin", "tokens", "assign", "FOB-1", USER], None, "");
    assert!(out.status.success(), "{out:?}");
    let hotp = |n: u32| {
        let out = Command::new("oathtool")
            .args([
                "--hotp",
                "-c",
                &n.to_string(),
                "3132333435363738393031323334353637383930",
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(old.pam(&Login::new(USER, &hotp(0))).result, pam::SUCCESS);
    // A row in each table the migration copies as it is: a failed attempt (throttle), a
    // bypass code, a started enrollment, a required user seen, a session timeout.
    let wrong = Login::new("bin", &wrong_code(&bin.secret));
    assert_eq!(old.pam(&wrong).result, pam::AUTH_ERR);
    old.enroll("games");
    let reset = admin_reset("games", "migration test", "2");
    let reset = json(&old.cli(&[&reset[..], &["--json"]].concat(), None, ""));
    let bypass = reset["bypass_code"]
        .as_str()
        .expect("a bypass code")
        .to_string();
    let out = old.cli(&["enroll", "--begin", "--user", "sys"], None, "");
    assert!(out.status.success(), "{out:?}");
    assert_ne!(
        old.pam(&Login::new("nobody", "123456")).result,
        pam::SUCCESS
    );
    let out = old.cli(&["sessions", "timeout", "1h", "--user", "bin"], None, "");
    assert!(out.status.success(), "{out:?}");
    old.stop_daemon();

    let db = new_database(&pg);
    let migrate = |extra: &[&str]| {
        Command::new(built("twofoldd"))
            .arg("--key")
            .arg(&old.key)
            .args(["migrate", "--from"])
            .arg(format!("sqlite:{}", old.db.display()))
            .args(["--to", &pg.url(&db), "--password-file"])
            .arg(&pg.password_file)
            .args(["--sslmode", "verify-full", "--sslrootcert"])
            .arg(&pg.ca_cert)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = migrate(&[]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 users added"), "{said}");
    // Once only.
    let again = migrate(&[]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("migrated already"),
        "{again:?}"
    );
    // A password in the URL is refused before anything.
    let out = Command::new(built("twofoldd"))
        .args(["migrate", "--from", "sqlite:/nonexistent", "--to"])
        .arg(format!("postgres://twofold:pw@127.0.0.1:{}/{db}", pg.port))
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The fleet (with the migrated host's key) knows both users and their used codes.
    let config = pg.storage_config(&db, "newhost", "verify-full");
    let fleet = TestEnv::fleet_host(&config, &old.key);
    for table in [
        "throttle",
        "bypass_codes",
        "pending_enrollments",
        "first_seen",
        "session_timeouts",
    ] {
        let rows = pg.psql(&db, &format!("SELECT count(*) FROM {table}"));
        assert_ne!(rows.trim(), "0", "{table} was not carried over");
    }
    let with_bypass = fleet.pam(&Login::new("games", &bypass)).result;
    assert_eq!(with_bypass, pam::SUCCESS, "the bypass code came along");
    assert_eq!(
        fleet.pam(&Login::new(USER, &used)).result,
        pam::AUTH_ERR,
        "the code used on the old host stays used"
    );
    assert_eq!(
        fleet.pam(&Login::new("bin", &bin.backup_codes[3])).result,
        pam::AUTH_ERR,
        "the backup code used on the old host stays used"
    );
    assert_eq!(
        fleet.pam(&Login::new("bin", &bin.backup_codes[4])).result,
        pam::SUCCESS
    );
    assert_eq!(
        fleet
            .pam(&Login::new(USER, &totp(&daemon.secret, 1)))
            .result,
        pam::SUCCESS
    );
    // The token, its counter and its assignment came along.
    let tokens = json(&fleet.cli(&["admin", "tokens", "--json"], None, ""));
    assert_eq!(tokens[0]["serial"], "FOB-1", "{tokens}");
    assert_eq!(tokens[0]["assigned_to"], USER, "{tokens}");
    assert_eq!(tokens[0]["counter"], 1, "{tokens}");
    assert_eq!(fleet.pam(&Login::new(USER, &hotp(0))).result, pam::AUTH_ERR);
    assert_eq!(fleet.pam(&Login::new(USER, &hotp(1))).result, pam::SUCCESS);
    let st = json(&fleet.cli(&["status", "--json", "--user", "bin"], None, ""));
    assert_eq!(st["backup_codes_left"], 8, "{st}");
    let log = json(&fleet.cli(&["admin", "log", "--user", USER, "--json"], None, ""));
    let hosts: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap_or(""))
        .collect();
    assert!(
        hosts.contains(&"oldhost") && hosts.contains(&"newhost"),
        "{log}"
    );

    // A host with another key file is refused by the fleet's database.
    let other_key = fleet.dir.path().join("other.key");
    std::fs::write(&other_key, "07".repeat(32)).unwrap();
    std::fs::set_permissions(
        &other_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let stray = TestEnv::with_config("");
    std::fs::write(&stray.config, pg.storage_config(&db, "stray", "disable")).unwrap();
    let out = Command::new(built("twofoldd"))
        .arg("--bus")
        .arg(&stray.address)
        .arg("--key")
        .arg(&other_key)
        .arg("--config")
        .arg(&stray.config)
        .arg("--socket")
        .arg(stray.dir.path().join("stray/twofoldd.socket"))
        .output()
        .unwrap();
    assert_failed_saying(&out, "key file");
}
