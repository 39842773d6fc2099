//! The observability exports: LiteLLM spend logs, Helicone requests, Langfuse observations.
//!
//! Each maps its own column names (in any case, with or without underscores) onto the usage
//! record. Conventions that differ between the tools are settled here and written down:
//! - LiteLLM and Helicone report `prompt_tokens` including cached tokens (OpenAI's convention).
//!   A row whose cache reads and writes exceed `prompt_tokens` comes from a provider that counts
//!   them apart (Anthropic's convention); they are then added to it.
//! - Langfuse's usage details are disjoint (its `total` is their sum): input is `input` plus
//!   cache reads and writes, output is `output` plus reasoning tokens.
//! - A LiteLLM cache hit was answered by the proxy's own cache: its billed `spend` is kept (zero)
//!   and it is tagged `cache_hit=true`.
//! - Langfuse spans and events carry no model usage: they are reported as skipped, not imported.
//!
//! This module must not guess a value a row does not carry.

use chrono::{DateTime, Utc};

use super::flat::{Flat, millis_between};
use super::generic::{infer_provider, shown};
use super::{ImportError, Outcome, RowResult, UsageFormat};
use crate::record::UsageRecord;

/// The row mapper of a dialect.
pub(super) fn mapper(format: UsageFormat) -> fn(&Flat) -> RowResult {
    match format {
        UsageFormat::Helicone => helicone,
        UsageFormat::Langfuse => langfuse,
        _ => litellm,
    }
}

/// Refuses a CSV header that lacks what every row of the dialect needs.
pub(super) fn check_columns(format: UsageFormat, keys: &[String]) -> Result<(), ImportError> {
    let has_any = |names: &[&str]| names.iter().any(|n| keys.iter().any(|k| k == n));
    let required: &[(&str, &[&str])] = match format {
        UsageFormat::LiteLlm => &[
            ("startTime", &["starttime"]),
            ("model", &["model", "modelgroup"]),
            ("prompt_tokens", &["prompttokens"]),
            ("completion_tokens", &["completiontokens"]),
        ],
        UsageFormat::Helicone => &[
            ("request_created_at", &["requestcreatedat", "createdat"]),
            ("model", &["model", "responsemodel", "requestmodel"]),
        ],
        _ => &[("startTime", &["starttime"])],
    };
    let missing: Vec<String> = required
        .iter()
        .filter(|(_, names)| !has_any(names))
        .map(|(label, _)| (*label).to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImportError::MissingColumns(missing))
    }
}

/// What a dialect read from one row, before the shared checks.
#[derive(Default)]
struct Parts {
    timestamp: Option<DateTime<Utc>>,
    model: Option<String>,
    provider: Option<String>,
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    reasoning: Option<u64>,
    cost: Option<f64>,
    latency: Option<f64>,
    ttft: Option<f64>,
    status: Option<String>,
    user: Option<String>,
    team: Option<String>,
    project: Option<String>,
    feature: Option<String>,
    session: Option<String>,
    tags: Vec<String>,
}

impl Parts {
    fn finish(self) -> RowResult {
        let timestamp = self.timestamp.ok_or("timestamp: missing")?;
        let model = self.model.ok_or("model: missing")?;
        let provider = match self.provider {
            Some(p) => p.to_ascii_lowercase(),
            None => infer_provider(&model)
                .ok_or_else(|| {
                    format!(
                        "provider: missing, and model {} does not imply one",
                        shown(&model)
                    )
                })?
                .to_string(),
        };
        let mut r = UsageRecord::new(timestamp, provider, model, self.input, self.output);
        r.cache_read_input_tokens = self.cache_read;
        r.cache_write_input_tokens = self.cache_write;
        r.reasoning_tokens = self.reasoning;
        r.cost_usd = self.cost;
        r.latency_ms = self.latency;
        r.ttft_ms = self.ttft;
        r.status = self.status;
        r.user_id = self.user;
        r.team = self.team;
        r.project = self.project;
        r.feature = self.feature;
        r.session_id = self.session;
        r.tags = Some(self.tags.join(";")).filter(|t| !t.is_empty());
        r.validate()?;
        Ok(Outcome::Record(r))
    }
}

/// `prompt` counted with OpenAI's convention unless the cache counts prove otherwise.
fn input_including_cache(prompt: u64, read: Option<u64>, write: Option<u64>) -> u64 {
    let cached = read.unwrap_or(0).saturating_add(write.unwrap_or(0));
    if cached > prompt {
        prompt.saturating_add(cached)
    } else {
        prompt
    }
}

fn tag_text(s: &str) -> String {
    // `;` separates tags and `=` separates a key from its value.
    s.replace([';', '\n', '\r'], ",")
}

fn litellm(f: &Flat) -> RowResult {
    const USAGE: [&str; 2] = [
        "metadata.usageobject.prompttokensdetails.cachedtokens",
        "metadata.usageobject.cachereadinputtokens",
    ];
    let timestamp = f.time(&["starttime"])?.ok_or("startTime: missing")?;
    let prompt = f
        .whole(&["prompttokens"])?
        .ok_or("prompt_tokens: missing")?;
    let output = f
        .whole(&["completiontokens"])?
        .ok_or("completion_tokens: missing")?;
    let cache_read = f.whole(&USAGE)?;
    let cache_write = f.whole(&["metadata.usageobject.cachecreationinputtokens"])?;
    let reasoning = f.whole(&["metadata.usageobject.completiontokensdetails.reasoningtokens"])?;
    let end = f.time(&["endtime"])?;
    let first_token = f.time(&["completionstarttime"])?;
    let mut tags = Vec::new();
    if let Some(request_tags) = f.text(&["requesttags"]) {
        tags.push(tag_text(&request_tags));
    }
    if f.boolean(&["cachehit"]) == Some(true) {
        tags.push("cache_hit=true".to_string());
    }
    Parts {
        timestamp: Some(timestamp),
        model: f.text(&["model", "modelgroup"]),
        provider: f.text(&["customllmprovider"]),
        input: input_including_cache(prompt, cache_read, cache_write),
        output,
        cache_read,
        cache_write,
        reasoning,
        cost: f.number(&["spend"], false)?,
        latency: millis_between(timestamp, end),
        ttft: millis_between(timestamp, first_token),
        status: f.text(&["status"]),
        user: f.text(&["user", "enduser", "metadata.userapikeyuserid"]),
        team: f.text(&["metadata.userapikeyteamalias", "teamid"]),
        project: f.text(&["metadata.project"]),
        feature: f.text(&["metadata.feature"]),
        session: f.text(&["sessionid"]),
        tags,
    }
    .finish()
}

fn helicone(f: &Flat) -> RowResult {
    let status = f.text(&["responsestatus", "status"]);
    let failed = status
        .as_deref()
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|code| code >= 400);
    let prompt = f.whole(&["prompttokens"])?;
    let completion = f.whole(&["completiontokens"])?;
    // A failed request may carry no usage at all; it is imported with zero tokens so the error
    // rate stays visible, while a successful one without usage is an error.
    let (prompt, completion) = match (prompt, completion) {
        (Some(p), Some(c)) => (p, c),
        (p, c) if failed => (p.unwrap_or(0), c.unwrap_or(0)),
        (None, _) => return Err("prompt_tokens: missing".to_string()),
        (_, None) => return Err("completion_tokens: missing".to_string()),
    };
    let cache_read = f.whole(&["promptcachereadtokens"])?;
    let cache_write = f.whole(&["promptcachewritetokens"])?;
    let property = |name: &str| {
        f.text(&[
            &format!("requestproperties.{name}"),
            &format!("properties.{name}"),
        ])
    };
    Parts {
        timestamp: f.time(&["requestcreatedat", "createdat"])?,
        model: f.text(&["model", "responsemodel", "requestmodel"]),
        provider: f.text(&["provider"]),
        input: input_including_cache(prompt, cache_read, cache_write),
        output: completion,
        cache_read,
        cache_write,
        reasoning: f.whole(&["reasoningtokens"])?,
        cost: f.number(&["cost", "costusd"], false)?,
        latency: f.number(&["delayms", "latency"], false)?,
        ttft: f.number(&["timetofirsttoken"], false)?,
        status,
        user: f.text(&["requestuserid", "userid", "heliconeuser"]),
        team: property("team"),
        project: property("project"),
        feature: property("feature"),
        session: property("heliconesessionid").or_else(|| f.text(&["sessionid"])),
        tags: Vec::new(),
    }
    .finish()
}

fn langfuse(f: &Flat) -> RowResult {
    if let Some(kind) = f.text(&["type"])
        && !kind.eq_ignore_ascii_case("generation")
    {
        return Ok(Outcome::Skip(format!(
            "a {} observation carries no model usage (only GENERATION observations do)",
            shown(&kind)
        )));
    }
    let timestamp = f.time(&["starttime"])?.ok_or("startTime: missing")?;
    let input = f.whole(&[
        "usagedetails.input",
        "usage.input",
        "prompttokens",
        "inputusage",
    ])?;
    let output = f.whole(&[
        "usagedetails.output",
        "usage.output",
        "completiontokens",
        "outputusage",
    ])?;
    if input.is_none() && output.is_none() {
        return Err(
            "no token usage: usageDetails.input / usageDetails.output (or promptTokens / completionTokens) missing"
                .to_string(),
        );
    }
    let cache_read = f.whole(&[
        "usagedetails.inputcachedtokens",
        "usagedetails.cachereadinputtokens",
        "usagedetails.inputcacheread",
    ])?;
    let cache_write = f.whole(&[
        "usagedetails.cachecreationinputtokens",
        "usagedetails.inputcachecreation",
        "usagedetails.inputcachewrite",
    ])?;
    let reasoning = f.whole(&[
        "usagedetails.outputreasoningtokens",
        "usagedetails.outputreasoning",
        "usagedetails.reasoningtokens",
    ])?;
    let input = input
        .unwrap_or(0)
        .saturating_add(cache_read.unwrap_or(0))
        .saturating_add(cache_write.unwrap_or(0));
    let output = output.unwrap_or(0).saturating_add(reasoning.unwrap_or(0));
    let end = f.time(&["endtime"])?;
    let first_token = f.time(&["completionstarttime"])?;
    // Langfuse's API gives latency and time to first token in seconds.
    let seconds = |keys: &[&str]| -> Result<Option<f64>, String> {
        Ok(f.number(keys, false)?.map(|s| s * 1000.0))
    };
    let latency = match millis_between(timestamp, end) {
        Some(ms) => Some(ms),
        None => seconds(&["latency"])?,
    };
    let ttft = match millis_between(timestamp, first_token) {
        Some(ms) => Some(ms),
        None => seconds(&["timetofirsttoken"])?,
    };
    let mut tags = Vec::new();
    if let Some(t) = f.text(&["tags", "trace.tags"]) {
        tags.push(tag_text(&t));
    }
    if let Some(env) = f.text(&["environment"]) {
        tags.push(format!("env={}", tag_text(&env)));
    }
    Parts {
        timestamp: Some(timestamp),
        model: f.text(&["model", "providedmodelname"]),
        provider: None,
        input,
        output,
        cache_read,
        cache_write,
        reasoning,
        cost: f.number(
            &["costdetails.total", "calculatedtotalcost", "totalcost"],
            false,
        )?,
        latency,
        ttft,
        status: f.text(&["level"]),
        user: f.text(&["userid", "trace.userid"]),
        team: f.text(&["metadata.team"]),
        project: f.text(&["projectid"]),
        feature: f.text(&["name"]),
        session: f.text(&["sessionid", "trace.sessionid"]),
        tags,
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::super::{ImportOptions, UsageFormat, import_usage, import_usage_with};
    use chrono::{TimeZone, Utc};

    #[test]
    fn litellm_spend_log_csv_exact_values() {
        let text = "request_id,call_type,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,completionStartTime,model,custom_llm_provider,user,team_id,cache_hit,request_tags,metadata\n\
            r1,acompletion,0.00125,1100,1000,100,2026-11-25 10:00:00.000,2026-11-25 10:00:01.500,2026-11-25 10:00:00.250,gpt-4o,openai,alice,team-a,False,\"[\"\"prod\"\"]\",\"{\"\"usage_object\"\": {\"\"prompt_tokens_details\"\": {\"\"cached_tokens\"\": 600}, \"\"completion_tokens_details\"\": {\"\"reasoning_tokens\"\": 40}}}\"\n\
            r2,acompletion,0.0,30,20,10,2026-11-25T10:05:00Z,2026-11-25T10:05:00.010Z,,claude-3-5-haiku,anthropic,bob,,True,,\n\
            r3,acompletion,abc,30,20,10,2026-11-25T10:05:00Z,,,gpt-4o,openai,,,,,\n";
        let report = import_usage(text.as_bytes(), None).unwrap();
        assert_eq!(report.format, UsageFormat::LiteLlm);
        assert_eq!(report.rows_read, 3);
        let r = &report.records[0];
        assert_eq!(
            r.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
        );
        assert_eq!(
            (r.provider.as_str(), r.model.as_str()),
            ("openai", "gpt-4o")
        );
        assert_eq!((r.input_tokens, r.output_tokens), (1000, 100));
        assert_eq!(r.cache_read_input_tokens, Some(600));
        assert_eq!(r.reasoning_tokens, Some(40));
        assert_eq!(r.cost_usd, Some(0.00125));
        assert_eq!(r.latency_ms, Some(1500.0));
        assert_eq!(r.ttft_ms, Some(250.0));
        assert_eq!(r.user_id.as_deref(), Some("alice"));
        assert_eq!(r.team.as_deref(), Some("team-a"));
        assert_eq!(r.tags.as_deref(), Some("prod"));
        let hit = &report.records[1];
        assert_eq!(hit.cost_usd, Some(0.0));
        assert_eq!(hit.tags.as_deref(), Some("cache_hit=true"));
        assert_eq!(hit.latency_ms, Some(10.0));
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].line, 4);
        assert!(report.errors[0].message.starts_with("spend: \"abc\""));
    }

    #[test]
    fn litellm_json_lines_with_anthropic_style_cache_counts() {
        let line = r#"{"request_id":"x","startTime":"2026-11-25T10:00:00Z","endTime":"2026-11-25T10:00:02Z","model":"claude-sonnet-4","custom_llm_provider":"anthropic","prompt_tokens":100,"completion_tokens":50,"spend":0.01,"metadata":{"usage_object":{"cache_read_input_tokens":2000,"cache_creation_input_tokens":500}}}"#;
        let report = import_usage(line.as_bytes(), None).unwrap();
        assert_eq!(report.format, UsageFormat::LiteLlm);
        let r = &report.records[0];
        // The cache counts exceed prompt_tokens, so they were counted apart and are added.
        assert_eq!(r.input_tokens, 2_600);
        assert_eq!(r.cache_read_input_tokens, Some(2_000));
        assert_eq!(r.cache_write_input_tokens, Some(500));
        assert_eq!(r.latency_ms, Some(2000.0));
    }

    #[test]
    fn helicone_export_exact_values() {
        let text = "request_id,request_created_at,model,provider,prompt_tokens,completion_tokens,prompt_cache_read_tokens,prompt_cache_write_tokens,cost,delay_ms,time_to_first_token,request_user_id,response_status,request_properties\n\
            h1,2026-11-25T09:00:00Z,claude-sonnet-4,ANTHROPIC,5000,200,3000,1000,0.0123,2200,310,u1,200,\"{\"\"team\"\":\"\"search\"\",\"\"feature\"\":\"\"rag\"\",\"\"Helicone-Session-Id\"\":\"\"s9\"\"}\"\n\
            h2,2026-11-25T09:01:00Z,gpt-4o,OPENAI,,,,,,15,,u2,429,\n\
            h3,2026-11-25T09:02:00Z,gpt-4o,OPENAI,,,,,,15,,u2,200,\n";
        let report = import_usage(text.as_bytes(), Some(UsageFormat::Csv)).unwrap();
        assert_eq!(report.format, UsageFormat::Helicone);
        let r = &report.records[0];
        assert_eq!(r.provider, "anthropic");
        assert_eq!(r.input_tokens, 5_000);
        assert_eq!(r.cache_read_input_tokens, Some(3_000));
        assert_eq!(r.cache_write_input_tokens, Some(1_000));
        assert_eq!(r.cost_usd, Some(0.0123));
        assert_eq!(r.latency_ms, Some(2200.0));
        assert_eq!(r.ttft_ms, Some(310.0));
        assert_eq!(r.team.as_deref(), Some("search"));
        assert_eq!(r.feature.as_deref(), Some("rag"));
        assert_eq!(r.session_id.as_deref(), Some("s9"));
        // A rate-limited request without usage is kept with zero tokens; a 200 without is an error.
        let failed = &report.records[1];
        assert_eq!((failed.input_tokens, failed.output_tokens), (0, 0));
        assert_eq!(failed.status.as_deref(), Some("429"));
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].line, 4);
        assert_eq!(report.errors[0].message, "prompt_tokens: missing");
    }

    #[test]
    fn langfuse_observations_exact_values_and_skipped_spans() {
        let text = concat!(
            r#"{"id":"o1","traceId":"t1","type":"GENERATION","name":"answer","startTime":"2026-11-25T08:00:00.000Z","endTime":"2026-11-25T08:00:03.000Z","completionStartTime":"2026-11-25T08:00:00.400Z","model":"gpt-4o","usageDetails":{"input":700,"input_cached_tokens":300,"output":80,"output_reasoning_tokens":20,"total":1100},"costDetails":{"total":0.0035},"userId":"u7","sessionId":"s1"}"#,
            "\n",
            r#"{"id":"o2","traceId":"t1","type":"SPAN","name":"retrieve","startTime":"2026-11-25T08:00:00Z"}"#,
            "\n",
            r#"{"id":"o3","traceId":"t1","type":"GENERATION","startTime":"2026-11-25T08:00:00Z","model":"gpt-4o"}"#,
            "\n"
        );
        let report = import_usage(text.as_bytes(), None).unwrap();
        assert_eq!(report.format, UsageFormat::Langfuse);
        assert_eq!(report.rows_read, 3);
        let r = &report.records[0];
        assert_eq!((r.input_tokens, r.output_tokens), (1_000, 100));
        assert_eq!(r.cache_read_input_tokens, Some(300));
        assert_eq!(r.reasoning_tokens, Some(20));
        assert_eq!(r.cost_usd, Some(0.0035));
        assert_eq!(r.latency_ms, Some(3000.0));
        assert_eq!(r.ttft_ms, Some(400.0));
        assert_eq!(r.feature.as_deref(), Some("answer"));
        assert_eq!(r.user_id.as_deref(), Some("u7"));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].line, 2);
        assert!(report.skipped[0].message.contains("\"SPAN\""));
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].line, 3);
        assert!(report.errors[0].message.starts_with("no token usage"));
    }

    #[test]
    fn langfuse_csv_with_seconds() {
        let text = "id,type,startTime,model,promptTokens,completionTokens,calculatedTotalCost,latency,timeToFirstToken\n\
                    o1,GENERATION,2026-11-25 08:00:00,claude-3-5-haiku,100,10,0.0001,1.25,0.5\n";
        let report = import_usage_with(
            text.as_bytes(),
            &ImportOptions {
                format: Some(UsageFormat::Langfuse),
                model: None,
            },
        )
        .unwrap();
        let r = &report.records[0];
        assert_eq!(r.provider, "anthropic");
        assert_eq!(r.latency_ms, Some(1250.0));
        assert_eq!(r.ttft_ms, Some(500.0));
    }

    #[test]
    fn dialect_headers_missing_columns_are_file_errors() {
        let text = "startTime,spend,model\n2026-11-25,1,gpt-4o\n";
        assert_eq!(
            import_usage(text.as_bytes(), None),
            Err(super::ImportError::MissingColumns(vec![
                "prompt_tokens".into(),
                "completion_tokens".into()
            ]))
        );
    }
}
