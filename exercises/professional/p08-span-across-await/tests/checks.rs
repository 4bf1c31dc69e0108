//! Checks for P08: two checkouts interleaved on purpose, on a paused current-thread runtime
//! with in-memory connections, and every log event captured with the request id of the span
//! it was recorded in.
//!
//! The interleaving is forced, not hoped for: the check plays the warehouse, and it answers
//! request A's reservation only once request B's has arrived. So A resumes after its `.await`
//! while B is suspended at its own, every run, on every machine.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::duplex;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use hyper::header::HeaderValue;
use p08_span_across_await::{MAIL_TIME, Reservation, Shop, Warehouse, serve_connection};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const HANG: &str = "the checkout never answered: is a handler waiting on the warehouse?";

/// One captured log event: the request ids of every span it was recorded in, outermost first
/// (none when the event was recorded outside every request's span; two when one request's span
/// was made inside another's), and the event's message and fields.
#[derive(Debug, Clone)]
struct Captured {
    request_ids: Vec<String>,
    sku: Option<String>,
    line: String,
}

/// A layer that records every event with the request id its span carries at that moment.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

/// The `request_id` field of a span, kept in the span's extensions.
struct RequestId(String);

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| value.clone())
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.get("request_id"), ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    // A span may get its request id after it was created (`Span::record`).
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.get("request_id"), ctx.span(id)) {
            span.extensions_mut().replace(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The whole chain, not only the innermost id: a line filed under two requests is
        // found by a search for either.
        let request_ids = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<RequestId>().map(|id| id.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = fields.message.clone();
        for (name, value) in &fields.fields {
            line.push_str(&format!(" {name}={value}"));
        }
        self.events.lock().unwrap().push(Captured {
            request_ids,
            sku: fields.get("sku"),
            line,
        });
    }
}

/// What the check runs: four checkouts and who asked for what.
const CHECKOUTS: [(&str, &str); 4] = [
    ("req-a", "lamp"),
    ("req-b", "desk"),
    ("req-c", "chair"),
    ("req-d", "sofa"),
];

/// How many of them the warehouse can serve (D's sofa is out of stock), so how many
/// confirmation e-mails go out.
const ORDERS: usize = 3;

fn owner_of(sku: &str) -> &'static str {
    CHECKOUTS
        .iter()
        .find(|(_, item)| *item == sku)
        .map(|(id, _)| *id)
        .unwrap_or("nobody")
}

fn checkout_request(
    request_id: &str,
    sku: &str,
) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    let mut checkout = request("POST", &format!("/checkout?sku={sku}"), "");
    checkout
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_str(request_id).unwrap());
    checkout
}

async fn next_reservation(queue: &mut mpsc::Receiver<Reservation>, sku: &str) -> Reservation {
    let reservation = tokio::time::timeout(Duration::from_secs(10), queue.recv())
        .await
        .unwrap_or_else(|_| panic!("the checkout of {sku} never asked the warehouse"))
        .expect("the warehouse queue is open");
    assert_eq!(
        reservation.sku, sku,
        "the checkout reserves what was ordered"
    );
    reservation
}

/// Runs the four checkouts and returns every event logged meanwhile.
///
/// A (lamp) and B (desk) are on two connections at once: A asks the warehouse, then B asks,
/// and only then does the warehouse answer A, then B. C (chair) follows A on A's keep-alive
/// connection, alone, and D (sofa) follows B on B's, alone, for an item that is out of stock.
async fn four_checkouts() -> Vec<Captured> {
    let capture = Capture::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let (warehouse, mut queue) = Warehouse::new();
    let shop = Shop::new(warehouse);
    let connect = |shop: Shop| duplex::http1(move |io| serve_connection(io, shop));
    let (first, _a_server) = connect(shop.clone()).await;
    let (second, _b_server) = connect(shop.clone()).await;

    // Each connection moves into the task that sends on it, and comes back with the answer.
    let a = tokio::spawn(send(first, checkout_request("req-a", "lamp")));
    let lamp = next_reservation(&mut queue, "lamp").await;
    let b = tokio::spawn(send(second, checkout_request("req-b", "desk")));
    let desk = next_reservation(&mut queue, "desk").await;

    lamp.reply.send(true).unwrap();
    let (first, answer_a) = a.await.unwrap();
    assert_eq!(
        answer_a, "order 1: lamp\n",
        "request A is answered with its order"
    );
    desk.reply.send(true).unwrap();
    let (second, answer_b) = b.await.unwrap();
    assert_eq!(
        answer_b, "order 2: desk\n",
        "request B is answered with its order"
    );

    let sent = tokio::time::Instant::now();
    let c = tokio::spawn(send(first, checkout_request("req-c", "chair")));
    next_reservation(&mut queue, "chair")
        .await
        .reply
        .send(true)
        .unwrap();
    let (_first, answer_c) = c.await.unwrap();
    assert_eq!(
        answer_c, "order 3: chair\n",
        "request C is answered with its order"
    );
    // The clock is paused: it moves only while every task waits on a timer, so a checkout
    // that waited for the mail relay is answered MAIL_TIME later, on every run.
    let took = sent.elapsed();
    assert!(
        took < MAIL_TIME,
        "checkout C was answered {} ms after it was sent, as long as the mail relay takes: it \
         waited for its confirmation e-mail. The shop hands the e-mail to a background task so \
         that a slow or hung relay never holds up a checkout; keep it there",
        took.as_millis(),
    );

    let d = tokio::spawn(send(second, checkout_request("req-d", "sofa")));
    next_reservation(&mut queue, "sofa")
        .await
        .reply
        .send(false)
        .unwrap();
    let (_second, answer_d) = d.await.unwrap();
    assert_eq!(
        answer_d, "sofa is out of stock\n",
        "request D, for an item the warehouse does not have, is answered that it is out of stock"
    );

    // The confirmations are sent in the background: wait for all three.
    let confirmations = tokio::time::timeout(10 * MAIL_TIME, async {
        loop {
            let sent = capture
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|event| event.line.starts_with("confirmation sent"))
                .count();
            if sent == ORDERS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        confirmations.is_ok(),
        "three orders were placed, but not three confirmation e-mails were logged as sent"
    );
    capture.events.lock().unwrap().clone()
}

/// Sends one checkout on `connection` and reads the answer.
async fn send(
    mut connection: H1Connection,
    checkout: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> (H1Connection, String) {
    let answer = connection
        .send(checkout)
        .await
        .expect("the shop closed the connection instead of answering");
    (connection, answer.text())
}

/// The log, one block per request id, each block in the order its lines were logged.
fn by_request(events: &[Captured]) -> String {
    let mut blocks: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for event in events {
        let id = if event.request_ids.is_empty() {
            "(no request span)".to_owned()
        } else {
            event.request_ids.join(" > ")
        };
        blocks.entry(id).or_default().push(&event.line);
    }
    let mut log = String::new();
    for (id, lines) in blocks {
        log.push_str(&format!("{id}\n"));
        for line in lines {
            log.push_str(&format!("    {line}\n"));
        }
    }
    log
}

#[test]
fn every_line_carries_its_own_request_id() {
    check(HANG).paused(|| async {
        let events = four_checkouts().await;
        for event in &events {
            let sku = event
                .sku
                .as_deref()
                .expect("every line of a checkout names its sku");
            let owner = owner_of(sku);
            match event.request_ids.as_slice() {
                [id] if id == owner => {}
                [] => panic!(
                    "the line `{}` of request {owner} was logged outside every request's span: \
                     the log search, which looks for the request id on the span, does not find \
                     it (a request_id field on the line itself is not the span's). Is the code \
                     that logged it (after an `.await`, on a path the other checkouts do not \
                     take, or in a spawned task) still inside the request's span?\n\nthe \
                     whole log:\n{}",
                    event.line,
                    by_request(&events)
                ),
                [id] => panic!(
                    "the line `{}` belongs to request {owner}, but it was logged under {id}: \
                     the span current when it was logged was another request's. A span entered \
                     with `span.enter()` stays entered on the thread across an `.await`, \
                     whatever task the thread polls next; and a span shared by several requests \
                     (one per connection, say) carries whichever id was recorded in it last\n\n\
                     the whole log:\n{}",
                    event.line,
                    by_request(&events)
                ),
                chain => panic!(
                    "the line `{}` of request {owner} was logged inside the spans of {}: a \
                     search for any of them finds it. A new span's parent is the span current \
                     where it is made: one request's span was still entered on the thread when \
                     another request made its own, so the second became the first's child\n\n\
                     the whole log:\n{}",
                    event.line,
                    chain.join(" and "),
                    by_request(&events)
                ),
            }
        }
    });
}

#[test]
fn the_log_of_interleaved_checkouts() {
    check(HANG).paused(|| async {
        let events = four_checkouts().await;
        insta::assert_snapshot!(by_request(&events));
    });
}
