//! The web chat page in a real browser (issue 6): headless Chromium, driven over WebDriver by
//! chromedriver, against the real server on 127.0.0.1 with a temporary SQLite database holding
//! the demo data set, real JWTs and real WebSockets.
//!
//! One scenario, as a person would use the page: it signs itself in (demo mode), an example
//! question is clicked and the timeline fills with the agents' events, the answer opens with its
//! summary and the full analysis (a chart with the anomaly marked, the savings table with each
//! recommendation's steps and assumptions, the details of the answer) opens from the keyboard, a second run is cancelled, the network drops in
//! the middle of a third run (a TCP proxy between browser and server cuts every connection) and
//! the page reconnects and shows that run completed with every event exactly once, and a reload
//! rebuilds the conversation from the server. Then sign-in with a pasted token, a refused token,
//! a server error in plain words, and text from the server that must never become markup.
//!
//! Screenshots at 1440 and 375 CSS pixels go to `target/browser-test/`. Figures (page transfer
//! size, click-to-first-timeline-entry time) are printed, never asserted.
//!
//! Needs Debian's `chromium` and `chromium-driver`: without them the test fails under CI (`CI`
//! set; `.ci/run` installs them) and is skipped with the reason on a developer machine.

use crate::usd;
use crate::webdriver::{self, Browser, ENTER, RELEASE, SHIFT};
use agentwire_analytics::{DemoConfig, generate_demo};
use agentwire_engine::Principal;
use agentwire_protocol::EventKind;
use agentwire_store::RunStatus;
use agentwire_testkit::{CuttableProxy, TestServer, forged_token, token};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const DEMO_USER: &str = "demo-user";
const DEMO_TENANT: &str = "acme";
/// Long enough per step that a run can be cancelled and cut mid-way (a supervisor run has about
/// 25 steps); short enough that the test stays quick.
const STEP_DELAY: Duration = Duration::from_millis(250);
/// Upper bound for anything the page should get to; never a pass/fail timing.
const WAIT: Duration = Duration::from_secs(60);

fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the page shows for every run: id, status, and the `seq` and `type` of each timeline entry.
const RUNS_JS: &str = r#"
return [...document.querySelectorAll('article.run')].map((article) => ({
  run_id: article.dataset.runId,
  status: article.dataset.status,
  badge: article.querySelector('.badge').textContent,
  seqs: [...article.querySelectorAll('li.event')].map((li) => Number(li.dataset.seq)),
  types: [...article.querySelectorAll('li.event')].map((li) => li.dataset.type),
}));
"#;

fn runs(browser: &Browser) -> Vec<Value> {
    browser
        .execute(RUNS_JS, vec![])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn seqs(run: &Value) -> Vec<u64> {
    run["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

/// The run's events as the server persisted them.
async fn stored_events(server: &TestServer, run_id: &str) -> Vec<agentwire_protocol::RunEvent> {
    let principal = Principal {
        user_id: DEMO_USER.into(),
        tenant_id: DEMO_TENANT.into(),
    };
    let mut pages = server
        .state
        .engine
        .run_events(&principal, run_id, 0)
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        events.extend(page);
    }
    events
}

/// Every event of the run is on the page exactly once, in order, and the page's last entry is the
/// server's last event.
async fn assert_timeline_matches_server(server: &TestServer, run: &Value) {
    let run_id = run["run_id"].as_str().unwrap();
    let stored = stored_events(server, run_id).await;
    let expected: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs(run),
        expected,
        "run {run_id}: the timeline must show each persisted event exactly once, in order"
    );
    let types: Vec<&str> = run["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let expected_types: Vec<&str> = stored.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(types, expected_types, "run {run_id}: event types");
    let terminals = stored.iter().filter(|e| e.kind.is_terminal()).count();
    assert_eq!(terminals, 1, "run {run_id}: one terminal event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_in_a_real_browser() {
    let (chromium, chromedriver) = match webdriver::installed() {
        Ok(found) => found,
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("the browser test cannot run under CI: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED the_chat_page_in_a_real_browser: {reason}");
            return;
        }
    };

    let server = TestServer::builder()
        .demo_mode(DEMO_USER, DEMO_TENANT)
        .step_delay(STEP_DELAY)
        .start()
        .await;
    let demo = generate_demo(&DemoConfig::default());
    let loaded = server
        .state
        .engine
        .ingest(DEMO_TENANT, demo.records.clone())
        .await
        .unwrap();
    assert_eq!(loaded as usize, demo.records.len());
    let proxy = CuttableProxy::start(server.addr).await;
    let base = format!("http://{}", proxy.addr);
    let out = output_dir();

    let browser = Browser::launch(&chromium, &chromedriver);

    // --- The page signs itself in with the demo token and connects.
    browser.goto(&format!("{base}/"));
    browser.wait_for(
        "the page to sign in with the demo token and connect",
        "return document.getElementById('conn-status').textContent === 'Live';",
        WAIT,
    );
    let who = browser.execute(
        "return document.getElementById('who-name').textContent;",
        vec![],
    );
    assert_eq!(who, json!(format!("{DEMO_USER} · {DEMO_TENANT}")));
    let labels = browser.execute(
        r#"return [...document.querySelectorAll('textarea, input')]
             .filter((el) => !el.closest('[hidden]'))
             .map((el) => el.labels && el.labels.length ? el.labels[0].textContent.trim() : null);"#,
        vec![],
    );
    assert_eq!(
        labels,
        json!(["Your question"]),
        "every visible field has a label"
    );

    // --- Click an example question; the timeline fills and the answer arrives.
    browser.click(&browser.find(".example[data-kind='cost']"));
    browser.wait_for(
        "the first run to complete",
        "const run = document.querySelector('article.run'); return run && run.dataset.status === 'completed';",
        WAIT,
    );
    let first = runs(&browser).remove(0);
    assert_eq!(first["badge"], "Completed");
    assert_timeline_matches_server(&server, &first).await;
    let types: Vec<&str> = first["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for kind in [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_handoff",
        "agent_completed",
    ] {
        assert!(
            types.contains(&kind),
            "the timeline shows {kind}: {types:?}"
        );
    }
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    let stored = stored_events(&server, &first_id).await;
    let Some(EventKind::AgentCompleted {
        report, response, ..
    }) = stored.last().map(|e| e.kind.clone())
    else {
        panic!("the first run did not end with agent_completed");
    };

    // The answer opens with its summary; the chart, the tables and the analysis behind them are
    // folded one click away, and the fold opens from the keyboard.
    let fold_js = r#"const run = document.querySelector('article.run');
           const summary = run.querySelector('.answer .answer-summary');
           const full = run.querySelector('.answer details.full-analysis');
           const toggle = full && full.querySelector(':scope > summary');
           const shown = (el) => !!el && el.checkVisibility();
           return {
             summary: summary ? summary.innerText : null,
             items: summary ? summary.querySelectorAll('li').length : 0,
             summary_shown: shown(summary),
             summary_first: !!summary && !!full
               && (summary.compareDocumentPosition(full) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0,
             open: full ? full.open : null,
             toggle: toggle ? toggle.textContent : null,
             toggle_tabbable: !!toggle && toggle.tabIndex >= 0,
             toggle_focused: !!toggle && document.activeElement === toggle,
             chart_shown: shown(run.querySelector('svg.chart')),
             table_shown: shown(run.querySelector('table.recs')),
             details_shown: shown(run.querySelector('.answer-details')),
             details_headings: [...run.querySelectorAll('.answer-details h4')].map((h) => h.textContent),
             anomaly_lists: run.querySelectorAll('.results section.anomalies').length,
           };"#;
    let folded = browser.execute(fold_js, vec![]);
    let summary_text = folded["summary"]
        .as_str()
        .expect("the answer has a summary");
    let total = usd(report["summary"]["total_cost_usd"].as_f64().unwrap());
    assert!(summary_text.contains(&total), "{folded}");
    assert!(
        summary_text.contains(&usd(report["total_monthly_savings_usd"].as_f64().unwrap())),
        "{folded}"
    );
    assert!(
        (1..=5).contains(&folded["items"].as_u64().unwrap()),
        "a summary of at most five lines: {folded}"
    );
    assert_eq!(folded["summary_shown"], json!(true), "{folded}");
    assert_eq!(folded["summary_first"], json!(true), "{folded}");
    assert_eq!(folded["open"], json!(false), "{folded}");
    assert_eq!(
        folded["toggle"],
        json!("Show the full analysis"),
        "{folded}"
    );
    assert_eq!(folded["toggle_tabbable"], json!(true), "{folded}");
    assert_eq!(
        folded["anomaly_lists"],
        json!(0),
        "the answer's anomaly table is the only one once it is there: {folded}"
    );
    for hidden in ["chart_shown", "table_shown", "details_shown"] {
        assert_eq!(folded[hidden], json!(false), "{hidden}: {folded}");
    }
    browser.screenshot_full_page(&out.join("summary-1440.png"));
    browser.send_keys(
        &browser.find("article.run details.full-analysis > summary"),
        ENTER,
    );
    // The label follows the `toggle` event, which the browser fires after the fold opens (a
    // task of its own, per HTML): wait for it as a reader's next frame would show it.
    browser.wait_for(
        "the fold's label to say it hides the analysis",
        "const s = document.querySelector('article.run details.full-analysis > summary'); \
         return !!s && s.textContent === 'Hide the full analysis';",
        WAIT,
    );
    let unfolded = browser.execute(fold_js, vec![]);
    assert_eq!(
        unfolded["open"],
        json!(true),
        "Enter opens the fold: {unfolded}"
    );
    assert_eq!(unfolded["toggle_focused"], json!(true), "{unfolded}");
    assert_eq!(
        unfolded["toggle"],
        json!("Hide the full analysis"),
        "{unfolded}"
    );
    for shown in ["chart_shown", "table_shown", "details_shown"] {
        assert_eq!(unfolded[shown], json!(true), "{shown}: {unfolded}");
    }
    assert!(
        unfolded["details_headings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "Recommendations"),
        "{unfolded}"
    );

    // The savings table comes from the report: every recommendation with its monthly savings.
    let recommendations = report["recommendations"]
        .as_array()
        .expect("recommendations");
    assert!(!recommendations.is_empty());
    let table = browser.execute(
        r#"const table = document.querySelector('article.run table.recs');
           if (!table) return null;
           return {
             rows: [...table.querySelectorAll('tbody tr')].map((tr) => ({
               title: tr.querySelector('.rec-title').textContent,
               savings: tr.querySelector('td.savings').textContent,
             })),
             total: table.querySelector('tfoot td.savings').textContent,
           };"#,
        vec![],
    );
    assert_eq!(
        table["rows"].as_array().unwrap().len(),
        recommendations.len()
    );
    for (row, rec) in table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(recommendations)
    {
        assert_eq!(row["title"], rec["title"]);
        assert_eq!(
            row["savings"],
            json!(usd(rec["monthly_savings_usd"].as_f64().unwrap()))
        );
    }
    assert_eq!(
        table["total"],
        json!(usd(report["total_monthly_savings_usd"].as_f64().unwrap()))
    );

    // The chart shows each day of the report and marks the planted spike as the anomaly.
    let chart = browser.execute(
        r#"const svg = document.querySelector('article.run svg.chart');
           if (!svg) return null;
           return {
             bars: svg.querySelectorAll('rect.bar').length,
             windows: svg.querySelectorAll('rect.anomaly-window').length,
             anomalous: [...svg.querySelectorAll('rect.bar-anomalous title')].map((t) => t.textContent),
           };"#,
        vec![],
    );
    assert_eq!(
        chart["bars"],
        json!(report["daily"].as_array().unwrap().len()),
        "one bar per day of the report"
    );
    assert!(chart["windows"].as_u64().unwrap() >= 1, "{chart}");
    let spike = demo.facts.spike_day.to_string();
    assert!(
        chart["anomalous"]
            .as_array()
            .unwrap()
            .iter()
            .any(|title| title.as_str().unwrap().starts_with(&spike)),
        "the spike day {spike} is inside the marked anomaly window: {chart}"
    );

    // The final answer is Markdown rendered as elements, not shown as source.
    let answer = browser.execute(
        r#"const answer = document.querySelector('article.run .answer');
           return {
             text: answer.textContent,
             headings: [...answer.querySelectorAll('h3, h4')].map((h) => h.textContent),
             tables: answer.querySelectorAll('table').length,
             strong: answer.querySelectorAll('strong').length,
           };"#,
        vec![],
    );
    let text = answer["text"].as_str().unwrap();
    assert!(!text.contains("**") && !text.contains("| ---"), "{text}");
    assert!(answer["tables"].as_u64().unwrap() >= 1);
    assert!(answer["strong"].as_u64().unwrap() >= 1);
    let first_heading = response
        .lines()
        .find_map(|line| line.strip_prefix("## "))
        .expect("the response has a heading");
    assert!(
        answer["headings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == first_heading),
        "{answer}"
    );

    // Tool calls are collapsed; opening one shows its arguments.
    let collapsed = browser.execute(
        "return [...document.querySelectorAll('article.run details.tool-call')].every((d) => !d.open);",
        vec![],
    );
    assert_eq!(collapsed, json!(true));
    browser.execute(
        "document.querySelector('article.run details.timeline').open = true;",
        vec![],
    );
    browser.click(&browser.find("article.run details.tool-call > summary"));
    let args = browser.execute(
        r#"const call = document.querySelector('article.run details.tool-call');
           return call.open ? call.querySelector('pre').innerText : null;"#,
        vec![],
    );
    assert!(
        args.as_str().unwrap().contains("\"user_request\""),
        "{args}"
    );
    browser.screenshot_full_page(&out.join("timeline-1440.png"));
    browser.execute(
        "document.querySelector('article.run details.timeline').open = false;",
        vec![],
    );

    // Figures: printed for the closing note, never asserted.
    let ask_to_first = browser.execute(
        "const m = performance.getEntriesByName('agentwire:ask-to-first-entry'); return m.length ? m[m.length - 1].duration : null;",
        vec![],
    );
    let transfer = browser.execute(
        r#"const nav = performance.getEntriesByType('navigation')[0];
           const resources = performance.getEntriesByType('resource')
             .filter((r) => new URL(r.name).pathname.startsWith('/assets/'));
           return {
             document_transfer: nav.transferSize, document_body: nav.encodedBodySize,
             assets: resources.length,
             assets_transfer: resources.reduce((sum, r) => sum + r.transferSize, 0),
             assets_body: resources.reduce((sum, r) => sum + r.encodedBodySize, 0),
           };"#,
        vec![],
    );
    assert!(
        ask_to_first.is_number(),
        "the page measured click to first entry"
    );
    println!(
        "FIGURE click on an example question -> first timeline entry: {:.1} ms (performance.now in Chromium)",
        ask_to_first.as_f64().unwrap()
    );
    println!(
        "FIGURE page transfer on first load: {} bytes (document {} + {} assets {}; bodies {} + {}); embedded page bytes: {}",
        transfer["document_transfer"].as_u64().unwrap_or(0)
            + transfer["assets_transfer"].as_u64().unwrap_or(0),
        transfer["document_transfer"],
        transfer["assets"],
        transfer["assets_transfer"],
        transfer["document_body"],
        transfer["assets_body"],
        agentwire_server::web::page_bytes(),
    );
    browser.screenshot_full_page(&out.join("answer-1440.png"));

    // --- A second question typed with Shift+Enter and sent with Enter, then cancelled.
    let message = browser.find("#message");
    browser.send_keys(
        &message,
        &format!("Where did our AI spend go last week?{SHIFT}{ENTER}{RELEASE}Break it down by team.{ENTER}"),
    );
    browser.wait_for(
        "the second run to start",
        "const runs = document.querySelectorAll('article.run'); return runs.length === 2 && runs[1].querySelectorAll('li.event').length > 0;",
        WAIT,
    );
    let bubble = browser.execute(
        "const b = document.querySelectorAll('.msg-user .bubble'); return [b[b.length - 1].textContent, document.getElementById('message').value];",
        vec![],
    );
    assert_eq!(
        bubble,
        json!([
            "Where did our AI spend go last week?\nBreak it down by team.",
            ""
        ]),
        "Shift+Enter adds a line, Enter sends and empties the box"
    );
    let second_id = runs(&browser)[1]["run_id"].as_str().unwrap().to_owned();
    let before_cancel = server.store.get_run(&second_id).await.unwrap().unwrap();
    assert!(
        !before_cancel.status.is_terminal(),
        "the second run must still be going to test cancel (step delay too short for this machine?)"
    );
    browser.click(&browser.find("article.run[data-status='running'] button.cancel"));
    browser.wait_for(
        "the second run to be marked cancelled",
        "const runs = document.querySelectorAll('article.run'); return runs[1].dataset.status === 'cancelled';",
        WAIT,
    );
    let second = runs(&browser).remove(1);
    assert_eq!(second["badge"], "Cancelled");
    assert_eq!(
        second["types"].as_array().unwrap().last().unwrap(),
        "agent_cancelled"
    );
    assert_timeline_matches_server(&server, &second).await;
    assert_eq!(
        server
            .store
            .get_run(&second_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Cancelled
    );

    // --- The network drops in the middle of a third run; the page reconnects and resumes it.
    browser.click(&browser.find(".example[data-kind='anomaly']"));
    browser.wait_for(
        "the third run to be a few steps in",
        "const runs = document.querySelectorAll('article.run'); return runs.length === 3 && runs[2].querySelectorAll('li.event').length >= 3;",
        WAIT,
    );
    let third_id = runs(&browser)[2]["run_id"].as_str().unwrap().to_owned();
    let accepted_before = proxy.accepted();
    let cut = proxy.cut();
    assert!(cut >= 1, "the browser's socket went through the proxy");
    let at_cut = server.store.get_run(&third_id).await.unwrap().unwrap();
    assert!(
        !at_cut.status.is_terminal(),
        "the connection must drop mid-run (the run had already ended; step delay too short?)"
    );
    browser.screenshot_full_page(&out.join("dropped-1440.png"));
    browser.wait_for(
        "the page to reconnect",
        "return document.getElementById('conn-status').textContent === 'Live · reconnected';",
        WAIT,
    );
    assert!(
        proxy.accepted() > accepted_before,
        "the page opened a new connection"
    );
    browser.wait_for(
        "the third run to complete after the reconnect",
        "const runs = document.querySelectorAll('article.run'); return runs[2].dataset.status === 'completed';",
        WAIT,
    );
    let third = runs(&browser).remove(2);
    assert_timeline_matches_server(&server, &third).await;
    assert!(
        seqs(&third).last().copied().unwrap() > at_cut.last_seq,
        "events after the cut reached the page"
    );
    let banner = browser.execute(
        "return document.getElementById('banner').textContent;",
        vec![],
    );
    assert!(
        banner.as_str().unwrap().starts_with("Connection restored"),
        "the page says it reconnected: {banner}"
    );

    // --- Readable at 375 px: nothing scrolls sideways.
    browser.emulate_width(375, 900, true);
    // On a phone the layout viewport grows to fit content that is too wide, so a 375 px
    // innerWidth means nothing on the page is wider than the screen.
    let widths = browser.execute(
        "return [window.innerWidth, document.documentElement.scrollWidth];",
        vec![],
    );
    assert_eq!(
        widths,
        json!([375, 375]),
        "the page must fit a 375 px screen without sideways scrolling"
    );
    browser.wait_for(
        "the charts to be redrawn for the narrow screen",
        "return [...document.querySelectorAll('svg.chart')].every((svg) => svg.viewBox.baseVal.width <= 375);",
        WAIT,
    );
    browser.screenshot_full_page(&out.join("conversation-375.png"));
    browser.cdp("Emulation.clearDeviceMetricsOverride", json!({}));

    // --- A reload shows the conversation again, from the server.
    let url = browser.execute("return location.href;", vec![]);
    assert!(url.as_str().unwrap().contains("#thread="), "{url}");
    browser.goto(&format!("{base}/?reloaded"));
    browser.goto(url.as_str().unwrap());
    browser.wait_for(
        "the conversation to be rebuilt from the server",
        "return document.querySelectorAll('article.run').length === 3 && document.getElementById('conn-status').textContent === 'Live';",
        WAIT,
    );
    let reloaded = runs(&browser);
    let statuses: Vec<&str> = reloaded
        .iter()
        .map(|run| run["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "cancelled", "completed"]);
    for (run, id) in reloaded.iter().zip([&first_id, &second_id, &third_id]) {
        assert_eq!(run["run_id"], json!(id));
        assert_timeline_matches_server(&server, run).await;
    }
    let threads = browser.execute(
        "return [...document.querySelectorAll('#thread-list .thread')].map((b) => [b.querySelector('.thread-title').textContent, b.getAttribute('aria-current')]);",
        vec![],
    );
    assert_eq!(
        threads,
        json!([["How can we reduce our AI costs?", "true"]]),
        "the history lists the conversation, marked as the one shown"
    );
    browser.emulate_width(375, 900, true);
    browser.click(&browser.find("#history-toggle"));
    browser.screenshot_full_page(&out.join("history-375.png"));
    browser.cdp("Emulation.clearDeviceMetricsOverride", json!({}));
    browser.wait_for(
        "the charts to be redrawn for the wide screen",
        "return [...document.querySelectorAll('svg.chart')].every((svg) => svg.viewBox.baseVal.width > 600);",
        WAIT,
    );
    browser.screenshot_full_page(&out.join("reloaded-1440.png"));

    // --- Text from the server is never markup.
    browser.click(&browser.find("#new-chat"));
    let hostile =
        r#"<img src=x onerror="window.__pwned=1"> **bold?** <script>window.__pwned=2</script>"#;
    browser.send_keys(&browser.find("#message"), &format!("{hostile}{ENTER}"));
    browser.wait_for(
        "the hostile question's run to end",
        "const run = document.querySelector('article.run'); return run && run.dataset.status !== 'running';",
        WAIT,
    );
    let safe = browser.execute(
        r#"return {
             pwned: window.__pwned === undefined ? null : window.__pwned,
             images: document.querySelectorAll('.conversation img, .conversation script').length,
             bubble: document.querySelector('.msg-user .bubble').textContent,
           };"#,
        vec![],
    );
    assert_eq!(safe, json!({"pwned": null, "images": 0, "bubble": hostile}));
    let rendered = browser.execute_async(
        r#"const done = arguments[arguments.length - 1];
           import('/assets/markdown.js').then(({ renderMarkdown }) => {
             const box = document.createElement('div');
             box.append(renderMarkdown('# T <b>x</b>\n\n<img src=x onerror="window.__pwned=3">\n\n[a](javascript:alert(1)) [b](https://example.org/x) `<i>`\n\n| a | b |\n|---|--:|\n| <u>1</u> | **2** |'));
             done({
               elements: [...box.querySelectorAll('*')].map((el) => el.tagName.toLowerCase()),
               links: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
               text: box.textContent,
             });
           });"#,
        vec![],
    );
    assert_eq!(
        rendered["elements"],
        json!([
            "h3", "p", "p", "code", "div", "table", "thead", "tr", "th", "th", "tbody", "tr", "td",
            "td", "strong"
        ]),
        "{rendered}"
    );
    // No link is ever made, not even to a plausible https URL: answers quote tenant data.
    assert_eq!(rendered["links"], json!([]), "{rendered}");
    assert!(
        rendered["text"]
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=\"window.__pwned=3\">"),
        "{rendered}"
    );
    assert_eq!(
        browser.execute("return window.__pwned === undefined;", vec![]),
        json!(true)
    );

    // --- Sign out; a refused token is explained; a pasted token signs in.
    browser.click(&browser.find("#sign-out"));
    browser.wait_for(
        "the sign-in form",
        "return !document.getElementById('signin').hidden;",
        WAIT,
    );
    browser.send_keys(&browser.find("#token"), &forged_token("mallory"));
    browser.click(&browser.find("#signin button[type='submit']"));
    let refused = browser.wait_for(
        "the refused token to be explained",
        "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent.startsWith('That token was refused') && e.textContent;",
        WAIT,
    );
    let refused = refused.as_str().unwrap();
    assert!(
        refused.contains("signature does not verify") && refused.contains("agentwire token"),
        "says why and what to do: {refused}"
    );
    // A user with no usage data: the server's NO_DATA is shown in plain words.
    browser.execute("document.getElementById('token').value = '';", vec![]);
    browser.send_keys(&browser.find("#token"), &token("alice", None));
    browser.click(&browser.find("#signin button[type='submit']"));
    browser.wait_for(
        "alice to be signed in",
        "return document.getElementById('who-name').textContent === 'alice' && document.getElementById('conn-status').textContent === 'Live';",
        WAIT,
    );
    browser.click(&browser.find(".example[data-kind='capacity']"));
    let problem = browser.wait_for(
        "the NO_DATA error to be shown",
        "const p = document.querySelector('article.run .run-problem'); return p && !p.hidden && p.textContent;",
        WAIT,
    );
    let problem = problem.as_str().unwrap();
    assert!(
        problem.contains("no usage data") && problem.contains("NO_DATA"),
        "plain words plus the server's message: {problem}"
    );
    let alice_runs = runs(&browser);
    assert_eq!(alice_runs.len(), 1, "alice sees only her own conversation");
    assert_eq!(alice_runs[0]["status"], "failed");
    browser.screenshot_full_page(&out.join("no-data-1440.png"));

    // --- Names from tenant data never become links: a team named like a Markdown link is shown
    // as the text it is, in the answer, its tables and the charts.
    const LURE: &str = "[Claim your refund](https://evil.example/refund)";
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens,team,feature\n");
    for day in 1..=20 {
        for (team, tokens) in [(LURE, 90_000), ("search", 40_000)] {
            csv.push_str(&format!(
                "2026-11-{day:02}T10:00:00Z,gpt-4o,{tokens},9000,\"{team}\",\"{LURE}\"\n"
            ));
        }
    }
    let upload = server
        .post(
            "/api/usage?format=csv",
            &[(
                "authorization",
                &format!("Bearer {}", token("tess", Some("usage:write"))),
            )],
            csv.as_bytes(),
        )
        .await;
    assert_eq!(upload.status, 200, "{}", upload.text());
    browser.click(&browser.find("#sign-out"));
    browser.wait_for(
        "the sign-in form",
        "return !document.getElementById('signin').hidden;",
        WAIT,
    );
    browser.execute("document.getElementById('token').value = '';", vec![]);
    browser.send_keys(&browser.find("#token"), &token("tess", None));
    browser.click(&browser.find("#signin button[type='submit']"));
    browser.wait_for(
        "tess to be signed in",
        "return document.getElementById('who-name').textContent === 'tess' && document.getElementById('conn-status').textContent === 'Live';",
        WAIT,
    );
    browser.click(&browser.find(".example[data-kind='cost']"));
    browser.wait_for(
        "tess's run to end",
        "const run = document.querySelector('article.run'); return run && run.dataset.status !== 'running';",
        WAIT,
    );
    let page = browser.execute(
        r#"const c = document.querySelector('.conversation');
           return {
             status: document.querySelector('article.run').dataset.status,
             links: c.querySelectorAll('a').length,
             quoted: c.textContent.includes('Claim your refund'),
           };"#,
        vec![],
    );
    assert_eq!(
        page,
        json!({"status": "completed", "links": 0, "quoted": true}),
        "the lure is shown as text and never as a link"
    );
    browser.screenshot_full_page(&out.join("tenant-names-1440.png"));

    println!("screenshots in {}", out.display());
    drop(browser);
    drop(proxy);
    server.stop().await.unwrap();
}
