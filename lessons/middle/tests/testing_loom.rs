//! loom on a "peak requests in flight" gauge, the kind of metric a middleware keeps: two
//! requests enter at the same moment, and the recorded peak must be 2. The racy version
//! reads the peak and then stores it; loom finds the interleaving that loses the larger
//! value. The model uses loom's types directly (as `lessons/junior/tests/race_loom.rs` does),
//! so it runs as a plain test: two threads, milliseconds even unoptimised.

use harness::watchdog::check;
use loom::sync::Arc;

const HANG: &str = "a loom model did not finish: does a request wait on something that never \
                    happens?";

// ANCHOR: gauge
mod gauge {
    use loom::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    pub struct InFlight {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    impl InFlight {
        /// BUG: read the peak, then store it: another request can store in between.
        pub fn enter_racy(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            if now > self.peak.load(Ordering::SeqCst) {
                self.peak.store(now, Ordering::SeqCst);
            }
        }

        /// One read-modify-write: nothing can get between the read and the write.
        pub fn enter(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
        }

        pub fn peak(&self) -> usize {
            self.peak.load(Ordering::SeqCst)
        }
    }
}
// ANCHOR_END: gauge

use gauge::InFlight;

// ANCHOR: model
/// Two requests enter at once, and neither leaves: the peak must be 2, in every
/// interleaving loom can find.
fn two_requests(enter: fn(&InFlight)) {
    loom::model(move || {
        let gauge = Arc::new(InFlight::default());
        let other = Arc::clone(&gauge);
        let second = loom::thread::spawn(move || enter(&other));
        enter(&gauge);
        second.join().unwrap();
        assert_eq!(gauge.peak(), 2, "the peak lost a request");
    });
}

#[test]
#[should_panic(expected = "the peak lost a request")]
fn loom_finds_the_lost_peak() {
    check(HANG).run(|| two_requests(InFlight::enter_racy));
}

#[test]
fn loom_finds_no_lost_peak_with_fetch_max() {
    check(HANG).run(|| two_requests(InFlight::enter));
}
// ANCHOR_END: model
