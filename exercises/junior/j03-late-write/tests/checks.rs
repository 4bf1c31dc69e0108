//! Checks for J03: a real server on loopback, asked for item pages over real HTTP/1
//! connections, and one connection on the paused clock to a warehouse slower than any fixed
//! wait. They run once the exercise compiles.

use std::sync::Arc;
use std::time::Duration;

use harness::duplex;
use harness::server::TestServer;
use harness::watchdog::check;
use j03_late_write::{Warehouse, serve, serve_connection};

const HANG: &str = "no item page came back; is the handler waiting for something that never \
                    answers, such as a channel nobody sends on or a task that never finishes?";

/// The warehouse every check runs against: the teapot is sold out, which the header must say
/// as `0`, not by leaving the header out.
fn warehouse() -> Warehouse {
    Warehouse::new([("kettle", 3), ("teapot", 0), ("mug", 12)])
}

async fn start() -> TestServer {
    let warehouse = Arc::new(warehouse());
    TestServer::start(|listener| async move {
        let _ = serve(listener, warehouse).await;
    })
    .await
}

/// One page, one response: the stock level must be in the response the client receives.
#[test]
fn item_page_carries_the_stock_level() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        let page = conn.get("/items/kettle").await.unwrap();
        assert_eq!(page.status, 200, "the kettle is in the catalogue");
        assert_eq!(
            page.text(),
            "Stovetop kettle: 34.50 EUR\n",
            "the page body changed"
        );
        assert_eq!(
            page.header("x-stock"),
            Some("3"),
            "the response that reached the client has no correct `x-stock` header: whatever \
             adds it must do so before the handler returns the response, because after that \
             the response belongs to hyper and is already on its way"
        );
    });
}

/// Several shoppers at once, on their own connections, each for a different item: each page
/// must carry the stock of its own item, sold-out items included.
#[test]
fn every_shopper_gets_the_stock_of_their_own_item() {
    check(HANG).real(|| async {
        let server = Arc::new(start().await);
        let mut shoppers = Vec::new();
        for sku in ["kettle", "teapot", "mug"] {
            let server = Arc::clone(&server);
            shoppers.push(tokio::spawn(async move {
                let mut conn = server.connect().await;
                // Twice on the same keep-alive connection: the second page is no different.
                let mut seen = Vec::new();
                for _ in 0..2 {
                    let page = conn.get(&format!("/items/{sku}")).await.unwrap();
                    seen.push((sku, page.status, page.header("x-stock").map(str::to_owned)));
                }
                seen
            }));
        }
        let mut seen = Vec::new();
        for shopper in shoppers {
            seen.extend(shopper.await.expect("a shopper's client task failed"));
        }

        let stock = |sku| match sku {
            "kettle" => "3",
            "teapot" => "0",
            _ => "12",
        };
        for (sku, status, header) in seen {
            assert_eq!(status, 200, "{sku} is in the catalogue");
            assert_eq!(
                header.as_deref(),
                Some(stock(sku)),
                "the page for {sku} must carry that item's stock level, {}, in its own \
                 response (the warehouse holds kettle 3, teapot 0, mug 12)",
                stock(sku),
            );
        }
    });
}

/// A warehouse that takes a minute per lookup, on the paused clock with an in-memory
/// connection, so the minute costs no real time. A handler that sleeps "long enough" and then
/// reads what a background task left behind, or gives the warehouse a deadline, sends the page
/// without the stock level: no fixed wait passes both this check and the real-clock ones,
/// whose watchdog gives up after 20 s. Only a handler that waits for the warehouse's answer
/// itself gets the stock level into the page.
#[test]
fn item_page_waits_for_a_slow_warehouse() {
    check(HANG).paused(|| async {
        let warehouse = Arc::new(warehouse().with_latency(Duration::from_secs(60)));
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, warehouse)).await;
        for (sku, stock) in [("kettle", "3"), ("teapot", "0")] {
            let page = conn.get(&format!("/items/{sku}")).await.unwrap();
            assert_eq!(page.status, 200, "{sku} is in the catalogue");
            assert_eq!(
                page.header("x-stock"),
                Some(stock),
                "the warehouse took a minute to answer, and the page for {sku} did not carry \
                 its stock level {stock}: the handler returned after a fixed wait (or gave up) \
                 instead of waiting for the warehouse's answer. A response is complete when it \
                 is returned, so await the lookup (or its `JoinHandle`, or a `oneshot`) first",
            );
        }
    });
}
