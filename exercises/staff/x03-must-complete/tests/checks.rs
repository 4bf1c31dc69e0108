//! Checks for X03: orders over in-memory connections on a paused clock. The inventory and the
//! ledger answer after a fixed virtual latency, so "the client left while the seats were held
//! and the charge was on its way" is a fact the check arranges, not a race it hopes to win.
//! Each check runs on its own current-thread runtime, so its count of alive tasks is exact,
//! and so is its count of the heap this thread holds.

use std::time::Duration;

use harness::duplex;
use harness::heap;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use x03_must_complete::{BoxOffice, Charge, Inventory, Ledger, SHUTDOWN_GRACE, serve_connection};

// Counts the heap per thread, for `finished_commits_are_not_kept`; the other checks do not look
// at it.
#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

const HANG: &str = "the check never got past waiting on an order: does every order still \
                    reach the inventory and the ledger, and does shutdown return?";

const SEATS: u32 = 100;
const INVENTORY_LATENCY: Duration = Duration::from_millis(100);
const LEDGER_LATENCY: Duration = Duration::from_secs(2);

/// Longer than any whole commit takes: what "by then it should be over" means.
const SETTLE: Duration = Duration::from_secs(10);

const ORDER_OF_TWO: &[u8] =
    b"POST /orders HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 7\r\n\r\nseats=2";

struct Venue {
    office: BoxOffice,
    inventory: Inventory,
    ledger: Ledger,
}

fn venue(ledger_latency: Duration) -> Venue {
    venue_with(SEATS, ledger_latency)
}

fn venue_with(seats: u32, ledger_latency: Duration) -> Venue {
    let inventory = Inventory::new(seats, INVENTORY_LATENCY);
    let ledger = Ledger::new(ledger_latency);
    Venue {
        office: BoxOffice::new(inventory.clone(), ledger.clone()),
        inventory,
        ledger,
    }
}

/// Sends an order for two seats over a raw connection and returns the client's end: drop it
/// to hang up.
async fn send_order(office: &BoxOffice) -> DuplexStream {
    let office = office.clone();
    let (mut client, _server) = duplex::raw(move |io| serve_connection(io, office));
    client.write_all(ORDER_OF_TWO).await.unwrap();
    client
}

/// A client that stays: it sends an order for two seats and reads the whole answer.
async fn order_and_wait(office: &BoxOffice) -> (H1Connection, u16, String) {
    let office = office.clone();
    let (mut client, _server) = duplex::http1(move |io| serve_connection(io, office)).await;
    let response = client
        .send(request("POST", "/orders", "seats=2"))
        .await
        .expect("the server closed the connection of a client that waited for its answer");
    (client, response.status.as_u16(), response.text())
}

/// Waits until `value` satisfies `done`, on the virtual clock.
async fn wait_for<T>(mut value: watch::Receiver<T>, what: &str, done: impl FnMut(&T) -> bool) {
    let waited = tokio::time::timeout(SETTLE, value.wait_for(done)).await;
    assert!(
        matches!(waited, Ok(Ok(_))),
        "{what} did not happen within {SETTLE:?}: does the order still reach the inventory?"
    );
}

/// Waits, on the virtual clock, until no more tasks are alive than `before`. No event says
/// that a task ended, so look again every ten virtual milliseconds: that costs no real time.
async fn tasks_settle_to(before: usize, within: Duration) -> bool {
    let runtime = tokio::runtime::Handle::current().metrics();
    tokio::time::timeout(within, async {
        while runtime.num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

/// Lets every commit run to its end: `SETTLE` of virtual time, then every task the server
/// started is over. The wait is on the clock, not on an event, because a commit may run in a
/// task of its own or in one the service owns for its whole life, and the exactly-once verdict
/// needs a moment by which a second commit, too, would have landed. On the paused clock time
/// only moves while every task is idle, so by then each has done all it ever will.
async fn settle(before: usize) -> bool {
    tokio::time::sleep(SETTLE).await;
    tasks_settle_to(before, Duration::from_millis(100)).await
}

/// The verdict on one order whose client left: the venue must show it committed exactly once.
fn committed_once(venue: &Venue, orders: usize, moment: &str) {
    let held = SEATS - venue.inventory.left();
    let charges = venue.ledger.charges();
    let charged: u32 = charges.iter().map(|c| c.seats).sum();
    let expected = 2 * orders as u32;
    assert!(
        !(held == expected && charged + 2 == expected),
        "a client left {moment}: its two seats are held but were never charged. Half a commit: \
         the commit was cancelled when hyper dropped the handler's future, because it ran \
         inside that future or in a task aborted with it (an AbortOnDropHandle, a JoinSet the \
         handler owns) ({charges:?})"
    );
    assert!(
        !(held + 2 == expected && charged + 2 == expected),
        "a client left {moment} and its order vanished: no seats held, no charge. The order was \
         received in full, and the box office promises that a received order is placed \
         whether or not its client waits for the answer: neither cancelling the commit with \
         the handler nor rolling it back keeps that promise"
    );
    assert!(
        held == expected && charged == expected && charges.len() == orders,
        "after {orders} order(s) of two seats, {held} seats are held and {charged} charged in \
         {} charge(s): an order must be committed exactly once, neither retried nor re-run \
         ({charges:?})",
        charges.len()
    );
    let holds = *venue.inventory.watch_requests().borrow();
    assert_eq!(
        holds, orders as u64,
        "after {orders} order(s), the inventory was asked for {holds} hold(s): a hold cut off \
         when the client left was sent again. The stand-in ignores a call dropped before it \
         answers, but a real one may have taken the seats already; the same goes for a ledger \
         write sent again, which charges twice. Let the interrupted call itself run to its end \
         instead of re-sending it"
    );
}

/// A client that waits gets `201` once both halves are done, and a sold-out show answers
/// `409` with nothing held or charged.
#[test]
fn a_client_that_waits_gets_its_order() {
    check(HANG).paused(|| async {
        let venue = venue(LEDGER_LATENCY);
        let (_client, status, text) = order_and_wait(&venue.office).await;
        assert_eq!(
            (status, text.as_str()),
            (201, "order 1: 2 seats\n"),
            "a client that waits must get its order's number"
        );
        assert_eq!(
            (venue.inventory.left(), venue.ledger.charges()),
            (SEATS - 2, vec![Charge { order: 1, seats: 2 }]),
            "when the answer 201 arrives, the seats must be held and the charge recorded: the \
             answer reports a commit that has happened, not one that may still fail"
        );

        // Two clients at once: each commit waits on the network, not on the other, so both
        // answers come within one commit's time (a hold and a write), not two.
        let started = tokio::time::Instant::now();
        let ((_a, first, _), (_b, second, _)) =
            tokio::join!(order_and_wait(&venue.office), order_and_wait(&venue.office));
        let took = started.elapsed();
        let one_commit = INVENTORY_LATENCY + LEDGER_LATENCY;
        assert_eq!(
            (first, second),
            (201, 201),
            "two clients ordered at once from a venue with seats to spare: both must get 201"
        );
        assert!(
            took < one_commit * 3 / 2,
            "two clients ordered at once and got their answers after {took:?}, though one \
             commit takes {one_commit:?}: the orders were placed one after another. A commit \
             spends its time waiting on the inventory and the ledger; run each in a task of its \
             own so that they wait side by side"
        );

        let sold_out = venue_with(1, LEDGER_LATENCY);
        let (_client, status, _) = order_and_wait(&sold_out.office).await;
        assert_eq!(
            status, 409,
            "two seats of a venue with one left: 409 sold out"
        );
        assert_eq!(
            (sold_out.inventory.left(), sold_out.ledger.charges()),
            (1, vec![]),
            "a sold-out order holds and charges nothing"
        );
    });
}

/// Two clients hang up mid-commit: the first while its charge is on its way to the ledger,
/// the second while its seats are being held. Both orders must end up placed, each exactly
/// once, and every task the server started for them must end.
#[test]
fn a_client_that_leaves_mid_commit_still_gets_its_order_placed() {
    check(HANG).paused(|| async {
        let venue = venue(LEDGER_LATENCY);
        // Counted once the box office is open: a task it owns for its whole life is no leak.
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();

        let client = send_order(&venue.office).await;
        wait_for(venue.inventory.watch_left(), "the first hold", |left| {
            *left == SEATS - 2
        })
        .await;
        drop(client);
        let settled = settle(before).await;
        committed_once(&venue, 1, "while its charge was on its way to the ledger");
        assert!(
            settled,
            "the first order's tasks were still alive {SETTLE:?} later"
        );

        let client = send_order(&venue.office).await;
        wait_for(venue.inventory.watch_requests(), "the second hold", |n| {
            *n == 2
        })
        .await;
        drop(client);
        let settled = settle(before).await;
        committed_once(&venue, 2, "while its seats were being held");
        assert!(
            settled,
            "the second order's tasks were still alive {SETTLE:?} later"
        );
    });
}

/// Shutdown starts while two orders are mid-commit, one of a client that waits and one of a
/// client that left. Shutdown must report done only once both are placed, and leave no task
/// behind.
#[test]
fn shutdown_waits_for_the_commits_in_flight() {
    check(HANG).paused(|| async {
        // Counted before the box office opens: after shutdown, nothing it started may live.
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let venue = venue(LEDGER_LATENCY);
        let waiting = tokio::spawn({
            let office = venue.office.clone();
            async move { order_and_wait(&office).await }
        });
        let leaving = send_order(&venue.office).await;
        wait_for(venue.inventory.watch_left(), "both holds", |left| {
            *left == SEATS - 4
        })
        .await;
        drop(leaving);

        // The writes in flight land within LEDGER_LATENCY: shutdown has no reason to take
        // longer (a second more, for the holds and the answers).
        let due = LEDGER_LATENCY + Duration::from_secs(1);
        let finished = tokio::time::timeout(due, venue.office.shutdown()).await;
        assert!(
            finished.is_ok(),
            "shutdown was still waiting {due:?} after it started, though the two ledger \
             writes in flight take {LEDGER_LATENCY:?}: it waits for something that does not \
             end when they do (a TaskTracker's wait() returns only once the tracker is closed \
             and empty) or sits out its whole grace"
        );
        let charges = venue.ledger.charges();
        assert_eq!(
            charges.len(),
            2,
            "shutdown reported done while two orders were mid-commit, and when it returned \
             {} of them had been charged ({charges:?}): it closed the ledger under a commit \
             it did not wait for (their seats are held, or given back, but never sold)",
            charges.len()
        );
        let (client, status, _) = waiting.await.expect("the waiting client's task");
        assert_eq!(
            status, 201,
            "the client that waited must get its order placed"
        );

        client.close().await;
        assert!(
            tasks_settle_to(before, Duration::from_millis(100)).await,
            "shutdown returned and every client is gone, yet {} task(s) the server started \
             are still alive: a commit, or a task that runs them, outlived shutdown",
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                - before
        );
    });
}

/// Shutdown starts while the only order in flight is one whose client left: first while its
/// seats are being held, then, with a ledger that takes five seconds a write, while its charge
/// is on its way. Nobody waits for the answer, yet shutdown must wait for the order, however
/// long its write takes, and return once it lands.
#[test]
fn shutdown_waits_for_an_order_whose_client_left() {
    check(HANG).paused(|| async {
        for (ledger_latency, during_the_hold, moment) in [
            (LEDGER_LATENCY, true, "while its seats were being held"),
            (
                Duration::from_secs(5),
                false,
                "while its five-second ledger write was on its way",
            ),
        ] {
            let venue = venue(ledger_latency);
            let leaving = send_order(&venue.office).await;
            if during_the_hold {
                wait_for(venue.inventory.watch_requests(), "the hold", |n| *n == 1).await;
            } else {
                wait_for(venue.inventory.watch_left(), "the hold", |left| {
                    *left == SEATS - 2
                })
                .await;
            }
            drop(leaving);

            let started = tokio::time::Instant::now();
            let due = INVENTORY_LATENCY + ledger_latency + Duration::from_secs(1);
            let finished = tokio::time::timeout(due, venue.office.shutdown()).await;
            let took = started.elapsed();
            let charges = venue.ledger.charges();
            assert!(
                finished.is_ok(),
                "a client left {moment}, and shutdown was still waiting {took:?} later, though \
                 that order's commit takes at most {:?}: it waits for something that does not \
                 end when the order does",
                INVENTORY_LATENCY + ledger_latency
            );
            assert_eq!(
                charges.len(),
                1,
                "a client left {moment}, shutdown started, and it returned after {took:?} with \
                 that order uncharged: it closed the ledger under a commit nobody was waiting \
                 for. Shutdown must wait for the commit itself: not for a handler (which hyper \
                 dropped with the client), not for the ledger writes alone (a hold comes first), \
                 not for a fixed time (a write may take longer)"
            );
        }
    });
}

/// The ledger hangs (an hour per write) while an order is mid-commit: shutdown must give up
/// after its grace, because the orchestrator's SIGKILL will not wait for it.
#[test]
fn shutdown_gives_up_after_its_grace() {
    check(HANG).paused(|| async {
        let venue = venue(Duration::from_secs(3600));
        let _client = send_order(&venue.office).await;
        wait_for(venue.inventory.watch_left(), "the hold", |left| {
            *left == SEATS - 2
        })
        .await;
        let started = tokio::time::Instant::now();
        let finished = tokio::time::timeout(SHUTDOWN_GRACE * 2, venue.office.shutdown()).await;
        assert!(
            finished.is_ok() && started.elapsed() <= SHUTDOWN_GRACE + Duration::from_secs(1),
            "the ledger hung with an order mid-commit, and shutdown was still waiting \
             {:?} later, past SHUTDOWN_GRACE ({SHUTDOWN_GRACE:?}): a wait for work in flight \
             needs a deadline, or the orchestrator's SIGKILL ends it with nothing reported",
            started.elapsed()
        );
    });
}

/// The ledger is slow (ten minutes per write, longer than any answer deadline a handler might
/// pick) and the client waits: it gets its order placed, late, and is told so, rather than a
/// commit cut in half, placed twice, or an answer that does not match what happened.
#[test]
fn a_slow_ledger_still_places_the_order() {
    check(HANG).paused(|| async {
        let slow = Duration::from_secs(600);
        let venue = venue(slow);
        let (_client, status, _) = order_and_wait(&venue.office).await;
        // Whatever the answer, let every commit the order started land before the verdict: the
        // paused clock moves only while every task is idle, so by then each has done all it
        // ever will (as in `settle`).
        tokio::time::sleep(slow + SETTLE).await;
        let held = SEATS - venue.inventory.left();
        let charges = venue.ledger.charges();
        assert!(
            held <= 2 && charges.len() <= 1,
            "with a ledger taking {slow:?} per write, one order left {held} seats held and \
             {charges:?}: it was placed twice. A commit that is slow is not stuck; starting it \
             again beside the first one commits the order a second time"
        );
        assert!(
            !(held == 2 && charges.is_empty()),
            "with a ledger taking {slow:?} per write, the order ended with its seats held and \
             never charged (the client got {status}): the commit was cut between its halves, \
             by a deadline that aborted it. Never abort a must-complete task"
        );
        assert!(
            status == 201 && held == 2 && charges.len() == 1,
            "with a ledger taking {slow:?} per write, a client that waited got {status}, and the \
             venue shows {held} seats held and {charges:?}. A client that waits gets its answer \
             once its order is placed, however slow the ledger: a handler that stops waiting \
             early and answers 503 tells the client its order failed while the order goes on \
             to be placed"
        );
    });
}

/// Orders placed before the heap is first read: they bring the runtime, hyper and the service
/// to their working size (the timer wheel, buffers, the first growths of every list).
const WARM_UP: usize = 64;
/// Orders placed between the two readings.
const MEASURED: usize = 448;
/// The most heap one finished order may still hold, in bytes. Measured (growth between the two
/// readings, divided by `MEASURED`) on the solution, its right fixes (a `JoinSet` reaped on
/// each spawn; a writer task reaping a `JoinSet` of its own) and every other half-fix: 16 bytes
/// per order each, the ledger's record of the charge (one 16-byte `Charge` in the fake's
/// `Vec`, full at both readings with 64 then 512 records; wherever a doubling fell, it would
/// stay under 35). Every `JoinHandle` kept in a `Vec`: 536 bytes per order, that 16, 8 for the
/// handle in its `Vec`, and 512 for the task cell the handle keeps alive (header, scheduler,
/// the commit's future and its output), which any task awaiting a hold and a ledger write
/// needs. The bound is 8 times what is legitimate (almost 4 times the worst doubling) and a
/// quarter of one kept task: only what the runtime or the code keeps per order crosses it, and
/// the count is of bytes asked for and not given back, whatever the allocator does with them.
const KEPT_PER_ORDER: i64 = 128;

/// Many orders are placed and finished, and the box office holds no more heap for each of
/// them than the ledger's record of its charge: a finished commit leaves nothing behind. The
/// clients wait for their answers one after the other, so at each reading no commit is in
/// flight, and every connection has ended.
#[test]
fn finished_commits_are_not_kept() {
    check(HANG).paused(|| async {
        // Everything (clients, connections, commits) runs on this one thread, so the thread's
        // heap count sees every allocation they make and nothing the other checks do.
        let venue = venue_with(2 * (WARM_UP + MEASURED) as u32, LEDGER_LATENCY);
        // Counted once the box office is open: a task it owns for its whole life is no leak.
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let place = |orders: usize| {
            let office = venue.office.clone();
            async move {
                for _ in 0..orders {
                    let (client, status, _) = order_and_wait(&office).await;
                    assert_eq!(
                        status, 201,
                        "a venue with seats to spare must place every order"
                    );
                    client.close().await;
                }
            }
        };
        place(WARM_UP).await;
        assert!(
            settle(before).await,
            "the warm-up orders' tasks were still alive {SETTLE:?} later"
        );
        let warm = heap::live_on_this_thread();
        place(MEASURED).await;
        assert!(
            settle(before).await,
            "the measured orders' tasks were still alive {SETTLE:?} later"
        );
        let grown = heap::live_on_this_thread() - warm;
        let per_order = grown / MEASURED as i64;
        assert!(
            per_order < KEPT_PER_ORDER,
            "after {MEASURED} more orders, all finished and their clients gone, the box office \
             holds {grown} bytes more heap, {per_order} per order (the ledger's record of a \
             charge is 16): something is kept for every order ever placed. A finished task whose \
             JoinHandle is kept (in a Vec that only shutdown drains) keeps its whole task, the \
             commit's state and output, until the handle is dropped, so the service's memory \
             grows for as long as it runs. Reap the commits as they end: spawn them on a \
             TaskTracker, which keeps nothing once a task ends, or on a JoinSet reaped with \
             try_join_next"
        );
    });
}
