//! What a per-client rate limit costs in memory: one map entry per address it remembers.
//!
//! Heap bytes are counted by the harness's counting allocator, on this test's thread only.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use harness::heap::{Counting, live_on_this_thread};
use harness::watchdog::check;

#[global_allocator]
static HEAP: Counting = Counting;

#[allow(dead_code)]
#[path = "../examples/admission_server.rs"]
mod server;

use server::{PerIpLimiter, TokenBucket};

const CLIENTS: u32 = 100_000;

#[test]
fn a_per_client_limit_costs_about_a_hundred_bytes_per_remembered_address() {
    check("filling the per-client map never finished").paused(|| async {
        let limiter = PerIpLimiter::new(5, 5, usize::MAX);
        let before = live_on_this_thread();
        for n in 0..CLIENTS {
            // One request from each of 100,000 addresses: a scan, or a botnet.
            assert!(limiter.check(IpAddr::V4(Ipv4Addr::from(n))).is_ok());
        }
        let per_client = (live_on_this_thread() - before) / i64::from(CLIENTS);
        println!("{per_client} bytes per remembered client");
        // 64 bytes an entry (address and bucket), plus the hash table's control bytes and
        // spare capacity: tens of megabytes for a million addresses, if nothing forgets them.
        assert_eq!(size_of::<(IpAddr, TokenBucket)>(), 64);
        assert!((64..=160).contains(&per_client), "{per_client} bytes");
        assert_eq!(limiter.clients(), CLIENTS as usize);

        // Entries leave only when someone sweeps them: here, a newcomer at the cap would.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.clients(), CLIENTS as usize);
    });
}
