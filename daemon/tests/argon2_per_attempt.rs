//! Exactly one Argon2 evaluation per backup-code attempt, however many codes remain
//! (issue 7). Its own test binary: the evaluation counter is process-wide, so no other
//! test may hash at the same time.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use twofoldd::authz::Grant;
use twofoldd::backup_codes::ARGON2_EVALUATIONS;
use twofoldd::otp;
use twofoldd::password::PasswordChecker;
use twofoldd::policy::Policy;
use twofoldd::secrets::Keys;
use twofoldd::service::{now, Service};
use twofoldd::storage::sqlite::SqliteStore;

fn evaluations_during(f: impl FnOnce()) -> u64 {
    let before = ARGON2_EVALUATIONS.load(Ordering::SeqCst);
    f();
    ARGON2_EVALUATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn one_argon2_evaluation_per_backup_code_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service {
        store: Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap()),
        keys: Keys::from_master(&[9u8; 32]),
        policy: RwLock::new(Arc::new(Policy::default())),
        hostname: "bench".into(),
        passwords: PasswordChecker::default(),
    };
    let enrollment = service
        .enroll_begin(
            &Grant::in_process_root("alice"),
            "",
            "",
            &twofold_contract::OathParams::app(),
        )
        .unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrollment.secret.as_bytes())
        .unwrap();
    let code = totp_rs::Builder::new()
        .with_secret(secret.as_slice())
        .build()
        .unwrap()
        .generate(otp::step_at(now() as u64) * otp::STEP_SECONDS)
        .to_string();
    let mut codes = Vec::new();
    let hashed = evaluations_during(|| {
        codes = service
            .enroll_confirm(&Grant::in_process_root("alice"), &code)
            .unwrap();
    });
    assert_eq!(hashed, 10, "one hash per new backup code");

    let ctx = HashMap::new();
    // A different local source per attempt keeps the lockout out of the way.
    let attempt = |code: &str, i: usize| {
        let ctx = HashMap::from([("tty".to_string(), format!("tty{i}"))]);
        evaluations_during(|| {
            let _ = service.verify(&Grant::in_process_root("alice"), code, &ctx);
        })
    };
    assert_eq!(attempt("zzzz-zzzz-zz", 0), 1, "wrong code, 10 left");
    assert_eq!(attempt(&codes[0], 1), 1, "right code, 10 left");
    assert_eq!(attempt(&codes[0], 2), 1, "used code");
    for (i, c) in codes[1..9].iter().enumerate() {
        assert_eq!(attempt(c, 10 + i), 1);
    }
    assert_eq!(
        service
            .status(&Grant::in_process_root("alice"))
            .unwrap()
            .backup_codes_left,
        1
    );
    assert_eq!(attempt("zzzz-zzzz-zz", 30), 1, "wrong code, 1 left");
    assert_eq!(attempt(&codes[9], 31), 1, "right code, 1 left");
    // A TOTP attempt costs none.
    assert_eq!(
        evaluations_during(|| {
            let _ = service.verify(&Grant::in_process_root("alice"), "000000", &ctx);
        }),
        0
    );
}
