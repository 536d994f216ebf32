//! What a person sees (issue 13, deliverable 7): the words of the CLI and of the shipped
//! files, read as a person reads them.

use std::process::{Command, Output};

use twofold_tests::{built, repo_root};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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
