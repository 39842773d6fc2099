//! `agentwire check` and `agentwire load` as a user runs them: the built binary against a real
//! `agentwire serve` child process, asserting the exit codes (0, 1, 2, 99) and the files written.
//!
//! No assertion depends on speed: the threshold used to force exit code 99 is a count that cannot
//! hold (`connect: count<0`), not a latency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_agentwire");
const SECRET: &str = "check-cli-secret-0123456789abcdef0123456789";

fn agentwire(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("AGENTWIRE_JWT_SECRET")
        .env_remove("AGENTWIRE_TOKEN")
        .env_remove("AGENTWIRE_TARGET")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `agentwire serve --demo-data` on a free port; killed on drop.
struct Served {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("serve.db").display());
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--demo-data",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &db,
            ])
            .env("AGENTWIRE_JWT_SECRET", SECRET)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            if let Some(rest) = line.split("ws://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break format!("http://{}", addr.trim_end_matches("/ws"));
            }
        };
        // Keep reading the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Served {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn list_prints_the_catalogue_numbered_by_section() {
    let out = agentwire(&["check", "--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for line in [
        "5.4    MUST",
        "tool pairs are matched",
        "4.5    SHOULD",
        "6.4",
        "7.1",
    ] {
        assert!(listing.contains(line), "{line} missing:\n{listing}");
    }
}

#[test]
fn configuration_errors_are_exit_code_2_with_a_message() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["check", "--target", "http://127.0.0.1:9"],
            "no credentials",
        ),
        (
            &[
                "check",
                "--target",
                "http://127.0.0.1:9",
                "--secret",
                "short",
            ],
            "at least 32",
        ),
        (
            &[
                "check",
                "--target",
                "http://127.0.0.1:9",
                "--secret",
                SECRET,
                "--threshold",
                "latency=p(95)<1",
            ],
            "unknown metric",
        ),
        (
            &[
                "check",
                "--target",
                "http://127.0.0.1:9",
                "--secret",
                SECRET,
                "--connect-timeout",
                "soon",
            ],
            "not a duration",
        ),
        (
            &[
                "load",
                "--target",
                "http://10.255.255.1:9",
                "--secret",
                SECRET,
            ],
            "not on this machine",
        ),
    ];
    for (args, message) in cases {
        let out = agentwire(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn an_unreachable_target_is_exit_code_2_and_the_reports_say_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let target = format!("http://127.0.0.1:{port}");
    let out = agentwire(&[
        "check",
        "--target",
        &target,
        "--secret",
        SECRET,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("target unreachable"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 2);
    assert!(
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["verdict"] == "error")
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<error message=\"not run: the target could not be reached"));

    let out = agentwire(&[
        "load", "--target", &target, "--secret", SECRET, "--users", "3",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
}

#[test]
fn check_and_load_against_agentwire_serve_pass_and_a_breached_threshold_is_99() {
    let served = Served::start();
    let dir = tempfile::tempdir().unwrap();
    let markdown = dir.path().join("r.md");
    let out = agentwire(&[
        "check",
        "--target",
        &served.url,
        "--secret",
        SECRET,
        "--only",
        "1",
        "--only",
        "2",
        "--only",
        "6.4",
        "--only",
        "7",
        "--threshold",
        "ttfe=count>=0",
        "--threshold",
        "ttc=count>=0",
        "--markdown",
        markdown.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        report.contains("**PASSED**") && report.contains("## Connectivity"),
        "{report}"
    );

    // The same cases with a threshold no deployment can meet: every case passes, exit 99.
    let out = agentwire(&[
        "check",
        "--target",
        &served.url,
        "--secret",
        SECRET,
        "--only",
        "1.2",
        "--threshold",
        "connect=count<0",
    ]);
    assert_eq!(out.status.code(), Some(99), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("breached"));

    let json = dir.path().join("load.json");
    let out = agentwire(&[
        "load",
        "--target",
        &served.url,
        "--secret",
        SECRET,
        "--users",
        "5",
        "--agent",
        "triage",
        "--no-progress",
        "--threshold",
        "ttfe=count>=0",
        "--threshold",
        "ttc=count>=0",
        "--threshold",
        "connect=count>=0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["counts"]["completed"], 5);
    assert_eq!(summary["counts"]["violations"], 0);
    assert_eq!(summary["counts"]["leaks"], 0);
}
