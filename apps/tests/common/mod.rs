//! Helpers shared by the apps' integration tests.

use std::process::{Child, Command, ExitStatus};

/// Sends SIGTERM to `child` and waits for it to exit.
pub fn terminate(mut child: Child) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
    child.wait().unwrap()
}
