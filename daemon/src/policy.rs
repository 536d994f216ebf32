//! The daemon's policy, read from `/etc/twofold/twofoldd.toml` (`--config PATH`).

use std::path::Path;

use serde::Deserialize;

use crate::lockout::LockoutPolicy;
use crate::networks::Cidr;
use crate::storage::pg_settings;

/// Everything the administrator can tune; every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// TOTP steps accepted on either side of the current one (clock drift).
    pub totp_window: u64,
    /// Seconds a started enrollment waits for its confirmation.
    pub enroll_pending_seconds: i64,
    /// Guessing throttle.
    pub lockout: LockoutPolicy,
    /// Groups whose members must use two-factor authentication (resolved through NSS,
    /// so LDAP and SSSD groups work).
    pub require_groups: Vec<String>,
    /// Days a required user may still log in without enrolling, counted from the first
    /// time the daemon sees them.
    pub enroll_grace: u32,
    /// Whom users are told to ask when they are locked out of policy (shown in messages).
    pub admin_contact: String,
    /// Where state lives: `sqlite:PATH` (default `sqlite:/var/lib/twofold/twofold.db`),
    /// or `postgres://USER@HOST:PORT/DBNAME` for a fleet sharing one database (`--db`
    /// overrides either with a SQLite file).
    pub storage: Option<String>,
    /// PostgreSQL: a file (mode 0600, owned by the daemon's user) holding the database
    /// password; never in the URL.
    pub storage_password_file: Option<std::path::PathBuf>,
    /// PostgreSQL: `disable`, `require`, `verify-ca` or `verify-full` (TLS, checking the
    /// server's certificate and name).
    pub storage_sslmode: String,
    /// PostgreSQL: PEM file of the CA that signs the server's certificate (default: the
    /// system's trusted CAs).
    pub storage_sslrootcert: Option<std::path::PathBuf>,
    /// This host's name in a fleet (sessions and audit entries carry it; each host of a
    /// fleet needs its own); default: the system's host name. Read at start.
    pub hostname: Option<String>,
    /// Seconds after which the daemon ends every login session (0 = never); a user's own
    /// `twofold sessions timeout` can only make it shorter.
    pub session_timeout: u64,
    /// A MaxMind-format (GeoLite2/GeoIP2 City or Country) database: sessions then show
    /// the city and country of their remote address.
    pub geoip_db: Option<std::path::PathBuf>,
    /// Days the audit trail keeps an entry.
    pub audit_retention_days: u32,
    /// Most audit entries kept: the oldest beyond go first.
    pub audit_max_rows: u64,
    /// Networks whose logins are not asked for a code: the remote host that a login
    /// service reports, when it is a literal address inside one. Empty: off.
    pub trusted_networks: Vec<Cidr>,
    /// More trusted networks, each for the members of one group.
    pub trusted_networks_for: Vec<GroupNetworks>,
}

/// One `[[trusted_networks_for]]` table: networks trusted for the members of a group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupNetworks {
    /// An NSS group.
    pub group: String,
    /// Its members' logins from these networks are not asked for a code.
    pub networks: Vec<Cidr>,
}

/// Why a login is not asked for a code: the trusted network its address is in, and the
/// group that network is trusted for (None: for everyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedBy<'a> {
    pub network: Cidr,
    pub group: Option<&'a str>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            totp_window: 1,
            enroll_pending_seconds: 600,
            lockout: LockoutPolicy::default(),
            require_groups: Vec::new(),
            enroll_grace: 7,
            admin_contact: "your system administrator".into(),
            storage: None,
            storage_password_file: None,
            storage_sslmode: "verify-full".into(),
            storage_sslrootcert: None,
            hostname: None,
            session_timeout: 0,
            geoip_db: None,
            audit_retention_days: 90,
            audit_max_rows: 1_000_000,
            trusted_networks: Vec::new(),
            trusted_networks_for: Vec::new(),
        }
    }
}

impl Policy {
    /// Reads and validates a config file; the error names the file, key and line.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates config text; an error names the line and the key.
    pub fn parse(text: &str) -> Result<Policy, String> {
        // "line N: key: message"; "." is the path of the whole file (an unknown
        // top-level key, a syntax error).
        let describe = |key: &str, e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            let key = if key == "." || key.is_empty() {
                String::new()
            } else {
                format!("{key}: ")
            };
            format!("{line}{key}{}", e.message())
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| describe("", e))?;
        let policy: Policy = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            describe(&key, e.into_inner())
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// What is valid but probably not meant: groups that do not exist, files that are
    /// missing. Said at start, on reload and by `--check-config`; never fatal (a group
    /// may come from a directory that is not reachable yet).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let groups = self
            .require_groups
            .iter()
            .map(|g| {
                (
                    "require_groups",
                    g,
                    "required to use two-factor authentication",
                )
            })
            .chain(self.trusted_networks_for.iter().map(|t| {
                (
                    "trusted_networks_for",
                    &t.group,
                    "spared the code from its networks",
                )
            }));
        for (key, group, what) in groups {
            match nix::unistd::Group::from_name(group) {
                Ok(Some(_)) => {}
                Ok(None) => warnings.push(format!(
                    "{key}: there is no group {group:?} (its members would not be {what})"
                )),
                Err(e) => warnings.push(format!("{key}: cannot look up {group:?}: {e}")),
            }
        }
        let every_address = self
            .trusted_networks
            .iter()
            .chain(self.trusted_networks_for.iter().flat_map(|t| &t.networks))
            .find(|n| n.prefix() == 0);
        if let Some(network) = every_address {
            warnings.push(format!(
                "trusted_networks: {network} is every address of its kind: no login from \
                 there is asked for a code"
            ));
        }
        for (key, path) in [
            ("geoip_db", &self.geoip_db),
            ("storage_password_file", &self.storage_password_file),
            ("storage_sslrootcert", &self.storage_sslrootcert),
        ] {
            if let Some(path) = path.as_ref().filter(|p| !p.exists()) {
                warnings.push(format!("{key}: {} does not exist", path.display()));
            }
        }
        if self.geoip_db.is_some() && !cfg!(feature = "geoip") {
            warnings.push(
                "geoip_db: this twofoldd is built without GeoIP support (cargo feature \
                 \"geoip\"); sessions show no location"
                    .into(),
            );
        }
        warnings
    }

    fn validate(&self) -> Result<(), String> {
        if self.totp_window > 10 {
            return Err("totp_window: at most 10 steps (5 minutes) either side".into());
        }
        if !(60..=86_400).contains(&self.enroll_pending_seconds) {
            return Err("enroll_pending_seconds: between 60 and 86400".into());
        }
        let l = &self.lockout;
        if !(1..=100).contains(&l.max_failures) {
            return Err("lockout.max_failures: between 1 and 100".into());
        }
        if l.base_delay < 1 || l.max_delay < l.base_delay {
            return Err(
                "lockout.base_delay must be >= 1 and lockout.max_delay >= base_delay".into(),
            );
        }
        for (key, ceiling) in [
            ("user_ceiling", l.user_ceiling),
            ("local_ceiling", l.local_ceiling),
        ] {
            if !(l.max_failures..=1000).contains(&ceiling) {
                return Err(format!(
                    "lockout.{key}: between lockout.max_failures and 1000"
                ));
            }
        }
        if !(3600..=30 * 86_400).contains(&l.ceiling_period) {
            return Err("lockout.ceiling_period: between 3600 and 2592000 seconds".into());
        }
        if !(1..=36_500).contains(&self.audit_retention_days) {
            return Err("audit_retention_days: between 1 and 36500".into());
        }
        if !(1000..=1_000_000_000).contains(&self.audit_max_rows) {
            return Err("audit_max_rows: between 1000 and 1000000000".into());
        }
        if self.enroll_grace > 3650 {
            return Err("enroll_grace: at most 3650 days".into());
        }
        if let Some(g) = self.require_groups.iter().find(|g| !is_group_name(g)) {
            return Err(format!("require_groups: {g:?} is not a group name"));
        }
        for (i, entry) in self.trusted_networks_for.iter().enumerate() {
            if !is_group_name(&entry.group) {
                return Err(format!(
                    "trusted_networks_for[{i}].group: {:?} is not a group name",
                    entry.group
                ));
            }
            if entry.networks.is_empty() {
                return Err(format!(
                    "trusted_networks_for[{i}].networks: name at least one network"
                ));
            }
        }
        if self.session_timeout != 0 && !(60..=366 * 86_400).contains(&self.session_timeout) {
            return Err("session_timeout: 0 (none) or between 60 seconds and 366 days".into());
        }
        if self.geoip_db.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err("geoip_db: give an absolute path".into());
        }
        if let Some(storage) = &self.storage {
            if pg_settings::is_postgres_url(storage) {
                pg_settings::check_supported_url(storage, "storage")?;
            } else if self.sqlite_path().is_none() {
                return Err(format!(
                    "storage: {storage:?} is not supported; use \"sqlite:/path/to/twofold.db\" \
                     or \"postgres://USER@HOST:PORT/DBNAME\""
                ));
            }
        }
        self.storage_sslmode
            .parse::<pg_settings::SslMode>()
            .map_err(|e| format!("storage_sslmode: {e}"))?;
        for (key, path) in [
            ("storage_password_file", &self.storage_password_file),
            ("storage_sslrootcert", &self.storage_sslrootcert),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(format!("{key}: give an absolute path"));
            }
        }
        if let Some(name) = &self.hostname {
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !ok {
                return Err(format!(
                    "hostname: {name:?} is not a host name (letters, digits, '-', '.', '_')"
                ));
            }
        }
        Ok(())
    }

    /// The PostgreSQL settings when `storage` names PostgreSQL; `host` names this host to
    /// the server.
    pub fn postgres(&self, host: &str) -> Option<pg_settings::Settings> {
        let url = self.storage.as_deref()?;
        pg_settings::is_postgres_url(url).then(|| pg_settings::Settings {
            url: url.to_string(),
            password_file: self.storage_password_file.clone(),
            sslmode: self
                .storage_sslmode
                .parse()
                .unwrap_or(pg_settings::SslMode::VerifyFull),
            sslrootcert: self.storage_sslrootcert.clone(),
            application_name: host.to_string(),
        })
    }

    /// The SQLite path named by `storage`, if it names one.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        let path = self.storage.as_deref()?.strip_prefix("sqlite:")?;
        path.starts_with('/').then(|| path.into())
    }

    /// The trusted network that spares a login from `address` its code, if any;
    /// `member_of` says whether the user is in a group (asked only for the groups of the
    /// networks that contain `address`).
    pub fn trusted_network(
        &self,
        address: std::net::IpAddr,
        mut member_of: impl FnMut(&str) -> bool,
    ) -> Option<TrustedBy<'_>> {
        if let Some(network) = self.trusted_networks.iter().find(|n| n.contains(address)) {
            return Some(TrustedBy {
                network: *network,
                group: None,
            });
        }
        self.trusted_networks_for.iter().find_map(|entry| {
            let network = entry.networks.iter().find(|n| n.contains(address))?;
            member_of(&entry.group).then_some(TrustedBy {
                network: *network,
                group: Some(&entry.group),
            })
        })
    }

    /// Some network is trusted (for everyone or for a group).
    pub fn trusts_networks(&self) -> bool {
        !self.trusted_networks.is_empty() || !self.trusted_networks_for.is_empty()
    }

    /// The trusted networks in one line (`twofoldd --check-config`, `twofold doctor`):
    /// "off" when there are none.
    pub fn trusted_networks_summary(&self) -> String {
        let list = |networks: &[Cidr]| {
            networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.trusted_networks.is_empty() {
            parts.push(list(&self.trusted_networks));
        }
        for entry in &self.trusted_networks_for {
            parts.push(format!(
                "for group {}: {}",
                entry.group,
                list(&entry.networks)
            ));
        }
        if self.trusts_networks() {
            parts.join("; ")
        } else {
            "off".into()
        }
    }

    /// Seconds of enrollment grace.
    pub fn enroll_grace_seconds(&self) -> i64 {
        i64::from(self.enroll_grace) * 86_400
    }
}

/// A name that may be a group's (NSS resolves it; this only bounds it).
fn is_group_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Policy::parse("").unwrap(), Policy::default());
        let p = Policy::parse("totp_window = 2\n[lockout]\nmax_failures = 3\n").unwrap();
        assert_eq!(p.totp_window, 2);
        assert_eq!(p.lockout.max_failures, 3);
        assert_eq!(p.lockout.base_delay, 30);
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = Policy::parse("totp_window = 1\nbogus = 3\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
        let e = Policy::parse("totp_window = \"x\"\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Policy::parse("totp_window = 99\n").unwrap_err();
        assert!(e.contains("totp_window"), "{e}");
        let e = Policy::parse("storage = \"mysql://db/twofold\"\n").unwrap_err();
        assert!(e.contains("storage"), "{e}");
        let e = Policy::parse("require_groups = \"wheel\"\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        // A wrong type names its key, in a table too.
        let e = Policy::parse("require_groups = 5\n").unwrap_err();
        assert!(e.starts_with("line 1: require_groups: invalid type"), "{e}");
        let e = Policy::parse("enroll_grace = 1\n[lockout]\nmax_failures = \"5\"\n").unwrap_err();
        assert!(
            e.starts_with("line 3: lockout.max_failures: invalid type"),
            "{e}"
        );
        let e = Policy::parse("[lockout]\nmax_failurs = 5\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("max_failurs"), "{e}");
    }

    #[test]
    fn unknown_groups_and_missing_files_are_warnings() {
        let policy = Policy::parse(
            "require_groups = [\"root\", \"no-such-group-xyz\"]\n\
             geoip_db = \"/nonexistent/GeoLite2-City.mmdb\"\n",
        )
        .unwrap();
        let warnings = policy.warnings();
        // Without GeoIP support built in, geoip_db is also said to be unused.
        let unused = usize::from(!cfg!(feature = "geoip"));
        assert_eq!(warnings.len(), 2 + unused, "{warnings:?}");
        if unused == 1 {
            assert!(warnings[2].contains("cargo feature"), "{warnings:?}");
        }
        assert!(warnings[0].contains("no-such-group-xyz"), "{warnings:?}");
        assert!(!warnings[0].contains("\"root\""), "{warnings:?}");
        assert!(
            warnings[1].starts_with("geoip_db: /nonexistent"),
            "{warnings:?}"
        );
        assert!(Policy::default().warnings().is_empty());
    }

    /// The shipped sample config documents every default: with its settings uncommented
    /// it parses to exactly `Policy::default()`.
    #[test]
    fn sample_config_shows_the_defaults() {
        let sample = include_str!("../../packaging/twofoldd.toml");
        assert_eq!(Policy::parse(sample).unwrap(), Policy::default());
        let uncommented: String = sample
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Policy::parse(&uncommented).unwrap(), Policy::default());
    }

    #[test]
    fn session_keys() {
        let p = Policy::parse("session_timeout = 3600\ngeoip_db = \"/srv/geo.mmdb\"\n").unwrap();
        assert_eq!(p.session_timeout, 3600);
        assert_eq!(
            p.geoip_db.as_deref(),
            Some(std::path::Path::new("/srv/geo.mmdb"))
        );
        for bad in ["session_timeout = 5\n", "geoip_db = \"geo.mmdb\"\n"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_keys() {
        let p = Policy::parse(
            "require_groups = [\"wheel\", \"admins\"]\nenroll_grace = 3\n\
             storage = \"sqlite:/srv/tf.db\"\n",
        )
        .unwrap();
        assert_eq!(p.require_groups, ["wheel", "admins"]);
        assert_eq!(p.enroll_grace_seconds(), 3 * 86_400);
        assert_eq!(p.sqlite_path().unwrap(), std::path::Path::new("/srv/tf.db"));
        assert!(p.postgres("h").is_none());
    }

    #[test]
    fn lockout_and_retention_keys() {
        let p = Policy::parse(
            "audit_retention_days = 30\naudit_max_rows = 5000\n\
             [lockout]\nlocal_ceiling = 6\nuser_ceiling = 10\nceiling_period = 43200\n",
        )
        .unwrap();
        assert_eq!((p.audit_retention_days, p.audit_max_rows), (30, 5000));
        assert_eq!((p.lockout.local_ceiling, p.lockout.user_ceiling), (6, 10));
        assert_eq!(p.lockout.ceiling_period, 43_200);
        for bad in [
            "audit_retention_days = 0\n",
            "audit_max_rows = 10\n",
            "[lockout]\nlocal_ceiling = 4\n",
            "[lockout]\nuser_ceiling = 5000\n",
            "[lockout]\nceiling_period = 60\n",
        ] {
            let e = Policy::parse(bad).unwrap_err();
            let key = bad
                .trim_start_matches("[lockout]\n")
                .split(' ')
                .next()
                .unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn trusted_networks_for_everyone_and_per_group() {
        assert_eq!(Policy::default().trusted_networks_summary(), "off");
        let p = Policy::parse(
            "trusted_networks = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
             [[trusted_networks_for]]\ngroup = \"staff\"\nnetworks = [\"192.0.2.0/24\"]\n\
             [[trusted_networks_for]]\ngroup = \"lab\"\n\
             networks = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        assert_eq!(
            p.trusted_networks_summary(),
            "10.0.0.0/8, fd00::/8; for group staff: 192.0.2.0/24; \
             for group lab: 192.0.2.0/24, 2001:db8::/32"
        );
        let at = |a: &str| a.parse::<std::net::IpAddr>().unwrap();
        let nobody = |_: &str| false;
        let everyone = p.trusted_network(at("10.1.2.3"), |g| panic!("asked about {g}"));
        assert_eq!(
            everyone.map(|t| (t.network.to_string(), t.group)),
            Some(("10.0.0.0/8".into(), None))
        );
        assert!(p.trusted_network(at("fd12::1"), nobody).is_some());
        assert_eq!(p.trusted_network(at("192.0.2.9"), nobody), None);
        let lab = p.trusted_network(at("192.0.2.9"), |g| g == "lab").unwrap();
        assert_eq!(
            (lab.network.to_string(), lab.group),
            ("192.0.2.0/24".into(), Some("lab"))
        );
        let mut asked = Vec::new();
        let outside = p.trusted_network(at("203.0.113.1"), |g| {
            asked.push(g.to_string());
            true
        });
        assert_eq!(
            (outside, asked.len()),
            (None, 0),
            "groups looked up for nothing"
        );
        assert_eq!(p.trusted_network(at("2001:db8::1"), |g| g == "staff"), None);
    }

    #[test]
    fn bad_trusted_networks_name_key_and_line() {
        let cases = [
            (
                "trusted_networks = [\n  \"10.0.0.0/8\",\n  \"10.0.0.1/8\",\n]\n",
                "line 3: trusted_networks[1]: \"10.0.0.1/8\" has host bits set",
            ),
            (
                "totp_window = 1\ntrusted_networks = [\"gateway.example.org/32\"]\n",
                "line 2: trusted_networks[0]: \"gateway.example.org/32\": ",
            ),
            (
                "trusted_networks = [\"10.0.0.0\"]\n",
                "line 1: trusted_networks[0]: \"10.0.0.0\" is not a network",
            ),
            (
                "trusted_networks = \"10.0.0.0/8\"\n",
                "line 1: trusted_networks: invalid type",
            ),
            (
                "[[trusted_networks_for]]\ngroup = \"staff\"\nnetworks = [\"192.0.2.0/33\"]\n",
                "line 3: trusted_networks_for[0].networks[0]: \"192.0.2.0/33\": the prefix",
            ),
            (
                "[[trusted_networks_for]]\ngroup = \"staff\"\nnetwork = [\"192.0.2.0/24\"]\n",
                "line 3: trusted_networks_for[0].network: unknown field `network`",
            ),
            (
                "[[trusted_networks_for]]\nnetworks = [\"192.0.2.0/24\"]\n",
                "missing field `group`",
            ),
            (
                "[[trusted_networks_for]]\ngroup = \"\"\nnetworks = [\"192.0.2.0/24\"]\n",
                "trusted_networks_for[0].group: \"\" is not a group name",
            ),
            (
                "[[trusted_networks_for]]\ngroup = \"staff\"\nnetworks = []\n",
                "trusted_networks_for[0].networks: name at least one network",
            ),
        ];
        for (text, says) in cases {
            let e = Policy::parse(text).unwrap_err();
            assert!(
                e.starts_with(says) || (!says.starts_with("line") && e.contains(says)),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn trusting_every_address_or_a_missing_group_is_a_warning() {
        let p = Policy::parse(
            "trusted_networks = [\"0.0.0.0/0\"]\n\
             [[trusted_networks_for]]\ngroup = \"no-such-group-xyz\"\n\
             networks = [\"192.0.2.0/24\"]\n",
        )
        .unwrap();
        let warnings = p.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("trusted_networks_for: there is no group \"no-such-group-xyz\""),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("0.0.0.0/0 is every address"),
            "{warnings:?}"
        );
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn without_the_postgres_feature_a_postgres_store_is_refused_by_name() {
        let e = Policy::parse("storage = \"postgres://twofold@db/twofold\"\n").unwrap_err();
        assert!(e.contains("cargo feature \"postgres\""), "{e}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_keys() {
        let p = Policy::parse(
            "storage = \"postgres://twofold@db.example.org:5433/twofold\"\n\
             storage_password_file = \"/etc/twofold/pg.pass\"\n\
             storage_sslmode = \"verify-ca\"\n\
             storage_sslrootcert = \"/etc/twofold/pg-ca.pem\"\n\
             hostname = \"web-1\"\n",
        )
        .unwrap();
        let pg = p.postgres("web-1").unwrap();
        assert_eq!(pg.sslmode, pg_settings::SslMode::VerifyCa);
        assert_eq!(p.sqlite_path(), None);
        assert_eq!(p.hostname.as_deref(), Some("web-1"));
        // A password in the URL is refused, naming the key to use instead.
        let e = Policy::parse("storage = \"postgres://twofold:s3cret@db/twofold\"\n").unwrap_err();
        assert!(e.contains("storage_password_file"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        for bad in [
            "storage = \"postgres://db/twofold\"\n",
            "storage = \"postgres://twofold@db/twofold?sslmode=disable\"\n",
            "storage_sslmode = \"prefer\"\n",
            "storage_password_file = \"pg.pass\"\n",
            "hostname = \"a b\"\n",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
