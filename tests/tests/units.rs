//! The systemd units as systemd itself reads them: `systemd-analyze verify` (syntax,
//! dependencies, the daemon's path) and `systemd-analyze security --offline` (the
//! service's exposure, which must stay at or below 2.0, "OK").

use std::fs;
use std::process::Command;

use twofold_tests::{built, repo_root};

/// Highest exposure (systemd's 0.0–10.0 scale, times ten) the service may reach.
const MAX_EXPOSURE_TENTHS: u32 = 20;

fn systemd_analyze() -> Command {
    let path = "/usr/bin/systemd-analyze";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: tests/run.sh installs systemd"
    );
    Command::new(path)
}

/// The shipped units in a temporary directory, the service starting the built daemon
/// (the packages install it as /usr/sbin/twofoldd).
fn units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = repo_root().join("packaging/systemd");
    let service = fs::read_to_string(shipped.join("twofoldd.service")).unwrap();
    assert!(service.contains("/usr/sbin/twofoldd"), "{service}");
    let service = service.replace(
        "/usr/sbin/twofoldd",
        &built("twofoldd").display().to_string(),
    );
    fs::write(dir.path().join("twofoldd.service"), service).unwrap();
    fs::copy(
        shipped.join("twofoldd.socket"),
        dir.path().join("twofoldd.socket"),
    )
    .unwrap();
    dir
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let dir = units();
    let out = systemd_analyze()
        .args(["verify", "--man=no"])
        .arg(dir.path().join("twofoldd.service"))
        .arg(dir.path().join("twofoldd.socket"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.trim().is_empty(), "warnings: {said}");
}

#[test]
fn the_service_exposure_stays_ok() {
    let dir = units();
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--threshold={MAX_EXPOSURE_TENTHS}"))
        .arg(dir.path().join("twofoldd.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall level in {text}"));
    eprintln!("{level}");
    assert!(
        out.status.success(),
        "exposure above {}.{}: {level}\n{}",
        MAX_EXPOSURE_TENTHS / 10,
        MAX_EXPOSURE_TENTHS % 10,
        String::from_utf8_lossy(&out.stderr)
    );
}
