//! The commands: each runs its action against the daemon and renders the answer, as text
//! for people or JSON (through [`cx::Out`]), with the context [`cx::Cx`]. They read
//! validated [`Options`] and the helpers below them; nothing below imports a command.

pub mod admin;
pub mod backup_codes;
pub mod cx;
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
use crate::commands::cx::{Cx, Out};
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
    let mut stdout = io::stdout().lock();
    let mut out = Out::new(options.json, &mut stdout);
    if let Action::Doctor { doctor, .. } = &options.action {
        return doctor::run(ctx, doctor, &mut out).await;
    }
    let daemon = Daemon::connect(ctx).await?;
    let mut input = io::stdin().lock();
    let cx = &mut Cx {
        daemon: &daemon,
        input: &mut input,
        out,
    };
    match &options.action {
        Action::Enroll { setup, .. } => {
            let req = enroll::Request {
                device: None,
                setup,
            };
            enroll::run(cx, &req).await?
        }
        Action::Status { .. } => status::run(cx).await?,
        Action::Sessions { action, .. } => sessions::run(cx, action).await?,
        Action::Devices { action, .. } => devices::run(cx, action).await?,
        Action::Admin { action, .. } => match action {
            AdminAction::ImportGoogleAuthenticator(import) => {
                import::google_authenticator(cx, import).await?
            }
            AdminAction::ImportOath(import) => import::oath(cx, import).await?,
            AdminAction::Tokens(action) => tokens::run(cx, action).await?,
            _ => admin::run(cx, action).await?,
        },
        Action::BackupCodesCount { .. } => backup_codes::count(cx).await?,
        Action::BackupCodesRegenerate { code_stdin, .. } => {
            backup_codes::regenerate(cx, *code_stdin).await?
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
            };
            disable::run(cx, &req, &mut prompt::terminal_password).await?
        }
        Action::Doctor { .. } => unreachable!("handled above"),
    }
    Ok(Verdict::Done)
}
