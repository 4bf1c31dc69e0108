//! Checks for X05.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(x05_capstone::greeting(), "hello, world", "the service must greet the world");
    });
}
