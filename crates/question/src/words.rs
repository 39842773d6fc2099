//! The question's tokens with the lookups every reader needs: is a word there, where does a
//! phrase start, mark a phrase as explained. It must not know what any word means.

use crate::text::Token;

pub(crate) struct Words<'a> {
    pub tokens: &'a mut Vec<Token>,
}

impl Words<'_> {
    pub(crate) fn text(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).map(|t| t.text.as_str())
    }

    pub(crate) fn has(&self, w: &str) -> bool {
        self.tokens.iter().any(|t| t.text == w)
    }

    pub(crate) fn any(&self, ws: &[&str]) -> bool {
        self.tokens.iter().any(|t| ws.contains(&t.text.as_str()))
    }

    pub(crate) fn starts(&self, prefixes: &[&str]) -> bool {
        self.tokens
            .iter()
            .any(|t| prefixes.iter().any(|p| t.text.starts_with(p)))
    }

    /// Where a phrase starts (whole words), among tokens not yet explained.
    pub(crate) fn find(&self, phrase: &[&str]) -> Option<usize> {
        let n = phrase.len();
        (0..self.tokens.len().saturating_sub(n - 1)).find(|&i| {
            phrase
                .iter()
                .enumerate()
                .all(|(k, w)| self.tokens[i + k].text == *w && !self.tokens[i + k].used)
        })
    }

    pub(crate) fn phrase(&self, phrase: &str) -> bool {
        let p: Vec<&str> = phrase.split(' ').collect();
        let n = p.len();
        (0..self.tokens.len().saturating_sub(n - 1)).any(|i| {
            p.iter()
                .enumerate()
                .all(|(k, w)| self.tokens[i + k].text == *w)
        })
    }

    pub(crate) fn any_phrase(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.phrase(p))
    }

    /// Marks a phrase used if present; returns whether it was.
    pub(crate) fn take(&mut self, phrase: &str) -> bool {
        let p: Vec<&str> = phrase.split(' ').collect();
        match self.find(&p) {
            Some(i) => {
                for t in self.tokens.iter_mut().skip(i).take(p.len()) {
                    t.used = true;
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn take_any(&mut self, phrases: &[&str]) -> bool {
        let mut hit = false;
        for p in phrases {
            hit |= self.take(p);
        }
        hit
    }
}
