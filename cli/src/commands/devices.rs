//! `twofold devices`: list, add (the enrollment's flow, see [`crate::commands::enroll`]),
//! remove.

use serde::Serialize;
use twofold_contract::{DeviceInfo, OathParams, TwofoldError};

use crate::commands::cx::Cx;
use crate::commands::enroll;
use crate::commands::proof::{with_proof, ProofWords};
use crate::error::Failure;
use crate::options::DevicesAction;
use crate::text::{cell, is_app, oath_summary, suggest, table};
use crate::time::{human_time_or_never, optional_iso8601};

/// One device in `devices --json` (and `status --json`): times ISO 8601 UTC, `null`
/// when never.
#[derive(Debug, Serialize)]
pub struct DeviceJson<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub added: Option<String>,
    pub last_used: Option<String>,
    pub algorithm: &'a str,
    pub digits: u32,
    /// Seconds per step; 0 for an HOTP counter.
    pub period: u32,
}

impl<'a> From<&'a DeviceInfo> for DeviceJson<'a> {
    fn from(d: &'a DeviceInfo) -> Self {
        DeviceJson {
            name: &d.name,
            kind: &d.kind,
            added: optional_iso8601(d.added),
            last_used: optional_iso8601(d.last_used),
            algorithm: &d.algorithm,
            digits: d.digits,
            period: d.period,
        }
    }
}

/// How the device makes its codes, as its parameters.
pub fn device_oath(d: &DeviceInfo) -> OathParams {
    OathParams {
        algorithm: d.algorithm.clone(),
        digits: d.digits,
        period: d.period,
        counter: 0,
    }
}

/// The device's kind, with its parameters when they are not an app's: `totp app`,
/// `hotp token (HOTP, SHA1, 6 digits)`.
fn kind_cell(d: &DeviceInfo) -> String {
    let oath = device_oath(d);
    if is_app(&oath) {
        cell(&d.kind)
    } else {
        format!("{} ({})", cell(&d.kind), cell(&oath_summary(&oath)))
    }
}

/// The devices as a table for people: name, kind, added, last used.
pub fn devices_table(devices: &[DeviceInfo]) -> String {
    let rows: Vec<[String; 4]> = devices
        .iter()
        .map(|d| {
            [
                cell(&d.name),
                kind_cell(d),
                human_time_or_never(d.added),
                human_time_or_never(d.last_used),
            ]
        })
        .collect();
    table(&["NAME", "KIND", "ADDED", "LAST USED"], &rows)
}

/// Runs `twofold devices`.
pub async fn run(cx: &mut Cx<'_>, action: &DevicesAction) -> Result<(), Failure> {
    match action {
        DevicesAction::List => list(cx).await,
        DevicesAction::Add { name, setup } => {
            let req = enroll::Request {
                device: Some(name),
                setup,
            };
            enroll::run(cx, &req).await
        }
        DevicesAction::Remove { name, code_stdin } => remove(cx, name, *code_stdin).await,
    }
}

async fn list(cx: &mut Cx<'_>) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let devices = daemon
        .run(daemon.proxy().list_devices(daemon.user_arg()))
        .await?;
    if devices.is_empty() && !cx.out.json {
        return Err(daemon
            .context()
            .failure(&TwofoldError::NotEnrolled(String::new())));
    }
    cx.out.list(devices.iter().map(DeviceJson::from), || {
        let mut text = devices_table(&devices);
        text.push_str(&format!(
            "\nA code from any of them works. Add one with `{}`.\n",
            suggest("devices add NAME", daemon.context().user)
        ));
        text
    })
}

/// `devices remove NAME --json`.
#[derive(Debug, Serialize)]
struct RemovedJson<'a> {
    device: &'a str,
    removed: bool,
}

/// Removes device `name`: the proof from standard input (`--code -`), else asked for
/// when the daemon says this caller needs one.
async fn remove(cx: &mut Cx<'_>, name: &str, code_stdin: bool) -> Result<(), Failure> {
    let prompt = format!("Enter a current code of a device other than {name}, or a backup code: ");
    let mismatch = format!(
        "That code did not match. Use a code of another device than {name}, or a backup \
         code.\n"
    );
    let not_done = format!("{name} was not removed");
    let words = ProofWords {
        prompt: &prompt,
        mismatch: &mismatch,
        not_done: &not_done,
    };
    let daemon = cx.daemon;
    with_proof(cx, code_stdin, words, async |proof| {
        let user = daemon.user_arg();
        daemon.proxy().remove_device(user, name, proof).await
    })
    .await?;
    let removed = RemovedJson {
        device: name,
        removed: true,
    };
    cx.out.answer(&removed, || {
        format!(
            "Device {name} removed for {}: its codes no longer work.\n",
            daemon.context().who()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, added: i64, last_used: i64) -> DeviceInfo {
        DeviceInfo {
            name: name.into(),
            kind: "totp app".into(),
            added,
            last_used,
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            recent_step_offsets: vec![0],
        }
    }

    #[test]
    fn table_and_json_name_every_device() {
        let devices = [
            device("default", 1_735_787_045, 0),
            device("spare", 1_735_787_045, 1_735_787_100),
        ];
        let t = devices_table(&devices);
        let lines: Vec<&str> = t.lines().collect();
        for (i, first) in ["NAME", "default", "spare"].into_iter().enumerate() {
            assert!(lines[i].starts_with(first), "{t}");
        }
        assert!(lines[1].ends_with("never"), "{t}");
        assert!(lines[2].contains("totp app"), "{t}");
        let v = serde_json::to_value(DeviceJson::from(&devices[0])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "default",
                "kind": "totp app",
                "added": "2025-01-02T03:04:05Z",
                "last_used": null,
                "algorithm": "SHA1",
                "digits": 6,
                "period": 30,
            })
        );
    }

    #[test]
    fn parameters_are_shown_when_not_an_apps() {
        let token = DeviceInfo {
            kind: "hotp token".into(),
            period: 0,
            ..device("fob", 1_735_787_045, 0)
        };
        let long = DeviceInfo {
            algorithm: "SHA256".into(),
            digits: 8,
            period: 60,
            ..device("spare", 1_735_787_045, 0)
        };
        let t = devices_table(&[device("default", 1_735_787_045, 0), token, long]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(!lines[1].contains('('), "{t}");
        assert!(
            lines[2].contains("hotp token (HOTP, SHA1, 6 digits)"),
            "{t}"
        );
        assert!(
            lines[3].contains("totp app (TOTP, SHA256, 8 digits, 60 s)"),
            "{t}"
        );
    }
}
