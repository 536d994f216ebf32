//! The commands: each runs its action against the daemon and renders the answer, as text
//! for people or JSON (through [`crate::json`]). They read validated [`Options`] and the
//! helpers below them; nothing below imports a command.

pub mod admin;
pub mod backup_codes;
pub mod devices;
pub mod disable;
pub mod doctor;
pub mod enroll;
pub mod import;
mod proof;
pub mod sessions;
pub mod status;
pub mod tokens;

use std::io;

use crate::bus::Daemon;
use crate::context::Context;
use crate::error::Failure;
use crate::options::{Action, AdminAction, Options};
use crate::output::Verdict;
use crate::prompt;

/// Runs the action of `options`.
pub async fn run(options: &Options) -> Result<Verdict, Failure> {
    let ctx = Context {
        bus: &options.bus,
        user: options.user(),
    };
    let json = options.json;
    let mut out = io::stdout().lock();
    if let Action::Doctor { doctor, .. } = &options.action {
        return doctor::run(ctx, doctor, json, &mut out).await;
    }
    let daemon = Daemon::connect(ctx).await?;
    let mut input = io::stdin().lock();
    match &options.action {
        Action::Enroll { setup, .. } => {
            let req = enroll::Request {
                device: None,
                setup,
                json,
            };
            enroll::run(&daemon, &req, &mut out, &mut input).await?
        }
        Action::Status { .. } => status::run(&daemon, json, &mut out).await?,
        Action::Sessions { action, .. } => sessions::run(&daemon, action, json, &mut out).await?,
        Action::Devices { action, .. } => {
            devices::run(&daemon, action, json, &mut out, &mut input).await?
        }
        Action::Admin {
            action: AdminAction::ImportGoogleAuthenticator(import),
            ..
        } => import::google_authenticator(&daemon, import, json, &mut out).await?,
        Action::Admin {
            action: AdminAction::ImportOath(import),
            ..
        } => import::oath(&daemon, import, json, &mut out).await?,
        Action::Admin {
            action: AdminAction::Tokens(action),
            ..
        } => tokens::run(&daemon, action, json, &mut out, &mut input).await?,
        Action::Admin { action, .. } => admin::run(&daemon, action, json, &mut out).await?,
        Action::BackupCodesCount { .. } => backup_codes::count(&daemon, json, &mut out).await?,
        Action::BackupCodesRegenerate { code_stdin, .. } => {
            backup_codes::regenerate(&daemon, *code_stdin, json, &mut out, &mut input).await?
        }
        Action::Disable {
            yes,
            password_stdin,
            code_stdin,
            ..
        } => {
            let req = disable::Request {
                yes: *yes,
                password_stdin: *password_stdin,
                code_stdin: *code_stdin,
                json,
            };
            let mut ask = prompt::terminal_password;
            disable::run(&daemon, &req, &mut out, &mut input, &mut ask).await?
        }
        Action::Doctor { .. } => unreachable!("handled above"),
    }
    Ok(Verdict::Done)
}
