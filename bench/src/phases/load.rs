//! Module load time, as every new sudo, su or sshd-session process pays it: in a fresh
//! process with libpam already loaded, `dlopen(module, RTLD_NOW | RTLD_LOCAL)` (what
//! libpam does) + `dlclose`, one sample per process (a module once loaded may stay
//! mapped, which would hide the cost from every later sample in the same process).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::env;
use crate::logins::Samples;

/// The hidden argument that makes the bench binary take one load sample and exit.
pub const SAMPLE_ARG: &str = "--load-sample";

/// Samples per module (at least 101, the figure; an odd count has a true median).
pub const SAMPLES: usize = 151;

/// In the fresh process: loads libpam.so.0 (RTLD_GLOBAL, as the PAM host has it), then
/// times dlopen + dlclose of `module` and prints the nanoseconds.
pub fn sample_and_exit(module: &str) -> ! {
    let libpam = CString::new("libpam.so.0").unwrap();
    let path = CString::new(module).expect("module path");
    // SAFETY: a valid C string; libpam stays loaded for the life of the process.
    let pam = unsafe { libc::dlopen(libpam.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if pam.is_null() {
        eprintln!("dlopen libpam.so.0 failed");
        std::process::exit(1);
    }
    let started = Instant::now();
    // SAFETY: a valid C string; the handle is closed right after and never used.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        eprintln!("dlopen {module} failed");
        std::process::exit(1);
    }
    // SAFETY: a handle dlopen just returned, closed once; no symbol from it was used.
    unsafe { libc::dlclose(handle) };
    let took = started.elapsed();
    println!("{}", took.as_nanos());
    std::process::exit(0)
}

/// The file to measure for `built`: a stripped copy in `dir` (as the packages install it:
/// packaging/build-packages.sh strips its copies) unless it is stripped already.
pub fn stripped_copy(built: &Path, dir: &Path) -> Result<PathBuf, String> {
    let copy = dir.join(built.file_name().unwrap());
    std::fs::copy(built, &copy).map_err(|e| format!("copy {}: {e}", built.display()))?;
    env::run(
        Command::new("strip").arg("--strip-unneeded").arg(&copy),
        "strip",
        &copy.display().to_string(),
    )?;
    Ok(copy)
}

/// One module's load-time samples, in µs.
pub struct LoadTimes {
    pub name: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
    pub samples: Samples,
}

/// Takes [`SAMPLES`] samples of each module, interleaved module by module so that load
/// from elsewhere on the machine hits them alike. `Samples` hold milliseconds.
pub fn measure(modules: &[(&'static str, PathBuf)]) -> Vec<LoadTimes> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut out: Vec<LoadTimes> = modules
        .iter()
        .map(|(name, path)| LoadTimes {
            name,
            path: path.clone(),
            bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            samples: Samples::default(),
        })
        .collect();
    for _ in 0..SAMPLES {
        for m in out.iter_mut() {
            let result = Command::new(&exe)
                .arg(SAMPLE_ARG)
                .arg(&m.path)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
            match result {
                Some(ns) => m.samples.ms.push(ns as f64 / 1e6),
                None => m.samples.failures += 1,
            }
        }
    }
    out
}

/// The load-time phase: measures pam_twofold (a stripped copy of `built`) and whichever
/// anchors are installed, and prints a line for each with its ratio to pam_twofold's.
pub fn phase(
    built: &Path,
    dir: &Path,
    ga: &Option<PathBuf>,
    oath: &Option<PathBuf>,
) -> Vec<LoadTimes> {
    println!("\n== module load: dlopen + dlclose in a fresh process, libpam loaded");
    let twofold = match stripped_copy(built, dir) {
        Ok(copy) => copy,
        Err(e) => {
            println!("cannot strip a copy ({e}); measuring the build output as it is");
            built.to_path_buf()
        }
    };
    let mut modules = vec![("pam_twofold (stripped)", twofold)];
    modules.extend(ga.iter().map(|p| ("pam_google_authenticator", p.clone())));
    modules.extend(oath.iter().map(|p| ("pam_oath", p.clone())));
    let loads = measure(&modules);
    // Ratios to pam_google_authenticator's median (the target's yardstick), if measured.
    let yardstick = loads
        .iter()
        .find(|m| m.name == "pam_google_authenticator")
        .map(|m| m.samples.p50());
    for m in &loads {
        println!(
            "{:<44} median {:>7.1} µs  p99 {:>7.1} µs  n={} failed={}  {} KiB{}",
            m.name,
            m.samples.p50() * 1000.0,
            m.samples.p99() * 1000.0,
            m.samples.ms.len(),
            m.samples.failures,
            m.bytes / 1024,
            yardstick.map_or(String::new(), |ga| format!(
                "  {:.2}x pam_google_authenticator",
                m.samples.p50() / ga
            ))
        );
    }
    loads
}
