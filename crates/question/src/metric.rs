//! Which metric a question asks for ("p95 latency", "output tokens per request", "what share of
//! spend"), marking the words it explained. Spend is the default.

use agentwire_analytics::query::{Metric, Stat};

use crate::words::Words;

/// The metric the question asks for, and whether it named one (spend is the default).
pub(crate) fn read_metric(w: &mut Words<'_>) -> (Metric, bool) {
    let stat = if w.any(&["p99", "99th", "tail"]) {
        Some(Stat::P99)
    } else if w.any(&["p95", "95th"]) {
        Some(Stat::P95)
    } else if w.any(&["p90", "90th"]) {
        Some(Stat::P90)
    } else if w.any(&["p50", "50th", "median"]) {
        Some(Stat::P50)
    } else if w.any(&["average", "avg", "mean", "typical"]) {
        Some(Stat::Mean)
    } else {
        None
    };
    let percentile_said = w.any(&[
        "p99", "p95", "p90", "p50", "99th", "95th", "90th", "50th", "median",
    ]);
    if w.take_any(&[
        "time to first token",
        "time-to-first-token",
        "ttft",
        "first token",
        "first-token",
    ]) {
        w.take_any(&[
            "p99", "p95", "p90", "p50", "median", "average", "avg", "mean",
        ]);
        return (Metric::Ttft(stat.unwrap_or(Stat::P50)), true);
    }
    if w.take_any(&[
        "latency",
        "latencies",
        "response time",
        "response times",
        "slowest",
        "slow",
        "slower",
        "fastest",
        "faster",
        "quickest",
        "how long",
        "duration",
        "speed",
    ]) || percentile_said
    {
        w.take_any(&[
            "p99",
            "p95",
            "p90",
            "p50",
            "median",
            "99th",
            "95th",
            "90th",
            "50th",
            "percentile",
        ]);
        if stat == Some(Stat::Mean) {
            w.take_any(&["average", "avg", "mean", "typical"]);
        }
        return (Metric::Latency(stat.unwrap_or(Stat::P50)), true);
    }
    if w.take_any(&[
        "error rate",
        "failure rate",
        "fail rate",
        "error ratio",
        "error percentage",
        "success rate",
        "reliability",
        "reliable",
        "flaky",
        "flakiest",
        "errors rate",
    ]) || (w.any(&[
        "percentage",
        "percent",
        "share",
        "fraction",
        "proportion",
        "often",
    ]) && w.any(&[
        "fail", "failed", "fails", "error", "errored", "errors", "failing",
    ])) {
        w.take_any(&[
            "fail",
            "failed",
            "fails",
            "failing",
            "errors",
            "error",
            "errored",
            "percentage",
            "percent",
            "share",
            "how often",
            "fraction",
            "proportion",
        ]);
        return (Metric::ErrorRate, true);
    }
    if w.take_any(&[
        "cache hit rate",
        "cache hit ratio",
        "cache hit share",
        "cache hits",
        "cache hit",
        "hit rate",
        "cache rate",
        "cache efficiency",
        "cache ratio",
        "cached share",
        "share cached",
        "cache utilization",
        "cache usage",
    ]) || (w.any(&[
        "percentage",
        "percent",
        "share",
        "fraction",
        "proportion",
        "much",
    ]) && w.any(&["cached", "cache"])
        && w.any(&["input", "prompt", "tokens"])
        && !w.has("saving"))
    {
        w.take_any(&["cached", "cache", "percentage", "percent", "share"]);
        return (Metric::CacheHitShare, true);
    }
    if w.take_any(&[
        "cached tokens",
        "cached input tokens",
        "cache read tokens",
        "cache reads",
        "cache read",
        "tokens read from cache",
        "tokens from cache",
        "tokens from the cache",
    ]) {
        return (Metric::CachedTokens, true);
    }
    let per_request = w.any_phrase(&[
        "per request",
        "per call",
        "per query",
        "a request",
        "each request",
        "per api call",
        "per-request",
        "per invocation",
    ]) || (w.has("per") && w.any(&["request", "call", "query"]));
    let input = w.any(&["input", "prompt", "prompts"]);
    let output = w.any(&[
        "output",
        "completion",
        "completions",
        "generated",
        "response",
        "responses",
        "answer",
        "answers",
    ]);
    let tokens = w.any(&["tokens", "token"]);
    let money = w.starts(&[
        "cost", "spen", "expens", "pric", "cheap", "dollar", "money", "bill", "paid", "pay",
    ]);
    if (per_request
        || w.any_phrase(&[
            "unit cost",
            "average cost",
            "avg cost",
            "average request cost",
            "cost of a request",
            "cost of each request",
        ]))
        && money
        && !tokens
    {
        w.take_any(&[
            "per request",
            "per call",
            "per query",
            "per-request",
            "unit cost",
            "a request",
            "each request",
        ]);
        return (Metric::CostPerRequest, true);
    }
    let length = w.any_phrase(&[
        "prompt length",
        "prompt size",
        "response length",
        "output length",
        "input length",
        "how long are",
        "prompt sizes",
        "average prompt",
        "avg prompt",
    ]) || (w.any(&["longest", "shortest", "biggest", "largest"])
        && w.any(&[
            "prompt",
            "prompts",
            "response",
            "responses",
            "answers",
            "completions",
        ]));
    if (tokens && (per_request || w.any(&["average", "avg", "mean", "typical"]))) || length {
        w.take_any(&[
            "per request",
            "per call",
            "per query",
            "per-request",
            "tokens",
            "token",
            "average",
            "avg",
        ]);
        let m = if input && !output {
            Metric::InputTokensPerRequest
        } else if output && !input {
            Metric::OutputTokensPerRequest
        } else {
            Metric::TokensPerRequest
        };
        return (m, true);
    }
    let share = w.any(&[
        "share",
        "percentage",
        "percent",
        "proportion",
        "fraction",
        "portion",
    ]) || w.any_phrase(&["what part of", "how much of our", "how much of the"]);
    if tokens {
        w.take_any(&["tokens", "token"]);
        if share {
            w.take_any(&[
                "share",
                "percentage",
                "percent",
                "proportion",
                "fraction",
                "portion",
            ]);
            return (Metric::ShareOfTokens, true);
        }
        let m = if input && !output {
            Metric::InputTokens
        } else if output && !input {
            Metric::OutputTokens
        } else {
            Metric::TotalTokens
        };
        return (m, true);
    }
    if w.any_phrase(&[
        "average daily spend",
        "average daily cost",
        "avg daily spend",
        "daily average",
        "average per day",
        "per day on average",
        "average spend per day",
        "average cost per day",
        "average a day",
        "burn rate",
        "daily burn",
        "typical day",
        "average day",
    ]) {
        w.take_any(&[
            "average",
            "avg",
            "daily",
            "per day",
            "burn rate",
            "a day",
            "typical day",
            "average day",
        ]);
        return (Metric::SpendPerDay, true);
    }
    let requests = w.any(&[
        "requests",
        "request",
        "calls",
        "call",
        "queries",
        "invocations",
        "traffic",
        "volume",
        "hits",
    ]) || w.any_phrase(&["how many times", "how often"])
        || (w.phrase("how many") && !money);
    if requests && (!money || share) {
        w.take_any(&[
            "requests",
            "request",
            "calls",
            "queries",
            "invocations",
            "traffic",
            "volume",
            "api calls",
        ]);
        if share {
            w.take_any(&[
                "share",
                "percentage",
                "percent",
                "proportion",
                "fraction",
                "portion",
            ]);
            return (Metric::ShareOfRequests, true);
        }
        return (Metric::Requests, true);
    }
    if share {
        w.take_any(&[
            "share",
            "percentage",
            "percent",
            "proportion",
            "fraction",
            "portion",
        ]);
        return (Metric::ShareOfSpend, true);
    }
    (Metric::Spend, money || w.phrase("how much"))
}

/// Where "share of X's spend" names the whole (the names right after it).
pub(crate) fn share_base_position(w: &Words<'_>) -> Option<usize> {
    let toks = &w.tokens;
    for (i, t) in toks.iter().enumerate() {
        if matches!(
            t.text.as_str(),
            "share" | "percentage" | "percent" | "proportion" | "fraction" | "portion"
        ) && toks.get(i + 1).is_some_and(|n| n.text == "of")
        {
            let mut base = i + 2;
            if toks.get(base).is_some_and(|n| n.text == "the") {
                base += 1;
            }
            // "of our spend", "of requests": the whole is everything; "of support's spend" names it.
            let word = toks.get(base).map_or("", |n| n.text.as_str());
            if matches!(
                word,
                "our"
                    | "total"
                    | "all"
                    | "spend"
                    | "cost"
                    | "costs"
                    | "requests"
                    | "tokens"
                    | "traffic"
                    | "calls"
                    | "usage"
                    | "money"
                    | "bill"
            ) {
                return None;
            }
            return Some(base);
        }
    }
    None
}
