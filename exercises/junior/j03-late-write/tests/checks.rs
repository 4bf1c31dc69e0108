//! Checks for J03: a real server on loopback, asked for item pages over real HTTP/1
//! connections. They run once the exercise compiles.

use std::sync::Arc;

use harness::server::TestServer;
use harness::watchdog::check;
use j03_late_write::{Warehouse, serve};

const HANG: &str = "no item page came back; is the handler waiting for something that never \
                    answers, such as a channel nobody sends on or a task that never finishes?";

/// The warehouse every check runs against: the teapot is sold out, which the header must say
/// as `0`, not by leaving the header out.
async fn start() -> TestServer {
    let warehouse = Arc::new(Warehouse::new([("kettle", 3), ("teapot", 0), ("mug", 12)]));
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
