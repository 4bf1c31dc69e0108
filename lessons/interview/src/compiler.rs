//! Claims of the bank that are about the compiler: each example below is compiled by
//! `cargo test --doc`, and a `compile_fail` example passes only if it fails to compile (with
//! the error code it names, where rustc gives one).
//!
//! # R1: a pinned read keeps `&mut socket` borrowed
//!
//! Pinning `read_frame(&mut socket)` outside the `select!` loop (so that a tick no longer
//! restarts it) keeps the socket mutably borrowed for as long as the read lives, and the ping
//! branch cannot borrow it again:
//!
//! ```compile_fail,E0499
//! # use std::time::Duration;
//! # use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! # use tokio::net::TcpStream;
//! # async fn read_frame(socket: &mut TcpStream) -> std::io::Result<Vec<u8>> {
//! #     let len = socket.read_u32().await? as usize;
//! #     let mut payload = vec![0; len];
//! #     socket.read_exact(&mut payload).await?;
//! #     Ok(payload)
//! # }
//! # async fn send_ping(socket: &mut TcpStream) -> std::io::Result<()> {
//! #     socket.write_all(b"\0\0\0\0").await
//! # }
//! async fn first_frame(mut socket: TcpStream) -> std::io::Result<Vec<u8>> {
//!     let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
//!     let read = read_frame(&mut socket);
//!     tokio::pin!(read);
//!     loop {
//!         tokio::select! {
//!             frame = &mut read => return frame,
//!             _ = heartbeat.tick() => send_ping(&mut socket).await?,
//!         }
//!     }
//! }
//! ```
//!
//! The fix that compiles splits the connection and lets the read own its half
//! ([`crate::frames`], whose tests show it keeps every frame whole).
//!
//! # R2: `drop(guard)` before the `.await` is not enough once the guard was dereferenced
//!
//! rustc 1.95's check that a future is `Send` treats a guard that was used through `Deref` or
//! `DerefMut` as alive to the end of its scope, `drop` or not ("future cannot be sent between
//! threads safely", an error without a code):
//!
//! ```compile_fail
//! use std::sync::Mutex;
//! fn assert_send<T: Send>(_: T) {}
//! async fn audit() {}
//! fn view(counts: &'static Mutex<u64>) {
//!     assert_send(async move {
//!         let mut count = counts.lock().unwrap();
//!         *count += 1;
//!         drop(count);
//!         audit().await;
//!     });
//! }
//! ```
//!
//! The same guard, never dereferenced, may be dropped before the `.await`; and a block that
//! ends the guard's scope works whatever the guard was used for:
//!
//! ```
//! use std::sync::Mutex;
//! fn assert_send<T: Send>(_: T) {}
//! async fn audit() {}
//! fn view(counts: &'static Mutex<u64>) {
//!     assert_send(async move {
//!         let count = counts.lock().unwrap();
//!         drop(count);
//!         audit().await;
//!     });
//!     assert_send(async move {
//!         {
//!             let mut count = counts.lock().unwrap();
//!             *count += 1;
//!         }
//!         audit().await;
//!     });
//! }
//! ```
//!
//! # R7: `let _ = permit;` across editions
//!
//! In edition 2018 an `async move` block captures every variable it names, so
//! `let _ = permit;` moves the permit into the block, and the permit lives as long as the
//! block (the task):
//!
//! ```edition2018
//! use std::sync::Arc;
//! use tokio::sync::Semaphore;
//! let limit = Arc::new(Semaphore::new(1));
//! let permit = limit.clone().try_acquire_owned().unwrap();
//! let task = async move {
//!     let _ = permit;
//! };
//! assert_eq!(limit.available_permits(), 0);
//! drop(task);
//! assert_eq!(limit.available_permits(), 1, "the permit went with the block");
//! ```
//!
//! From edition 2021 on (this workspace is 2024), a block captures only what it *uses*, and
//! `let _ = permit;` does not use the permit: it stays outside, and can even be used after the
//! `async move` block. In an accept loop it is dropped at the end of the iteration, right after
//! the spawn, and the limit never applies:
//!
//! ```edition2021
//! use std::sync::Arc;
//! use tokio::sync::Semaphore;
//! let limit = Arc::new(Semaphore::new(1));
//! let permit = limit.clone().try_acquire_owned().unwrap();
//! let task = async move {
//!     let _ = permit;
//! };
//! drop(task);
//! assert_eq!(limit.available_permits(), 0, "the block never had the permit");
//! drop(permit); // still ours: it was never moved
//! assert_eq!(limit.available_permits(), 1);
//! ```
//!
//! # Q28, Q31: tower's `RateLimit` is not `Clone`
//!
//! hyper-util's `TowerToHyperService` needs a `Clone` service (it clones one per request), and
//! `RateLimit` is not one: share it through a `Buffer` (`tests/tower_services.rs`).
//!
//! ```compile_fail,E0599
//! use std::time::Duration;
//! let limited = tower::ServiceBuilder::new()
//!     .rate_limit(100, Duration::from_secs(1))
//!     .service(tower::service_fn(|()| async { Ok::<_, std::convert::Infallible>(()) }));
//! let _per_request = limited.clone();
//! ```
