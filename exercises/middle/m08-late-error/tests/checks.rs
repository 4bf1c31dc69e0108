//! Checks for M08: a real server on loopback, and four customers' exports, three of which have
//! amounts that cannot be converted.

use std::sync::Arc;

use harness::TestResponse;
use harness::server::TestServer;
use harness::transcript::Transcript;
use harness::watchdog::check;
use m08_late_error::{Invoice, Ledger, serve};

const HANG: &str = "the export never finished; is the handler waiting for rows nobody sends?";

/// `acme`'s second invoice has a European decimal comma, and its fourth one decimal place;
/// `globex`'s are all valid. `initech`'s very first invoice has one decimal place. `umbrella`,
/// billed daily for years, has [`UMBRELLA_VALID`] valid invoices and then one with a thousands
/// separator: more rows than any channel or look-ahead of a reasonable size holds come before
/// it.
fn ledger() -> Ledger {
    let mut invoices = vec![
        Invoice::new("INV-1001", "acme", "120.00"),
        Invoice::new("INV-1002", "globex", "75.50"),
        Invoice::new("INV-1003", "acme", "12,50"),
        Invoice::new("INV-1004", "globex", "1200"),
        Invoice::new("INV-1005", "acme", "33.10"),
        Invoice::new("INV-1006", "globex", "0.99"),
        Invoice::new("INV-1007", "initech", "90.5"),
        Invoice::new("INV-1008", "initech", "410.00"),
        Invoice::new("INV-1009", "acme", "7.5"),
    ];
    for day in 1..=UMBRELLA_VALID {
        let id = format!("INV-{}", 2000 + day);
        invoices.push(Invoice::new(&id, "umbrella", &format!("{}.00", 800 + day)));
    }
    invoices.push(Invoice::new("INV-3001", "umbrella", "1 250.00"));
    Ledger::new(invoices)
}

/// How many valid invoices `umbrella` has before its invalid one, `INV-3001`.
const UMBRELLA_VALID: usize = 1000;

/// The one line a refused acme export answers: the error of its first invalid invoice.
const ACME_REFUSAL: &str = "invoice INV-1003: amount \"12,50\" is not a decimal like 120.00\n";

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, Arc::new(ledger())).await;
    })
    .await
}

/// Asks for `customer`'s export and reads the response to its end.
async fn export(server: &TestServer, customer: &str) -> TestResponse {
    let mut conn = server.connect().await;
    conn.get(&format!("/export?customer={customer}"))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "the export of {customer} broke off before its end ({error}): the status line \
                 had already gone out, so the only way left to signal the error was to cut the \
                 body short, and the client cannot tell what went wrong or where"
            )
        })
}

/// An export with an invalid row is refused whole: 422, the reason, and no CSV at all.
#[test]
fn an_invalid_row_is_answered_422() {
    check(HANG).real(|| async {
        let server = start().await;
        let response = export(&server, "acme").await;
        let body = response.text();
        assert_eq!(
            response.status, 422,
            "acme's export has an invalid amount (INV-1003) and was answered {} with body \
             {body:?}: the status was sent with the first rows, before the bad row was reached, \
             so the client took a cut-off file for a whole one",
            response.status,
        );
        assert!(
            body.contains("INV-1003"),
            "the 422 must say which invoice is wrong; its body was {body:?}"
        );
        assert!(
            !body.contains("amount_cents") && !body.contains("INV-1001"),
            "the 422's body carries export data ({body:?}): a refused export sends no rows"
        );
        assert_eq!(
            body, ACME_REFUSAL,
            "the 422's body must be the first invalid invoice's error (INV-1003; INV-1009 is \
             invalid too), on one line ending in a newline, as `plain` writes every error of \
             this service"
        );
    });
}

/// The invalid row may be anywhere, the first or the thousand-and-first: the export is refused
/// all the same, with no CSV.
#[test]
fn a_bad_row_anywhere_is_answered_422() {
    check(HANG).real(|| async {
        let server = start().await;
        let cases = [
            ("initech", "INV-1007", "the first row"),
            ("umbrella", "INV-3001", "the row after 1000 valid ones"),
        ];
        for (customer, invalid, place) in cases {
            let response = export(&server, customer).await;
            let body = response.text();
            assert_eq!(
                response.status,
                422,
                "{customer}'s export has an invalid amount in {place} ({invalid}) and was \
                 answered {} with {} bytes of body: every row must be checked before the \
                 status is chosen, not only the rows that happen to be read before it",
                response.status,
                body.len(),
            );
            assert!(
                body.contains(invalid) && !body.contains("amount_cents"),
                "the 422 for {customer} must name {invalid} and carry no CSV; its body was \
                 {body:?}"
            );
        }
    });
}

/// An export whose rows are all valid arrives whole: the header and every invoice.
#[test]
fn a_valid_export_has_every_line() {
    check(HANG).real(|| async {
        let server = start().await;
        let response = export(&server, "globex").await;
        assert_eq!(response.status, 200, "globex's export: {}", response.text());
        assert_eq!(
            response.text(),
            "invoice,amount_cents\nINV-1002,7550\nINV-1004,120000\nINV-1006,99\n",
            "globex's export must hold the header and each of its three invoices, in order"
        );
    });
}

/// The refused export, the whole exchange as the client sees it.
#[test]
fn refused_export_transcript() {
    check(HANG).real(|| async {
        let server = start().await;
        let response = export(&server, "acme").await;
        let mut transcript = Transcript::new();
        transcript
            .request("GET", "/export?customer=acme")
            .response(&response);
        insta::assert_snapshot!(transcript.render());
    });
}
