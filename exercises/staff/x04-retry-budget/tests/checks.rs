//! Checks for X04.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(x04_retry_budget::greeting(), "hello, world", "the service must greet the world");
    });
}
