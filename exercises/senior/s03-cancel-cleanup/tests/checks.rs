//! Checks for S03: in-memory connections on a paused clock, the service's gauge of render slots
//! in use, and the browser pool's gauge of renders. Virtual time lets a client hang up at an
//! exact moment of its request (halfway through loading the invoice, or once its render has
//! started), and "the connection is over" is an event: the task serving it has ended, so hyper
//! has dropped the handler's future.

use std::time::Duration;

use harness::duplex;
use harness::watchdog::check;
use s03_cancel_cleanup::{Invoicing, LOAD_TIME, RENDER_SLOTS, RENDER_TIME, serve_connection};
use tokio::io::AsyncWriteExt;

const HANG: &str = "the check never got past waiting on the server; does a request wait for \
                    something that never comes (a slot, a render, a lock)?";

/// How long after a connection is over its slot and its render may still be held: a fraction
/// of a render, so that a render left running for nobody cannot pass for a slow release.
const RELEASED_WITHIN: Duration = Duration::from_secs(1);

/// How many clients each hang-up check sends away: one more than there are slots, so that
/// slots lost one by one would leave none for the next client.
const HANG_UPS: usize = RENDER_SLOTS + 1;

const INVOICE_REQUEST: &[u8] = b"GET /invoice?id=1042 HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

const INVOICE_1042: &str = "%PDF-1.7 invoice 1042 total 385.54 EUR\n";

/// Waits until `in_flight()` reads 0, looking every virtual millisecond: `false` if it still
/// does not after [`RELEASED_WITHIN`].
async fn slots_all_free(invoicing: &Invoicing) -> bool {
    tokio::time::timeout(RELEASED_WITHIN, async {
        while invoicing.in_flight() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

/// Asks for an invoice on a connection of its own and reads the whole answer.
async fn fetch(invoicing: &Invoicing, path: &str) -> harness::TestResponse {
    let for_server = invoicing.clone();
    let (mut client, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
    client
        .get(path)
        .await
        .expect("the server closed the connection instead of answering")
}

/// When a client gives up on its invoice.
#[derive(Clone, Copy)]
enum HangUp {
    /// Halfway through loading the invoice from the database.
    WhileLoading,
    /// Once its render is running in the browser pool.
    WhileRendering,
}

/// A client asks for invoice 1042 and hangs up at `when`; returns once the task serving its
/// connection is over, so hyper has dropped the handler's future wherever it was waiting.
async fn hang_up(invoicing: &Invoicing, when: HangUp, renders_before: usize) {
    let for_server = invoicing.clone();
    let (mut client, server) = duplex::raw(move |io| serve_connection(io, for_server));
    client.write_all(INVOICE_REQUEST).await.unwrap();
    match when {
        // On the paused clock the server has read the request and is waiting on the database
        // before this sleep ends: the clock moves only once every task is waiting.
        HangUp::WhileLoading => tokio::time::sleep(LOAD_TIME / 2).await,
        HangUp::WhileRendering => assert!(
            invoicing
                .renders
                .reaches_started(renders_before + 1, LOAD_TIME * 5)
                .await,
            "a client asked for invoice 1042 and waited, but its render never started"
        ),
    }
    drop(client);
    let _ = server.task.await;
}

/// Clients hang up one after another at `when`, one more than there are slots. After each,
/// every slot must be free again; after all of them, the next client must be served.
async fn clients_hang_up(when: HangUp, moment: &str) {
    let invoicing = Invoicing::default();
    for client in 1..=HANG_UPS {
        hang_up(&invoicing, when, invoicing.renders.started()).await;
        assert!(
            slots_all_free(&invoicing).await,
            "client {client} of {HANG_UPS} hung up {moment}; its connection is over, so hyper \
             dropped the handler's future, yet in_flight() still reads {} a second later (a \
             render takes {} s): the slot is given back by code after an .await, which never \
             runs once the future is dropped there. After {RENDER_SLOTS} such clients every \
             request gets 503",
            invoicing.in_flight(),
            RENDER_TIME.as_secs(),
        );
    }
    let after = fetch(&invoicing, "/invoice?id=1042").await;
    assert_eq!(
        (after.status.as_u16(), after.text().as_str()),
        (200, INVOICE_1042),
        "{HANG_UPS} clients hung up {moment}, one after another, and none of them holds a slot \
         any more, yet the next client was not served its invoice"
    );
}

/// A client asks for an invoice and waits: it gets its PDF, and the slot is free again once it
/// is answered. An unknown invoice is a 404, and gives its slot back too.
#[test]
fn a_client_that_waits_gets_its_invoice() {
    check(HANG).paused(|| async {
        let invoicing = Invoicing::default();
        for round in 1..=2 {
            let invoice = fetch(&invoicing, "/invoice?id=1042").await;
            assert_eq!(
                (invoice.status.as_u16(), invoice.text().as_str()),
                (200, INVOICE_1042),
                "request {round} for invoice 1042 must get its PDF"
            );
            assert_eq!(
                invoice.header("content-type"),
                Some("application/pdf"),
                "an invoice is answered as application/pdf"
            );
            assert!(
                slots_all_free(&invoicing).await,
                "invoice 1042 was answered, yet in_flight() reads {}: an answered request must \
                 hold no slot (given back twice, a count can wrap below zero, too)",
                invoicing.in_flight()
            );
        }
        let missing = fetch(&invoicing, "/invoice?id=7").await;
        assert_eq!(
            missing.status, 404,
            "invoice 7 does not exist: the database finds nothing, and the answer is 404"
        );
        assert!(
            slots_all_free(&invoicing).await,
            "a 404 was answered, yet in_flight() reads {}",
            invoicing.in_flight()
        );
    });
}

/// As many clients as there are slots wait for their invoices; one more arrives meanwhile and
/// is refused at once with 503 and `retry-after`. Once the others are served, it gets in.
#[test]
fn a_full_pool_turns_the_next_client_away() {
    check(HANG).paused(|| async {
        let invoicing = Invoicing::default();
        let mut waiting = Vec::new();
        for _ in 0..RENDER_SLOTS {
            let invoicing = invoicing.clone();
            waiting.push(tokio::spawn(async move {
                fetch(&invoicing, "/invoice?id=1042").await
            }));
        }
        assert!(
            invoicing
                .renders
                .reaches_started(RENDER_SLOTS, LOAD_TIME * 5)
                .await,
            "{RENDER_SLOTS} clients asked for an invoice at once, but only {} render(s) started: \
             the pool has {RENDER_SLOTS} slots, and each of them must be used",
            invoicing.renders.started()
        );
        assert_eq!(
            invoicing.in_flight(),
            RENDER_SLOTS,
            "{RENDER_SLOTS} requests are rendering, so in_flight() must count {RENDER_SLOTS} \
             slots taken: a slot is held until the request is answered"
        );

        let refused = fetch(&invoicing, "/invoice?id=1042").await;
        assert_eq!(
            (refused.status.as_u16(), refused.header("retry-after")),
            (503, Some("1")),
            "every slot is taken, so one more client must get 503 with retry-after: 1 \
             (got {} {:?}): a limit that lets it through, or a slot counted for less time than \
             its request runs, limits nothing",
            refused.status,
            refused.text()
        );
        assert_eq!(
            invoicing.renders.started(),
            RENDER_SLOTS,
            "the refused client's invoice was rendered anyway"
        );

        for client in waiting {
            let served = client.await.expect("a waiting client panicked");
            assert_eq!(
                (served.status.as_u16(), served.text().as_str()),
                (200, INVOICE_1042),
                "a client admitted to the pool must get its invoice"
            );
        }
        let later = fetch(&invoicing, "/invoice?id=1042").await;
        assert_eq!(
            later.status, 200,
            "every earlier request was answered, so a new one must find a slot free"
        );
    });
}

/// A client keeps its connection open between two invoices, as the web app's HTTP client does:
/// a slot belongs to a request, not to a connection, so while it is idle it holds none, and
/// another client is served meanwhile.
#[test]
fn a_kept_alive_connection_holds_no_slot_between_requests() {
    check(HANG).paused(|| async {
        let invoicing = Invoicing::default();
        let for_server = invoicing.clone();
        let (mut kept, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
        for round in 1..=2 {
            let invoice = kept
                .get("/invoice?id=1042")
                .await
                .expect("the server closed the kept-alive connection instead of answering");
            assert_eq!(
                (invoice.status.as_u16(), invoice.text().as_str()),
                (200, INVOICE_1042),
                "request {round} on a kept-alive connection must get its PDF"
            );
            assert!(
                slots_all_free(&invoicing).await,
                "request {round} on a kept-alive connection was answered and the connection \
                 waits idle for the next one, yet in_flight() reads {}: a slot taken per \
                 connection is held by every idle keep-alive connection, and a connection \
                 that got none is refused for as long as it stays open. A slot is taken and \
                 given back by each request",
                invoicing.in_flight()
            );
            let meanwhile = fetch(&invoicing, "/invoice?id=1042").await;
            assert_eq!(
                meanwhile.status, 200,
                "a kept-alive connection sits idle between two requests; another client, on a \
                 connection of its own, must be served meanwhile"
            );
        }
    });
}

/// Requests that overlap, started at different moments: each one answered gives back its own
/// slot and no other, so the count stays right for the ones still running, and the pool stays
/// closed to a fifth request while four run.
#[test]
fn an_answered_request_gives_back_one_slot() {
    check(HANG).paused(|| async {
        let invoicing = Invoicing::default();
        let start = |invoicing: &Invoicing| {
            let invoicing = invoicing.clone();
            tokio::spawn(async move { fetch(&invoicing, "/invoice?id=1042").await })
        };
        let first = start(&invoicing);
        // The others start a second later, so they are still rendering when the first is
        // answered (a render takes 8 s).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut later = Vec::new();
        for _ in 1..RENDER_SLOTS - 1 {
            later.push(start(&invoicing));
        }
        assert!(
            invoicing
                .renders
                .reaches_started(RENDER_SLOTS - 1, LOAD_TIME * 5)
                .await,
            "{} clients asked for an invoice, but only {} render(s) started",
            RENDER_SLOTS - 1,
            invoicing.renders.started()
        );
        let answered = first.await.expect("the first client panicked");
        assert_eq!(
            answered.status, 200,
            "the first client must get its invoice"
        );
        assert_eq!(
            invoicing.in_flight(),
            RENDER_SLOTS - 2,
            "of {} overlapping requests the first was answered, and {} are still rendering, yet \
             in_flight() reads {}: the answered request gave back more than its own slot (a \
             release on the way out as well as the guard's, kept from going below zero, takes \
             the slot of a request still running), and the pool now lets in more requests \
             than it has tabs",
            RENDER_SLOTS - 1,
            RENDER_SLOTS - 2,
            invoicing.in_flight()
        );
        // Two more fill the pool again; a fifth must be refused while four run.
        for _ in 0..2 {
            later.push(start(&invoicing));
        }
        assert!(
            invoicing
                .renders
                .reaches_started(RENDER_SLOTS + 1, LOAD_TIME * 5)
                .await,
            "two more clients asked for an invoice with a slot free each, but their renders \
             never started"
        );
        let refused = fetch(&invoicing, "/invoice?id=1042").await;
        assert_eq!(
            refused.status, 503,
            "{RENDER_SLOTS} requests are rendering, so one more must be refused with 503; it \
             was let in, because an earlier answer gave back slots that were not its own"
        );
        for client in later {
            let served = client.await.expect("a waiting client panicked");
            assert_eq!(
                served.status, 200,
                "a client admitted to the pool must get its invoice"
            );
        }
    });
}

/// Clients hang up once their render is running (the web app's own timeout, a closed tab).
#[test]
fn a_hang_up_while_rendering_gives_the_slot_back() {
    check(HANG).paused(|| async {
        clients_hang_up(HangUp::WhileRendering, "while its invoice was rendering").await;
    });
}

/// Clients hang up while their invoice is still being loaded from the database.
#[test]
fn a_hang_up_while_loading_gives_the_slot_back() {
    check(HANG).paused(|| async {
        clients_hang_up(HangUp::WhileLoading, "while its invoice was loading").await;
    });
}

/// A client hangs up while its invoice renders: the render must stop with it, not run on for
/// nobody in a browser tab the next client needs.
#[test]
fn no_render_outlives_its_client() {
    check(HANG).paused(|| async {
        let invoicing = Invoicing::default();
        hang_up(&invoicing, HangUp::WhileRendering, 0).await;
        assert!(
            invoicing.renders.settles_to(0, RELEASED_WITHIN).await,
            "the client hung up while its invoice was rendering and its connection is over, \
             yet the render was still running a second later (a render takes {} s): work \
             handed to a task of its own runs on after the client left, and holds its browser \
             tab (and its slot) for nobody. Keep the work in the handler's future, or abort \
             it when the handler is dropped",
            RENDER_TIME.as_secs()
        );
    });
}
