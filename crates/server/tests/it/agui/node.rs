//! Runs `tests/agui-node/agui.test.mjs` (the real `@ag-ui/client`) against a real server.
//!
//! Needs Node.js 20+ and `npm ci` in `tests/agui-node` (`.ci/run` does it). Without them the test
//! says why and passes locally, but fails when `CI` is set: CI must never skip it silently.

use agentwire_testkit::{TestServer, forged_token, token};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agui-node")
}

/// Why the Node test cannot run here, if it cannot.
fn missing_prerequisite(dir: &std::path::Path) -> Option<String> {
    if !dir.join("node_modules/@ag-ui/client").is_dir() {
        return Some(format!(
            "{} has no node_modules; run `npm ci` there",
            dir.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!("`node --version` failed: {:?}", output.status)),
        Err(err) => Some(format!("Node.js is not installed ({err})")),
    }
}

pub async fn run_node_test() {
    let dir = project_dir();
    if let Some(reason) = missing_prerequisite(&dir) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the AG-UI Node test cannot run under CI: {reason}"
        );
        eprintln!("skipping the AG-UI Node test: {reason}");
        return;
    }
    // Slow enough that the cancel scenario lands while the run is still going.
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(25))
        .start()
        .await;
    let url = server.url();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("agui.test.mjs")
            .current_dir(&dir)
            .env("AGENTWIRE_URL", url)
            .env("AGENTWIRE_TOKEN", token("node-alice", None))
            .env("AGENTWIRE_FORGED_TOKEN", forged_token("node-alice"))
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the Node test did not finish within 3 minutes")
        .unwrap()
        .expect("node could not be started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the AG-UI client test failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("AG-UI client: {stdout}");
    server.stop().await.unwrap();
}
