//! A PostgreSQL server of the distribution's packages for the fleet-mode figure: started
//! with `initdb`/`pg_ctl` on a data directory under the bench's state directory (same
//! disk as the SQLite store), on 127.0.0.1 and a free port, as the `postgres` user (the
//! server refuses root), with password authentication for TCP. Default durability
//! (`fsync = on`, `synchronous_commit = on`). Stopped on drop. The minimal form of
//! `twofold_tests::PgServer` (no TLS: the bench connects with `storage_sslmode =
//! "disable"`, so the figure is the store's cost, not a TLS handshake's).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PgServer {
    pub port: u16,
    pub password_file: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
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

fn run_checked(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_local_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

impl PgServer {
    /// Starts a server in `dir` (created) with binaries from `bin`, a role `twofold`
    /// (password in `password_file`) and a database `twofold` it owns.
    pub fn start(dir: &Path, bin: PathBuf) -> Result<PgServer, String> {
        let data = dir.join("data");
        let sockets = dir.join("sockets");
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        for d in [&data, &sockets] {
            fs::create_dir(d).map_err(|e| e.to_string())?;
        }
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        run_checked(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .arg(&sockets),
        )?;
        let mut pw = [0u8; 16];
        twofoldd::secrets::os_random(&mut pw);
        let password: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        let password_file = dir.join("pg.pass");
        fs::write(&password_file, format!("{password}\n")).map_err(|e| e.to_string())?;
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let pg = PgServer {
            port: free_local_port()?,
            password_file,
            bin,
            data,
            sockets,
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
        ]))?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=100",
            pg.port,
            pg.sockets.display(),
        );
        run_checked(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.data.join("postgres.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]),
        )
        .map_err(|e| {
            format!(
                "{e}\n{}",
                fs::read_to_string(pg.data.join("postgres.log")).unwrap_or_default()
            )
        })?;
        pg.psql(&format!("CREATE ROLE twofold LOGIN PASSWORD '{password}'"))?;
        pg.psql("CREATE DATABASE twofold OWNER twofold")?;
        Ok(pg)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .current_dir("/")
            .stdin(Stdio::null());
        c
    }

    /// Runs SQL as the superuser over the local socket.
    fn psql(&self, sql: &str) -> Result<String, String> {
        run_checked(
            self.command("psql")
                .arg("-h")
                .arg(&self.sockets)
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-d"])
                .args(["postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]),
        )
    }

    /// `twofoldd.toml` lines for a fleet host on the `twofold` database.
    pub fn storage_config(&self, host: &str) -> String {
        format!(
            "hostname = \"{host}\"\nstorage = \"postgres://twofold@127.0.0.1:{}/twofold\"\n\
             storage_password_file = \"{}\"\nstorage_sslmode = \"disable\"\n",
            self.port,
            self.password_file.display()
        )
    }

    /// `SHOW name` on the server.
    pub fn show(&self, name: &str) -> String {
        self.psql(&format!("SHOW {name}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("? ({e})"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
