//! The daemon's D-Bus API as the bench calls it: connections (the harness's), its Peer
//! interface, and enrollment of many users in parallel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub use twofold_tests::client::connect;

use crate::logins::Samples;
use crate::totp;

/// `org.freedesktop.DBus.Peer` of twofoldd on `conn`.
pub async fn peer(conn: &zbus::Connection) -> zbus::fdo::PeerProxy<'static> {
    zbus::fdo::PeerProxy::builder(conn)
        .destination(twofold_contract::BUS_NAME)
        .path(twofold_contract::OBJECT_PATH)
        .build()
        .await
        .unwrap()
}

/// What an enrollment gave a user.
pub struct Enrolled {
    pub secret: Vec<u8>,
    pub backup_codes: Vec<String>,
}

/// Enrolls `users` through EnrollBegin/EnrollConfirm as root, `parallel` at a time;
/// returns the secrets and the per-enrollment latencies.
pub async fn enroll(
    address: &str,
    users: Vec<String>,
    parallel: usize,
) -> (HashMap<String, Enrolled>, Samples) {
    let queue = Arc::new(tokio::sync::Mutex::new(users));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        tasks.spawn(enroll_from(queue.clone(), address.to_string()));
    }
    let mut all = HashMap::new();
    let mut lat = Samples::default();
    while let Some(r) = tasks.join_next().await {
        let (done, l) = r.expect("enroll task");
        all.extend(done);
        lat.ms.extend(l.ms);
    }
    (all, lat)
}

/// One of [`enroll`]'s workers: enrolls users from `queue` until it is empty.
async fn enroll_from(
    queue: Arc<tokio::sync::Mutex<Vec<String>>>,
    address: String,
) -> (Vec<(String, Enrolled)>, Samples) {
    let (_conn, proxy) = connect(&address).await;
    let mut done = Vec::new();
    let mut lat = Samples::default();
    loop {
        let Some(user) = queue.lock().await.pop() else {
            break;
        };
        let t = Instant::now();
        let e = proxy
            .enroll_begin(
                &user,
                "bench",
                "",
                &twofold_tests::contract::OathParams::app(),
            )
            .await
            .expect("EnrollBegin");
        let secret = totp::decode_base32(&e.secret);
        let mut tries = 0;
        let codes = loop {
            // The previous step's code, so that the current one stays fresh.
            let code = totp::code(&secret, totp::step_now() - 1);
            match proxy.enroll_confirm(&user, &code).await {
                Ok(c) => break c,
                Err(e) if tries < 3 => {
                    tries += 1;
                    eprintln!("  EnrollConfirm {user}: {e:?}; retrying");
                }
                Err(e) => panic!("EnrollConfirm {user}: {e:?}"),
            }
        };
        lat.push(t.elapsed());
        done.push((
            user,
            Enrolled {
                secret,
                backup_codes: codes,
            },
        ));
    }
    (done, lat)
}
