//! Checks for X03.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(x03_must_complete::greeting(), "hello, world", "the service must greet the world");
    });
}
