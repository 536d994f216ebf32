//! Several devices per user: each of a user's authenticators has its own secret and
//! replay watermark (see `Store::devices`); a code of any of them passes a login. Adding
//! one reuses the enrollment's pending secret, and needs proof from a device the user
//! has already (or a backup code); removing one needs proof from another (or a backup
//! code); the last one is not removed, that is `Disable`.

use twofold_contract::{limits, DeviceInfo, Enrollment, OathParams, TwofoldError};

use super::{internal, not_enrolled, Service, RECENT_OFFSETS};
use crate::authz::Grant;
use crate::logging::safe;
use crate::storage::{DeviceAdded, DeviceRemoved};

impl Service {
    /// `ListDevices`: name, kind, parameters, when added and last used, and its clock's
    /// recent offsets; never a secret.
    pub fn list_devices(&self, grant: &Grant) -> Result<Vec<DeviceInfo>, TwofoldError> {
        let user = grant.user();
        let devices = self.store.devices(user).map_err(internal)?;
        let offsets = self
            .store
            .recent_step_offsets(user, RECENT_OFFSETS * limits::MAX_DEVICES)
            .map_err(internal)?;
        Ok(devices
            .into_iter()
            .map(|d| {
                let params = d.oath.params(0);
                let recent_step_offsets = offsets
                    .iter()
                    .filter(|o| o.device.as_deref() == Some(d.name.as_str()))
                    .map(|o| o.offset)
                    .take(RECENT_OFFSETS as usize)
                    .collect();
                DeviceInfo {
                    name: d.name,
                    kind: d.kind,
                    added: d.added_at,
                    last_used: d.last_used_at.unwrap_or(0),
                    algorithm: params.algorithm,
                    digits: params.digits,
                    period: params.period,
                    recent_step_offsets,
                }
            })
            .collect())
    }

    /// `AddDeviceBegin`: a new pending secret for device `name` of an enrolled user,
    /// once `proof` (a code of one of their devices or a backup code) passed.
    pub fn add_device_begin(
        &self,
        grant: &Grant,
        name: &str,
        issuer: &str,
        proof: &str,
        oath: &OathParams,
    ) -> Result<Enrollment, TwofoldError> {
        let user = grant.user();
        limits::device_name(name)?;
        let oath = crate::otp::Oath::enrolled(oath)?;
        let issuer = if issuer.is_empty() {
            self.hostname.as_str()
        } else {
            issuer
        };
        limits::issuer(issuer)?;
        if self.store.user(user).map_err(internal)?.is_none() {
            return Err(TwofoldError::NotEnrolled(format!(
                "{} has not turned on two-factor authentication; the first device is \
                 set up with `twofold enroll`",
                safe(user)
            )));
        }
        // Refused before any proof is spent on it.
        self.room_for(user, name)?;
        if grant.proof_required() && proof.trim().is_empty() {
            // As `EnrollBegin` answers a re-enrollment without proof: the client asks.
            return Err(TwofoldError::AlreadyEnrolled(format!(
                "{} is enrolled already; adding a device needs a current code from one of \
                 the devices or a backup code",
                safe(user)
            )));
        }
        self.require_proof(grant, proof)?;
        self.new_pending_secret(grant, issuer, &format!(" device={name}"), oath)
    }

    /// That the user has no device `name` and room for one more.
    fn room_for(&self, user: &str, name: &str) -> Result<(), TwofoldError> {
        let devices = self.store.devices(user).map_err(internal)?;
        if devices.iter().any(|d| d.name == name) {
            return Err(name_taken(name));
        }
        if devices.len() >= limits::MAX_DEVICES as usize {
            return Err(too_many());
        }
        Ok(())
    }

    /// `AddDeviceConfirm`: the first code of the pending secret makes it device `name`.
    pub fn add_device_confirm(
        &self,
        grant: &Grant,
        name: &str,
        code: &str,
    ) -> Result<(), TwofoldError> {
        let user = grant.user();
        limits::device_name(name)?;
        let again = format!("twofold devices add {name}");
        let (pending, step) = self.pending_proven(user, code, &again)?;
        let mut event = self.event(grant, "device_added");
        event.detail = format!("device: {name}");
        let added = self
            .store
            .add_device(
                user,
                name,
                &pending,
                Some(step),
                limits::MAX_DEVICES,
                &event,
            )
            .map_err(internal)?;
        match added {
            DeviceAdded::Added => {
                log::info!("device {name} added for {}", safe(user));
                Ok(())
            }
            DeviceAdded::NoPending => Err(TwofoldError::NoPendingEnrollment(format!(
                "The new device's secret was replaced or expired meanwhile; run `{again}` again."
            ))),
            DeviceAdded::NotEnrolled => Err(not_enrolled(user)),
            DeviceAdded::NameTaken => Err(name_taken(name)),
            DeviceAdded::Full => Err(too_many()),
        }
    }

    /// `RemoveDevice`: device `name` goes, with its secret, once `proof` (a code of
    /// another device or a backup code) passed; never the last one.
    pub fn remove_device(
        &self,
        grant: &Grant,
        name: &str,
        proof: &str,
    ) -> Result<(), TwofoldError> {
        let user = grant.user();
        limits::device_name(name)?;
        let devices = self.store.devices(user).map_err(internal)?;
        if devices.is_empty() {
            return Err(not_enrolled(user));
        }
        if !devices.iter().any(|d| d.name == name) {
            return Err(unknown_device(name));
        }
        if devices.len() == 1 {
            return Err(last_device(name));
        }
        if grant.proof_required() && proof.trim().is_empty() {
            return Err(TwofoldError::InvalidArgument(format!(
                "Removing {name} needs a current code from another of your devices, or a \
                 backup code."
            )));
        }
        self.require_proof_except(grant, proof, Some(name))?;
        let mut event = self.event(grant, "device_removed");
        event.detail = format!("device: {name}");
        match self
            .store
            .remove_device(user, name, &event)
            .map_err(internal)?
        {
            DeviceRemoved::Removed => {
                log::info!("device {name} removed for {}", safe(user));
                Ok(())
            }
            DeviceRemoved::Unknown => Err(unknown_device(name)),
            DeviceRemoved::Last => Err(last_device(name)),
        }
    }
}

fn name_taken(name: &str) -> TwofoldError {
    TwofoldError::InvalidArgument(format!(
        "You have a device named {name} already; choose another name, or remove it first."
    ))
}

fn too_many() -> TwofoldError {
    TwofoldError::InvalidArgument(format!(
        "You have {} devices, the most allowed; remove one first (`twofold devices remove NAME`).",
        limits::MAX_DEVICES
    ))
}

fn unknown_device(name: &str) -> TwofoldError {
    TwofoldError::InvalidArgument(format!(
        "You have no device named {name}; `twofold devices` lists them."
    ))
}

fn last_device(name: &str) -> TwofoldError {
    TwofoldError::InvalidArgument(format!(
        "{name} is your only device: removing it would turn two-factor authentication off. \
         To do that, use `twofold disable`."
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use twofold_contract::{limits, method, OathParams, TwofoldError};

    use super::super::tests::{code_at, enroll, owner, service};
    use super::super::{now, Service};
    use crate::authz::Grant;
    use crate::otp;

    /// Adds device `name` for `user` as its owner, proven by `proof`; its secret.
    fn add(svc: &Service, user: &str, name: &str, proof: &str) -> Result<String, TwofoldError> {
        let e = svc.add_device_begin(&owner(user), name, "", proof, &OathParams::app())?;
        let step = otp::step_at(now() as u64) - 1;
        svc.add_device_confirm(&owner(user), name, &code_at(&e.secret, step))?;
        Ok(e.secret)
    }

    #[test]
    fn two_devices_pass_independently_and_each_step_once() {
        let svc = service();
        let (first, codes) = enroll(&svc, "alice");
        let root = Grant::in_process_root("alice");
        let ctx = HashMap::new();
        let step = otp::step_at(now() as u64);
        assert!(matches!(
            add(&svc, "alice", "spare", ""),
            Err(TwofoldError::AlreadyEnrolled(_))
        ));
        assert!(matches!(
            add(&svc, "alice", "spare", "000000"),
            Err(TwofoldError::InvalidCode(_))
        ));
        let spare = add(&svc, "alice", "spare", &code_at(&first, step)).unwrap();
        let names: Vec<String> = svc
            .list_devices(&root)
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, [limits::FIRST_DEVICE, "spare"]);
        // The spare's code of the step the first device just used passes, once.
        let verified = svc.verify(&root, &code_at(&spare, step), &ctx).unwrap();
        assert_eq!(verified.method, method::TOTP);
        assert!(svc.verify(&root, &code_at(&spare, step), &ctx).is_err());
        assert!(svc.verify(&root, &code_at(&first, step), &ctx).is_err());
        assert!(svc.verify(&root, &code_at(&first, step + 1), &ctx).is_ok());
        assert!(svc.verify(&root, &code_at(&spare, step + 1), &ctx).is_ok());
        let log = svc.audit_log(&root, 0, 100).unwrap();
        let named: Vec<&str> = log
            .iter()
            .filter(|e| e.event == "verify_ok")
            .map(|e| e.detail.as_str())
            .collect();
        // Newest first; the oldest is the proof that added the spare.
        let expected = ["spare", "default", "spare", "default"].map(|d| format!("device: {d}"));
        assert_eq!(named, expected);
        assert!(log
            .iter()
            .any(|e| e.event == "device_added" && e.detail == "device: spare"));
        // A backup code is proof too.
        add(&svc, "alice", "third", &codes[0]).unwrap();
        let devices = svc.list_devices(&root).unwrap();
        assert_eq!(devices.len(), 3);
        // Each device's clock, from its own codes (newest first); the third has none yet.
        let offsets: Vec<(&str, &[i32])> = devices
            .iter()
            .map(|d| (d.name.as_str(), d.recent_step_offsets.as_slice()))
            .collect();
        let expected: [(&str, &[i32]); 3] =
            [("default", &[1, 0]), ("spare", &[1, 0]), ("third", &[])];
        assert_eq!(offsets, expected);
        assert!(devices
            .iter()
            .all(|d| (d.algorithm.as_str(), d.digits, d.period) == ("SHA1", 6, 30)));
    }

    #[test]
    fn removing_needs_another_devices_code_and_keeps_the_last() {
        let svc = service();
        let (first, codes) = enroll(&svc, "bob");
        let root = Grant::in_process_root("bob");
        let step = otp::step_at(now() as u64);
        let spare = add(&svc, "bob", "spare", &code_at(&first, step)).unwrap();
        // The spare's own code does not prove its removal.
        assert!(matches!(
            svc.remove_device(&owner("bob"), "spare", &code_at(&spare, step + 1)),
            Err(TwofoldError::InvalidCode(_))
        ));
        assert!(matches!(
            svc.remove_device(&owner("bob"), "spare", ""),
            Err(TwofoldError::InvalidArgument(_))
        ));
        assert!(matches!(
            svc.remove_device(&owner("bob"), "nope", &codes[0]),
            Err(TwofoldError::InvalidArgument(_))
        ));
        svc.remove_device(&owner("bob"), "spare", &code_at(&first, step + 1))
            .unwrap();
        assert!(svc
            .verify(&root, &code_at(&spare, step + 2), &HashMap::new())
            .is_err());
        match svc.remove_device(&owner("bob"), limits::FIRST_DEVICE, &codes[0]) {
            Err(TwofoldError::InvalidArgument(m)) => assert!(m.contains("twofold disable"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(svc.list_devices(&root).unwrap().len(), 1);
        // Root needs no proof, but the last device stays all the same.
        let spare = add_as_root(&svc, "bob", "spare");
        assert!(!spare.is_empty());
        svc.remove_device(&root, "spare", "").unwrap();
        assert!(svc.remove_device(&root, limits::FIRST_DEVICE, "").is_err());
    }

    fn add_as_root(svc: &Service, user: &str, name: &str) -> String {
        let root = Grant::in_process_root(user);
        let e = svc
            .add_device_begin(&root, name, "", "", &OathParams::app())
            .unwrap();
        let step = otp::step_at(now() as u64) - 1;
        svc.add_device_confirm(&root, name, &code_at(&e.secret, step))
            .unwrap();
        e.secret
    }

    #[test]
    fn names_and_the_number_of_devices_are_bounded() {
        let svc = service();
        enroll(&svc, "carol");
        let root = Grant::in_process_root("carol");
        for bad in [
            "",
            "-x",
            "a b",
            &"a".repeat(limits::MAX_DEVICE_NAME_LEN + 1),
        ] {
            assert!(matches!(
                svc.add_device_begin(&root, bad, "", "", &OathParams::app()),
                Err(TwofoldError::InvalidArgument(_))
            ));
        }
        assert!(svc
            .add_device_begin(&root, limits::FIRST_DEVICE, "", "", &OathParams::app())
            .is_err());
        for i in 1..limits::MAX_DEVICES {
            add_as_root(&svc, "carol", &format!("d{i}"));
        }
        match svc.add_device_begin(&root, "onemore", "", "", &OathParams::app()) {
            Err(TwofoldError::InvalidArgument(m)) => assert!(m.contains("most"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            svc.add_device_begin(
                &Grant::in_process_root("dave"),
                "phone",
                "",
                "",
                &OathParams::app()
            ),
            Err(TwofoldError::NotEnrolled(_))
        ));
    }
}
