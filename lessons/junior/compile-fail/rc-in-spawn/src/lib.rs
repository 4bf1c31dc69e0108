//! An accept loop that shares a request counter through `Rc<Cell<_>>`.
use std::cell::Cell;
use std::rc::Rc;

use tokio::net::TcpListener;

// ANCHOR: accept_loop
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let served = Rc::new(Cell::new(0u64));
    loop {
        let (_stream, _peer) = listener.accept().await?;
        let served = Rc::clone(&served);
        tokio::spawn(async move {
            // ... serve the connection, then:
            served.set(served.get() + 1);
        });
    }
}
// ANCHOR_END: accept_loop
