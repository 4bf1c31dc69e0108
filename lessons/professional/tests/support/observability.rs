//! Capturing tracing events in a check: each event's message and the request id of the span it
//! was recorded in, through a `tracing-subscriber` layer installed on the check's thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use tracing::Level;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// An event's message and the `id` field of the innermost span around it that has one.
pub type Recorded = (String, Option<String>);

/// Every event at or above a level recorded so far, in order.
///
/// The level is checked per event rather than with a filter layer: a filter's answer is cached
/// per callsite across every subscriber in the process, so with checks running in parallel an
/// `INFO` filter in one check could silence the `DEBUG` events another check waits for.
#[derive(Clone)]
pub struct Events(Arc<Mutex<Vec<Recorded>>>, Level);

impl Events {
    /// The messages recorded inside a span whose `id` field is `id`, in order.
    pub fn messages_with_id(&self, id: &str) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(_, span_id)| span_id.as_deref() == Some(id))
            .map(|(message, _)| message.clone())
            .collect()
    }

    /// The request id the event with this message was recorded under (the first such event).
    pub fn id_of(&self, message: &str) -> Option<String> {
        let events = self.0.lock().unwrap();
        let (_, id) = events
            .iter()
            .find(|(m, _)| m == message)
            .unwrap_or_else(|| panic!("no event {message:?} in {events:?}"));
        id.clone()
    }
}

/// A span's `id` field, kept in the span's extensions when the span is created.
struct RequestIdField(String);

/// Finds one field by name, whatever its type.
struct FieldText {
    name: &'static str,
    value: Option<String>,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.value = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.name {
            self.value = Some(format!("{value:?}"));
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for Events
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut field = FieldText {
            name: "id",
            value: None,
        };
        attrs.record(&mut field);
        if let (Some(value), Some(span)) = (field.value, ctx.span(id)) {
            span.extensions_mut().insert(RequestIdField(value));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = FieldText {
            name: "message",
            value: None,
        };
        event.record(&mut message);
        let id = ctx.event_scope(event).and_then(|scope| {
            scope.into_iter().find_map(|span| {
                span.extensions()
                    .get::<RequestIdField>()
                    .map(|f| f.0.clone())
            })
        });
        if *event.metadata().level() > self.1 {
            return; // less severe than the level recorded
        }
        let message = message.value.unwrap_or_default();
        self.0.lock().unwrap().push((message, id));
    }
}

/// Installs a recording subscriber on this thread for as long as the guard lives. Run the
/// check on a current-thread runtime on this same thread, so that every task's events reach it.
/// `level` and above: `TraceLayer`'s own events are at `DEBUG`.
pub fn record(level: Level) -> (Events, tracing::subscriber::DefaultGuard) {
    let events = Events(Arc::default(), level);
    let subscriber = tracing_subscriber::registry().with(events.clone());
    (events, tracing::subscriber::set_default(subscriber))
}

/// Waits until `condition` holds, checking every millisecond of tokio time; `false` if it did
/// not within `deadline`.
pub async fn eventually(condition: impl Fn() -> bool, deadline: Duration) -> bool {
    tokio::time::timeout(deadline, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}
