//! Session logic against an in-memory store, with real child processes as leaders.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, RwLock};

use twofold_contract::{auth_method, context, method};

use super::*;
use crate::password::PasswordChecker;
use crate::policy::Policy;
use crate::secrets::Keys;
use crate::storage::sqlite::SqliteStore;

fn sessions() -> Arc<Sessions> {
    Arc::new(local_sessions())
}

fn local_sessions() -> Sessions {
    let service = Service {
        store: Arc::new(SqliteStore::in_memory()),
        keys: Keys::from_master(&[3u8; 32]),
        policy: RwLock::new(Arc::new(Policy::default())),
        hostname: "testhost".into(),
        passwords: PasswordChecker::default(),
    };
    Sessions::new(Arc::new(service), None)
}

fn root(pid: u32) -> Caller {
    Caller {
        uid: 0,
        pid: Some(pid),
    }
}

fn info(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A process that leads a terminal login of its own (its own session id), as a shell on
/// a terminal does. The test process itself may have no usable session id: in a PID
/// namespace whose session leader lives outside, /proc reports the session as 0.
fn terminal_login() -> Child {
    let mut child = Command::new("setsid")
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let pid = child.id();
    for _ in 0..500 {
        if procfs::stat(pid).is_some_and(|s| s.sid == pid) {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    end(&mut child);
    panic!("setsid did not make {pid} a session leader");
}

/// A process to stand for a session leader, in its own process group.
fn leader() -> Child {
    Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap()
}

/// A session of `user` for `service`, opened by root for a new [`leader`].
fn led_session(s: &Sessions, user: &str, service: &str) -> (Child, SessionRecord) {
    let child = leader();
    let record = s
        .open(
            root(child.id()),
            user,
            &info(&[(context::SERVICE, service)]),
        )
        .unwrap();
    (child, record)
}

/// Kills a test's process and reaps it.
fn end(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn open_list_close() {
    let s = sessions();
    let mut child = leader();
    let pid = child.id();
    let ctx = info(&[
        (context::SERVICE, "sshd"),
        (context::TTY, "ssh"),
        (context::RHOST, "192.0.2.7"),
    ]);
    let rec = s.open(root(pid), "alice", &ctx).unwrap();
    assert_eq!(rec.id.len(), 8);
    assert_eq!(rec.leader_pid, pid);
    assert_eq!(rec.auth_method, auth_method::NOT_ENROLLED);
    // Listed for alice; "current" only for a caller inside the session.
    let me = std::process::id();
    let list = s.list(root(me), "alice", false).unwrap();
    assert_eq!(list.sessions.len(), 1);
    assert!(!list.sessions[0].current);
    assert_eq!(list.sessions[0].rhost, "192.0.2.7");
    let list = s.list(root(pid), "alice", false).unwrap();
    assert!(list.sessions[0].current);
    assert!(s.others(root(pid), "alice").unwrap().is_empty());
    assert_eq!(s.others(root(me), "alice").unwrap().len(), 1);
    // Another process cannot close it; its leader can.
    s.close(root(me), "alice", &ctx).unwrap();
    assert_eq!(s.list(root(me), "alice", false).unwrap().sessions.len(), 1);
    s.close(root(pid), "alice", &ctx).unwrap();
    assert!(s
        .list(root(me), "alice", false)
        .unwrap()
        .sessions
        .is_empty());
    let all = s.list(root(me), "alice", true).unwrap();
    assert_eq!(all.sessions[0].end_reason, "closed");
    end(&mut child);
}

#[test]
fn local_logins_are_local_and_bad_fields_are_refused() {
    let s = sessions();
    let me = std::process::id();
    let rec = s
        .open(
            root(me),
            "bob",
            &info(&[(context::SERVICE, "login"), (context::TTY, "tty1")]),
        )
        .unwrap();
    assert_eq!(rec.location, "local");
    assert!(s
        .open(root(me), "bob", &info(&[(context::TTY, "a\nb")]))
        .is_err());
    // A logind id sent by the caller (from the PAM environment, which a user can set)
    // is never recorded: the id comes from logind.
    let forged = s
        .open(root(me), "bob", &info(&[(context::LOGIND_SESSION, "c42")]))
        .unwrap();
    assert_eq!(forged.logind_session, "");
    assert!(s
        .open(Caller { uid: 0, pid: None }, "bob", &info(&[]))
        .is_err());
}

#[test]
fn the_pass_is_found_by_process_tree_then_by_place() {
    let s = sessions();
    let me = std::process::id();
    let parent = procfs::stat(me).unwrap().ppid;
    // sshd: the pass comes from a child of the leader (here: we are the child).
    let ctx = info(&[(context::SERVICE, "sshd"), (context::RHOST, "198.51.100.1")]);
    s.record_pass(root(me), "carol", &ctx, method::TOTP);
    let rec = s.open(root(parent), "carol", &ctx).unwrap();
    assert_eq!(rec.auth_method, method::TOTP);
    assert!(rec.auth_at > 0);
    // Same user, service and remote host shortly before.
    let ctx2 = info(&[(context::SERVICE, "sshd"), (context::RHOST, "198.51.100.2")]);
    let other = root(1);
    s.record_pass(other, "carl", &ctx2, method::BACKUP_CODE);
    let rec = s.open(root(me), "carl", &ctx2).unwrap();
    assert_eq!(rec.auth_method, method::BACKUP_CODE);
}

#[test]
fn grace_needs_same_service_and_terminal_login_or_remote_host() {
    let s = sessions();
    let mut shell = terminal_login();
    let me = shell.id();
    let sudo = info(&[(context::SERVICE, "sudo"), (context::TTY, "/dev/pts/4")]);
    assert!(!s.check_grace(root(me), "dave", &sudo, 60).unwrap());
    s.record_pass(root(me), "dave", &sudo, method::TOTP);
    assert!(s.check_grace(root(me), "dave", &sudo, 60).unwrap());
    assert!(!s.check_grace(root(me), "dave", &sudo, 0).unwrap());
    // Another terminal, another service, another user: no.
    let pts5 = info(&[(context::SERVICE, "sudo"), (context::TTY, "/dev/pts/5")]);
    assert!(!s.check_grace(root(me), "dave", &pts5, 60).unwrap());
    // sudo sets PAM_RHOST to the local host name on every terminal: it does not count.
    let with_host = |tty: &str| {
        info(&[
            (context::SERVICE, "sudo"),
            (context::TTY, tty),
            (context::RHOST, "testhost"),
        ])
    };
    s.record_pass(root(me), "dave", &with_host("/dev/pts/6"), method::TOTP);
    assert!(!s
        .check_grace(root(me), "dave", &with_host("/dev/pts/7"), 60)
        .unwrap());
    let su = info(&[(context::SERVICE, "su"), (context::TTY, "/dev/pts/4")]);
    assert!(!s.check_grace(root(me), "dave", &su, 60).unwrap());
    assert!(!s.check_grace(root(me), "erin", &sudo, 60).unwrap());
    // The same terminal name in another terminal login (a reused pty): no.
    let mut child = terminal_login();
    assert!(!s.check_grace(root(child.id()), "dave", &sudo, 60).unwrap());
    end(&mut child);
    // sshd's "ssh" is no terminal; the remote host counts instead.
    let ssh = info(&[
        (context::SERVICE, "sshd"),
        (context::TTY, "ssh"),
        (context::RHOST, "203.0.113.9"),
    ]);
    s.record_pass(root(1), "dave", &ssh, method::TOTP);
    let ssh_other_tty = info(&[(context::SERVICE, "sshd"), (context::TTY, "ssh")]);
    assert!(!s.check_grace(root(me), "dave", &ssh_other_tty, 60).unwrap());
    assert!(s.check_grace(root(me), "dave", &ssh, 60).unwrap());
    // Grace passes are not remembered as codes (no chaining), and forget clears all.
    let list = s.list(root(me), "dave", false).unwrap();
    assert_eq!(list.remembered.len(), 3);
    assert!(s.forget(root(me), "dave").unwrap() >= 3);
    assert!(!s.check_grace(root(me), "dave", &sudo, 60).unwrap());
    end(&mut shell);
}

#[test]
fn reaper_closes_sessions_whose_leader_is_gone() {
    let s = sessions();
    let (mut child, rec) = led_session(&s, "frank", "sshd");
    assert!(s.reap_once().is_empty());
    assert_eq!(s.list(root(1), "frank", false).unwrap().sessions.len(), 1);
    end(&mut child);
    assert!(s.reap_once().is_empty());
    let all = s.list(root(1), "frank", true).unwrap();
    assert_eq!(all.sessions.len(), 1);
    assert!(
        all.sessions[0].end_reason.starts_with("leader gone"),
        "{:?}",
        all.sessions[0]
    );
    assert_eq!(all.sessions[0].id, rec.id);
}

#[test]
fn sessions_from_before_a_reboot_are_closed_as_such() {
    let before = sessions();
    let (mut child, rec) = led_session(&before, "gina", "login");
    // The same store after a reboot: a new boot id. The old leader's pid may even be
    // alive again (pid reuse); the boot id alone decides.
    let mut after = Sessions::new(before.service.clone(), None);
    after.boot_id = format!("{}-after-reboot", before.boot_id);
    let after = Arc::new(after);
    assert!(after.reap_once().is_empty());
    let all = after.list(root(1), "gina", true).unwrap();
    assert_eq!(all.sessions[0].id, rec.id);
    assert_eq!(
        all.sessions[0].end_reason, "host rebooted",
        "{:?}",
        all.sessions[0]
    );
    end(&mut child);
}

#[test]
fn timeouts_take_the_shorter_of_user_and_admin() {
    let s = sessions();
    assert_eq!(s.timeout_for(None), None);
    assert_eq!(s.timeout_for(Some(30)), Some(30));
    s.service.set_policy(Policy {
        session_timeout: 600,
        ..Policy::default()
    });
    assert_eq!(s.timeout_for(None), Some(600));
    assert_eq!(s.timeout_for(Some(30)), Some(30));
    assert_eq!(s.timeout_for(Some(6000)), Some(600));
    let (mut child, _) = led_session(&s, "gina", "sshd");
    s.set_timeout(root(1), "gina", 1).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(s.reap_once().len(), 1);
    end(&mut child);
}

#[test]
fn a_timeout_warning_waits_for_the_sessions_terminal() {
    // sshd records the session before its child takes the pty: a pass of the reaper that
    // comes in between must not use up the one warning on a session it cannot reach yet.
    let s = sessions();
    let (mut child, record) = led_session(&s, "gina", "sshd");
    let id = record.id;
    s.set_timeout(root(1), "gina", 30).unwrap();
    assert!(s.reap_once().is_empty());
    let live = s.service.store.host_live_sessions("testhost").unwrap();
    let row = live.iter().find(|r| r.id == id).unwrap();
    assert!(!row.warned, "warned before its terminal was found");
    end(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_signals_the_process_group_and_records_why() {
    let s = sessions();
    // A shell that ignores SIGHUP: SIGTERM must follow.
    let mut child = Command::new("sh")
        .args(["-c", "trap '' HUP; sleep 60 & wait"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let rec = s
        .open(root(pid), "root", &info(&[(context::SERVICE, "sshd")]))
        .unwrap();
    let started = std::time::Instant::now();
    s.terminate(rec.clone(), Some(root(1)), "revoked by uid 0".into())
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(7));
    let status = child.wait().unwrap();
    assert!(!status.success());
    let ended = s.get(&rec.id).unwrap().unwrap();
    assert!(ended.ended.is_some());
    assert!(
        ended.end_reason.contains("revoked by uid 0"),
        "{}",
        ended.end_reason
    );
    // Ending it again is refused.
    assert!(s.terminate(ended, None, "again".into()).await.is_err());
}

#[test]
fn tty_less_grace_does_not_cross_login_sessions() {
    let s = sessions();
    let (mut one, mut two) = (terminal_login(), terminal_login());
    // sudo without a terminal: PAM_RHOST is this host's name.
    let sudo = info(&[(context::SERVICE, "sudo"), (context::RHOST, "testhost")]);
    s.record_pass(root(one.id()), "ivy", &sudo, method::TOTP);
    assert!(s.check_grace(root(one.id()), "ivy", &sudo, 60).unwrap());
    assert!(!s.check_grace(root(two.id()), "ivy", &sudo, 60).unwrap());
    // Nor with a loopback or empty remote host.
    for rhost in ["127.0.0.1", "localhost", ""] {
        let ctx = info(&[(context::SERVICE, "su"), (context::RHOST, rhost)]);
        s.record_pass(root(one.id()), "ivy", &ctx, method::TOTP);
        assert!(
            !s.check_grace(root(two.id()), "ivy", &ctx, 60).unwrap(),
            "{rhost}"
        );
        assert!(
            s.check_grace(root(one.id()), "ivy", &ctx, 60).unwrap(),
            "{rhost}"
        );
    }
    assert!(names_this_host("TestHost.example", "testhost"));
    assert!(names_this_host("[::1]", "testhost"));
    assert!(!names_this_host("203.0.113.9", "testhost"));
    assert!(!names_this_host("otherhost", "testhost"));
    for child in [&mut one, &mut two] {
        end(child);
    }
}

fn stat(ppid: u32, pgrp: u32, sid: u32, start: u64) -> procfs::Stat {
    procfs::Stat {
        state: 'S',
        ppid,
        pgrp,
        sid,
        tty_nr: 0,
        start,
    }
}

/// Real and effective uid by pid.
type Uids = HashMap<u32, (u32, u32)>;

/// The repro as a process table: a root script (100) leads group 100 and runs a
/// root `sleep` (101) and `runuser -u alice` (102, the recorded leader), whose child
/// (103) runs as alice; 104 is bob's, below the leader; 105 is an unrelated process of
/// alice's elsewhere.
fn runuser_table() -> (Vec<(u32, procfs::Stat)>, Uids) {
    let table = vec![
        (100, stat(1, 100, 100, 10)),
        (101, stat(100, 100, 100, 11)),
        (102, stat(100, 100, 100, 12)),
        (103, stat(102, 100, 100, 13)),
        (104, stat(103, 100, 100, 14)),
        (105, stat(1, 105, 105, 15)),
    ];
    let uids = HashMap::from([
        (100, (0, 0)),
        (101, (0, 0)),
        (102, (0, 0)),
        (103, (1000, 1000)),
        (104, (1001, 1001)),
        (105, (1000, 1000)),
    ]);
    (table, uids)
}

#[test]
fn ending_a_session_reaches_only_what_it_owns() {
    let (table, uids) = runuser_table();
    let uid_of = |pid: u32| uids.get(&pid).copied();
    let leader = (102, table[2].1);
    let reach = revoke::Reach {
        user_uid: Some(1000),
        recorded_here: true,
        own_pid: 999,
    };
    // Not the group (the leader did not create it): the leader and alice's child only.
    let mut got = revoke::targets(leader, &table, uid_of, reach);
    got.sort();
    assert_eq!(got, vec![(102, 12), (103, 13)]);
    // A row this daemon did not write: never the root leader.
    let foreign = revoke::Reach {
        recorded_here: false,
        ..reach
    };
    assert_eq!(
        revoke::targets(leader, &table, uid_of, foreign),
        vec![(103, 13)]
    );
    // ... and nothing at all for a "root" session it did not write.
    let root_foreign = revoke::Reach {
        user_uid: Some(0),
        ..foreign
    };
    assert!(revoke::targets(leader, &table, uid_of, root_foreign).is_empty());
    // A leader that created its group and session: its reparented members too, but
    // still only the user's; never pid 1 nor the daemon itself.
    let table = vec![
        (200, stat(1, 200, 200, 20)),
        (201, stat(1, 200, 200, 21)),
        (202, stat(1, 202, 200, 22)),
        (203, stat(200, 200, 200, 23)),
        (999, stat(200, 200, 200, 99)),
        (1, stat(0, 200, 200, 1)),
    ];
    let uid_of = |pid: u32| Some(if pid == 203 { (0, 0) } else { (1000, 1000) });
    let mut got = revoke::targets((200, table[0].1), &table, uid_of, reach);
    got.sort();
    assert_eq!(got, vec![(200, 20), (201, 21), (202, 22)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_session_whose_leader_shares_a_root_group_spares_the_group() {
    let s = sessions();
    // A "root script" leading its group, with a bystander and a leader in it. The
    // session's user is nobody known to NSS here, so only the leader may be signalled.
    let mut script = Command::new("sh")
        .args([
            "-c",
            "sleep 60 & echo $!; sh -c 'echo $$; exec sleep 60' & wait",
        ])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(script.stdout.take().unwrap());
    let mut line = String::new();
    let mut pid = || {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        line.trim().parse::<u32>().unwrap()
    };
    let (bystander, leader) = (pid(), pid());
    let rec = s
        .open(
            root(leader),
            "no-such-user-here",
            &info(&[(context::SERVICE, "runuser")]),
        )
        .unwrap();
    s.terminate(rec, Some(root(1)), "revoked".into())
        .await
        .unwrap();
    assert!(procfs::stat(leader).is_none_or(|st| st.state == 'Z'));
    assert!(procfs::alive(
        script.id(),
        procfs::stat(script.id()).unwrap().start
    ));
    let bystander_stat = procfs::stat(bystander).unwrap();
    assert!(procfs::alive(bystander, bystander_stat.start));
    script.kill().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bystander as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    script.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_this_daemon_did_not_write_cannot_make_it_signal_root() {
    // The store is shared with other hosts (PostgreSQL in a fleet).
    let s = Arc::new(Sessions {
        fleet: true,
        ..local_sessions()
    });
    // Fleet mode: another host writes a "session" of this host whose leader is a root
    // process here (or any process of the daemon's uid), and asks for its revocation.
    let mut victim = leader();
    let pid = victim.id();
    let forged = crate::storage::SessionRecord {
        id: "f0f0f0f0".into(),
        user: "root".into(),
        service: "sshd".into(),
        host: "testhost".into(),
        boot_id: s.boot_id.clone(),
        leader_pid: pid,
        leader_start: procfs::stat(pid).unwrap().start,
        started: now(),
        ..Default::default()
    };
    let event = s.event(None, "root", "session_open");
    assert!(s.service.store.insert_session(&forged, &event).unwrap());
    s.service
        .store
        .request_revoke(&forged.id, "revoked from elsewhere", &event)
        .unwrap();
    let expired = s.reap_once();
    assert_eq!(expired.len(), 1);
    let (record, reason) = expired.into_iter().next().unwrap();
    let ended = s.terminate(record, None, reason).await;
    assert!(ended.is_err(), "{ended:?}");
    assert!(
        victim.try_wait().unwrap().is_none(),
        "a process was signalled on a forged row"
    );
    end(&mut victim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_session_recorded_before_a_restart_can_still_be_ended() {
    // The local store is root's file, written only by this host's twofoldd: a session
    // of this boot is its own even when a restarted daemon did not see it open.
    let before = sessions();
    let (mut child, rec) = led_session(&before, "root", "sudo");
    let restarted = Arc::new(Sessions::new(before.service.clone(), None));
    let record = restarted.get(&rec.id).unwrap().unwrap();
    restarted
        .terminate(record, None, "revoked".into())
        .await
        .unwrap();
    assert!(child.try_wait().unwrap().is_some(), "the leader still runs");
}

#[test]
fn a_leader_that_dies_of_a_revocation_is_not_reaped_as_gone() {
    // The revocation marks the session, signals, and records "revoked" once the leader
    // is gone; a reaper pass in between must leave the record to it.
    let s = sessions();
    let (mut child, rec) = led_session(&s, "root", "sshd");
    s.revoking.lock().unwrap().insert(rec.id.clone());
    end(&mut child);
    assert!(s.reap_once().is_empty());
    assert!(s.get(&rec.id).unwrap().unwrap().ended.is_none());
    // Once the revocation is over (say it failed), the reaper closes it as usual.
    s.revoking.lock().unwrap().remove(&rec.id);
    s.reap_once();
    let ended = s.get(&rec.id).unwrap().unwrap();
    assert!(ended.end_reason.starts_with("leader gone"), "{ended:?}");
}
