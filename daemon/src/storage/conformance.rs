//! The storage test suite, generic over `&dyn Store`: every backend (SQLite here, in
//! the unit tests; PostgreSQL in `tests/tests/fleet.rs`, against a real server) must
//! pass the same checks, concurrency included. Test support only: it panics on the
//! first difference.
//!
//! User names carry a random prefix, so the suite may run on a store that holds other
//! data (or runs the suite concurrently).

use std::sync::atomic::{AtomicU32, Ordering};

mod tokens;

use super::{
    Acceptance, AuditEvent, AuthPass, DeviceAdded, DeviceRemoved, Pending, SessionRecord, Store,
    StoredBackupCode,
};
use crate::lockout::{LockoutPolicy, Source, Throttle};
use twofold_contract::limits::{DEVICE_KIND_TOTP_APP, FIRST_DEVICE};

/// Runs every check against `store`.
pub fn run_all(store: &dyn Store) {
    let run = Run {
        prefix: format!("c{:08x}", rand::random::<u32>()),
    };
    run.watermark_moves_forward_only(store);
    run.devices_have_their_own_watermarks(store);
    run.devices_are_added_and_removed_with_their_limits(store);
    run.backup_codes_are_single_use(store);
    run.enrollment_needs_the_same_unexpired_pending(store);
    run.failures_lock_per_source_and_success_clears(store);
    run.bypass_codes(store);
    run.first_seen_stays(store);
    run.remove_user_keeps_the_audit(store);
    run.audit_trail(store);
    run.sessions(store);
    run.passes_and_timeouts(store);
    run.one_of_many_concurrent_verifications_wins(store);
    run.concurrent_failures_all_count(store);
    run.ceilings_survive_success_and_idle_counters_expire(store);
    run.a_power_loss_fences_what_it_may_have_undone(store);
    run.tokens_are_imported_once_within_the_cap(store);
    run.tokens_keep_their_counters_across_assignments(store);
    // Last: it deletes every old audit entry of the store.
    run.audit_retention(store);
}

struct Run {
    prefix: String,
}

/// The sources of a login at the console.
pub(crate) fn local() -> Vec<Source> {
    vec![Source::in_a_row("local".into(), 5)]
}

/// Accepts the code of 30-second `step` of the user's `device` from a local login.
pub(crate) fn accept(
    store: &dyn Store,
    user: &str,
    device: &str,
    step: u64,
    ev: &AuditEvent,
) -> bool {
    accept_as(store, user, device, Acceptance::totp(step), ev)
}

/// Accepts the code `acceptance` describes of the user's `device` from a local login.
pub(crate) fn accept_as(
    store: &dyn Store,
    user: &str,
    device: &str,
    acceptance: Acceptance,
    ev: &AuditEvent,
) -> bool {
    store
        .accept_code(user, device, acceptance, &local(), ev)
        .unwrap()
}

/// The user's devices, oldest first: each one's name and watermark.
pub(crate) fn watermarks(store: &dyn Store, user: &str) -> Vec<(String, Option<u64>)> {
    store
        .devices(user)
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.last_step))
        .collect()
}

/// Enrolls `user` with one backup code (tag [9; 8], hash "h") and watermark 50; `ev`
/// is the audit entry of both steps.
pub(crate) fn enroll(store: &dyn Store, user: &str, ev: &AuditEvent) {
    let pending = Pending {
        secret_sealed: vec![1, 2, 3],
        expires_at: 2000,
        oath: crate::otp::Oath::APP,
    };
    store.begin_enrollment(user, &pending, ev).unwrap();
    let codes = vec![StoredBackupCode {
        tag: vec![9; 8],
        hash: "h".into(),
    }];
    assert!(store
        .confirm_enrollment(user, &Pending::sealed(vec![1, 2, 3]), Some(50), &codes, ev)
        .unwrap());
}

/// An audit entry about "alice" at `at`, for a backend's own unit tests.
#[cfg(test)]
pub(crate) fn alices_event(at: i64) -> AuditEvent {
    AuditEvent {
        at,
        user: "alice".into(),
        event: "test",
        ..Default::default()
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Run {
    fn user(&self, name: &str) -> String {
        format!(
            "{}{}{}",
            self.prefix,
            name,
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn event(&self, user: &str, at: i64) -> AuditEvent {
        AuditEvent {
            at,
            user: user.into(),
            event: "test",
            host: "conformance".into(),
            ..Default::default()
        }
    }

    /// An enrolled user (see [`enroll`]).
    fn enrolled(&self, store: &dyn Store, name: &str) -> String {
        let user = self.user(name);
        enroll(store, &user, &self.event(&user, 1000));
        user
    }

    /// The runs of the daemon: a clean stop or a crash of the daemon alone imposes no
    /// fence; an unclean stop on another boot fences every step accepted before, unless
    /// the store's acceptances were durable anyway (then there is none); a fence never
    /// goes down.
    fn a_power_loss_fences_what_it_may_have_undone(&self, store: &dyn Store) {
        let user = self.enrolled(store, "fenced");
        let now = crate::service::now();
        let step = crate::otp::step_at(now as u64);
        let before = store.replay_fence();
        store.begin_run("boot-a").unwrap();
        store.end_run().unwrap();
        assert_eq!(
            store.begin_run("boot-b").unwrap(),
            None,
            "after a clean stop"
        );
        let ev = self.event(&user, now);
        assert!(accept(store, &user, FIRST_DEVICE, step, &ev));
        assert_eq!(store.begin_run("boot-b").unwrap(), None, "the same boot");
        assert_eq!(store.replay_fence(), before);
        assert!(accept(store, &user, FIRST_DEVICE, step + 1, &ev));
        let imposed = store.begin_run("boot-c").unwrap();
        let fence = store.replay_fence();
        assert!(fence >= before, "{fence:?} < {before:?}");
        if fence != before {
            assert_eq!(imposed, fence);
        }
        // A store that fences at all fences the step accepted.
        if let Some(fence) = fence {
            assert!(
                fence > step,
                "fence {fence} below the accepted step {}",
                step + 1
            );
        }
        store.end_run().unwrap();
        assert_eq!(store.begin_run("boot-d").unwrap(), None);
        assert_eq!(store.replay_fence(), fence, "a fence stays");
        // Acceptances stay single-use across all of it.
        assert!(!accept(store, &user, FIRST_DEVICE, step + 1, &ev));
    }

    fn watermark_moves_forward_only(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "alice");
        let rec = store.user(&alice).unwrap().unwrap();
        assert_eq!(rec.enrolled_at, 1000);
        let devices = store.devices(&alice).unwrap();
        assert_eq!(devices.len(), 1);
        let first = &devices[0];
        assert_eq!(
            (first.name.as_str(), first.kind.as_str(), first.added_at),
            (FIRST_DEVICE, DEVICE_KIND_TOTP_APP, 1000)
        );
        assert_eq!((first.last_step, first.last_used_at), (Some(50), None));
        assert_eq!(first.secret_sealed, vec![1, 2, 3]);
        let ev = self.event(&alice, 1001);
        assert!(!accept(store, &alice, FIRST_DEVICE, 50, &ev));
        assert!(!accept(store, &alice, FIRST_DEVICE, 49, &ev));
        let mut ok = ev.clone();
        ok.service = "sshd".into();
        ok.rhost = "192.0.2.1".into();
        assert!(accept(store, &alice, FIRST_DEVICE, 51, &ok));
        assert!(!accept(store, &alice, FIRST_DEVICE, 51, &ev));
        let rec = store.user(&alice).unwrap().unwrap();
        let first = &store.devices(&alice).unwrap()[0];
        assert_eq!(
            (first.last_step, first.last_used_at),
            (Some(51), Some(1001))
        );
        assert_eq!(rec.last_used_at, Some(1001));
        assert_eq!(rec.last_method, "totp");
        assert_eq!(
            (rec.last_service.as_str(), rec.last_rhost.as_str()),
            ("sshd", "192.0.2.1")
        );
        let nobody = self.user("nobody");
        assert!(!accept(store, &nobody, FIRST_DEVICE, 99, &ev));
        assert!(store.user(&nobody).unwrap().is_none());
    }

    /// Adds the device `name` (sealed secret `secret`, watermark `step`) through a
    /// pending enrollment, as `devices add` does.
    fn add(&self, store: &dyn Store, user: &str, name: &str, secret: u8, step: u64) -> DeviceAdded {
        let pending = Pending {
            secret_sealed: vec![secret],
            expires_at: 2000,
            oath: crate::otp::Oath::APP,
        };
        let ev = self.event(user, 1100);
        store.begin_enrollment(user, &pending, &ev).unwrap();
        store
            .add_device(
                user,
                name,
                &Pending::sealed(vec![secret]),
                Some(step),
                8,
                &ev,
            )
            .unwrap()
    }

    /// Each device has its own watermark: a step used on one is still free on another,
    /// and never twice on the same.
    fn devices_have_their_own_watermarks(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "twodev");
        assert_eq!(self.add(store, &alice, "spare", 4, 40), DeviceAdded::Added);
        let both = |first: u64, spare: u64| {
            [
                (FIRST_DEVICE.to_string(), Some(first)),
                ("spare".to_string(), Some(spare)),
            ]
        };
        assert_eq!(watermarks(store, &alice), both(50, 40));
        let ev = self.event(&alice, 1200);
        assert!(accept(store, &alice, "spare", 45, &ev));
        assert!(!accept(store, &alice, "spare", 45, &ev));
        assert!(!accept(store, &alice, FIRST_DEVICE, 50, &ev));
        assert!(accept(store, &alice, FIRST_DEVICE, 51, &ev));
        assert!(accept(store, &alice, "spare", 51, &ev));
        assert!(!accept(store, &alice, "gone", 99, &ev));
        assert_eq!(watermarks(store, &alice), both(51, 51));
        // A new enrollment replaces every device.
        let bob_like = Pending {
            secret_sealed: vec![5],
            expires_at: 2000,
            oath: crate::otp::Oath::APP,
        };
        store.begin_enrollment(&alice, &bob_like, &ev).unwrap();
        assert!(store
            .confirm_enrollment(&alice, &Pending::sealed(vec![5]), Some(60), &[], &ev)
            .unwrap());
        let devices = store.devices(&alice).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(
            (
                devices[0].name.as_str(),
                devices[0].secret_sealed.as_slice()
            ),
            (FIRST_DEVICE, &[5u8][..])
        );
    }

    /// Adding needs an enrolled user, a free name, room and the pending secret; removing
    /// keeps the last device; a removed or reset user's devices go.
    fn devices_are_added_and_removed_with_their_limits(&self, store: &dyn Store) {
        let nobody = self.user("nodev");
        assert_eq!(
            self.add(store, &nobody, "phone", 4, 1),
            DeviceAdded::NotEnrolled
        );
        let alice = self.enrolled(store, "limits");
        assert_eq!(
            self.add(store, &alice, FIRST_DEVICE, 4, 1),
            DeviceAdded::NameTaken
        );
        let ev = self.event(&alice, 1100);
        assert_eq!(
            store
                .add_device(&alice, "phone", &Pending::sealed(vec![77]), Some(1), 8, &ev)
                .unwrap(),
            DeviceAdded::NoPending
        );
        for i in 1..8u8 {
            assert_eq!(
                self.add(store, &alice, &format!("d{i}"), 10 + i, 1),
                DeviceAdded::Added
            );
        }
        assert_eq!(self.add(store, &alice, "d8", 30, 1), DeviceAdded::Full);
        assert!(
            store.pending(&alice, 0).unwrap().is_some(),
            "a refused add keeps the pending"
        );
        assert_eq!(store.devices(&alice).unwrap().len(), 8);
        assert_eq!(
            store.remove_device(&alice, "nope", &ev).unwrap(),
            DeviceRemoved::Unknown
        );
        for i in 1..8u8 {
            assert_eq!(
                store.remove_device(&alice, &format!("d{i}"), &ev).unwrap(),
                DeviceRemoved::Removed
            );
        }
        assert_eq!(
            store.remove_device(&alice, FIRST_DEVICE, &ev).unwrap(),
            DeviceRemoved::Last
        );
        assert_eq!(store.devices(&alice).unwrap().len(), 1);
        assert_eq!(
            store.remove_device(&nobody, FIRST_DEVICE, &ev).unwrap(),
            DeviceRemoved::Unknown
        );
        let audited = store.audit_log(Some(&alice), 1100, 100).unwrap().len();
        // The begins (name taken, 7 added, full), the 7 additions, the 7 removals.
        assert_eq!(audited, 9 + 7 + 7);
        assert!(store.remove_user(&alice, &ev).unwrap());
        assert!(store.devices(&alice).unwrap().is_empty());
    }

    fn backup_codes_are_single_use(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "alice");
        assert_eq!(store.backup_codes_left(&alice).unwrap(), 1);
        let cands = store.backup_code_candidates(&alice, &[9; 8]).unwrap();
        assert_eq!(cands.len(), 1);
        assert_eq!(cands[0].1, "h");
        assert!(store
            .backup_code_candidates(&alice, &[8; 8])
            .unwrap()
            .is_empty());
        let ev = self.event(&alice, 1);
        assert_eq!(
            store
                .consume_backup_code(&alice, cands[0].0, &local(), &ev)
                .unwrap(),
            Some(0)
        );
        assert_eq!(
            store
                .consume_backup_code(&alice, cands[0].0, &local(), &ev)
                .unwrap(),
            None
        );
        assert!(store
            .backup_code_candidates(&alice, &[9; 8])
            .unwrap()
            .is_empty());
        assert_eq!(
            store.user(&alice).unwrap().unwrap().last_method,
            "backup_code"
        );
        // Another user cannot consume alice's code by id.
        let bob = self.enrolled(store, "bob");
        let bob_code = store.backup_code_candidates(&bob, &[9; 8]).unwrap()[0].0;
        assert_eq!(
            store
                .consume_backup_code(&alice, bob_code, &local(), &ev)
                .unwrap(),
            None
        );
        // A new set replaces the old one whole.
        let new: Vec<StoredBackupCode> = (0..10u8)
            .map(|i| StoredBackupCode {
                tag: vec![i; 8],
                hash: format!("h{i}"),
            })
            .collect();
        assert!(store.replace_backup_codes(&bob, &new, &ev).unwrap());
        assert_eq!(store.backup_codes_left(&bob).unwrap(), 10);
        assert!(store
            .backup_code_candidates(&bob, &[9; 8])
            .unwrap()
            .iter()
            .all(|(_, h)| h == "h9"));
        let nobody = self.user("nobody");
        assert!(!store.replace_backup_codes(&nobody, &new, &ev).unwrap());
        assert_eq!(store.backup_codes_left(&nobody).unwrap(), 0);
    }

    fn enrollment_needs_the_same_unexpired_pending(&self, store: &dyn Store) {
        let bob = self.user("bob");
        let pending = Pending {
            secret_sealed: vec![7],
            expires_at: 100,
            oath: crate::otp::Oath::APP,
        };
        store
            .begin_enrollment(&bob, &pending, &self.event(&bob, 10))
            .unwrap();
        let got = store.pending(&bob, 99).unwrap().unwrap();
        assert_eq!((got.secret_sealed, got.expires_at), (vec![7], 100));
        assert!(store.pending(&bob, 100).unwrap().is_none());
        // Confirms the pending enrollment of sealed secret `[secret]` at `at`.
        let confirm = |secret: u8, at: i64| {
            store
                .confirm_enrollment(
                    &bob,
                    &Pending::sealed(vec![secret]),
                    Some(1),
                    &[],
                    &self.event(&bob, at),
                )
                .unwrap()
        };
        assert!(!confirm(8, 20));
        assert!(!confirm(7, 100));
        assert!(store.user(&bob).unwrap().is_none());
        assert!(confirm(7, 99));
        assert!(store.pending(&bob, 0).unwrap().is_none(), "pending used up");
        assert!(!confirm(7, 99));
        assert_eq!(store.devices(&bob).unwrap()[0].last_step, Some(1));
    }

    fn failures_lock_per_source_and_success_clears(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "alice");
        let policy = LockoutPolicy::default();
        let mut t = Throttle::default();
        for _ in 0..5 {
            t = store
                .record_failure(&alice, &local(), &policy, &self.event(&alice, 500))
                .unwrap();
        }
        assert_eq!(t.locked_for(500), Some(30));
        assert_eq!(store.throttle(&alice, &local()).unwrap(), t);
        let remote = policy.sources("203.0.113.9", "ssh", "host");
        assert_eq!(
            store.throttle(&alice, &remote).unwrap(),
            Throttle::default(),
            "another source is not locked"
        );
        let r = store
            .record_failure(&alice, &remote, &policy, &self.event(&alice, 500))
            .unwrap();
        assert_eq!(r.failures, 1);
        let summary = store.throttle_summary(&alice).unwrap();
        assert_eq!(summary.locked_until, 530);
        assert_eq!(
            summary.failures, 1,
            "the rhost counter; not again its ceiling"
        );
        let log = store.audit_log(Some(&alice), 0, 100).unwrap();
        assert!(log.iter().any(|e| e.event == "lockout"
            && e.detail == "local locked for 30 s"
            && e.host == "conformance"));
        assert!(accept(
            store,
            &alice,
            FIRST_DEVICE,
            60,
            &self.event(&alice, 600)
        ));
        assert_eq!(
            store.throttle(&alice, &local()).unwrap(),
            Throttle::default()
        );
        assert_eq!(store.throttle(&alice, &remote).unwrap().failures, 1);
        assert!(store
            .clear_lockouts(&alice, &self.event(&alice, 601))
            .unwrap());
        assert_eq!(store.throttle_summary(&alice).unwrap(), Throttle::default());
        assert!(!store
            .clear_lockouts(&alice, &self.event(&alice, 602))
            .unwrap());
    }

    fn bypass_codes(&self, store: &dyn Store) {
        let carol = self.user("carol");
        store
            .set_bypass(&carol, "old", 500, &self.event(&carol, 100))
            .unwrap();
        store
            .set_bypass(&carol, "hb", 500, &self.event(&carol, 100))
            .unwrap();
        assert_eq!(store.bypass(&carol, 499).unwrap().as_deref(), Some("hb"));
        assert_eq!(store.bypass(&carol, 500).unwrap(), None);
        assert!(!store
            .consume_bypass(&carol, "old", &local(), &self.event(&carol, 200))
            .unwrap());
        assert!(!store
            .consume_bypass(&carol, "hb", &local(), &self.event(&carol, 500))
            .unwrap());
        assert!(store
            .consume_bypass(&carol, "hb", &local(), &self.event(&carol, 200))
            .unwrap());
        assert!(!store
            .consume_bypass(&carol, "hb", &local(), &self.event(&carol, 200))
            .unwrap());
        assert_eq!(store.bypass(&carol, 0).unwrap(), None);
    }

    fn first_seen_stays(&self, store: &dyn Store) {
        let dave = self.user("dave");
        assert_eq!(store.first_seen(&dave, 1000).unwrap(), 1000);
        assert_eq!(store.first_seen(&dave, 2000).unwrap(), 1000);
        assert!(store.known_users().unwrap().contains(&dave));
    }

    fn remove_user_keeps_the_audit(&self, store: &dyn Store) {
        let erin = self.enrolled(store, "erin");
        store
            .record_failure(
                &erin,
                &local(),
                &LockoutPolicy::default(),
                &self.event(&erin, 10),
            )
            .unwrap();
        store
            .set_bypass(&erin, "b", 9999, &self.event(&erin, 10))
            .unwrap();
        assert!(store.known_users().unwrap().contains(&erin));
        let mut gone = self.event(&erin, 11);
        gone.event = "disabled";
        assert!(store.remove_user(&erin, &gone).unwrap());
        assert!(!store.remove_user(&erin, &gone).unwrap());
        assert!(store.user(&erin).unwrap().is_none());
        assert_eq!(store.backup_codes_left(&erin).unwrap(), 0);
        assert_eq!(store.throttle_summary(&erin).unwrap(), Throttle::default());
        assert_eq!(store.bypass(&erin, 0).unwrap(), None);
        assert!(!store.known_users().unwrap().contains(&erin));
        let log = store.audit_log(Some(&erin), 0, 100).unwrap();
        assert_eq!(log[0].event, "disabled");
    }

    fn audit_trail(&self, store: &dyn Store) {
        let frank = self.user("frank");
        for (i, offset) in [(0, Some(-1)), (1, None), (2, Some(0)), (3, Some(1))] {
            let mut ev = self.event(&frank, 100 + i);
            ev.event = "verify_ok";
            ev.actor_uid = Some(1000);
            ev.actor_pid = Some(4242);
            ev.service = "sshd".into();
            ev.tty = "ssh".into();
            ev.rhost = "198.51.100.4".into();
            ev.detail = format!("n={i}");
            ev.step_offset = offset;
            ev.host = format!("host{i}");
            store
                .begin_enrollment(
                    &frank,
                    &Pending {
                        secret_sealed: vec![1],
                        expires_at: 0,
                        oath: crate::otp::Oath::APP,
                    },
                    &ev,
                )
                .unwrap();
        }
        let log = store.audit_log(Some(&frank), 0, 100).unwrap();
        assert_eq!(log.len(), 4);
        let e = &log[0];
        assert_eq!(
            (e.at, e.actor_uid, e.actor_pid, e.event.as_str()),
            (103, 1000, 4242, "verify_ok")
        );
        assert_eq!(
            (e.service.as_str(), e.tty.as_str(), e.rhost.as_str()),
            ("sshd", "ssh", "198.51.100.4")
        );
        assert_eq!((e.detail.as_str(), e.host.as_str()), ("n=3", "host3"));
        assert_eq!(store.audit_log(Some(&frank), 102, 100).unwrap().len(), 2);
        assert_eq!(
            store.audit_log(Some(&frank), 0, 1).unwrap()[0].detail,
            "n=3"
        );
        let everyone = store.audit_log(None, 0, 100_000).unwrap();
        assert!(everyone.iter().filter(|e| e.user == frank).count() == 4);
        assert!(everyone.iter().any(|e| e.user != frank));
        let unknown = store.audit_log(Some(&self.user("nobody")), 0, 10).unwrap();
        assert!(unknown.is_empty());
        // An event alone, changing nothing else.
        let mut alone = self.event(&frank, 150);
        alone.event = "trusted_network";
        alone.rhost = "192.0.2.8".into();
        alone.detail = "192.0.2.0/24".into();
        store.append_audit(&alone).unwrap();
        let e = store.audit_log(Some(&frank), 150, 10).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (
                e[0].at,
                e[0].event.as_str(),
                e[0].rhost.as_str(),
                e[0].detail.as_str()
            ),
            (150, "trusted_network", "192.0.2.8", "192.0.2.0/24")
        );
        let anonymous = {
            let mut ev = self.event(&frank, 200);
            ev.actor_uid = None;
            ev.actor_pid = None;
            store.clear_lockouts(&frank, &ev).unwrap();
            store.audit_log(Some(&frank), 200, 1).unwrap().remove(0)
        };
        assert_eq!((anonymous.actor_uid, anonymous.actor_pid), (-1, -1));
        let offsets = |limit| -> Vec<(Option<String>, i32)> {
            let offsets = store.recent_step_offsets(&frank, limit).unwrap();
            offsets.into_iter().map(|o| (o.device, o.offset)).collect()
        };
        assert_eq!(offsets(10), vec![(None, 1), (None, 0), (None, -1)]);
        assert_eq!(offsets(2), vec![(None, 1), (None, 0)]);
        // An accepted code's entry names its device.
        let mut named = self.event(&frank, 300);
        named.event = "verify_ok";
        named.detail = "device: spare phone".into();
        named.step_offset = Some(2);
        store.append_audit(&named).unwrap();
        assert_eq!(offsets(2), vec![(Some("spare phone".into()), 2), (None, 1)]);
    }

    fn session(&self, id: &str, user: &str, host: &str, started: i64) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            user: user.into(),
            service: "sshd".into(),
            tty: "ssh".into(),
            rhost: "192.0.2.7".into(),
            ruser: "".into(),
            host: host.into(),
            boot_id: "boot".into(),
            leader_pid: 42,
            leader_start: 7_000_000_000,
            logind_session: "c1".into(),
            auth_method: "totp".into(),
            auth_at: started - 1,
            started,
            location: "local".into(),
            ..Default::default()
        }
    }

    fn sessions(&self, store: &dyn Store) {
        let alice = self.user("alice");
        let (a1, b2, c3) = (
            format!("{}a1", self.prefix),
            format!("{}b2", self.prefix),
            format!("{}c3", self.prefix),
        );
        let ha = format!("{}-hostA", self.prefix);
        let hb = format!("{}-hostB", self.prefix);
        let ev = |at| self.event(&alice, at);
        let first = self.session(&a1, &alice, &ha, 10);
        assert!(store.insert_session(&first, &ev(10)).unwrap());
        assert!(!store
            .insert_session(&self.session(&a1, &alice, &ha, 11), &ev(11))
            .unwrap());
        assert!(store
            .insert_session(&self.session(&b2, &alice, &hb, 20), &ev(20))
            .unwrap());
        assert!(store
            .insert_session(&self.session(&c3, &alice, &ha, 30), &ev(30))
            .unwrap());
        assert_eq!(store.session(&a1).unwrap().unwrap(), first);
        assert_eq!(store.live_session_count(&alice).unwrap(), 3);
        let ids = |v: Vec<SessionRecord>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.user_sessions(&alice, None).unwrap()),
            vec![c3.clone(), b2.clone(), a1.clone()],
            "newest first"
        );
        let mut on_a = ids(store.host_live_sessions(&ha).unwrap());
        on_a.sort();
        assert_eq!(on_a, vec![a1.clone(), c3.clone()]);
        // Revocation asked by another host: recorded in the row, for its host's daemon.
        assert!(store
            .request_revoke(&b2, "revoked by uid 0 from A", &ev(40))
            .unwrap());
        let b = store.host_live_sessions(&hb).unwrap();
        assert_eq!(b[0].revoke_requested, "revoked by uid 0 from A");
        assert!(store
            .end_session(&b2, 41, "revoked (SIGHUP)", &ev(41))
            .unwrap());
        assert!(!store.end_session(&b2, 42, "again", &ev(42)).unwrap());
        assert!(!store.request_revoke(&b2, "late", &ev(43)).unwrap());
        assert!(!store.request_revoke("nosuchsession", "x", &ev(43)).unwrap());
        let b = store.session(&b2).unwrap().unwrap();
        assert_eq!(
            (b.ended, b.end_reason.as_str()),
            (Some(41), "revoked (SIGHUP)")
        );
        assert!(store.host_live_sessions(&hb).unwrap().is_empty());
        assert_eq!(ids(store.user_sessions(&alice, None).unwrap()).len(), 2);
        assert_eq!(
            ids(store.user_sessions(&alice, Some(41)).unwrap()),
            vec![c3.clone(), b2.clone(), a1.clone()]
        );
        assert_eq!(ids(store.user_sessions(&alice, Some(42)).unwrap()).len(), 2);
        store
            .set_session_place(&a1, "client.example.org", "Paris, France", "FR")
            .unwrap();
        store.mark_session_warned(&a1).unwrap();
        let a = store.session(&a1).unwrap().unwrap();
        assert_eq!(
            (
                a.rhost_name.as_str(),
                a.location.as_str(),
                a.country_code.as_str(),
                a.warned
            ),
            ("client.example.org", "Paris, France", "FR", true)
        );
        store.purge_sessions(0, 42).unwrap();
        assert!(
            store.session(&b2).unwrap().is_none(),
            "ended long ago: purged"
        );
        assert!(store.session(&a1).unwrap().is_some(), "live: kept");
        let log = store.audit_log(Some(&alice), 0, 100).unwrap();
        assert_eq!(log.len(), 5, "3 opened, 1 revoke request, 1 ended");
    }

    fn passes_and_timeouts(&self, store: &dyn Store) {
        let alice = self.user("alice");
        let pass = AuthPass {
            user: alice.clone(),
            service: "sudo".into(),
            tty: "/dev/pts/1".into(),
            rhost: "".into(),
            at: 100,
            method: "totp".into(),
            caller_pid: 4000,
            caller_ppid: 3999,
            tty_sid: 5,
            tty_sid_start: 99,
            host: "h".into(),
            boot_id: "b".into(),
        };
        let later = AuthPass {
            at: 150,
            method: "grace".into(),
            ..pass.clone()
        };
        store.record_auth_pass(&pass).unwrap();
        store.record_auth_pass(&later).unwrap();
        assert_eq!(
            store.auth_passes(&alice, 50).unwrap(),
            vec![later.clone(), pass.clone()]
        );
        assert_eq!(store.auth_passes(&alice, 101).unwrap(), vec![later]);
        store.purge_sessions(120, 0).unwrap();
        assert_eq!(store.auth_passes(&alice, 0).unwrap().len(), 1);
        assert_eq!(
            store
                .forget_auth_passes(&alice, &self.event(&alice, 1))
                .unwrap(),
            1
        );
        assert!(store.auth_passes(&alice, 0).unwrap().is_empty());
        assert_eq!(store.session_timeout(&alice).unwrap(), None);
        store
            .set_session_timeout(&alice, Some(600), &self.event(&alice, 1))
            .unwrap();
        store
            .set_session_timeout(&alice, Some(900), &self.event(&alice, 1))
            .unwrap();
        assert_eq!(store.session_timeout(&alice).unwrap(), Some(900));
        assert!(store
            .session_timeouts()
            .unwrap()
            .contains(&(alice.clone(), 900)));
        store
            .set_session_timeout(&alice, None, &self.event(&alice, 1))
            .unwrap();
        assert_eq!(store.session_timeout(&alice).unwrap(), None);
    }

    /// Many verifications of one code at once (threads, one connection each where the
    /// backend pools): exactly one moves the watermark.
    fn one_of_many_concurrent_verifications_wins(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "race");
        let wins = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for step in 51..=60 {
                        if accept(store, &alice, FIRST_DEVICE, step, &self.event(&alice, 1)) {
                            wins.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        // Each step can be won once; every thread tries every step in order.
        let wins = wins.into_inner();
        assert!((1..=10).contains(&wins), "{wins} wins");
        assert_eq!(store.devices(&alice).unwrap()[0].last_step, Some(60));
        let oks = store
            .audit_log(Some(&alice), 0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "test" && e.at == 1)
            .count();
        assert_eq!(oks as u32, wins, "one audit entry per accepted step");
        let code = store.backup_code_candidates(&alice, &[9; 8]).unwrap()[0].0;
        let used = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    if store
                        .consume_backup_code(&alice, code, &local(), &self.event(&alice, 2))
                        .unwrap()
                        .is_some()
                    {
                        used.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(used.into_inner(), 1, "a backup code is used once");
    }

    /// Failures recorded at once are all counted (no lost update of the counters).
    fn concurrent_failures_all_count(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "guess");
        let sources = vec![
            Source::in_a_row("rhost:203.0.113.1".into(), 1000),
            Source::in_a_row("remote".into(), 1000),
        ];
        let policy = LockoutPolicy::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..5 {
                        store
                            .record_failure(&alice, &sources, &policy, &self.event(&alice, 5))
                            .unwrap();
                    }
                });
            }
        });
        let t = store.throttle(&alice, &sources).unwrap();
        assert_eq!(t.failures, 40);
        assert_eq!(store.throttle_summary(&alice).unwrap().failures, 80);
    }
}

impl Run {
    /// A success clears the source's counter but not the ceiling; counters idle for
    /// long and not locked are purged, the others stay.
    fn ceilings_survive_success_and_idle_counters_expire(&self, store: &dyn Store) {
        let alice = self.enrolled(store, "ceiling");
        let policy = LockoutPolicy::default();
        let tty = |n: u32| policy.sources("", &format!("/dev/pts/{n}"), "host");
        // 7 failures from 7 terminals: no terminal is locked, the ceiling not yet.
        for n in 0..7 {
            let t = store
                .record_failure(&alice, &tty(n), &policy, &self.event(&alice, 1000))
                .unwrap();
            assert_eq!(t.locked_for(1000), None);
        }
        assert!(store
            .accept_code(
                &alice,
                FIRST_DEVICE,
                Acceptance::totp(60),
                &tty(0),
                &self.event(&alice, 1001)
            )
            .unwrap());
        // The 8th failure, from yet another terminal, reaches the ceiling.
        let t = store
            .record_failure(&alice, &tty(100), &policy, &self.event(&alice, 1002))
            .unwrap();
        assert!(t.locked_for(1002).is_some(), "{t:?}");
        assert!(store
            .throttle(&alice, &tty(200))
            .unwrap()
            .locked_for(1002)
            .is_some());
        let log = store.audit_log(Some(&alice), 0, 100).unwrap();
        assert!(
            log.iter()
                .any(|e| e.event == "lockout" && e.detail.starts_with("ceiling:local")),
            "{log:?}"
        );
        assert_eq!(
            store.throttle_summary(&alice).unwrap().failures,
            7,
            "six terminals' failures and the last one's, not again the ceiling's"
        );
        // A remote source is not under the local ceiling.
        let remote = policy.sources("203.0.113.9", "ssh", "host");
        assert_eq!(
            store.throttle(&alice, &remote).unwrap(),
            Throttle::default()
        );
        store
            .record_failure(&alice, &remote, &policy, &self.event(&alice, 5000))
            .unwrap();

        // Purge at a time when all but the remote counters (updated at 5000) are idle:
        // the ceiling, regained by then, goes too.
        let later = 1002 + policy.idle_lifetime();
        let purged = store.purge_throttle(later, 4000).unwrap();
        assert!(purged >= 7, "{purged}");
        assert_eq!(
            store.throttle(&alice, &tty(100)).unwrap(),
            Throttle::default()
        );
        assert_eq!(store.throttle(&alice, &remote).unwrap().failures, 1);
        // A locked counter stays, however idle.
        let bob = self.user("bob");
        for _ in 0..5 {
            store
                .record_failure(&bob, &local(), &policy, &self.event(&bob, 10))
                .unwrap();
        }
        store.purge_throttle(20, 4000).unwrap();
        assert_eq!(
            store.throttle(&bob, &local()).unwrap().locked_for(20),
            Some(20)
        );
    }

    /// Old audit entries go, then the oldest beyond the cap.
    fn audit_retention(&self, store: &dyn Store) {
        let gina = self.user("gina");
        let write = |at: i64, n: u32| {
            let mut ev = self.event(&gina, at);
            ev.detail = format!("n={n}");
            store.first_seen(&gina, at).unwrap();
            store.clear_lockouts(&gina, &ev).unwrap();
        };
        for n in 0..3 {
            write(-1000 + i64::from(n), n);
        }
        let recent = 2_000_000_000;
        for n in 3..8 {
            write(recent + i64::from(n), n);
        }
        assert_eq!(
            store.audit_log(Some(&gina), i64::MIN, 100).unwrap().len(),
            8
        );
        let deleted = store.purge_audit(-900, 1_000_000_000).unwrap();
        assert!(deleted >= 3, "{deleted}");
        let left = store.audit_log(Some(&gina), i64::MIN, 100).unwrap();
        assert_eq!(left.len(), 5, "only the old entries go");
        assert!(left.iter().all(|e| e.at >= recent));
        // The cap keeps the newest entries of the whole trail.
        store.purge_audit(i64::MIN, 2).unwrap();
        let all = store.audit_log(None, i64::MIN, 100).unwrap();
        let details: Vec<&str> = all.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(details, ["n=7", "n=6"]);
        assert_eq!(store.purge_audit(i64::MIN, 2).unwrap(), 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_conforms() {
        let store = crate::storage::sqlite::SqliteStore::in_memory();
        super::run_all(&store);
    }
}
