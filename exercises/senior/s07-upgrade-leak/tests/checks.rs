//! Checks for S07.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s07_upgrade_leak::greeting(), "hello, world", "the service must greet the world");
    });
}
