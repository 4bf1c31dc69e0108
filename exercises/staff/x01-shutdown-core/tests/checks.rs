//! Checks for X01.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(x01_shutdown_core::greeting(), "hello, world", "the service must greet the world");
    });
}
