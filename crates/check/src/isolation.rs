//! Isolation canaries: proof that no socket ever sees another user's data.
//!
//! Every request the suite or the load generator sends carries a random canary string
//! (`cnry` + 24 hex digits) in its question, registered with the user who sent it; every `run_id`
//! the deployment hands out is registered with the user it was handed to. Every frame any socket
//! receives is then scanned: a canary or a `run_id` that belongs to a different user is a
//! [`Leak`]. A deployment that echoes questions (as `agent_started.user_request` does) makes the
//! canary visible wherever the run's events go, so cross-delivery cannot hide.
//!
//! What it must not do: report a leak for the user's own data (a user may hold several sockets),
//! or miss one because a frame is malformed: strings are searched wherever they sit in the frame.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use memchr::memmem;

/// The prefix of every canary.
pub const CANARY_PREFIX: &str = "cnry";
const CANARY_HEX: usize = 24;

/// What leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakKind {
    Canary,
    RunId,
}

/// One frame that carried another user's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leak {
    pub kind: LeakKind,
    /// The canary or run id.
    pub value: String,
    /// The user it belongs to.
    pub owner: String,
    /// The user whose socket received it.
    pub seen_by: String,
    /// The frame's `type`.
    pub frame_type: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            LeakKind::Canary => "canary",
            LeakKind::RunId => "run_id",
        };
        write!(
            f,
            "a socket of user {} received a {} frame carrying {what} {} of user {}",
            self.seen_by, self.frame_type, self.value, self.owner
        )
    }
}

/// Who owns which canary and which run. Shared by every session of one suite or load run.
#[derive(Debug, Default)]
pub struct Registry {
    owners: Mutex<Owners>,
}

#[derive(Debug, Default)]
struct Owners {
    canaries: HashMap<String, String>,
    runs: HashMap<String, String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        // A panic elsewhere while holding the lock leaves plain maps behind: still usable.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh canary owned by `user`.
    pub fn canary(&self, user: &str) -> String {
        let canary = format!("{CANARY_PREFIX}{}", crate::token::random_hex(CANARY_HEX));
        self.lock().canaries.insert(canary.clone(), user.to_owned());
        canary
    }

    /// Records that `run_id` was handed to `user`.
    pub fn register_run(&self, run_id: &str, user: &str) {
        self.lock().runs.insert(run_id.to_owned(), user.to_owned());
    }

    /// The user a run was handed to, if it was registered.
    pub fn run_owner(&self, run_id: &str) -> Option<String> {
        self.lock().runs.get(run_id).cloned()
    }

    /// Every leak in one frame received by a socket of `me`.
    pub fn scan(&self, frame: &Value, me: &str) -> Vec<Leak> {
        let mut canaries = Vec::new();
        collect_canaries(frame, &mut canaries);
        self.leaks_in(frame, &canaries, me)
    }

    /// Every leak in one frame received by a socket of `me`, given the canaries found in all of
    /// its strings (by the client as it parsed the frame: `frame` may be only its envelope).
    pub fn leaks_in(&self, frame: &Value, canaries: &[String], me: &str) -> Vec<Leak> {
        let run_id = frame.get("run_id").and_then(Value::as_str);
        if canaries.is_empty() && run_id.is_none() {
            return Vec::new();
        }
        let frame_type = || {
            frame
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("<no type>")
                .to_owned()
        };
        let owners = self.lock();
        let mut out = Vec::new();
        for canary in canaries {
            if let Some(owner) = owners.canaries.get(canary)
                && owner != me
            {
                out.push(Leak {
                    kind: LeakKind::Canary,
                    value: canary.clone(),
                    owner: owner.clone(),
                    seen_by: me.to_owned(),
                    frame_type: frame_type(),
                });
            }
        }
        if let Some(run_id) = run_id
            && let Some(owner) = owners.runs.get(run_id)
            && owner != me
        {
            out.push(Leak {
                kind: LeakKind::RunId,
                value: run_id.to_owned(),
                owner: owner.clone(),
                seen_by: me.to_owned(),
                frame_type: frame_type(),
            });
        }
        out
    }
}

/// Finds canary-shaped substrings in every string of a JSON value (keys included).
pub(crate) fn collect_canaries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => find_canaries(text, out),
        Value::Array(items) => items.iter().for_each(|item| collect_canaries(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                find_canaries(key, out);
                collect_canaries(item, out);
            }
        }
        _ => {}
    }
}

/// Collects the canaries in `text`. Called for every key and string of every frame, most of
/// them short: the searcher is built once, and a text too short to hold a canary is not searched.
pub(crate) fn find_canaries(text: &str, out: &mut Vec<String>) {
    static PREFIX: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(CANARY_PREFIX));
    if text.len() < CANARY_PREFIX.len() + CANARY_HEX {
        return;
    }
    for at in PREFIX.find_iter(text.as_bytes()) {
        let start = at + CANARY_PREFIX.len();
        let Some(hex) = text.get(start..start + CANARY_HEX) else {
            continue;
        };
        if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let canary = format!("{CANARY_PREFIX}{hex}");
            if !out.contains(&canary) {
                out.push(canary);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_data_is_no_leak_and_foreign_data_is() {
        let registry = Registry::new();
        let a = registry.canary("alice");
        let b = registry.canary("bob");
        registry.register_run("run_a", "alice");
        let frame =
            json!({"type": "agent_started", "run_id": "run_a", "user_request": format!("q {a}")});
        assert!(registry.scan(&frame, "alice").is_empty());
        let leaks = registry.scan(&frame, "bob");
        assert_eq!(leaks.len(), 2);
        assert_eq!(leaks[0].kind, LeakKind::Canary);
        assert_eq!(leaks[0].owner, "alice");
        assert_eq!(leaks[1].kind, LeakKind::RunId);
        assert!(leaks[1].to_string().contains("user bob received"));
        // Canaries are found anywhere, nested or mid-text, and unknown ones are ignored.
        let nested = json!({"type": "x", "data": {"list": [format!("..{b}..")]}});
        assert_eq!(registry.scan(&nested, "alice").len(), 1);
        let unknown = json!({"type": "x", "text": format!("{CANARY_PREFIX}{}", "0".repeat(24))});
        assert!(registry.scan(&unknown, "alice").is_empty());
        assert_eq!(registry.run_owner("run_a").as_deref(), Some("alice"));
    }

    #[test]
    fn canaries_are_distinct_and_well_formed() {
        let registry = Registry::new();
        let a = registry.canary("u");
        let b = registry.canary("u");
        assert_ne!(a, b);
        assert_eq!(a.len(), CANARY_PREFIX.len() + CANARY_HEX);
        let mut found = Vec::new();
        find_canaries(&format!("x{a}y{b}"), &mut found);
        assert_eq!(found, vec![a.clone(), b]);
        // A canary that is the whole string, or a key, is found; one cut short is not.
        let mut alone = Vec::new();
        find_canaries(&a, &mut alone);
        find_canaries(&a[..a.len() - 1], &mut alone);
        assert_eq!(alone, vec![a.clone()]);
        let mut keyed = Vec::new();
        collect_canaries(&json!({ a.clone(): 1 }), &mut keyed);
        assert_eq!(keyed, vec![a]);
    }
}
