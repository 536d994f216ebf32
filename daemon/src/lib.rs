//! twofoldd's library: everything the daemon binary serves, split by the concepts of
//! SPEC.md, so that the man page generator and the fuzzers can reach the parsers too.

pub mod args;
pub mod authz;
pub mod backup_codes;
pub mod dbus;
pub mod direct;
pub mod files;
pub mod groups;
pub mod lockout;
pub mod logging;
pub mod networks;
pub mod otp;
pub mod password;
pub mod policy;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod storage;
#[cfg(test)]
mod testing;
