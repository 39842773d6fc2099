//! Names in the question, resolved against the tenant's own values: teams, features, projects,
//! users, statuses, providers and models (with families such as "Claude" or "mini models"),
//! case-insensitively, up to a typo, singular or plural, with dashes or spaces. A name the data
//! does not have, when the question marks it as one ("the marketing team", "gpt-5"), is reported
//! with the closest values the data does have.
//!
//! This module finds and resolves names; it must not decide whether a name is a filter, a
//! what-if target or one side of a comparison.

use agentwire_analytics::query::{Dimension, is_success_status};
use serde::Serialize;

use crate::models::{looks_like_model, match_models, model_ish};
use crate::text::{Token, close, singular};
use crate::vocabulary::Vocabulary;

/// How a name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The value itself, up to case, spacing and plural.
    Exact,
    /// Up to a typo.
    Typo,
    /// One distinctive word of a longer name ("summaries" for doc-summaries).
    Partial,
    /// A family or brand standing for several models ("Claude", "mini models").
    Family,
    /// Another name for the value ("Open AI", "failed").
    Alias,
}

/// A name found in the question.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mention {
    pub at: usize,
    pub len: usize,
    pub text: String,
    pub dimension: Dimension,
    pub values: Vec<String>,
    pub how: MatchKind,
    /// Why this reading was chosen over another.
    pub note: Option<String>,
    /// A model the price table knows but the data does not (a what-if target, or an absent name).
    pub priced_only: bool,
}

/// A name the data does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    pub text: String,
    pub dimension: Option<Dimension>,
    /// The tenant's values nearest to it (up to three).
    pub closest: Vec<String>,
    #[serde(skip)]
    pub(crate) at: usize,
}

/// Words that never start or end a name on their own: grammar, and the question's own
/// vocabulary (metrics, dimensions, time).
#[rustfmt::skip]
pub(crate) const STOP: &[&str] = &[
    "a", "an", "the", "of", "on", "in", "for", "to", "and", "or", "by", "per", "at", "from", "with",
    "what", "which", "who", "how", "much", "many", "is", "are", "was", "were", "be", "been", "did",
    "do", "does", "our", "we", "us", "my", "me", "i", "you", "it", "its", "this", "that", "these",
    "those", "all", "each", "every", "any", "most", "least", "top", "vs", "versus", "than", "spend",
    "spent", "cost", "costs", "team", "teams", "feature", "features", "model", "models", "project",
    "projects", "user", "users", "provider", "providers", "request", "requests", "token", "tokens",
    "day", "days", "week", "weeks", "month", "months", "total", "average", "use", "used", "using",
    "usage", "much", "money", "show", "me", "give", "tell", "list", "compare", "compared", "so",
    "far", "get", "got", "has", "have", "had", "can", "could", "would", "should", "will", "there",
    "their", "them", "they", "about", "across", "over", "between", "since", "last", "past", "this",
    "next", "into", "out", "up", "down", "more", "less", "same", "other", "else", "just", "only",
    "than", "then", "where", "when", "why", "if", "not", "no", "yes", "call", "calls", "rate",
    "share", "percent", "percentage", "latency", "error", "errors", "p50", "p90", "p95", "p99",
    "move", "moved", "switch", "switched", "cache", "caching", "cached", "run", "running", "go",
    "went", "going", "new", "old", "big", "biggest", "high", "highest", "low", "lowest", "one",
    "spending", "bill", "billing", "expensive", "cheap", "cheaper", "cheapest", "input", "output",
    "prompt", "completion", "hello", "hi", "hey", "thanks", "please", "now", "ever", "trend",
];

/// Entity names that are also everyday words: read as the word when the context says so
/// ("spend growth", "growth rate", "search for").
#[rustfmt::skip]
const EVERYDAY: &[&str] = &[
    "growth", "support", "search", "platform", "research", "review", "analysis", "data", "report",
    "summary", "translation", "success", "error", "lead", "code", "log", "email",
];

fn everyday_context(words: &[String], at: usize, len: usize) -> bool {
    let before = at
        .checked_sub(1)
        .and_then(|b| words.get(b))
        .map(String::as_str);
    let after = words.get(at + len).map(String::as_str);
    matches!(
        after,
        Some("of" | "rate" | "rates" | "projection" | "projections" | "forecast" | "for" | "trend")
    ) || matches!(
        before,
        Some(
            "spend"
                | "cost"
                | "costs"
                | "usage"
                | "traffic"
                | "token"
                | "tokens"
                | "request"
                | "requests"
                | "customer"
                | "revenue"
                | "our"
                | "any"
        )
    )
}

/// The dimension a word next to a name announces ("the search *team*", "*project* atlas").
fn cue(word: Option<&str>) -> Option<Dimension> {
    match word? {
        "team" | "teams" | "department" | "dept" | "org" | "group" | "squad" => {
            Some(Dimension::Team)
        }
        "feature" | "features" | "workload" | "usecase" | "endpoint" | "app" | "pipeline"
        | "job" | "service" => Some(Dimension::Feature),
        "project" | "projects" | "repo" => Some(Dimension::Project),
        "user" | "users" | "person" | "developer" | "engineer" | "member" => Some(Dimension::User),
        "model" | "models" | "llm" | "llms" => Some(Dimension::Model),
        "provider" | "providers" | "vendor" | "vendors" => Some(Dimension::Provider),
        _ => None,
    }
}

/// Provider spellings → the canonical name a data set uses.
const PROVIDERS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("oai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "google"),
    ("vertex", "google"),
    ("gemini_api", "google"),
    ("together", "together_ai"),
    ("togetherai", "together_ai"),
    ("azure", "azure"),
    ("bedrock", "bedrock"),
    ("aws", "bedrock"),
    ("mistral", "mistral"),
    ("cohere", "cohere"),
    ("groq", "groq"),
    ("xai", "xai"),
    ("fireworks", "fireworks_ai"),
    ("deepseek", "deepseek"),
];

/// The tenant's values nearest to `text`: by edit distance, then by the vocabulary's order
/// (largest spend first); the three largest when nothing is near.
pub(crate) fn closest(text: &str, values: &[String]) -> Vec<String> {
    let t = text.to_lowercase();
    let mut scored: Vec<(usize, usize, &String)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v_low = v.to_lowercase();
            let d = strsim::osa_distance(&t, &v_low);
            let prefix = v_low.starts_with(&t) || t.starts_with(&v_low);
            (if prefix { 0 } else { d }, i, v)
        })
        .collect();
    scored.sort();
    let near: Vec<String> = scored
        .iter()
        .filter(|(d, _, _)| *d <= (t.len() / 2).max(2))
        .take(3)
        .map(|(_, _, v)| (*v).clone())
        .collect();
    if near.is_empty() {
        values.iter().take(3).cloned().collect()
    } else {
        near
    }
}

struct Found {
    mentions: Vec<Mention>,
    unknown: Vec<Unknown>,
}

/// Finds the names; marks their tokens used.
pub(crate) fn find_names(tokens: &mut [Token], vocab: &Vocabulary) -> (Vec<Mention>, Vec<Unknown>) {
    let words: Vec<String> = tokens.iter().map(|t| t.text.clone()).collect();
    let mut found = Found {
        mentions: Vec::new(),
        unknown: Vec::new(),
    };
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].used {
            i += 1;
            continue;
        }
        let used = models_at(tokens, &words, i, vocab, &mut found)
            .or_else(|| providers_at(&words, i, vocab, &mut found))
            .or_else(|| statuses_at(&words, i, vocab, &mut found))
            .or_else(|| entities_at(tokens, &words, i, vocab, &mut found));
        match used {
            Some(n) => {
                for t in tokens.iter_mut().skip(i).take(n) {
                    t.used = true;
                }
                i += n;
            }
            None => i += 1,
        }
    }
    unknown_by_cue(tokens, &words, vocab, &mut found);
    (found.mentions, found.unknown)
}

fn free_run(tokens: &[Token], i: usize, max: usize) -> usize {
    tokens
        .iter()
        .skip(i)
        .take(max)
        .take_while(|t| !t.used)
        .count()
}

fn models_at(
    tokens: &[Token],
    words: &[String],
    i: usize,
    vocab: &Vocabulary,
    found: &mut Found,
) -> Option<usize> {
    let run = free_run(tokens, i, 4);
    let mut limit = 0;
    while limit < run
        && (model_ish(&words[i + limit], &vocab.priced_sigs)
            || model_ish(&words[i + limit], &vocab.model_sigs))
    {
        limit += 1;
    }
    for len in (1..=limit).rev() {
        let window: Vec<&str> = words[i..i + len].iter().map(String::as_str).collect();
        // A trailing "mini" or "pro" belongs to the name, but "models" does not.
        let text = window.join(" ");
        if let Some(m) = match_models(&window, &vocab.model_sigs) {
            let values: Vec<String> = m
                .models
                .iter()
                .map(|k| vocab.model_sigs[*k].name.clone())
                .collect();
            found.mentions.push(Mention {
                at: i,
                len,
                text,
                dimension: Dimension::Model,
                values,
                how: if m.family {
                    MatchKind::Family
                } else {
                    MatchKind::Exact
                },
                note: None,
                priced_only: false,
            });
            return Some(len);
        }
        if let Some(m) = match_models(&window, &vocab.priced_sigs) {
            if m.family {
                // A family the price table has and the data does not ("claude opus").
                let same: Vec<String> = vocab
                    .model_sigs
                    .iter()
                    .filter(|s| s.words.iter().any(|w| window.iter().any(|x| close(w, x))))
                    .map(|s| s.name.clone())
                    .take(3)
                    .collect();
                let values: Vec<String> = vocab.models().iter().map(|m| m.name.clone()).collect();
                found.unknown.push(Unknown {
                    closest: if same.is_empty() {
                        closest(&text, &values)
                    } else {
                        same
                    },
                    text: window.join("-"),
                    dimension: Some(Dimension::Model),
                    at: i,
                });
                return Some(len);
            }
            found.mentions.push(Mention {
                at: i,
                len,
                text,
                dimension: Dimension::Model,
                values: m
                    .models
                    .iter()
                    .map(|k| vocab.priced_sigs[*k].name.clone())
                    .collect(),
                how: MatchKind::Exact,
                note: None,
                priced_only: true,
            });
            return Some(len);
        }
    }
    if limit > 0 {
        let window: Vec<&str> = words[i..i + limit].iter().map(String::as_str).collect();
        if looks_like_model(&window) {
            let text = window.join("-");
            let family = window[0];
            let same: Vec<String> = vocab
                .model_sigs
                .iter()
                .filter(|s| s.words.iter().any(|w| close(w, family)))
                .map(|s| s.name.clone())
                .collect();
            let values: Vec<String> = vocab.models().iter().map(|m| m.name.clone()).collect();
            found.unknown.push(Unknown {
                closest: if same.is_empty() {
                    closest(&text, &values)
                } else {
                    same.into_iter().take(3).collect()
                },
                text,
                dimension: Some(Dimension::Model),
                at: i,
            });
            return Some(limit);
        }
    }
    None
}

fn providers_at(
    words: &[String],
    i: usize,
    vocab: &Vocabulary,
    found: &mut Found,
) -> Option<usize> {
    let w = words[i].as_str();
    let (canonical, len) = if w == "open" && words.get(i + 1).is_some_and(|n| n == "ai") {
        ("openai", 2)
    } else if w == "together" && words.get(i + 1).is_some_and(|n| n == "ai") {
        ("together_ai", 2)
    } else {
        let hit = PROVIDERS
            .iter()
            .find(|(alias, _)| close(alias, w) && (w.len() >= 4 || *alias == w));
        // "together" is a provider only as a name ("Together", "on together"), rarely as a word;
        // "all together" is not.
        if w == "together" && words.get(i.wrapping_sub(1)).is_some_and(|b| b == "all") {
            return None;
        }
        (hit?.1, 1)
    };
    let data = vocab.values(Dimension::Provider);
    let text = words[i..i + len].join(" ");
    match data.iter().find(|p| {
        p.eq_ignore_ascii_case(canonical)
            || p.replace(['_', '-', ' '], "")
                .eq_ignore_ascii_case(&canonical.replace('_', ""))
    }) {
        Some(p) => found.mentions.push(Mention {
            at: i,
            len,
            text,
            dimension: Dimension::Provider,
            values: vec![p.clone()],
            how: if w == p.as_str() {
                MatchKind::Exact
            } else {
                MatchKind::Alias
            },
            note: None,
            priced_only: false,
        }),
        None => {
            let priced = vocab
                .priced_models()
                .iter()
                .find(|m| m.provider.eq_ignore_ascii_case(canonical));
            match priced {
                // A provider of the price table the data does not use: a what-if target.
                Some(m) => found.mentions.push(Mention {
                    at: i,
                    len,
                    text,
                    dimension: Dimension::Provider,
                    values: vec![m.provider.clone()],
                    how: MatchKind::Alias,
                    note: None,
                    priced_only: true,
                }),
                None => found.unknown.push(Unknown {
                    text,
                    dimension: Some(Dimension::Provider),
                    closest: data.iter().take(3).cloned().collect(),
                    at: i,
                }),
            }
        }
    }
    Some(len)
}

/// Which of the data's statuses a status word selects.
type StatusPick = Box<dyn Fn(&str) -> bool>;

fn statuses_at(words: &[String], i: usize, vocab: &Vocabulary, found: &mut Found) -> Option<usize> {
    let statuses = vocab.values(Dimension::Status);
    if statuses.is_empty() {
        return None;
    }
    let w = words[i].as_str();
    let next = words.get(i + 1).map(String::as_str);
    let (pick, len): (StatusPick, usize) = match (w, next) {
        ("rate", Some("limited" | "limiting"))
        | ("ratelimited", _)
        | ("throttled", _)
        | ("429", _) => (
            Box::new(|s: &str| s.to_lowercase().contains("rate") || s.contains("429")),
            if w == "rate" { 2 } else { 1 },
        ),
        ("timed", Some("out")) => (Box::new(|s: &str| s.to_lowercase().contains("timeout")), 2),
        ("timeout" | "timeouts", _) => {
            (Box::new(|s: &str| s.to_lowercase().contains("timeout")), 1)
        }
        (
            "error" | "errors" | "errored" | "failed" | "failure" | "failures" | "failing" | "fail"
            | "fails",
            _,
        ) => (Box::new(|s: &str| !is_success_status(s)), 1),
        ("successful" | "succeeded" | "success" | "successes", _) => {
            (Box::new(is_success_status), 1)
        }
        _ => return None,
    };
    let values: Vec<String> = {
        let mut v: Vec<String> = statuses.iter().filter(|s| pick(s)).cloned().collect();
        v.sort();
        v
    };
    if values.is_empty() {
        return None;
    }
    found.mentions.push(Mention {
        at: i,
        len,
        text: words[i..i + len].join(" "),
        dimension: Dimension::Status,
        how: if values.len() == 1 && values[0] == w {
            MatchKind::Exact
        } else {
            MatchKind::Alias
        },
        values,
        note: None,
        priced_only: false,
    });
    Some(len)
}

/// Teams, features, projects and users.
fn entities_at(
    tokens: &[Token],
    words: &[String],
    i: usize,
    vocab: &Vocabulary,
    found: &mut Found,
) -> Option<usize> {
    let run = free_run(tokens, i, 3);
    let before = i
        .checked_sub(1)
        .and_then(|b| words.get(b))
        .map(String::as_str);
    for len in (1..=run).rev() {
        let window: Vec<String> = words[i..i + len].iter().map(|w| singular(w)).collect();
        if len > 1
            && (STOP.contains(&words[i].as_str()) || STOP.contains(&words[i + len - 1].as_str()))
        {
            continue;
        }
        let compact = window.concat();
        let after = words.get(i + len).map(String::as_str);
        let want = cue(before).or_else(|| cue(after));
        let mut full: Vec<(Dimension, &str, MatchKind)> = Vec::new();
        for e in &vocab.names {
            if matches!(e.dimension, Dimension::Status | Dimension::Provider) {
                continue;
            }
            let exact = e.words == window || e.compact == compact;
            let typo = !exact
                && e.fuzzy
                && ((e.words.len() == window.len()
                    && e.words.iter().zip(&window).all(|(a, b)| close(a, b)))
                    || (compact.len() >= 6 && close(&e.compact, &compact)));
            if exact || typo {
                full.push((
                    e.dimension,
                    e.value.as_str(),
                    if exact {
                        MatchKind::Exact
                    } else {
                        MatchKind::Typo
                    },
                ));
            }
        }
        if len == 1 && !full.is_empty() && want.is_none() {
            let w = window[0].as_str();
            if STOP.contains(&w) || (EVERYDAY.contains(&w) && everyday_context(words, i, 1)) {
                return None;
            }
        }
        // "the search feature": the question names the dimension, so a partial match there wins
        // over a full match elsewhere.
        if len == 1
            && let Some(d) = want
            && !full.iter().any(|(fd, _, _)| *fd == d)
            && let Some(value) = unique_partial(vocab, &window[0], d)
        {
            found.mentions.push(Mention {
                at: i,
                len: 1,
                text: words[i].clone(),
                dimension: d,
                values: vec![value.clone()],
                how: MatchKind::Partial,
                note: Some(format!(
                    "\"{}\" read as the {} {value} (as the question says)",
                    words[i],
                    d.as_str()
                )),
                priced_only: false,
            });
            return Some(1);
        }
        if !full.is_empty() {
            let chosen = pick(&full, want);
            let (dimension, value, how) = chosen;
            let mut note = None;
            let others: Vec<String> = full
                .iter()
                .filter(|(d, v, _)| (*d, *v) != (dimension, value))
                .map(|(d, v, _)| format!("the {} {v}", d.as_str()))
                .collect();
            let partial_others = partial_matches(vocab, &window, dimension, value);
            if !others.is_empty() || !partial_others.is_empty() {
                let mut alts = others;
                alts.extend(
                    partial_others
                        .iter()
                        .map(|(d, v)| format!("the {} {v}", d.as_str())),
                );
                note = Some(format!(
                    "\"{}\" read as the {} {value}{}, not {}",
                    words[i..i + len].join(" "),
                    dimension.as_str(),
                    if want.is_some() {
                        " (as the question says)"
                    } else {
                        ""
                    },
                    alts.join(" or ")
                ));
            }
            found.mentions.push(Mention {
                at: i,
                len,
                text: words[i..i + len].join(" "),
                dimension,
                values: vec![value.to_string()],
                how,
                note,
                priced_only: false,
            });
            return Some(len);
        }
    }
    // One distinctive word of a longer name ("summaries", "triage").
    let w = singular(&words[i]);
    if tokens[i].used
        || STOP.contains(&words[i].as_str())
        || w.len() < 4
        || EVERYDAY.contains(&w.as_str())
            && cue(before).is_none()
            && cue(words.get(i + 1).map(String::as_str)).is_none()
    {
        return None;
    }
    let hits: Vec<(Dimension, &str)> = vocab
        .names
        .iter()
        .filter(|e| {
            e.words.len() > 1
                && e.words
                    .iter()
                    .any(|x| *x == w || (w.len() >= 6 && close(x, &w)))
        })
        .filter(|e| !matches!(e.dimension, Dimension::Status | Dimension::Provider))
        .map(|e| (e.dimension, e.value.as_str()))
        .collect();
    if hits.len() == 1 {
        let (dimension, value) = hits[0];
        found.mentions.push(Mention {
            at: i,
            len: 1,
            text: words[i].clone(),
            dimension,
            values: vec![value.to_string()],
            how: MatchKind::Partial,
            note: Some(format!(
                "\"{}\" read as the {} {value}",
                words[i],
                dimension.as_str()
            )),
            priced_only: false,
        });
        return Some(1);
    }
    None
}

/// The one value of `dimension` with `word` among its words, if exactly one has it.
fn unique_partial(vocab: &Vocabulary, word: &str, dimension: Dimension) -> Option<String> {
    let hits: Vec<&String> = vocab
        .names
        .iter()
        .filter(|e| {
            e.dimension == dimension && e.words.len() > 1 && e.words.iter().any(|x| x == word)
        })
        .map(|e| &e.value)
        .collect();
    (hits.len() == 1).then(|| hits[0].clone())
}

/// Values of other names that contain one of the window's words (for explaining a choice).
fn partial_matches(
    vocab: &Vocabulary,
    window: &[String],
    dimension: Dimension,
    value: &str,
) -> Vec<(Dimension, String)> {
    if window.len() != 1 {
        return Vec::new();
    }
    vocab
        .names
        .iter()
        .filter(|e| e.words.len() > 1 && e.words.contains(&window[0]))
        .filter(|e| !(e.dimension == dimension && e.value == value))
        .map(|e| (e.dimension, e.value.clone()))
        .take(2)
        .collect()
}

/// Among several full matches: the dimension the question names, else team, feature, project,
/// user; exact before typo.
fn pick<'a>(
    full: &[(Dimension, &'a str, MatchKind)],
    want: Option<Dimension>,
) -> (Dimension, &'a str, MatchKind) {
    let rank = |d: Dimension| match d {
        Dimension::Team => 0,
        Dimension::Feature => 1,
        Dimension::Project => 2,
        Dimension::User => 3,
        _ => 4,
    };
    let mut sorted = full.to_vec();
    sorted.sort_by_key(|(d, v, how)| {
        (
            Some(*d) != want,
            *how != MatchKind::Exact,
            rank(*d),
            v.to_string(),
        )
    });
    sorted[0]
}

/// "the marketing team", "project apollo", "feature X": a name next to its dimension's word
/// that matched nothing.
fn unknown_by_cue(tokens: &[Token], words: &[String], vocab: &Vocabulary, found: &mut Found) {
    for (i, w) in words.iter().enumerate() {
        let Some(d) = cue(Some(w)) else { continue };
        if matches!(d, Dimension::Model | Dimension::Provider) {
            continue;
        }
        let candidate = |j: usize| -> Option<&str> {
            let t = tokens.get(j)?;
            let text = t.text.as_str();
            let plausible = !t.used
                && !STOP.contains(&text)
                && !NOT_NAMES.contains(&text)
                && text.len() >= 2
                && !text.bytes().all(|b| b.is_ascii_digit())
                && cue(Some(text)).is_none()
                && !is_keyword(text);
            plausible.then_some(text)
        };
        // "the X team" (X right before the cue) or "team X" / "team called X" after an article.
        let before = i.checked_sub(1).and_then(candidate).filter(|_| {
            i < 2
                || !matches!(
                    words[i - 2].as_str(),
                    "which" | "what" | "each" | "every" | "per" | "by"
                )
        });
        let lead_ok = i == 0
            || matches!(
                words.get(i - 1).map(String::as_str),
                Some("the" | "a" | "for" | "of" | "in" | "on" | "by")
            );
        let after = if matches!(
            words.get(i + 1).map(String::as_str),
            Some("called" | "named")
        ) {
            candidate(i + 2)
        } else {
            candidate(i + 1).filter(|_| lead_ok)
        };
        let Some(first) = before.or(after) else {
            continue;
        };
        if found.mentions.iter().any(|m| m.dimension == d) {
            continue;
        }
        let mut at = if before.is_some() { i - 1 } else { i + 1 };
        if found.unknown.iter().any(|u| u.at == at) {
            continue;
        }
        // "fraud-detection feature": the whole dashed name.
        let mut text = first.to_string();
        if before.is_some() {
            while at > 0 && tokens[at].joined && !tokens[at - 1].used {
                at -= 1;
                text = format!("{}-{text}", tokens[at].text);
            }
        }
        found.unknown.push(Unknown {
            closest: closest(&text, vocab.values(d)),
            text,
            dimension: Some(d),
            at,
        });
    }
}

/// Words next to "team" or "feature" that are verbs or adjectives, not names.
#[rustfmt::skip]
const NOT_NAMES: &[&str] = &[
    "uses", "use", "used", "spends", "spend", "account", "accounts", "has", "had", "have", "costs",
    "made", "makes", "make", "sends", "send", "runs", "ran", "gets", "got", "did", "does", "is",
    "was", "were", "are", "heaviest", "biggest", "largest", "smallest", "top", "mostly", "name",
    "names", "level", "wise", "breakdown", "members", "spending", "calls", "called", "named",
];

/// Words the question's own grammar uses (not names), for telling names from the rest.
pub(crate) fn is_keyword(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "latency",
        "ttft",
        "tokens",
        "requests",
        "spend",
        "cost",
        "trend",
        "breakdown",
        "share",
        "rate",
        "daily",
        "weekly",
        "monthly",
        "average",
        "median",
        "total",
        "overall",
        "usage",
        "bill",
        "budget",
        "limit",
        "limits",
        "capacity",
        "forecast",
        "anomaly",
        "spike",
    ];
    WORDS.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;
    use chrono::NaiveDate;

    fn vocab() -> Vocabulary {
        Vocabulary::from_lists(
            &[
                (Dimension::Team, &["search", "support", "growth"]),
                (
                    Dimension::Feature,
                    &["search-ranking", "support-replies", "doc-summaries"],
                ),
                (Dimension::User, &["dave", "alice"]),
                (Dimension::Status, &["success", "error", "timeout"]),
            ],
            &[("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic")],
            &[("gpt-5", "openai")],
            Some((
                NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
            )),
        )
    }

    fn find(text: &str) -> (Vec<Mention>, Vec<Unknown>) {
        let mut t = tokenize(text);
        find_names(&mut t, &vocab())
    }

    #[test]
    fn names_resolve_with_their_reading() {
        let (m, _) = find("serach team doc summary");
        assert_eq!(m[0].values, ["search"]);
        assert_eq!(m[0].how, MatchKind::Typo);
        assert_eq!(m[1].values, ["doc-summaries"]);
        let (m, _) = find("what did search spend");
        assert_eq!(m[0].dimension, Dimension::Team);
        assert!(
            m[0].note.as_deref().unwrap().contains("search-ranking"),
            "{:?}",
            m[0].note
        );
        let (m, _) = find("the search feature");
        assert_eq!(
            (m[0].dimension, m[0].values[0].as_str()),
            (Dimension::Feature, "search-ranking")
        );
        let (m, _) = find("failed requests");
        assert_eq!(m[0].values, ["error", "timeout"]);
        let (m, _) = find("how much would we save");
        assert!(
            m.is_empty(),
            "a four-letter word is not a typo of a user: {m:?}"
        );
        let (m, _) = find("spend growth rate");
        assert!(m.is_empty(), "growth here is a word, not the team: {m:?}");
    }

    #[test]
    fn absent_names_are_reported_with_the_closest() {
        let (_, u) = find("the marketing team");
        assert_eq!(u[0].text, "marketing");
        assert_eq!(u[0].dimension, Some(Dimension::Team));
        assert_eq!(u[0].closest.len(), 3);
        let (m, _) = find("move it to gpt-5");
        assert!(
            m[0].priced_only,
            "a priced model absent from the data: {m:?}"
        );
        let (_, u) = find("spend on mistral");
        assert_eq!(
            u[0].text, "mistral",
            "a provider and a model family: reported either way"
        );
        assert_eq!(
            closest("serch", &["search".into(), "support".into()]),
            ["search"]
        );
    }
}
