//! `agentwire check` and `agentwire load` as a user runs them: the built binary against a real
//! `agentwire serve` child process, asserting the exit codes (0, 1, 2, 99) and the files written.
//!
//! No assertion depends on speed: the threshold used to force exit code 99 is a count that cannot
//! hold (`connect: count<0`), not a latency.

use crate::{agentwire, run};
use agentwire_testkit::{TestDatabase, unused_port};

const SECRET: &str = "check-cli-secret-0123456789abcdef0123456789";

#[test]
fn list_prints_the_catalogue_numbered_by_section() {
    let out = run(&["check", "--list"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let listing = out.stdout;
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
        let out = run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn an_unreachable_target_is_exit_code_2_and_the_reports_say_why() {
    let port = unused_port().port();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let target = format!("http://127.0.0.1:{port}");
    let out = run(&[
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
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(out.stdout.contains("target unreachable"));
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

    let out = run(&[
        "load", "--target", &target, "--secret", SECRET, "--users", "3",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
}

#[test]
fn check_and_load_against_agentwire_serve_pass_and_a_breached_threshold_is_99() {
    let database = TestDatabase::new();
    let served = agentwire().serve(
        &["--demo-data", "--database", database.url()],
        &[("AGENTWIRE_JWT_SECRET", SECRET)],
    );
    let dir = tempfile::tempdir().unwrap();
    let markdown = dir.path().join("r.md");
    let out = run(&[
        "check",
        "--target",
        &served.url(),
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
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let report = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        report.contains("**PASSED**") && report.contains("## Connectivity"),
        "{report}"
    );

    // The same cases with a threshold no deployment can meet: every case passes, exit 99.
    let out = run(&[
        "check",
        "--target",
        &served.url(),
        "--secret",
        SECRET,
        "--only",
        "1.2",
        "--threshold",
        "connect=count<0",
    ]);
    assert_eq!(out.code, Some(99), "{}", out.stdout);
    assert!(out.stdout.contains("breached"));

    let json = dir.path().join("load.json");
    let out = run(&[
        "load",
        "--target",
        &served.url(),
        "--secret",
        SECRET,
        "--users",
        "5",
        "--ramp",
        "500ms",
        "--hold",
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
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["counts"]["completed"], 5);
    assert_eq!(summary["counts"]["violations"], 0);
    assert_eq!(summary["counts"]["leaks"], 0);
    // --hold: the five sessions, arriving over half a second, were all open at once.
    assert_eq!(summary["counts"]["peak_connected"], 5, "{summary}");
    assert!(
        summary["model"].as_str().unwrap().contains("held open"),
        "{summary}"
    );
}

#[test]
fn check_and_load_over_tls_trust_the_ca_cert_and_a_wrong_ca_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = agentwire_testkit::TestCa::new("agentwire test CA");
    let (cert, key) = ca.server_cert().write_to(dir.path());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let stranger = dir.path().join("stranger.pem");
    std::fs::write(
        &stranger,
        agentwire_testkit::TestCa::new("another CA").pem(),
    )
    .unwrap();

    let database = TestDatabase::new();
    let served = agentwire().serve(
        &[
            "--demo-data",
            "--database",
            database.url(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("AGENTWIRE_JWT_SECRET", SECRET)],
    );
    let target = format!("https://{}", served.addr);
    let out = run(&[
        "check",
        "--target",
        &target,
        "--ca-cert",
        ca_file.to_str().unwrap(),
        "--secret",
        SECRET,
        "--only",
        "1",
        "--only",
        "2",
        "--only",
        "7",
        "--threshold",
        "ttfe=count>=0",
        "--threshold",
        "ttc=count>=0",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);

    let out = run(&[
        "load",
        "--target",
        &format!("wss://{}/ws", served.addr),
        "--ca-cert",
        ca_file.to_str().unwrap(),
        "--secret",
        SECRET,
        "--users",
        "2",
        "--agent",
        "triage",
        "--no-progress",
        "--threshold",
        "ttfe=count>=0",
        "--threshold",
        "ttc=count>=0",
        "--threshold",
        "connect=count>=0",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);

    // Another CA, or none: the target is unreachable, and the report says why.
    for ca_args in [vec!["--ca-cert", stranger.to_str().unwrap()], vec![]] {
        let mut args = vec![
            "check", "--target", &target, "--secret", SECRET, "--only", "1",
        ];
        args.extend(ca_args);
        let out = run(&args);
        assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("not signed by a trusted CA"),
            "{}",
            out.stdout
        );
    }
}
