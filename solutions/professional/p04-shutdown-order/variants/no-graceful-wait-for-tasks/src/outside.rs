//! Stand-ins for the world outside the service: the mail relay it hands emails to, and the
//! audit log file it appends to. The checks read both to see what left the building and when.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long the mail relay takes to accept one email.
pub const SEND_TIME: Duration = Duration::from_millis(300);

/// The SMTP relay. Clones share one relay.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    delivered: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Relay {
    /// Hands one email to the relay; it is delivered once this returns.
    pub async fn deliver(&self, to: &str) {
        tokio::time::sleep(SEND_TIME).await;
        let mut delivered = self.delivered.lock().unwrap();
        delivered.push((Instant::now(), to.to_owned()));
    }

    /// Every email delivered so far, with when it was.
    pub fn delivered(&self) -> Vec<(Instant, String)> {
        self.delivered.lock().unwrap().clone()
    }
}

/// The writes of the log file so far: when each happened, and its lines.
type Writes = Vec<(Instant, Vec<String>)>;

/// The audit log: lines are buffered in memory and reach the file only when flushed.
/// Clones share one log.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    buffered: Arc<Mutex<Vec<String>>>,
    written: Arc<Mutex<Writes>>,
}

impl AuditLog {
    /// Buffers one line.
    pub fn record(&self, line: impl Into<String>) {
        self.buffered.lock().unwrap().push(line.into());
    }

    /// Writes the buffered lines out, if there are any.
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.buffered.lock().unwrap());
        if !lines.is_empty() {
            self.written.lock().unwrap().push((Instant::now(), lines));
        }
    }

    /// Every flush that wrote lines, with when it was.
    pub fn written(&self) -> Writes {
        self.written.lock().unwrap().clone()
    }
}
