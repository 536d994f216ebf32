//! systemd-logind, asked on the daemon's bus connection: which logind session a session
//! leader runs in (when the session opens: the id is never taken from the PAM
//! environment, which a user can set), and whether that logind session still belongs to
//! the user and is led by the recorded leader (before asking logind to end it).

use std::time::Duration;

use zbus::{OwnedObjectPath, OwnedVariant, Variant};

const LOGIN1: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// How long a login waits for logind to say which session its leader is in.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// What logind says of one of its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogindSession {
    pub id: String,
    pub uid: u32,
    pub leader: u32,
}

impl LogindSession {
    /// The logind session of `user_uid` led by `leader_pid`, nothing else: a process
    /// inside someone else's logind session (sudo, su in a terminal) is not its leader.
    pub fn is_of(&self, user_uid: u32, leader_pid: u32) -> bool {
        self.uid == user_uid && self.leader == leader_pid
    }
}

/// logind session ids are short and plain (`c2`, `42`).
pub fn is_logind_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

async fn property(
    bus: &zbus::Connection,
    path: &OwnedObjectPath,
    name: &str,
) -> zbus::Result<OwnedVariant> {
    let reply = bus
        .call_method(
            Some(LOGIN1),
            path.as_str(),
            Some(PROPERTIES),
            "Get",
            &(SESSION, name),
        )
        .await?;
    reply.body().deserialize::<OwnedVariant>()
}

fn bad(what: &str) -> zbus::Error {
    zbus::Error::Failure(format!("logind: unexpected {what}"))
}

/// Id, user and leader of the logind session at `path`.
async fn describe(bus: &zbus::Connection, path: &OwnedObjectPath) -> zbus::Result<LogindSession> {
    let id = String::try_from(property(bus, path, "Id").await?).map_err(|_| bad("Id"))?;
    let leader = u32::try_from(property(bus, path, "Leader").await?).map_err(|_| bad("Leader"))?;
    // User is (uid, object path).
    let user = property(bus, path, "User").await?;
    let uid = match &*user {
        Variant::Structure(s) => match s.fields().first() {
            Some(Variant::U32(uid)) => *uid,
            _ => return Err(bad("User")),
        },
        _ => return Err(bad("User")),
    };
    if !is_logind_id(&id) {
        return Err(bad("session id"));
    }
    Ok(LogindSession { id, uid, leader })
}

/// The logind session the manager's `method` finds for `args`.
async fn find_session<A>(
    bus: &zbus::Connection,
    method: &str,
    args: &A,
) -> zbus::Result<LogindSession>
where
    A: serde::Serialize + zbus::zvariant::DynamicType,
{
    let reply = bus
        .call_method(Some(LOGIN1), MANAGER_PATH, Some(MANAGER), method, args)
        .await?;
    let path = reply.body().deserialize::<OwnedObjectPath>()?;
    describe(bus, &path).await
}

/// The logind session process `pid` runs in (`GetSessionByPID`).
pub async fn session_of_pid(bus: &zbus::Connection, pid: u32) -> zbus::Result<LogindSession> {
    find_session(bus, "GetSessionByPID", &(pid,)).await
}

/// The logind session with this id (`GetSession`).
pub async fn session_by_id(bus: &zbus::Connection, id: &str) -> zbus::Result<LogindSession> {
    find_session(bus, "GetSession", &(id,)).await
}
