//! Checks for S08.

use harness::watchdog::check;

#[test]
fn greets_the_world() {
    check("the greeting never came back").run(|| {
        assert_eq!(s08_hot_reload::greeting(), "hello, world", "the service must greet the world");
    });
}
