//! Checks for S01.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s01_blocking::greeting(), "hello, world", "the service must greet the world");
    });
}
