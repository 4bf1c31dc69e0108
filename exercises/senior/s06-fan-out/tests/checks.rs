//! Checks for S06.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s06_fan_out::greeting(), "hello, world", "the service must greet the world");
    });
}
