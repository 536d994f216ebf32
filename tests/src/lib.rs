//! Test harness for twofold's end-to-end tests: a private `dbus-daemon` with its own
//! config (carrying the shipped bus policy), a real `twofoldd` on it with a temporary
//! database and key, the real libpam loading the built `pam_twofold.so` through
//! `pamdriver`, the real `twofold` CLI, and codes from `oathtool`.
//!
//! The harness in parts, all re-exported here (`twofold_tests::TestEnv`, ...):
//!
//! | module | what |
//! |--------|------|
//! | `host` | built programs, root ([`root_only!`]), users, time and TOTP codes, processes |
//! | `env` | [`TestEnv`]: a private bus and a twofoldd on it, the CLI run against it |
//! | `bus` | the bus configuration, D-Bus clients (`client`), a logind stand-in |
//! | `pam` | PAM result codes, pamdriver logins ([`Login`], [`PamOutcome`]) |
//! | `polkit` | a polkitd stand-in ([`PolkitMock`]) |
//! | `pty` | programs on a pseudo-terminal ([`Pty`]) |
//! | `terminal` | the ANSI renderer of terminal output ([`render_terminal`]) |
//! | `zbar` | QR codes read back by zbarimg |
//! | `postgres` | a real PostgreSQL server ([`PgServer`]) for fleet mode |
//! | `mmdb`, `process_state` | GeoIP test databases; what a module left in pamdriver's process |
//! | `driver` | the command line and transaction of pamdriver and sessiondriver |
//! | `layers` | the import graph of a crate's modules, checked against its table of layers |
pub use twofold_contract as contract;

mod bus;
/// The command line and transaction that pamdriver and sessiondriver share.
pub mod driver;
mod env;
pub mod flows;
mod host;
pub mod layers;
/// A writer of tiny MaxMind DB (GeoIP) files for the session tests.
pub mod mmdb;
pub mod pam;
mod polkit;
mod postgres;
pub mod process_state;
mod pty;
mod terminal;
mod zbar;

pub use bus::*;
pub use env::*;
pub use host::*;
pub use pam::{
    opened_session, pamdriver_with_mounts, private_shadow, with_private_mounts, Login, PamMessage,
    PamOutcome,
};
pub use polkit::*;
pub use postgres::*;
pub use pty::*;
pub use terminal::*;
pub use zbar::*;

/// Returns from the calling test unless it may run as root (see [`require_root`]).
#[macro_export]
macro_rules! root_only {
    () => {
        if !$crate::require_root(module_path!()) {
            return;
        }
    };
}
