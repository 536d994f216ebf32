//! `twofoldd`: the privileged daemon behind pam_twofold.so and the twofold CLI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use twofold_contract::{BUS_NAME, OBJECT_PATH, SYSTEM_BUS_ADDRESS};
use twofoldd::args::{Args, DEFAULT_CONFIG, DEFAULT_STATE_DIR};
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use twofoldd::policy::Policy;
use twofoldd::service::Service;
use twofoldd::storage::sqlite::SqliteStore;
use twofoldd::{dbus, logging, secrets};

fn default_db() -> PathBuf {
    let dir = std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    dir.join("twofold.db")
}

/// Reads the policy: `--config`, else the default file when it exists, else defaults.
fn load_policy(config: Option<&std::path::Path>) -> Result<Policy, String> {
    match config {
        Some(path) => Policy::load(path),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            Policy::load(std::path::Path::new(DEFAULT_CONFIG))
        }
        None => Ok(Policy::default()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_stderr, args.debug);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("twofoldd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    // Files we create are ours alone, whatever umask we were started with.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let policy = load_policy(args.config.as_deref())?;
    let keys = secrets::Keys::load_or_create(&args.key)?;
    let db = args
        .db
        .clone()
        .or_else(|| policy.sqlite_path())
        .unwrap_or_else(default_db);
    let store = SqliteStore::open(&db)?;
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let service = Arc::new(Service {
        store: Arc::new(store),
        keys,
        policy: std::sync::RwLock::new(Arc::new(policy)),
        hostname,
        passwords: twofoldd::password::PasswordChecker {
            confdir: args.pam_confdir.clone(),
        },
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(&args, service, &db))
}

/// SIGHUP: read the config again; a bad file keeps the policy in force.
fn reload(config: Option<&std::path::Path>, service: &Service) {
    match load_policy(config) {
        Ok(policy) => {
            service.set_policy(policy);
            log::info!("SIGHUP: configuration reloaded");
        }
        Err(e) => log::error!("SIGHUP: keeping the previous configuration: {e}"),
    }
}

async fn serve(args: &Args, service: Arc<Service>, db: &std::path::Path) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    // Before anything else: SIGHUP's default action would kill us.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let address = args.bus.as_deref().unwrap_or(SYSTEM_BUS_ADDRESS);
    let connection = zbus::connection::Builder::address(address)
        .map_err(|e| format!("bad bus address {address}: {e}"))?
        .build()
        .await
        .map_err(|e| format!("cannot connect to the bus at {address}: {e}"))?;
    let object = dbus::Bus::new(service.clone(), &connection)
        .await
        .map_err(|e| format!("bus set-up failed: {e}"))?;
    // Login sessions: close stale ones, end timed-out ones.
    tokio::spawn(twofoldd::sessions::revoke::reaper(object.sessions()));
    connection
        .object_server()
        .at(OBJECT_PATH, object)
        .await
        .map_err(|e| format!("cannot serve {OBJECT_PATH}: {e}"))?;
    match connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DoNotQueue.into())
        .await
    {
        Ok(RequestNameReply::PrimaryOwner) | Ok(RequestNameReply::AlreadyOwner) => {}
        Ok(other) => {
            return Err(format!(
                "cannot own {BUS_NAME} ({other:?}): is another twofoldd running?"
            ))
        }
        Err(e) => {
            return Err(format!(
                "cannot own {BUS_NAME}: {e} (does the bus policy let us own it?)"
            ))
        }
    }
    log::info!("serving {BUS_NAME} on {address}, database {}", db.display());

    let dbus = zbus::fdo::DBusProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = term.recv() => { log::info!("SIGTERM: exiting"); return Ok(()); }
            _ = int.recv() => { log::info!("SIGINT: exiting"); return Ok(()); }
            _ = hup.recv() => reload(args.config.as_deref(), &service),
            _ = tick.tick() => {
                // The bus went away: exit so that the service manager (or D-Bus
                // activation) starts us afresh on the new bus.
                if let Err(e) = dbus.get_id().await {
                    return Err(format!("lost the bus: {e}"));
                }
            }
        }
    }
}
