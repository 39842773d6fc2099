//! Which cases run: `--only` and `--skip` patterns over the catalogue's ids and titles, and the
//! order reports list cases in.
//!
//! What it must not do: know any case. Patterns match ids and titles as the catalogue states
//! them; a new case is selectable without a change here.

use super::catalogue::CaseInfo;
use super::config::SuiteConfig;

/// Whether the configuration's `--only`/`--skip` select a case.
pub(crate) fn selected(config: &SuiteConfig, info: &CaseInfo) -> bool {
    (config.only.is_empty() || config.only.iter().any(|p| matches_pattern(info, p)))
        && !config.skip.iter().any(|p| matches_pattern(info, p))
}

/// Whether a case matches a `--only`/`--skip` pattern: `*`/`?` globs over the id or the title;
/// a plain pattern matches an id with that prefix at a dot boundary (`5` matches `5.4`, `5.1`
/// matches `5.1` but not `5.10`) or a title containing it (case-insensitive).
pub fn matches_pattern(info: &CaseInfo, pattern: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    let full = format!("{} {}", info.id, info.title).to_lowercase();
    let lower = pattern.to_lowercase();
    if lower.contains(['*', '?']) {
        return glob(&lower, info.id) || glob(&lower, &full);
    }
    info.id == pattern
        || info.id.starts_with(&format!("{pattern}."))
        || (!pattern.chars().next().is_some_and(|c| c.is_ascii_digit()) && full.contains(&lower))
}

fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// `5.10` after `5.9`: ids compared as numbers, section by section.
pub fn section_order(id: &str) -> Vec<u32> {
    id.split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::catalogue::Case;

    fn info(id: &str) -> CaseInfo {
        Case::all()
            .into_iter()
            .find(|c| c.id == id)
            .map(Case::info)
            .unwrap()
    }

    #[test]
    fn patterns_select_by_section_id_or_title() {
        let tool_pairs = info("5.4");
        assert_eq!(tool_pairs.title, "tool pairs are matched");
        assert!(matches_pattern(&tool_pairs, "5"));
        assert!(matches_pattern(&tool_pairs, "5.4"));
        assert!(matches_pattern(&tool_pairs, "tool pairs"));
        assert!(matches_pattern(&tool_pairs, "5.*"));
        assert!(!matches_pattern(&tool_pairs, "4"));
        let resume = info("5.10");
        assert!(resume.title.contains("resume"));
        assert!(!matches_pattern(&info("5.1"), "5.10"));
        assert!(matches_pattern(&resume, "5.1?"));
        assert!(!matches_pattern(&resume, "5.1"));
        assert!(matches_pattern(&resume, "*resume*"));
    }

    #[test]
    fn section_order_is_numeric() {
        let mut ids = vec!["5.10", "5.9", "1.1", "7.1", "5.2"];
        ids.sort_by_key(|id| section_order(id));
        assert_eq!(ids, vec!["1.1", "5.2", "5.9", "5.10", "7.1"]);
    }
}
