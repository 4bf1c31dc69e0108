//! Checks for P01: `serve` runs on the paused clock over an in-memory listener, a backlog of
//! connections the check fills by hand and that counts how many the server has taken. The
//! limit is two connections. "Not answered" means not answered while the runtime had nothing
//! left to do: the paused clock only moves once every task is waiting, so a server that would
//! answer has answered long before a virtual second passes (hyper itself would wait 30 s).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::response::TestResponse;
use harness::server::H1Connection;
use harness::watchdog::check;
use p01_conn_limit::{Listener, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

const LIMIT: usize = 2;
const HANG: &str = "the check never got past waiting on the server; does the accept loop wait \
                    for a slot that is never given back, or block the runtime's only thread (a \
                    std `Mutex` or `Condvar`, `std::thread::sleep`) so that no connection can \
                    make progress, or poll in a tight loop?";
/// Real time after which a check counts as hung: every check takes well under a second, and a
/// server that blocks the runtime's thread never finishes, so waiting 20 s would tell nothing
/// more.
const WATCHDOG: Duration = Duration::from_secs(10);
/// Longer than any work the server has to do, far shorter than hyper's 30 s idle timeout
/// (which would close the open connections and free their slots by itself).
const IDLE: Duration = Duration::from_secs(1);
/// How often a phone with the map open asks for a tile: well inside hyper's 30 s idle timeout,
/// so the server has no reason to close its connection.
const BROWSING: Duration = Duration::from_secs(20);
/// How long the phones keep browsing in the longest check: a slot that is given back after
/// some time, while its connection is still open, is given back within this.
const SESSION: Duration = Duration::from_secs(5 * 60);

/// The listener's backlog: connections the clients opened, waiting to be accepted.
struct Backlog {
    queue: mpsc::UnboundedReceiver<DuplexStream>,
    accepted: Arc<AtomicUsize>,
}

impl Listener for Backlog {
    type Io = DuplexStream;

    async fn accept(&mut self) -> io::Result<DuplexStream> {
        let io = self.queue.recv().await.ok_or(io::ErrorKind::NotConnected)?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(io)
    }
}

/// The clients' side of the network: opens connections into the server's backlog.
struct Network {
    backlog: mpsc::UnboundedSender<DuplexStream>,
    accepted: Arc<AtomicUsize>,
}

impl Network {
    /// Starts `serve` with a limit of [`LIMIT`] connections.
    fn start() -> Self {
        let (backlog, queue) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = Backlog {
            queue,
            accepted: Arc::clone(&accepted),
        };
        tokio::spawn(serve(listener, LIMIT));
        Self { backlog, accepted }
    }

    /// Opens a connection: it lands in the backlog, accepted or not.
    fn connect_raw(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.backlog.send(server).expect("the server is running");
        client
    }

    /// Opens a connection for an HTTP/1 client (the handshake is the client's own business:
    /// it does not need the server to have accepted the connection).
    async fn connect(&self) -> H1Connection {
        H1Connection::handshake(self.connect_raw()).await
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Sends a tile request on `client` in a task of its own, so the check can wait for its answer
/// or see it is not coming. The task hands the client back with the answer.
fn request(mut client: H1Connection) -> JoinHandle<(H1Connection, hyper::Result<TestResponse>)> {
    tokio::spawn(async move {
        let answer = client.get("/tiles/12/2148/1436").await;
        (client, answer)
    })
}

/// Two phones are served and keep their connections open (the app keeps them alive between
/// tiles); a third phone connects and asks for a tile. Returns the two open connections and
/// the third's request.
async fn two_open_and_a_third(net: &Network) -> (H1Connection, H1Connection, Pending) {
    let mut open = Vec::new();
    for phone in 1..=LIMIT {
        let mut client = net.connect().await;
        let answer = timeout(IDLE, client.get("/tiles/12/2148/1435")).await;
        let status = answer.map(|a| a.map(|r| r.status.as_u16()));
        assert!(
            matches!(status, Ok(Ok(200))),
            "phone {phone} of {LIMIT} (within the limit) was not served: {status:?}"
        );
        open.push(client);
    }
    let third = request(net.connect().await);
    let second = open.pop().unwrap();
    (open.pop().unwrap(), second, third)
}

type Pending = JoinHandle<(H1Connection, hyper::Result<TestResponse>)>;

/// Waits up to [`IDLE`] for the third phone's answer: `None` if it is not coming.
async fn answer_of(third: &mut Pending) -> Option<hyper::Result<TestResponse>> {
    match timeout(IDLE, third).await {
        Ok(joined) => Some(joined.expect("the request task does not panic").1),
        Err(_) => None,
    }
}

/// Asks for one more tile on each phone's open connection; panics if the server has closed
/// one, since then the checks cannot tell anything about the limit.
async fn phones_still_open(phones: [&mut H1Connection; LIMIT], after: Duration) {
    for (n, phone) in phones.into_iter().enumerate() {
        let answer = timeout(IDLE, phone.get("/tiles/12/2149/1435")).await;
        let status = answer.map(|a| a.map(|r| r.status.as_u16()));
        assert!(
            matches!(status, Ok(Ok(200))),
            "phone {} asked for another tile on its keep-alive connection {after:?} after its \
             last one and was not served ({status:?}): the server closed (or stopped \
             serving) a connection the app keeps open between tiles. Leave hyper's keep-alive \
             and its 30 s idle timeout as they are: a connection limit is there for exactly \
             these idle connections, and closing them early hides whether it holds",
            n + 1
        );
    }
}

/// While two connections are open, a third is not served.
#[test]
fn no_more_than_the_limit_are_served_at_once() {
    check(HANG).limit(WATCHDOG).paused(|| async {
        let net = Network::start();
        let (mut first, mut second, mut third) = two_open_and_a_third(&net).await;
        let started = Instant::now();
        if let Some(answer) = answer_of(&mut third).await {
            phones_still_open([&mut first, &mut second], started.elapsed()).await;
            panic!(
                "two connections were open (the limit is {LIMIT}) and a third was served \
                 anyway ({:?}): the connection limit does not apply. Is the slot still held \
                 while the connection is served?",
                answer.map(|r| r.status)
            );
        }
    });
}

/// The two phones keep their connections open for five minutes, asking for a tile every 20 s:
/// all that time the third is neither accepted nor served. A slot is held for as long as its
/// connection is open, not for a while.
#[test]
fn the_limit_holds_as_long_as_the_connections_stay_open() {
    check(HANG).limit(WATCHDOG).paused(|| async {
        let net = Network::start();
        let (mut first, mut second, mut third) = two_open_and_a_third(&net).await;
        let started = Instant::now();
        while started.elapsed() < SESSION {
            let asked = Instant::now();
            tokio::select! {
                answer = &mut third => {
                    let status = answer.expect("the request task does not panic").1;
                    phones_still_open([&mut first, &mut second], asked.elapsed()).await;
                    panic!(
                        "two phones kept their connections open and busy (a tile every \
                         {BROWSING:?}), and after {:?} of it a third connection was served \
                         ({:?}): the slots were given back while their connections were \
                         still open. A slot is held for as long as its connection is, not \
                         for a while: a connection the server let go of still costs its \
                         socket, task and buffers",
                        started.elapsed(),
                        status.map(|r| r.status)
                    );
                }
                () = sleep(BROWSING) => {}
            }
            phones_still_open([&mut first, &mut second], BROWSING).await;
            assert_eq!(
                net.accepted(),
                LIMIT,
                "two phones kept their connections open and busy, and after {:?} of it the \
                 server took a third connection off the backlog: the slots were given back while \
                 their connections were still open",
                started.elapsed()
            );
        }
    });
}

/// While two connections are open, the third is not even accepted: it waits in the backlog.
#[test]
fn the_extra_connection_waits_in_the_backlog() {
    check(HANG).limit(WATCHDOG).paused(|| async {
        let net = Network::start();
        let (mut first, mut second, mut third) = two_open_and_a_third(&net).await;
        let started = Instant::now();
        let _ = answer_of(&mut third).await;
        if net.accepted() != LIMIT {
            phones_still_open([&mut first, &mut second], started.elapsed()).await;
        }
        assert_eq!(
            net.accepted(),
            LIMIT,
            "two connections were open (the limit is {LIMIT}) and the server took a third off \
             the backlog: a connection accepted and then left waiting still costs a socket, a \
             task and its buffers, and nothing bounds how many pile up. The slot must be taken \
             before `accept`"
        );
    });
}

/// Once one of the two open connections closes, the third is accepted and served.
#[test]
fn the_extra_connection_is_served_once_one_closes() {
    check(HANG).limit(WATCHDOG).paused(|| async {
        let net = Network::start();
        let (first, _second, mut third) = two_open_and_a_third(&net).await;
        // (A server with no limit has answered already; this check is about the one with it.)
        let early = answer_of(&mut third).await;
        first.close().await;
        let closed = Instant::now();
        let answer = match early {
            Some(answer) => Some(answer),
            None => answer_of(&mut third).await,
        };
        let status = answer
            .as_ref()
            .map(|a| a.as_ref().map(|r| r.status.as_u16()));
        assert!(
            matches!(status, Some(Ok(200))),
            "one of the two open connections closed, yet the waiting connection was not \
             served ({status:?}): a connection's slot must be given back when it closes"
        );
        // On the paused clock, "at once" is exact: no timer had to fire in between.
        let waited = closed.elapsed();
        assert_eq!(
            waited,
            Duration::ZERO,
            "one of the two open connections closed, and the waiting connection was served \
             only {waited:?} later: the accept loop found the free slot by looking again \
             after a while (a sleep, a poll). Under load every slot given back then sits \
             unused until the next look. The slot given back must wake the waiting loop, as \
             dropping a semaphore permit does"
        );
    });
}

const GARBAGE: &[u8] = b"HELLO FROM A PORT SCANNER\r\n\r\n";
const HALF_A_REQUEST: &[u8] = b"GET /tiles/12/2148/1435 HTTP/1.1\r\nhost: til";

/// Connections that end in an error give their slot back too: after a port scanner (hyper
/// answers 400) and a phone that lost signal halfway through its request, two phones are
/// served at once.
#[test]
fn a_connection_that_fails_gives_its_slot_back() {
    check(HANG).limit(WATCHDOG).paused(|| async {
        let net = Network::start();
        let mut scanner = net.connect_raw();
        scanner.write_all(GARBAGE).await.unwrap();
        let mut answer = Vec::new();
        scanner.read_to_end(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 400 "),
            "hyper answers a request it cannot parse with 400 and closes; got {:?}",
            String::from_utf8_lossy(&answer)
        );
        drop(scanner);
        let mut lost_signal = net.connect_raw();
        lost_signal.write_all(HALF_A_REQUEST).await.unwrap();
        drop(lost_signal);

        let mut first = net.connect().await;
        let mut second = net.connect().await;
        for (phone, client) in [(1, &mut first), (2, &mut second)] {
            let answer = timeout(IDLE, client.get("/tiles/12/2148/1435")).await;
            let status = answer.map(|a| a.map(|r| r.status.as_u16()));
            assert!(
                matches!(status, Ok(Ok(200))),
                "after two connections that ended in an error (a 400 and a client that hung \
                 up mid-request), phone {phone} of {LIMIT} was not served ({status:?}): the \
                 failed connections still hold their slots. A slot must be given back however \
                 the connection ends"
            );
        }
    });
}
