//! Fleet mode: a real PostgreSQL server, and fleet hosts (daemons) sharing it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::env::TestEnv;
use crate::host::{built, nix_geteuid};

/// A PostgreSQL server of the distribution's packages on 127.0.0.1 and a free port,
/// started with `initdb`/`pg_ctl` on a temporary data directory (as the `postgres` user
/// when run as root: the server refuses root), with TLS (a throwaway CA and a server
/// certificate for 127.0.0.1 made by `openssl`) and password authentication for TCP.
/// Stopped on drop.
pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Owner of the test databases (`twofold`), whose password is in `password_file`.
    pub user: String,
    /// 0600, owned by the test's uid: what `storage_password_file` names.
    pub password_file: PathBuf,
    /// The CA that signed the server's certificate (for `storage_sslrootcert`).
    pub ca_cert: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PgServer {
    /// Starts a server; `None` (with a SKIPPED message) when PostgreSQL is not installed,
    /// outside CI. Under CI=true a missing server fails the test.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = postgres_bin() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: PostgreSQL is not installed (tests/run.sh installs it)");
            }
            eprintln!("SKIPPED {test}: PostgreSQL is not installed (tests/run.sh installs it)");
            return None;
        };
        let as_postgres = nix_geteuid() == 0;
        let dir = tempfile::Builder::new()
            .prefix("twofold-pg")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        let server = dir.path().join("server");
        for d in [&data, &sockets, &server] {
            fs::create_dir(d).unwrap();
        }
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        // TLS: a CA and a certificate for 127.0.0.1 signed by it.
        let ca_key = dir.path().join("ca.key");
        let ca_cert = dir.path().join("ca.pem");
        let key = server.join("server.key");
        let csr = dir.path().join("server.csr");
        let cert = server.join("server.crt");
        let ext = dir.path().join("san.ext");
        fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run_checked(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "2", "-subj", "/CN=twofold test CA"])
                .args(ec)
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert),
        );
        run_checked(
            Command::new("openssl")
                .args(["req", "-subj", "/CN=127.0.0.1"])
                .args(ec)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        );
        run_checked(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-CAcreateserial")
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        if as_postgres {
            run_checked(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .arg(&sockets)
                    .arg(&server),
            );
        }
        let password = format!("pw{:016x}", {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        });
        let password_file = dir.path().join("pg.pass");
        fs::write(&password_file, format!("{password}\n")).unwrap();
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
        let port = free_local_port();
        let pg = PgServer {
            port,
            user: "twofold".into(),
            password_file,
            ca_cert,
            bin,
            data,
            sockets,
            log: dir.path().join("server").join("postgres.log"),
            as_postgres,
            dir,
        };
        run_checked(pg.command("initdb").args([
            "-D",
            pg.data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        pg.start_server();
        pg.psql(
            "postgres",
            &format!("CREATE ROLE twofold LOGIN PASSWORD '{password}'"),
        );
        Some(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    /// (Re)starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={} -c max_connections=200",
            self.port,
            self.sockets.display(),
            self.dir.path().join("server/server.crt").display(),
            self.dir.path().join("server/server.key").display(),
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {out:?}\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected at once).
    pub fn stop_server(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL as the superuser (over the local socket); returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        run_checked(
            self.command("psql")
                .arg("-h")
                .arg(&self.sockets)
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
                .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql]),
        )
    }

    /// A new database owned by the test user.
    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {}", self.user),
        );
    }

    /// The URL of database `db` (no password: that is in `password_file`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{db}", self.user, self.port)
    }

    /// twofoldd.toml lines for a fleet host named `host` on database `db`, with TLS
    /// `sslmode` (`verify-full` and `verify-ca` trust the test CA).
    pub fn storage_config(&self, db: &str, host: &str, sslmode: &str) -> String {
        format!(
            "hostname = \"{host}\"\nstorage = \"{}\"\nstorage_password_file = \"{}\"\n\
             storage_sslmode = \"{sslmode}\"\nstorage_sslrootcert = \"{}\"\n",
            self.url(db),
            self.password_file.display(),
            self.ca_cert.display()
        )
    }
}

fn free_local_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl TestEnv {
    /// A fleet host: a bus and a daemon whose `config` names the shared PostgreSQL
    /// storage (see [`PgServer::storage_config`]), run without `--db` (which would mean
    /// SQLite), with the fleet's key file `key`.
    pub fn fleet_host(config: &str, key: &Path) -> TestEnv {
        let mut env = TestEnv::with_config("");
        env.stop_daemon();
        fs::write(&env.config, config).unwrap();
        env.key = key.to_path_buf();
        env.start_fleet_daemon();
        env
    }

    /// Starts twofoldd without `--db` and waits until it owns its name.
    pub fn start_fleet_daemon(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(built("twofoldd"))
            .arg("--bus")
            .arg(&self.address)
            .arg("--key")
            .arg(&self.key)
            .arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--log-stderr")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn twofoldd");
        self.adopt_daemon(child);
    }
}
