//! `agentwire analyze`: the offline report from real files, as a user runs it (issue 3).

use crate::run;
use serde_json::Value;

/// A public data set as an argument, or `None` (the caller skips, saying why) when absent.
fn shared(path: &str) -> Option<String> {
    agentwire_testkit::shared_data(path).map(|file| file.display().to_string())
}

#[test]
fn a_usage_file_gives_the_report_json_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.csv");
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens,feature\n");
    for day in 1..=28 {
        for hour in [9, 15] {
            csv.push_str(&format!(
                "2026-10-{day:02}T{hour:02}:00:00Z,gpt-4o,400,20,classify\n"
            ));
        }
    }
    std::fs::write(&path, csv).unwrap();
    let out = run(&["analyze", path.to_str().unwrap(), "--json"]);
    assert!(out.success(), "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["summary"]["records"], 56);
    let expected = 56.0 * (400.0 * 2.5e-6 + 20.0 * 10e-6);
    let total = report["summary"]["total_cost_usd"].as_f64().unwrap();
    assert!((total - expected).abs() < 1e-9, "{total} vs {expected}");
    assert_eq!(report["capacity"]["tokens_per_minute"]["max"], 420.0);
    assert_eq!(report["recommendations"][0]["lever"], "model_routing");
    assert!(report["anomalies"].is_array());

    let text = run(&["analyze", path.to_str().unwrap()]);
    assert!(text.success());
    let text = &text.stdout;
    assert!(
        text.contains("### Capacity") && text.contains("Route classify"),
        "{text}"
    );
}

#[test]
fn unreadable_files_exit_2_with_a_message() {
    let out = run(&["analyze", "/no/such/file.csv"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("cannot read /no/such/file.csv"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "timestamp,model,input_tokens,output_tokens\nnope,gpt-4o,1,1\n",
    )
    .unwrap();
    let out = run(&["analyze", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2));
    let err = out.stderr;
    assert!(
        err.contains(":2: timestamp") && err.contains("nothing was analysed"),
        "{err}"
    );
    let out = run(&["analyze", path.to_str().unwrap(), "--format", "xlsx"]);
    assert_eq!(out.code, Some(2));
}

#[test]
fn the_public_traces_and_series_analyse() {
    if let Some(azure) = shared("azure_llm_2023/AzureLLMInferenceTrace_code.csv") {
        let out = run(&["analyze", &azure, "--model", "gpt-4o", "--json"]);
        assert!(out.success(), "{}", out.stderr);
        let r: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(r["summary"]["records"], 8_819);
        let out = run(&["analyze", &azure]);
        assert_eq!(out.code, Some(2), "a model is required");
    }
    if let Some(taxi) = shared("nab/nyc_taxi.csv") {
        let out = run(&["analyze", &taxi, "--json"]);
        assert!(out.success());
        let r: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(r["summary"]["records"], 10_320);
        assert!(!r["anomalies"].as_array().unwrap().is_empty());
        assert_eq!(r["forecast"]["backtest"]["beats_seasonal_naive"], true);
    }
    if let Some(focus) = shared("focus/focus_sample.csv") {
        let out = run(&["analyze", &focus, "--json"]);
        assert!(out.success());
        let r: Value = serde_json::from_str(&out.stdout).unwrap();
        let billed = r["summary"]["billed_cost_usd"].as_f64().unwrap();
        assert!((billed - 20.52).abs() < 0.005, "{billed}");
    }
}
