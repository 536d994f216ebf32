//! Fleet mode: a real PostgreSQL server, and fleet hosts (daemons) sharing it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::env::TestEnv;
use crate::host::{built, free_port, nix_geteuid};

/// A PostgreSQL server of the distribution's packages on 127.0.0.1 and a free port,
/// started with `initdb`/`pg_ctl` on a temporary data directory (as the `postgres` user
/// when run as root: the server refuses root), with TLS (a throwaway CA and a server
/// certificate for 127.0.0.1 made by `openssl`) and password authentication for TCP
/// (with or without TLS: the bench connects without). Default durability (`fsync`,
/// `synchronous_commit` on). Stopped on drop. Used by the fleet tests and the bench.
pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Owner of the test databases (`twofold`), whose password is in `password_file`.
    pub user: String,
    /// 0600, owned by the test's uid: what `storage_password_file` names.
    pub password_file: PathBuf,
    /// The CA that signed the server's certificate (for `storage_sslrootcert`).
    pub ca_cert: PathBuf,
    /// The `bin` directory of the PostgreSQL installation it runs.
    pub bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/N/bin` with `initdb` and `pg_ctl`.
pub fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Runs `cmd`; its stdout, or an error with everything it printed.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

/// Writes `text` to `path` with mode `mode`.
fn write_with_mode(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    fs::write(path, text).map_err(io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// A throwaway CA (`dir/ca.pem`) and a certificate for 127.0.0.1 signed by it
/// (`server/server.crt`, its key `server/server.key`); returns the CA's path.
fn make_certificates(dir: &Path, server: &Path) -> Result<PathBuf, String> {
    let ca_key = dir.join("ca.key");
    let ca_cert = dir.join("ca.pem");
    let key = server.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("san.ext");
    fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").map_err(io(&ext))?;
    // `openssl req` (`what`: what it makes, into `out`) with a new unencrypted P-256 key
    // into `key`.
    let with_new_key = |what: &[&str], key: &Path, out: &Path| {
        run(Command::new("openssl")
            .arg("req")
            .args(what)
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(out))
    };
    let ca_subject = ["-x509", "-days", "2", "-subj", "/CN=twofold test CA"];
    with_new_key(&ca_subject, &ca_key, &ca_cert)?;
    with_new_key(&["-subj", "/CN=127.0.0.1"], &key, &csr)?;
    run(Command::new("openssl")
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
        .arg(server.join("server.crt")))?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).map_err(io(&key))?;
    Ok(ca_cert)
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
        Some(
            PgServer::start_in(&std::env::temp_dir(), bin)
                .unwrap_or_else(|e| panic!("{test}: {e}")),
        )
    }

    /// Starts a server from the binaries in `bin` with its files in a new directory
    /// under `parent` (the bench's: the same disk as its SQLite store), with a role
    /// `twofold` (its password in `password_file`) but no database yet.
    pub fn start_in(parent: &Path, bin: PathBuf) -> Result<PgServer, String> {
        let as_postgres = nix_geteuid() == 0;
        let dir = tempfile::Builder::new()
            .prefix("twofold-pg")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .map_err(io(dir.path()))?;
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        let server = dir.path().join("server");
        for d in [&data, &sockets, &server] {
            fs::create_dir(d).map_err(io(d))?;
        }
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(io(&data))?;
        let ca_cert = make_certificates(dir.path(), &server)?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .arg(&sockets)
                .arg(&server))?;
        }
        let password = format!("pw{:016x}", {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        });
        let password_file = dir.path().join("pg.pass");
        write_with_mode(&password_file, &format!("{password}\n"), 0o600)?;
        let pg = PgServer {
            port: free_port(),
            user: "twofold".into(),
            password_file,
            ca_cert,
            bin,
            data,
            sockets,
            log: server.join("postgres.log"),
            as_postgres,
            dir,
        };
        run(pg.command("initdb").args([
            "-D",
            pg.data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        pg.try_start_server()?;
        pg.try_psql(
            "postgres",
            &format!("CREATE ROLE twofold LOGIN PASSWORD '{password}'"),
        )?;
        Ok(pg)
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
        self.try_start_server().unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_start_server(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={} -c max_connections=200",
            self.port,
            self.sockets.display(),
            self.dir.path().join("server/server.crt").display(),
            self.dir.path().join("server/server.key").display(),
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null()))
        .map(drop)
        .map_err(|e| {
            format!(
                "pg_ctl start: {e}\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    /// Stops the server (fast shutdown: clients are disconnected at once).
    pub fn stop_server(&self) {
        self.pg_ctl_stop("fast");
    }

    /// `pg_ctl stop` with shutdown `mode`, waiting for it.
    fn pg_ctl_stop(&self, mode: &str) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", mode, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL as the superuser (over the local socket); returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        run(self
            .command("psql")
            .arg("-h")
            .arg(&self.sockets)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql]))
    }

    /// `SHOW name` on the server (a `?` and the error if psql fails).
    pub fn show(&self, name: &str) -> String {
        self.try_psql("postgres", &format!("SHOW {name}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("? ({e})"))
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

impl Drop for PgServer {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
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
            .args(self.daemon_place_args())
            .arg("--log-stderr")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn twofoldd");
        self.adopt_daemon(child);
    }
}
