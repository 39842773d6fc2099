//! The public data sets beside the checkout (`../shared/data`), which tests read when present and
//! skip, saying why, when absent. Only finds files; reading them is the test's job.

use std::path::PathBuf;

/// The folder of the public data sets: `shared/data` beside the checkout.
pub fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// `shared/data/<path>`, or `None` after printing that the caller skips because it is absent.
pub fn shared_data(path: &str) -> Option<PathBuf> {
    let file = shared_data_dir().join(path);
    if file.exists() {
        Some(file)
    } else {
        println!("skipped: {} is absent", file.display());
        None
    }
}
