//! A cloneable shutdown token and the SIGTERM/SIGINT future that usually fires it.
//!
//! Unlike a broadcast channel, dropping every [`ShutdownTrigger`] does *not* signal shutdown:
//! roles hand triggers to helper tasks that may end early, and an ended helper must never stop
//! the process by accident. Only an explicit [`ShutdownTrigger::trigger`] does.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal as unix_signal, SignalKind};
use tokio::sync::Notify;

/// State shared by every clone of a token and its triggers.
#[derive(Debug, Default)]
struct Inner {
    /// Set once, never cleared: shutdown is a one-way transition.
    triggered: AtomicBool,
    /// Wakes every task parked in [`Shutdown::wait`].
    notify: Notify,
}

/// The receiving side: ask whether shutdown has begun, or wait for it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

/// The sending side: starts the shutdown of every task holding the paired [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    inner: Arc<Inner>,
}

impl Shutdown {
    /// A fresh, untriggered token and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let inner = Arc::new(Inner::default());
        (
            ShutdownTrigger {
                inner: Arc::clone(&inner),
            },
            Shutdown { inner },
        )
    }

    /// Whether [`ShutdownTrigger::trigger`] has been called; for loops that poll between steps.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Resolves once shutdown is triggered (immediately if it already was).
    ///
    /// Cancel-safe: dropping the future loses nothing, so it can sit in a `select!` loop.
    pub async fn wait(&self) {
        loop {
            let mut notified = pin!(self.inner.notify.notified());
            // Register interest before checking the flag, so a trigger that lands between the
            // check and the await still wakes us (`notify_waiters` only wakes registered ones).
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }

    /// A `'static` future that resolves on shutdown, for APIs that take `impl Future`
    /// (such as [`crate::admin::serve`]).
    pub fn wait_owned(&self) -> impl Future<Output = ()> + Send + 'static {
        let token = self.clone();
        async move { token.wait().await }
    }
}

impl ShutdownTrigger {
    /// Starts shutdown. Idempotent; every current and future waiter resolves.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }
}

/// Resolves on the first SIGTERM or SIGINT and names it (`"SIGTERM"` or `"SIGINT"`) for the log.
///
/// Must be called from within a tokio runtime. If a handler cannot be installed (which only
/// happens when the runtime has no signal driver), the failure is logged and that signal is
/// simply never reported; the other one still is.
pub async fn signal() -> &'static str {
    let term = unix_signal(SignalKind::terminate());
    let int = unix_signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        }
        (Ok(mut term), Err(err)) => {
            tracing::error!(error = %err, "Cannot install the SIGINT handler.");
            term.recv().await;
            "SIGTERM"
        }
        (Err(err), Ok(mut int)) => {
            tracing::error!(error = %err, "Cannot install the SIGTERM handler.");
            int.recv().await;
            "SIGINT"
        }
        (Err(term_err), Err(int_err)) => {
            tracing::error!(sigterm = %term_err, sigint = %int_err, "Cannot install signal handlers.");
            std::future::pending().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    #[tokio::test]
    async fn wait_resolves_after_trigger_for_many_waiters() {
        let (trigger, shutdown) = Shutdown::new();
        assert!(!shutdown.is_triggered());
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let s = shutdown.clone();
                tokio::spawn(async move { s.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        trigger.trigger();
        for w in waiters {
            timeout(Duration::from_secs(5), w)
                .await
                .expect("waiter resolved")
                .expect("task ok");
        }
        assert!(shutdown.is_triggered());
        // A waiter that arrives late resolves at once.
        timeout(Duration::from_millis(100), shutdown.wait())
            .await
            .expect("late waiter resolved");
        timeout(Duration::from_millis(100), shutdown.wait_owned())
            .await
            .expect("owned waiter resolved");
    }

    #[tokio::test]
    async fn dropping_every_trigger_does_not_trigger() {
        let (trigger, shutdown) = Shutdown::new();
        let second = trigger.clone();
        drop(trigger);
        drop(second);
        assert!(!shutdown.is_triggered());
        assert!(timeout(Duration::from_millis(50), shutdown.wait())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn wait_is_cancel_safe() {
        let (trigger, shutdown) = Shutdown::new();
        // Cancel a wait several times, then trigger: a fresh wait still sees it.
        for _ in 0..3 {
            assert!(timeout(Duration::from_millis(5), shutdown.wait())
                .await
                .is_err());
        }
        let s = shutdown.clone();
        let waiter = tokio::spawn(async move { s.wait().await });
        tokio::task::yield_now().await;
        trigger.trigger();
        trigger.trigger(); // idempotent
        timeout(Duration::from_secs(5), waiter)
            .await
            .expect("resolved")
            .expect("task ok");
    }

    #[tokio::test]
    async fn signal_reports_sigterm() {
        // Install a SIGTERM handler first so the signals below can never kill the test binary,
        // whatever the scheduling of the task under test.
        let _guard = unix_signal(SignalKind::terminate()).expect("install handler");
        let mut task = tokio::spawn(signal());
        let pid = std::process::id().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        // Re-send until observed: a signal raised before `signal()` registered is not seen.
        let name = loop {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("run kill");
            assert!(status.success());
            match timeout(Duration::from_millis(50), &mut task).await {
                Ok(joined) => break joined.expect("task ok"),
                Err(_) => assert!(tokio::time::Instant::now() < deadline, "no signal seen"),
            }
        };
        assert_eq!(name, "SIGTERM");
    }
}
