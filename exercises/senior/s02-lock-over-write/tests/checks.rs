//! Checks for S02.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s02_lock_over_write::greeting(), "hello, world", "the service must greet the world");
    });
}
