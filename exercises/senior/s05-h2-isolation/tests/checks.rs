//! Checks for S05.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s05_h2_isolation::greeting(), "hello, world", "the service must greet the world");
    });
}
