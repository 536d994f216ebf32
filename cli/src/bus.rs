//! The connection to `twofoldd`: every step bounded by [`TIMEOUT`].

use std::future::Future;
use std::time::Duration;

use twofold_contract::{TwofoldError, TwofoldProxy, UserStatus};
use zbus::proxy::CacheProperties;

use crate::context::Context;
use crate::error::Failure;
use crate::options::BusTarget;

/// Longest wait for connecting and for each call.
pub const TIMEOUT: Duration = Duration::from_secs(25);

/// What a call gives: the daemon's answer, its error kept as [`TwofoldError`] for the
/// caller to react to (a wrong code); or the call's own failure (a timeout).
pub type Reply<T> = Result<Result<T, TwofoldError>, Failure>;

/// A connected client of the daemon.
pub struct Daemon<'a> {
    proxy: TwofoldProxy<'static>,
    ctx: Context<'a>,
}

impl<'a> Daemon<'a> {
    /// Connects to the bus and makes the proxy.
    pub async fn connect(ctx: Context<'a>) -> Result<Daemon<'a>, Failure> {
        let connect = async {
            let conn = match ctx.bus {
                BusTarget::System => zbus::Connection::system().await?,
                BusTarget::Address(a) => {
                    zbus::connection::Builder::address(a.as_str())
                        .build()
                        .await?
                }
            };
            TwofoldProxy::builder(&conn)
                .cache_properties(CacheProperties::No)
                .build()
                .await
        };
        match tokio::time::timeout(TIMEOUT, connect).await {
            Ok(Ok(proxy)) => Ok(Daemon { proxy, ctx }),
            Ok(Err(e)) => Err(ctx.failure(&TwofoldError::ZBus(e))),
            Err(_) => Err(ctx.connect_timed_out(TIMEOUT)),
        }
    }

    pub fn proxy(&self) -> &TwofoldProxy<'static> {
        &self.proxy
    }

    pub fn context(&self) -> Context<'a> {
        self.ctx
    }

    /// Runs one call with the timeout; errors stay [`TwofoldError`] so that callers can
    /// react to some (a wrong code), and [`Context::failure`] words the rest.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, TwofoldError>>) -> Reply<T> {
        tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| self.ctx.timed_out(TIMEOUT))
    }

    /// Runs one call with the timeout; any error becomes a [`Failure`].
    pub async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, TwofoldError>>,
    ) -> Result<T, Failure> {
        self.call(call).await?.map_err(|e| self.ctx.failure(&e))
    }

    /// The status of the user the command is about, or the "not enrolled" failure when
    /// there is nothing to act on (said before asking for a code that cannot exist).
    pub async fn enrolled_status(&self) -> Result<UserStatus, Failure> {
        let s = self.run(self.proxy.status(self.user_arg())).await?;
        if !s.enrolled {
            return Err(self.ctx.failure(&TwofoldError::NotEnrolled(String::new())));
        }
        Ok(s)
    }

    /// The user argument for the daemon: "" for the caller.
    pub fn user_arg(&self) -> &'a str {
        self.ctx.user.unwrap_or("")
    }
}
