//! What a person sees (issue 13, deliverable 7): the words of the CLI and of the shipped
//! files, read as a person reads them.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use twofold_tests::root_only;
use twofold_tests::{built, private_shadow, repo_root, stderr, with_private_mounts, Pty, TestEnv};

/// The `Usage:` line of a usage error.
fn usage_line(out: &Output) -> String {
    let err = stderr(out);
    err.lines()
        .find(|l| l.starts_with("Usage: "))
        .unwrap_or_else(|| panic!("no usage line: {err}"))
        .to_owned()
}

#[test]
fn usage_errors_do_not_show_the_bus_as_required() {
    let given = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(built("twofold"));
        cmd.args(args).env_remove("TWOFOLD_BUS_ADDRESS");
        if let Some(address) = env {
            cmd.env("TWOFOLD_BUS_ADDRESS", address);
        }
        cmd.output().expect("run twofold")
    };
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (
            &["--bus", "unix:path=/nowhere", "sessions", "revoke"],
            None,
            "Usage: twofold sessions revoke <ID>",
        ),
        (
            &["sessions", "revoke"],
            Some("unix:path=/nowhere"),
            "Usage: twofold sessions revoke <ID>",
        ),
        (
            &["admin", "reset", "--bus", "unix:path=/nowhere", "--json"],
            None,
            "Usage: twofold admin reset --reason <TEXT> <USER>",
        ),
        (
            &["enroll", "--begin", "--confirm", "-"],
            Some("unix:path=/nowhere"),
            "Usage: twofold enroll --begin",
        ),
    ];
    for (args, env, expected) in cases {
        let out = given(args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(usage_line(&out), expected, "{args:?} (env {env:?})");
    }
    // Help still goes to standard output and shows the global flags as options.
    let out = given(&["--help"], None);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: twofold [OPTIONS] <COMMAND>") && help.contains("--bus <ADDRESS>"),
        "{help}"
    );
}

/// The "Next steps" that `packaging/install.sh` prints.
fn install_next_steps() -> String {
    let script = std::fs::read_to_string(repo_root().join("packaging/install.sh")).unwrap();
    let start = script
        .find("\nNext steps:")
        .expect("install.sh prints Next steps");
    let end = script[start..].find("\nNEXT").expect("the heredoc ends") + start;
    script[start..end].to_owned()
}

#[test]
fn install_next_steps_agree_with_the_readme() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let readme_lines: Vec<&str> = readme.lines().map(str::trim).collect();
    let steps = install_next_steps();
    // What to type or write: the lines indented under a step.
    let commands: Vec<&str> = steps
        .lines()
        .filter(|l| l.starts_with("         "))
        .map(str::trim)
        .collect();
    assert!(commands.len() >= 5, "{steps}");
    for command in &commands {
        let bare = command.trim_start_matches("sudo ");
        assert!(
            readme_lines
                .iter()
                .any(|l| l.contains(bare) || l.contains(command)),
            "install.sh says {command:?}, the README does not"
        );
    }
    // Every sshd_config block of the README says what install.sh says, line for line.
    let sshd: Vec<&str> = commands
        .iter()
        .copied()
        .filter(|c| c.contains(' ') && c.chars().next().is_some_and(char::is_uppercase))
        .collect();
    assert_eq!(sshd.len(), 3, "{sshd:?}");
    let blocks: Vec<Vec<&str>> = readme
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| {
            b.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|b| {
            b.iter()
                .any(|l| l.starts_with("KbdInteractiveAuthentication"))
        })
        .collect();
    assert!(!blocks.is_empty());
    for block in blocks {
        assert_eq!(block, sshd, "an sshd_config block of the README");
    }
    // The README sections it points to exist.
    for name in steps.split("README.md, \"").skip(1) {
        let name = name.split('"').next().unwrap();
        assert!(
            readme.contains(&format!("\n## {name}")),
            "install.sh points to README section {name:?}"
        );
    }
}

/// What the real `su` shows on the terminal after `nobody` runs `su daemon` and types
/// `password` (the right one is `right-pass`), with `/etc/pam.d/su` = pam_unix then
/// pam_twofold.so on `env`'s bus, in a private mount namespace (/etc/shadow too: the
/// host's files are not touched). su, like sshd and login, lets modules talk; sudo asks
/// for silence (`PAM_SILENT`), which the module honours.
fn su_says(env: &TestEnv, password: &str) -> String {
    let dir = env.dir.path().join(format!("su-{}", password.len()));
    let pam_d = dir.join("pam.d");
    std::fs::create_dir_all(&pam_d).unwrap();
    std::fs::write(
        pam_d.join("su"),
        format!(
            "auth required pam_unix.so\nauth required {} bus={}\n\
             account required pam_permit.so\nsession required pam_permit.so\n",
            built("libpam_twofold.so").display(),
            env.address
        ),
    )
    .unwrap();
    std::fs::write(pam_d.join("other"), "auth required pam_deny.so\n").unwrap();
    let shadow = private_shadow(&dir, &[("daemon", "right-pass")]);
    let words = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/bin/su",
        "daemon",
        "-s",
        "/bin/true",
    ];
    let args: Vec<&std::ffi::OsStr> = words.iter().map(|a| a.as_ref()).collect();
    let cmd = with_private_mounts(
        &[
            (&pam_d, Path::new("/etc/pam.d")),
            (&shadow, Path::new("/etc/shadow")),
        ],
        Path::new("/usr/bin/setpriv"),
        &args,
    );
    // On a terminal, as a person types: su talks to the terminal.
    let mut pty = Pty::spawn(cmd, None);
    pty.expect("Password: ", Duration::from_secs(20));
    pty.send_line(password);
    let (status, transcript) = pty.wait(Duration::from_secs(20));
    assert!(!status.success(), "su let nobody in: {transcript}");
    // What the module said after the password (which is not echoed); su's own last
    // line names the stack's result, which is libpam's to word.
    let after = transcript.split("Password: ").nth(1).unwrap_or("");
    assert!(after.contains("\nsu: "), "{transcript}");
    after
        .replace('\r', "")
        .lines()
        .filter(|l| !l.starts_with("su: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn su_says_why_a_refused_login_is_refused() {
    root_only!();
    let mut env = TestEnv::new();
    // Not enrolled: why, and the same after a wrong password.
    let right = su_says(&env, "right-pass");
    assert!(
        right.contains("not set up for this account") && right.contains("twofold enroll"),
        "{right}"
    );
    assert_eq!(right, su_says(&env, "wrong-pass-1"), "the password shows");
    // The daemon is down: not a wrong password; ask the administrator.
    env.stop_daemon();
    let right = su_says(&env, "right-pass");
    assert!(
        right.contains("unavailable") && right.contains("Contact your administrator"),
        "{right}"
    );
    assert_eq!(right, su_says(&env, "wrong-pass-2"), "the password shows");
}
