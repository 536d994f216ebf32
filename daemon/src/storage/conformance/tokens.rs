//! Hardware tokens in the store: imported once, assigned to one user at a time, their
//! HOTP counter kept across every way their device goes.

use super::{accept_as, watermarks, Run, SEQ};
use crate::otp::Oath;
use crate::storage::tokens::{
    NewToken, TokenAssigned, TokenImport, TokenResynced, TokenUnassigned,
};
use crate::storage::{Acceptance, DeviceAdded, Store};
use std::sync::atomic::Ordering;
use twofold_contract::limits::{DEVICE_KIND_HOTP_TOKEN, DEVICE_KIND_TOTP_TOKEN};

impl Run {
    fn serial(&self) -> String {
        format!("{}T{}", self.prefix, SEQ.fetch_add(1, Ordering::Relaxed))
    }

    fn new_token(&self, oath: Oath, counter: u64) -> NewToken {
        NewToken {
            serial: self.serial(),
            secret_sealed: vec![7, 7, 7],
            oath,
            counter,
            manufacturer: "Vendor".into(),
            model: "Fob".into(),
        }
    }

    fn the_watermark(&self, store: &dyn Store, user: &str, device: &str) -> Option<u64> {
        watermarks(store, user)
            .into_iter()
            .find(|(name, _)| name == device)
            .expect("the device is there")
            .1
    }

    /// Imported once (known serials left alone), within the cap, with their parameters.
    pub(super) fn tokens_are_imported_once_within_the_cap(&self, store: &dyn Store) {
        let hotp = Oath::new("SHA1", 6, 0).unwrap();
        let totp = Oath::new("SHA256", 8, 60).unwrap();
        let (fob, clock) = (self.new_token(hotp, 5), self.new_token(totp, 0));
        let ev = |at: i64| self.event("", at);
        let imported = store
            .import_tokens(&[fob.clone(), clock.clone()], u64::MAX, &ev(1000))
            .unwrap();
        assert_eq!(
            imported,
            TokenImport::Done {
                imported: 2,
                skipped: vec![]
            }
        );
        let third = self.new_token(hotp, 0);
        let again = store
            .import_tokens(&[fob.clone(), third], u64::MAX, &ev(1001))
            .unwrap();
        assert_eq!(
            again,
            TokenImport::Done {
                imported: 1,
                skipped: vec![fob.serial.clone()]
            }
        );
        let held = store.tokens().unwrap().len() as u64;
        assert!(held >= 3);
        let over = store
            .import_tokens(&[self.new_token(hotp, 0)], held, &ev(1002))
            .unwrap();
        assert_eq!(over, TokenImport::Full { room: 0 });
        assert_eq!(store.tokens().unwrap().len() as u64, held);
        let listed = store.token(&fob.serial).unwrap().unwrap();
        assert_eq!(
            (listed.kind.as_str(), listed.counter, listed.assigned_to),
            (DEVICE_KIND_HOTP_TOKEN, 5, None)
        );
        assert_eq!(listed.oath, hotp);
        let listed = store.token(&clock.serial).unwrap().unwrap();
        assert_eq!(
            (listed.kind.as_str(), listed.oath),
            (DEVICE_KIND_TOTP_TOKEN, totp)
        );
    }

    /// Assigned to one user at a time, starting at its counter; the counter moves with
    /// the codes accepted and stays when the device goes; resync moves it forward only;
    /// the last device is not unassigned.
    pub(super) fn tokens_keep_their_counters_across_assignments(&self, store: &dyn Store) {
        let hotp = Oath::new("SHA1", 6, 0).unwrap();
        let totp = Oath::new("SHA256", 8, 60).unwrap();
        let fob = self.new_token(hotp, 5);
        let clock = self.new_token(totp, 0);
        let third = self.new_token(hotp, 0);
        let ev = |user: &str, at: i64| self.event(user, at);
        let tokens = [fob.clone(), clock.clone(), third.clone()];
        store
            .import_tokens(&tokens, u64::MAX, &ev("", 1000))
            .unwrap();

        // Assigned to an enrolled user: a device named by the serial, from the counter.
        let alice = self.enrolled(store, "tokalice");
        let assign = |serial: &str, user: &str, max: u32, at: i64| {
            store
                .assign_token(serial, user, &[1], max, &ev(user, at))
                .unwrap()
        };
        assert_eq!(assign(&fob.serial, &alice, 1, 1100), TokenAssigned::Full);
        assert_eq!(
            assign(&fob.serial, &alice, 8, 1100),
            TokenAssigned::Assigned
        );
        assert_eq!(self.the_watermark(store, &alice, &fob.serial), Some(4));
        let bob = self.enrolled(store, "tokbob");
        assert_eq!(
            assign(&fob.serial, &bob, 8, 1101),
            TokenAssigned::AssignedTo(alice.clone())
        );
        assert_eq!(assign("nosuch", &bob, 8, 1101), TokenAssigned::UnknownToken);
        assert_eq!(
            self.add(store, &bob, &third.serial, 9, 10),
            DeviceAdded::Added
        );
        assert_eq!(
            assign(&third.serial, &bob, 8, 1102),
            TokenAssigned::NameTaken
        );

        // A code accepted moves the token's counter in the same transaction.
        assert!(accept_as(
            store,
            &alice,
            &fob.serial,
            Acceptance::Counter(7),
            &ev(&alice, 1200)
        ));
        let listed = store.token(&fob.serial).unwrap().unwrap();
        assert_eq!(
            (
                listed.counter,
                listed.assigned_to.as_deref(),
                listed.last_used_at
            ),
            (8, Some(alice.as_str()), Some(1200))
        );

        // Unassigned: the device goes, the counter stays; reassigned, it starts there.
        assert_eq!(
            store.unassign_token(&fob.serial, &ev("", 1300)).unwrap(),
            TokenUnassigned::Unassigned(alice.clone())
        );
        assert!(store
            .devices(&alice)
            .unwrap()
            .iter()
            .all(|d| d.name != fob.serial));
        assert_eq!(
            store.unassign_token(&fob.serial, &ev("", 1301)).unwrap(),
            TokenUnassigned::NotAssigned
        );
        assert_eq!(
            store.unassign_token("nosuch", &ev("", 1301)).unwrap(),
            TokenUnassigned::UnknownToken
        );
        let carol = self.user("tokcarol");
        assert!(store.user(&carol).unwrap().is_none());
        assert_eq!(
            assign(&fob.serial, &carol, 8, 1400),
            TokenAssigned::Assigned
        );
        assert!(store.user(&carol).unwrap().is_some(), "enrolled with it");
        assert_eq!(self.the_watermark(store, &carol, &fob.serial), Some(7));
        assert!(!accept_as(
            store,
            &carol,
            &fob.serial,
            Acceptance::Counter(7),
            &ev(&carol, 1401)
        ));
        assert_eq!(
            store.unassign_token(&fob.serial, &ev("", 1402)).unwrap(),
            TokenUnassigned::Last(carol.clone())
        );

        // Resync: forward only, the device's watermark with it.
        assert_eq!(
            store.resync_token(&fob.serial, 30, &ev("", 1500)).unwrap(),
            TokenResynced::Resynced
        );
        assert_eq!(self.the_watermark(store, &carol, &fob.serial), Some(30));
        assert_eq!(store.token(&fob.serial).unwrap().unwrap().counter, 31);
        assert_eq!(
            store.resync_token(&fob.serial, 20, &ev("", 1501)).unwrap(),
            TokenResynced::Overtaken
        );
        assert_eq!(
            store.resync_token("nosuch", 20, &ev("", 1501)).unwrap(),
            TokenResynced::UnknownToken
        );

        // The user's reset takes the device, not the counter.
        assert!(store.remove_user(&carol, &ev(&carol, 1600)).unwrap());
        let listed = store.token(&fob.serial).unwrap().unwrap();
        assert_eq!((listed.counter, listed.assigned_to), (31, None));

        // A TOTP token: the steps up to the assignment count as used.
        assert_eq!(
            assign(&clock.serial, &bob, 8, 6000),
            TokenAssigned::Assigned
        );
        assert_eq!(self.the_watermark(store, &bob, &clock.serial), Some(100));
    }
}
