//! `twofoldd`: the privileged daemon behind pam_twofold.so and the twofold CLI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use twofold_contract::{BUS_NAME, CHECK_CONFIG_TRUSTED_NETWORKS, OBJECT_PATH, SYSTEM_BUS_ADDRESS};
use twofoldd::args::{Args, Command, MigrateArgs, DEFAULT_CONFIG, DEFAULT_STATE_DIR};
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use twofoldd::policy::Policy;
use twofoldd::service::Service;
use twofoldd::sessions::procfs;
#[cfg(feature = "postgres")]
use twofoldd::storage::postgres::{self as pg, PostgresStore};
use twofoldd::storage::sqlite::SqliteStore;
use twofoldd::storage::Store;
use twofoldd::{dbus, logging, otp, secrets};

fn default_db() -> PathBuf {
    let dir = std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    dir.join("twofold.db")
}

/// Reads the policy: `--config`, else the default file when it exists, else defaults.
/// Its warnings are logged.
fn load_policy(config: Option<&std::path::Path>) -> Result<Policy, String> {
    let policy = match config_file(config) {
        Some(path) => Policy::load(&path)?,
        None => Policy::default(),
    };
    for warning in policy.warnings() {
        log::warn!("configuration: {warning}");
    }
    if policy.trusts_networks() {
        log::info!(
            "trusted networks (logins from there are not asked for a code): {}",
            policy.trusted_networks_summary()
        );
    }
    Ok(policy)
}

/// The configuration file in force: `--config`, else the default one when it exists.
fn config_file(config: Option<&std::path::Path>) -> Option<PathBuf> {
    match config {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
    }
}

/// `--check-config`: like `sshd -t`, says what is wrong and how to find it.
fn check_config(config: Option<&std::path::Path>) -> ExitCode {
    let Some(path) = config_file(config) else {
        println!("{DEFAULT_CONFIG} does not exist: the built-in defaults apply");
        return ExitCode::SUCCESS;
    };
    match Policy::load(&path) {
        Ok(policy) => {
            for warning in policy.warnings() {
                eprintln!("twofoldd: warning: {}: {warning}", path.display());
            }
            // `twofold doctor` shows this line.
            println!(
                "{CHECK_CONFIG_TRUSTED_NETWORKS}{}",
                policy.trusted_networks_summary()
            );
            println!("{}: OK", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("twofoldd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check_config {
        return check_config(args.config.as_deref());
    }
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

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Opens the store the policy names; `--db` always means SQLite. Returns it with a
/// description for the log.
fn open_store(
    args: &Args,
    policy: &Policy,
    keys: &secrets::Keys,
    hostname: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<(Arc<dyn Store>, String), String> {
    if let (None, Some(settings)) = (&args.db, policy.postgres(hostname)) {
        return open_postgres(&settings, keys, runtime);
    }
    let db = args
        .db
        .clone()
        .or_else(|| policy.sqlite_path())
        .unwrap_or_else(default_db);
    let store = SqliteStore::open(&db)?;
    Ok((Arc::new(store), format!("database {}", db.display())))
}

/// The fleet's PostgreSQL store.
#[cfg(feature = "postgres")]
fn open_postgres(
    settings: &twofoldd::storage::pg_settings::Settings,
    keys: &secrets::Keys,
    runtime: &tokio::runtime::Handle,
) -> Result<(Arc<dyn Store>, String), String> {
    let store = PostgresStore::open(settings, Some(keys.fleet_check()), runtime.clone())?;
    let place = format!("PostgreSQL {}", store.place());
    match store.check() {
        Ok(()) => {}
        Err(e @ twofoldd::storage::StoreError::Misconfigured(_)) => return Err(e.to_string()),
        // Unreachable now: start anyway; each request tries again (and fails closed
        // meanwhile), so the daemon recovers by itself when the database returns.
        Err(e) => log::error!("{e}; logins fail closed until it answers"),
    }
    Ok((Arc::new(store), place))
}

/// Without PostgreSQL support built in (the config check refuses such a `storage`).
#[cfg(not(feature = "postgres"))]
fn open_postgres(
    settings: &twofoldd::storage::pg_settings::Settings,
    _keys: &secrets::Keys,
    _runtime: &tokio::runtime::Handle,
) -> Result<(Arc<dyn Store>, String), String> {
    Err(format!(
        "storage: {} needs a twofoldd built with the \"postgres\" feature",
        settings.url
    ))
}

/// `twofoldd migrate` without PostgreSQL support built in.
#[cfg(not(feature = "postgres"))]
fn migrate(_args: &Args, _m: &MigrateArgs, _policy: &Policy) -> Result<(), String> {
    Err("twofoldd migrate needs a twofoldd built with the \"postgres\" feature".into())
}

/// `twofoldd migrate --from sqlite:PATH --to postgres://…`.
#[cfg(feature = "postgres")]
fn migrate(args: &Args, m: &MigrateArgs, policy: &Policy) -> Result<(), String> {
    let from = m
        .from
        .strip_prefix("sqlite:")
        .filter(|p| p.starts_with('/'))
        .ok_or("--from: give the SQLite database as sqlite:/absolute/path")?;
    if !std::path::Path::new(from).exists() {
        return Err(format!("--from: {from} does not exist"));
    }
    pg::check_url(&m.to, "--to")?;
    let sslmode = m
        .sslmode
        .as_deref()
        .unwrap_or(&policy.storage_sslmode)
        .parse::<pg::SslMode>()
        .map_err(|e| format!("--sslmode: {e}"))?;
    if !args.key.exists() {
        return Err(format!(
            "--key {}: no such file; migrate with this host's key file (it becomes, or must \
             be, the fleet's)",
            args.key.display()
        ));
    }
    let keys = secrets::Keys::load_or_create(&args.key)?;
    let host = m
        .host
        .clone()
        .or_else(|| policy.hostname.clone())
        .unwrap_or_else(system_hostname);
    let source = SqliteStore::open(std::path::Path::new(from))?;
    let settings = pg::Settings {
        url: m.to.clone(),
        password_file: m
            .password_file
            .clone()
            .or_else(|| policy.storage_password_file.clone()),
        sslmode,
        sslrootcert: m
            .sslrootcert
            .clone()
            .or_else(|| policy.storage_sslrootcert.clone()),
        application_name: format!("{host} (migrate)"),
    };
    // The store's connections need a runtime; this command has no other use for one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let target = PostgresStore::open(
        &settings,
        Some(keys.fleet_check()),
        runtime.handle().clone(),
    )?;
    target.check().map_err(|e| e.to_string())?;
    let report = pg::migrate::migrate(&source, from, &target, &host, twofoldd::service::now())?;
    log::info!("migrated {from} into {}: {report}", target.place());
    println!(
        "twofoldd: migrated {from} into {}: {report}",
        target.place()
    );
    Ok(())
}

/// Keeps Argon2's 19 MiB working memory from staying in glibc's per-thread arenas after
/// each hash: blocks from 1 MiB up are mmap'd and returned to the system when freed. And
/// two arenas at most: requests run on as many threads as are in flight (see
/// `dbus::blocking`), and an arena per thread would keep its freed memory resident.
fn return_big_allocations_to_the_system() {
    // SAFETY: mallopt only adjusts allocator tuning; it is called once, before any other
    // thread exists, with valid parameters and values.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the heap that a burst of requests left free to the system (glibc keeps it
/// otherwise, and the daemon's resident size would stay at its peak).
fn give_back_free_heap() {
    // SAFETY: malloc_trim takes the allocator's own locks and touches no memory of ours;
    // safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn run(args: Args) -> Result<(), String> {
    return_big_allocations_to_the_system();
    // Files we create are ours alone, whatever umask we were started with.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let policy = load_policy(args.config.as_deref())?;
    if let Some(Command::Migrate(m)) = &args.command {
        return migrate(&args, m, &policy);
    }
    // Before any thread exists (it reads and clears systemd's LISTEN_* variables).
    let direct = twofoldd::direct::listen(&args.socket)?;
    let keys = secrets::Keys::load_or_create(&args.key)?;
    let hostname = policy.hostname.clone().unwrap_or_else(system_hostname);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Requests on the bus block in place (see `dbus::blocking`); each needs a spare
        // thread to take over its worker's other tasks meanwhile. Argon2 runs at most two
        // at once. Each direct connection holds a thread of its own while it is open
        // (see `direct::serve`): they come on top, so that they can never starve the bus.
        .max_blocking_threads(64 + twofoldd::direct::MAX_CONNECTIONS)
        // Threads that served a burst of logins go soon after it (their stacks and
        // arenas with them), not 10 s later.
        .thread_keep_alive(Duration::from_secs(2))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The fleet store's connections run on it too.
    let (store, place) = open_store(&args, &policy, &keys, &hostname, runtime.handle())?;
    begin_run(&args, store.as_ref())?;
    let service = Arc::new(Service {
        store,
        keys,
        policy: std::sync::RwLock::new(Arc::new(policy)),
        hostname,
        passwords: twofoldd::password::PasswordChecker {
            confdir: args.pam_confdir.clone(),
        },
    });
    let store = Arc::clone(&service.store);
    let served = runtime.block_on(serve(&args, service, &place, direct));
    // Direct connections run in threads of their own: answer no more calls, let those
    // under way finish (briefly), then leave the silent ones behind.
    twofoldd::direct::stop();
    runtime.shutdown_timeout(Duration::from_millis(500));
    // An orderly stop (SIGTERM, SIGINT, a lost bus): no fence at the next start.
    if let Err(e) = store.end_run() {
        log::error!("cannot record the orderly stop: {e}");
    }
    served
}

/// Before serving: the boot id and the clock (tests may change both), then the replay
/// fence after a power loss (see `Store::begin_run`).
fn begin_run(args: &Args, store: &dyn Store) -> Result<(), String> {
    if let Some(path) = &args.boot_id_file {
        procfs::use_boot_id_file(path.clone());
    }
    twofoldd::service::set_clock_skew(args.clock_skew_seconds);
    let boot_id = procfs::boot_id();
    if let Some(fence) = store
        .begin_run(&boot_id)
        .map_err(|e| format!("cannot start the run: {e}"))?
    {
        log::warn!(
            "twofoldd stopped uncleanly on an earlier boot: TOTP codes up to step {fence} \
             may have been accepted unsynced and are refused; codes pass again from {}",
            twofoldd::service::format_time((fence as i64 + 1) * otp::STEP_SECONDS as i64)
        );
    }
    Ok(())
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

async fn serve(
    args: &Args,
    service: Arc<Service>,
    place: &str,
    direct: std::os::unix::net::UnixListener,
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    // Before anything else: SIGHUP's default action would kill us.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let address = args.bus.as_deref().unwrap_or(SYSTEM_BUS_ADDRESS);
    let parsed: zbus::Address = address
        .parse()
        .map_err(|e| format!("bad bus address {address}: {e}"))?;
    let connection = zbus::connection::Builder::address(parsed)
        .build()
        .await
        .map_err(|e| format!("cannot connect to the bus at {address}: {e}"))?;
    let object = dbus::TwofoldInterface::new(service.clone(), &connection)
        .await
        .map_err(|e| format!("bus set-up failed: {e}"))?;
    // Login sessions: close stale ones, end timed-out ones.
    tokio::spawn(twofoldd::sessions::revoke::reaper(object.sessions()));
    tokio::spawn(object.prefetch_credentials());
    tokio::spawn(twofoldd::direct::serve(direct, object.clone()));
    connection
        .object_server()
        .at(OBJECT_PATH, object)
        .await
        .map_err(|e| format!("cannot serve {OBJECT_PATH}: {e}"))?;
    match connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
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
    log::info!(
        "serving {BUS_NAME} on {address} and the direct socket, as host {}, {place}",
        service.hostname
    );

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
                give_back_free_heap();
                // The bus went away: exit so that the service manager (or D-Bus
                // activation) starts us afresh on the new bus.
                if let Err(e) = dbus.get_id().await {
                    return Err(format!("lost the bus: {e}"));
                }
            }
        }
    }
}
