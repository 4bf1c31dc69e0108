//! Checks for X02.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(x02_admission_core::greeting(), "hello, world", "the service must greet the world");
    });
}
