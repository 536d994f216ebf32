//! How a fleet's PostgreSQL store is named and reached (`storage`, `storage_sslmode`,
//! …): plain settings, checked by the config whether or not this twofoldd is built with
//! the `postgres` feature (the store itself, in `storage::postgres`).

use std::path::PathBuf;
use std::str::FromStr;

/// How the connection to PostgreSQL is protected (`storage_sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (a local socket, or a network the admin trusts).
    Disable,
    /// TLS, the server's certificate not checked (protects from eavesdropping only).
    Require,
    /// TLS, the certificate signed by a trusted CA (`storage_sslrootcert`, else the
    /// system's), any host name.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and naming the host of the URL.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "{other:?} is not one of \"disable\", \"require\", \"verify-ca\", \
                     \"verify-full\""
                ))
            }
        })
    }
}

/// Where and how to reach the fleet's database.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `postgres://USER@HOST:PORT/DBNAME` (no password in it).
    pub url: String,
    /// A file (0600, owned by the daemon's user) holding the password, if one is needed.
    pub password_file: Option<PathBuf>,
    /// TLS.
    pub sslmode: SslMode,
    /// PEM file of the CA(s) that sign the server's certificate (else the system's).
    pub sslrootcert: Option<PathBuf>,
    /// Shown in `pg_stat_activity` (the host's name).
    pub application_name: String,
}

/// True for `storage` values naming PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Checks a `storage` PostgreSQL URL as far as this build can: fully with the
/// `postgres` feature, else refused with the reason.
pub fn check_supported_url(url: &str, key: &str) -> Result<(), String> {
    #[cfg(feature = "postgres")]
    return crate::storage::postgres::check_url(url, key).map(drop);
    #[cfg(not(feature = "postgres"))]
    return Err(format!(
        "{key}: {url:?} names PostgreSQL, but this twofoldd is built without it (cargo \
         feature \"postgres\"); use \"sqlite:/path/to/twofold.db\" or a build with it"
    ));
}
