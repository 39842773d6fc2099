//! Model names as people write them: `GPT-4o`, `gpt4o`, `4o mini`, `claude 3.5 haiku`, `sonnet`,
//! `Gemini` (a family), `mini models`. A name is split into words (`claude`, `haiku`) and version
//! parts (`3.5`, `4o`, `70b`); a mention matches a model when its words are among the model's
//! words (up to a typo) and its versions among the model's versions.
//!
//! This module only matches names against a list of models; it must not decide what the question
//! does with them.

use crate::text::close;
use serde::Serialize;

/// A model name and the provider serving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelName {
    pub name: String,
    pub provider: String,
}

/// A model name split for matching.
#[derive(Debug, Clone)]
pub(crate) struct ModelSig {
    pub name: String,
    pub words: Vec<String>,
    pub versions: Vec<String>,
}

/// Words that name a family on their own ("Claude", "mini models").
const FAMILY_WORDS: [&str; 14] = [
    "claude", "gpt", "gemini", "llama", "haiku", "sonnet", "opus", "flash", "mini", "nano",
    "mistral", "deepseek", "qwen", "grok",
];

/// Words of model names that say nothing alone ("pro and cons", "turbo").
const WEAK_WORDS: [&str; 9] = [
    "pro", "lite", "turbo", "instruct", "meta", "preview", "latest", "chat", "o",
];

/// Other spellings of model words.
const ALIASES: [(&str, &str); 6] = [
    ("chatgpt", "gpt"),
    ("gtp", "gpt"),
    ("gpt4o", "gpt"),
    ("anthropics", "claude"),
    ("gemeni", "gemini"),
    ("lama", "llama"),
];

fn is_version(part: &str) -> bool {
    part.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// Splits one token into words and versions: `gpt4o` → gpt + 4o, `o3` → o + 3, `70b` → 70b.
fn split_token(token: &str, words: &mut Vec<String>, versions: &mut Vec<String>) {
    let mut current = String::new();
    let mut in_digits = false;
    let flush = |current: &mut String, words: &mut Vec<String>, versions: &mut Vec<String>| {
        if current.is_empty() {
            return;
        }
        let part = std::mem::take(current);
        if is_version(&part) {
            versions.push(part);
        } else {
            let part = ALIASES
                .iter()
                .find(|(a, _)| *a == part)
                .map_or(part.clone(), |(_, to)| (*to).to_string());
            words.push(part);
        }
    };
    for c in token.chars() {
        if !c.is_alphanumeric() && c != '.' {
            flush(&mut current, words, versions);
            in_digits = false;
            continue;
        }
        let digit = c.is_ascii_digit() || (c == '.' && in_digits);
        // A letter run followed by digits starts a new part ("gpt4o" → "gpt", "4o"); letters
        // after digits stay with them ("4o", "70b").
        if digit && !in_digits && !current.is_empty() {
            flush(&mut current, words, versions);
        }
        if digit {
            in_digits = true;
        }
        current.push(c);
    }
    flush(&mut current, words, versions);
}

/// Words and versions of a model name; adjacent bare numbers are one version (`3-5` → `3.5`).
fn decompose(name: &str) -> (Vec<String>, Vec<String>) {
    let lower = name.to_lowercase();
    let mut words = Vec::new();
    let mut versions: Vec<String> = Vec::new();
    let mut last_numeric = false;
    for part in lower.split(['-', '/', '_', ' ', ':', '@']) {
        if part.is_empty() {
            continue;
        }
        let numeric = part.bytes().all(|b| b.is_ascii_digit());
        if numeric && last_numeric && part.len() <= 2 {
            if let Some(v) = versions.last_mut() {
                v.push('.');
                v.push_str(part);
            }
            continue;
        }
        split_token(part, &mut words, &mut versions);
        last_numeric = numeric && part.len() <= 2;
    }
    (words, versions)
}

impl ModelSig {
    pub(crate) fn new(m: &ModelName) -> ModelSig {
        // "meta-llama/Llama-3.3-70B-Instruct-Turbo": the organisation prefix is not the name.
        let own = m.name.rsplit('/').next().unwrap_or(&m.name);
        let (words, versions) = decompose(own);
        ModelSig {
            name: m.name.clone(),
            words,
            versions,
        }
    }
}

/// What a run of tokens names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelMatch {
    /// Indices into the model list.
    pub models: Vec<usize>,
    /// A family or brand ("Claude", "mini"), not one model.
    pub family: bool,
}

/// Whether a token could be part of a model name (so a window of them is worth matching).
pub(crate) fn model_ish(token: &str, sigs: &[ModelSig]) -> bool {
    let (words, versions) = decompose(token);
    if words.is_empty() {
        return versions.iter().all(|v| v.len() <= 5);
    }
    words.iter().all(|w| {
        FAMILY_WORDS.contains(&w.as_str())
            || WEAK_WORDS.contains(&w.as_str())
            || sigs.iter().any(|s| s.words.iter().any(|sw| close(sw, w)))
    })
}

/// Matches a run of tokens against the models. None when it names none of them, or says too
/// little to be a model name (a bare number, a weak word).
pub(crate) fn match_models(tokens: &[&str], sigs: &[ModelSig]) -> Option<ModelMatch> {
    // Decomposed as one name, so "claude haiku 4 5" has the version 4.5.
    let (words, versions) = decompose(&tokens.join("-"));
    // A bare number is not a model; a version with letters ("4o", "70b") can be.
    if words.is_empty()
        && !versions
            .iter()
            .any(|v| v.bytes().any(|b| b.is_ascii_alphabetic()))
    {
        return None;
    }
    // Without a version, one word must say "model": a family word or a distinctive part of a
    // model's name (not "pro" or "turbo" alone).
    let strong = |w: &String| {
        !WEAK_WORDS.contains(&w.as_str())
            && (FAMILY_WORDS.contains(&w.as_str())
                || sigs.iter().any(|s| s.words.iter().any(|sw| close(sw, w))))
    };
    if versions.is_empty() && !words.iter().any(strong) {
        return None;
    }
    let candidates: Vec<(usize, usize)> = sigs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            words.iter().all(|w| s.words.iter().any(|sw| close(sw, w)))
                && versions.iter().all(|v| s.versions.contains(v))
        })
        .map(|(i, s)| {
            let extra = s.words.len().saturating_sub(words.len())
                + s.versions.len().saturating_sub(versions.len());
            (i, extra)
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    if versions.is_empty() {
        // "claude", "gpt", "mini": every model of the family, unless the words pin one down.
        let exact: Vec<usize> = candidates
            .iter()
            .filter(|(i, _)| sigs[*i].words.len() == words.len() && sigs[*i].versions.is_empty())
            .map(|(i, _)| *i)
            .collect();
        if exact.len() == 1 {
            return Some(ModelMatch {
                models: exact,
                family: false,
            });
        }
        let models: Vec<usize> = candidates.iter().map(|(i, _)| *i).collect();
        let family = models.len() > 1 || words.iter().all(|w| FAMILY_WORDS.contains(&w.as_str()));
        return Some(ModelMatch { models, family });
    }
    let best = candidates.iter().map(|(_, e)| *e).min().unwrap_or(0);
    Some(ModelMatch {
        models: candidates
            .iter()
            .filter(|(_, e)| *e == best)
            .map(|(i, _)| *i)
            .collect(),
        family: false,
    })
}

/// Whether a run of tokens looks like a model name even if no model matches ("gpt-5",
/// "claude opus", "mistral large"), so it can be reported as absent.
pub(crate) fn looks_like_model(tokens: &[&str]) -> bool {
    let (words, _) = decompose(&tokens.join(" "));
    words.first().is_some_and(|w| {
        FAMILY_WORDS.contains(&w.as_str()) && !matches!(w.as_str(), "mini" | "nano" | "flash")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigs(names: &[&str]) -> Vec<ModelSig> {
        names
            .iter()
            .map(|n| {
                ModelSig::new(&ModelName {
                    name: n.to_string(),
                    provider: String::new(),
                })
            })
            .collect()
    }

    fn names(m: Option<ModelMatch>, s: &[ModelSig]) -> Vec<String> {
        m.map(|m| m.models.iter().map(|i| s[*i].name.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn decomposes_names() {
        assert_eq!(
            decompose("claude-3-5-haiku"),
            (vec!["claude".into(), "haiku".into()], vec!["3.5".into()])
        );
        assert_eq!(decompose("gpt-4o-mini").1, vec!["4o".to_string()]);
        assert_eq!(decompose("o3-mini").0, vec!["o".to_string(), "mini".into()]);
        assert_eq!(
            decompose("meta-llama/Llama-3.3-70B-Instruct-Turbo").1,
            vec!["3.3".to_string(), "70b".into()]
        );
        assert_eq!(decompose("gpt4o"), (vec!["gpt".into()], vec!["4o".into()]));
    }

    #[test]
    fn matches_the_ways_people_write_models() {
        let s = sigs(&[
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1-mini",
            "o3-mini",
            "claude-sonnet-4",
            "claude-3-5-haiku",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ]);
        let m = |t: &[&str]| names(match_models(t, &s), &s);
        assert_eq!(m(&["gpt", "4o"]), ["gpt-4o"]);
        assert_eq!(m(&["gpt4o"]), ["gpt-4o"]);
        assert_eq!(m(&["4o", "mini"]), ["gpt-4o-mini"]);
        assert_eq!(m(&["gpt", "4.1", "mini"]), ["gpt-4.1-mini"]);
        assert_eq!(m(&["o3", "mini"]), ["o3-mini"]);
        assert_eq!(m(&["o3"]), ["o3-mini"]);
        assert_eq!(m(&["claude"]), ["claude-sonnet-4", "claude-3-5-haiku"]);
        assert_eq!(m(&["cluade"]), ["claude-sonnet-4", "claude-3-5-haiku"]);
        assert_eq!(m(&["sonnet"]), ["claude-sonnet-4"]);
        assert_eq!(m(&["claude", "3.5", "haiku"]), ["claude-3-5-haiku"]);
        assert_eq!(m(&["gemini", "pro"]), ["gemini-2.5-pro"]);
        assert_eq!(m(&["gpt"]), ["gpt-4o", "gpt-4o-mini", "gpt-4.1-mini"]);
        assert_eq!(m(&["mini"]), ["gpt-4o-mini", "gpt-4.1-mini", "o3-mini"]);
        assert_eq!(m(&["llama"]), ["meta-llama/Llama-3.3-70B-Instruct-Turbo"]);
        assert!(m(&["pro"]).is_empty());
        assert!(m(&["2.5"]).is_empty());
        assert!(m(&["gpt", "5"]).is_empty());
        assert!(looks_like_model(&["gpt", "5"]));
        assert!(match_models(&["claude"], &s).unwrap().family);
        assert!(!match_models(&["gpt", "4o"], &s).unwrap().family);
    }
}
