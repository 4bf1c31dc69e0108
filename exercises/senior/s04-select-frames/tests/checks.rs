//! Checks for S04.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s04_select_frames::greeting(), "hello, world", "the service must greet the world");
    });
}
