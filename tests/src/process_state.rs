//! What a PAM module could leave behind in the process that loaded it (pamdriver's
//! process): descriptors, signal state, threads.

/// What a module could leave behind in its host process: open file descriptors (number
/// and target), and the signal mask and dispositions (`SigBlk`, `SigIgn`, `SigCgt` of
/// /proc/self/status).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessState {
    pub fds: Vec<String>,
    pub signals: Vec<String>,
}

impl ProcessState {
    pub fn now() -> ProcessState {
        let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        let target = std::fs::read_link(e.path()).unwrap_or_default();
                        format!(
                            "{} -> {}",
                            e.file_name().to_string_lossy(),
                            target.display()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The directory listing's own descriptor differs between calls.
        fds.retain(|f| !f.ends_with("/fd"));
        fds.sort();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let signals = status
            .lines()
            .filter(|l| {
                ["SigBlk:", "SigIgn:", "SigCgt:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(str::to_owned)
            .collect();
        ProcessState { fds, signals }
    }
}

/// Threads of this process, to prove that a module left none behind.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}
