//! Clocks: is the server's synchronized (NTP), and how far off is the user's phone,
//! judged from the step offsets of recent logins?

use std::time::Duration;

/// How long to wait for systemd-timedated (it may need starting by D-Bus activation).
const TIMEDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server clock's synchronization, and where that was learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ntp {
    Synced {
        source: &'static str,
    },
    Unsynced {
        source: &'static str,
        ntp_enabled: Option<bool>,
    },
    Unknown {
        reason: String,
    },
}

/// Asks systemd-timedated (`NTPSynchronized` on the system bus) when it is there, else
/// the kernel (`ntp_adjtime`).
pub async fn server_ntp() -> Ntp {
    match tokio::time::timeout(TIMEDATE_TIMEOUT, timedate1()).await {
        Ok(Ok(state)) => state,
        Ok(Err(_)) | Err(_) => kernel_ntp(),
    }
}

async fn timedate1() -> zbus::Result<Ntp> {
    let conn = zbus::Connection::system().await?;
    let proxy = zbus::Proxy::new(
        &conn,
        "org.freedesktop.timedate1",
        "/org/freedesktop/timedate1",
        "org.freedesktop.timedate1",
    )
    .await?;
    let synced: bool = proxy.get_property("NTPSynchronized").await?;
    let source = "systemd-timedated";
    if synced {
        return Ok(Ntp::Synced { source });
    }
    let ntp_enabled = proxy.get_property::<bool>("NTP").await.ok();
    Ok(Ntp::Unsynced {
        source,
        ntp_enabled,
    })
}

/// The kernel's view: `ntp_adjtime` in read-only mode; `TIME_ERROR` or the `STA_UNSYNC`
/// status bit mean the clock is not synchronized.
pub fn kernel_ntp() -> Ntp {
    // SAFETY: an all-zero `timex` is a valid value of this plain C struct; modes = 0 makes
    // ntp_adjtime only read the kernel's state into it.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed timex for the duration of the call.
    let state = unsafe { libc::ntp_adjtime(&mut tx) };
    kernel_state(state, tx.status)
}

/// Interprets `ntp_adjtime`'s return value and status bits.
pub fn kernel_state(state: libc::c_int, status: libc::c_int) -> Ntp {
    let source = "the kernel (adjtimex)";
    if state < 0 {
        return Ntp::Unknown {
            reason: format!("adjtimex failed: {}", std::io::Error::last_os_error()),
        };
    }
    if state == libc::TIME_ERROR || status & libc::STA_UNSYNC != 0 {
        Ntp::Unsynced {
            source,
            ntp_enabled: None,
        }
    } else {
        Ntp::Synced { source }
    }
}

/// The user's device skew in steps, from offsets newest first: the median of the latest
/// five (for an even count, the middle value nearer zero). `None` without samples.
pub fn device_skew(offsets: &[i32]) -> Option<i32> {
    let mut recent: Vec<i32> = offsets.iter().take(5).copied().collect();
    if recent.is_empty() {
        return None;
    }
    recent.sort_unstable();
    let n = recent.len();
    if n % 2 == 1 {
        Some(recent[n / 2])
    } else {
        let (a, b) = (recent[n / 2 - 1], recent[n / 2]);
        Some(if a.unsigned_abs() <= b.unsigned_abs() {
            a
        } else {
            b
        })
    }
}

/// "30 s", "90 s", "about 3 minutes" for a skew of `steps` 30-second steps.
fn amount(steps: i32) -> String {
    let secs = i64::from(steps.unsigned_abs()) * 30;
    if secs < 120 {
        format!("{secs} s")
    } else {
        crate::time::human_duration(secs)
    }
}

/// The plain-words hint for a skew of `steps` (negative: the phone is behind).
pub fn skew_hint(steps: i32) -> String {
    let direction = if steps < 0 { "behind" } else { "ahead" };
    format!(
        "your phone's clock seems about {} {direction}; set it to automatic time \
         (date and time settings of the phone)",
        amount(steps)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_the_median_of_recent_logins() {
        assert_eq!(device_skew(&[]), None);
        assert_eq!(device_skew(&[-1]), Some(-1));
        assert_eq!(device_skew(&[-1, 0]), Some(0));
        assert_eq!(device_skew(&[-1, -1, 0]), Some(-1));
        assert_eq!(device_skew(&[2, 1, 2, 0, 2]), Some(2));
        // Only the five newest count.
        assert_eq!(device_skew(&[0, 0, 0, 1, 1, 1, 1, 1, 1]), Some(0));
    }

    #[test]
    fn hints_in_plain_words() {
        assert_eq!(
            skew_hint(-1),
            "your phone's clock seems about 30 s behind; set it to automatic time \
             (date and time settings of the phone)"
        );
        assert!(skew_hint(2).contains("about 60 s ahead"));
        assert!(skew_hint(-6).contains("about 3 minutes behind"));
    }

    #[test]
    fn kernel_states() {
        assert!(matches!(kernel_state(0, 0), Ntp::Synced { .. }));
        assert!(matches!(
            kernel_state(libc::TIME_ERROR, 0),
            Ntp::Unsynced { .. }
        ));
        assert!(matches!(
            kernel_state(0, libc::STA_UNSYNC),
            Ntp::Unsynced { .. }
        ));
        // The real call does not fail or panic, whatever the answer.
        let _ = kernel_ntp();
    }
}
