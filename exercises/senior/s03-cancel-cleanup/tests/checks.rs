//! Checks for S03.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s03_cancel_cleanup::greeting(), "hello, world", "the service must greet the world");
    });
}
