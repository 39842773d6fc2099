//! Fuzzes every usage importer (`agentwire_analytics::import`).
//!
//! The first byte chooses the importer, so that each input exercises one and the fuzzer's
//! coverage feedback applies to it: with `k = (byte & 0x7f) % (N + 3)` over the N variants of
//! `UsageFormat::ALL`, `k == 0` is `import_usage_with` with detection, `1..=N` is
//! `import_usage_with` with that format, `N + 1` is `import_series` and `N + 2` is
//! `import_focus`; the top bit names a model (`gpt-4o`) for the traces that need one. A format
//! added to `UsageFormat::ALL` is covered without touching this file. The rest of the input is
//! the file.
//!
//! Beyond "never panics": the report accounts for every row (`rows_read` is records + errors +
//! skipped, as documented), and every row error names a line and a reason.
#![no_main]

use agentwire_analytics::import::{
    ImportOptions, UsageFormat, import_focus, import_series, import_usage_with,
};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let formats = UsageFormat::ALL.len();
    let choice = usize::from(selector & 0x7f) % (formats + 3);
    let model = (selector & 0x80 != 0).then(|| "gpt-4o".to_owned());
    match choice {
        0 => usage(file, None, model),
        k if k <= formats => usage(file, Some(UsageFormat::ALL[k - 1]), model),
        k if k == formats + 1 => {
            let _ = import_series(Cursor::new(file));
        }
        _ => {
            let _ = import_focus(Cursor::new(file));
        }
    }
});

fn usage(file: &[u8], format: Option<UsageFormat>, model: Option<String>) {
    let options = ImportOptions { format, model };
    let Ok(report) = import_usage_with(Cursor::new(file), &options) else {
        return;
    };
    let accounted = report.records.len() + report.errors.len() + report.skipped.len();
    assert_eq!(
        report.rows_read as usize, accounted,
        "{format:?}: rows read vs records + errors + skipped"
    );
    for problem in report.errors.iter().chain(&report.skipped) {
        assert!(problem.line >= 1, "{format:?}: a row error at line 0");
        assert!(
            !problem.message.is_empty(),
            "{format:?}: a row error without a reason"
        );
    }
}
