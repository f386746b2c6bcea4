//! Readiness and state reported to the service manager (systemd's
//! `Type=notify`, through `sd-notify`): `READY=1` once the consumer role is
//! held, `RELOADING=1` at SIGHUP and `READY=1` again when the reload is done
//! or refused, `STOPPING=1` at SIGTERM/SIGINT, with a `STATUS=` line each.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.
//! A failure to send is said once on stderr and never stops the collector.

use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;

/// Set after the first failure, so that a broken socket is said once.
static FAILED: AtomicBool = AtomicBool::new(false);

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        // Relaxed: a flag that only limits how often one line is printed.
        if !FAILED.swap(true, Ordering::Relaxed) {
            eprintln!("logbus-collector: cannot notify the service manager ($NOTIFY_SOCKET): {e}");
        }
    }
}

/// The collector holds its ring(s) and runs: `READY=1`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts: `RELOADING=1` (with the monotonic time that
/// `Type=notify-reload` asks for); [`ready`] ends it.
pub fn reloading() {
    let mut states = vec![
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutdown starts: `STOPPING=1`.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining and flushing"),
    ]);
}
