//! Ground truth: a generated usage data set whose right answers the suite knows, and the checks
//! that an answer names them.
//!
//! The data set is 70 days of hourly usage in the generic CSV form (`timestamp, provider, model,
//! input_tokens, output_tokens, request_count, team, feature`), ending at the last whole hour, with
//! two planted facts:
//!
//! - **A daily spike**: ten days before the end, feature `research-assistant` (team `growth`,
//!   `claude-sonnet-4`) runs 20x its usual requests from 10:30 to 15:30 UTC, well inside one UTC
//!   day, so that day's spend is about 2.6x a normal day.
//! - **A routing saving**: feature `ticket-router` (team `support`) sends 2,000 requests an hour to
//!   `gpt-4o` with 600 input and 20 output tokens each: short, classification-like traffic. The
//!   saving of moving it to `gpt-4o-mini` at list prices is the truth. Its traffic is exactly
//!   constant, so any 30-day window a deployment chooses gives the same monthly figure.
//!
//! The other traffic (long `gpt-4o` reports, `claude-sonnet-4` research, `gpt-4o-mini`
//! autocomplete) varies by a few percent (seeded, deterministic) and is not a routing candidate
//! by any reading: its outputs are long or it is on the cheap model already.
//!
//! Prices are list prices per million tokens from pydantic/genai-prices (`../shared/data/prices`):
//! `openai.yml` gpt-4o $2.50 in / $10.00 out, gpt-4o-mini $0.15 / $0.60 (checked 2025-07-04);
//! `anthropic.yml` claude-sonnet-4-0 $3.00 / $15.00 (checked 2026-07-29). The truth is about the
//! data, not about any implementation: the suite never reads our analytics crate.
//!
//! What it must not do: depend on the deployment's answer format beyond plain text, or accept a
//! shotgun of figures or dates as an answer.

use crate::text;
use chrono::{DateTime, Duration, DurationRound as _, NaiveDate, Utc};
use std::fmt::Write as _;

/// A model's list price in dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListPrice {
    pub model: &'static str,
    pub provider: &'static str,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub source: &'static str,
}

/// The few models the data set uses.
pub const PRICES: [ListPrice; 3] = [
    ListPrice {
        model: "gpt-4o",
        provider: "openai",
        input_per_mtok: 2.50,
        output_per_mtok: 10.00,
        source: "pydantic/genai-prices openai.yml (gpt-4o, checked 2025-07-04)",
    },
    ListPrice {
        model: "gpt-4o-mini",
        provider: "openai",
        input_per_mtok: 0.15,
        output_per_mtok: 0.60,
        source: "pydantic/genai-prices openai.yml (gpt-4o-mini, checked 2025-07-04)",
    },
    ListPrice {
        model: "claude-sonnet-4",
        provider: "anthropic",
        input_per_mtok: 3.00,
        output_per_mtok: 15.00,
        source: "pydantic/genai-prices anthropic.yml (claude-sonnet-4-0, checked 2026-07-29)",
    },
];

fn price(model: &str) -> ListPrice {
    PRICES
        .iter()
        .copied()
        .find(|p| p.model == model)
        .unwrap_or(PRICES[0])
}

/// The cost of `requests` requests of `input`/`output` tokens each at a model's list price.
pub fn cost(model: &str, requests: u64, input: u64, output: u64) -> f64 {
    let p = price(model);
    requests as f64 * (input as f64 * p.input_per_mtok + output as f64 * p.output_per_mtok) / 1e6
}

/// One steady stream of traffic.
struct Stream {
    model: &'static str,
    team: &'static str,
    feature: &'static str,
    requests_per_hour: u64,
    input_tokens: u64,
    output_tokens: u64,
    /// Relative jitter of the hourly request count (0 = exactly constant).
    jitter: f64,
}

const STREAMS: [Stream; 4] = [
    Stream {
        model: "gpt-4o",
        team: "support",
        feature: "ticket-router",
        requests_per_hour: 2_000,
        input_tokens: 600,
        output_tokens: 20,
        jitter: 0.0,
    },
    Stream {
        model: "gpt-4o",
        team: "finance",
        feature: "report-writer",
        requests_per_hour: 50,
        input_tokens: 3_000,
        output_tokens: 700,
        jitter: 0.05,
    },
    Stream {
        model: "claude-sonnet-4",
        team: "growth",
        feature: "research-assistant",
        requests_per_hour: 100,
        input_tokens: 4_000,
        output_tokens: 800,
        jitter: 0.05,
    },
    Stream {
        model: "gpt-4o-mini",
        team: "platform",
        feature: "autocomplete",
        requests_per_hour: 5_000,
        input_tokens: 300,
        output_tokens: 30,
        jitter: 0.05,
    },
];

/// The stream the routing saving is about.
const ROUTED: usize = 0;
/// The stream the spike is planted in.
const SPIKED: usize = 2;
const SPIKE_FACTOR: u64 = 20;
/// UTC hours (inclusive) of the spike; records sit at half past.
const SPIKE_HOURS: std::ops::RangeInclusive<u32> = 10..=15;
const DAYS: i64 = 70;
const SPIKE_DAYS_BEFORE_END: i64 = 10;
/// The routing target.
pub const ROUTING_TARGET: &str = "gpt-4o-mini";

/// One row of the data set as generated: what the lookups' truths are computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub at: DateTime<Utc>,
    pub model: &'static str,
    pub team: &'static str,
    pub feature: &'static str,
    pub requests: u64,
    /// At list prices.
    pub cost: f64,
}

/// A generated data set and its truth.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// The CSV to upload (header and one row per stream and hour).
    pub csv: String,
    pub rows: usize,
    /// Timestamps of the first and last record.
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub spike_day: NaiveDate,
    pub spike_team: &'static str,
    pub spike_feature: &'static str,
    pub spike_model: &'static str,
    /// Spend on the spike day and on an ordinary day before it (dollars).
    pub spike_day_cost: f64,
    pub ordinary_day_cost: f64,
    pub routing_feature: &'static str,
    pub routing_team: &'static str,
    pub routing_from: &'static str,
    pub routing_to: &'static str,
    /// What the routed traffic costs per 30 days today, and the saving per 30 days on the target.
    pub routing_monthly_cost: f64,
    pub routing_monthly_saving: f64,
    /// Spend over the 30 days (720 hours) that end with the last record.
    pub monthly_spend: f64,
    /// Every row, for the lookups (`crate::lookups`).
    pub usage: Vec<Usage>,
}

/// SplitMix64: a tiny deterministic generator for the jitter (no dependency, same data per seed).
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Generates the data set ending at the last whole hour before `now`.
pub fn generate(now: DateTime<Utc>, seed: u64) -> GroundTruth {
    let end_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    // Records sit at half past each hour, so no reading of "the last N days" can cut one in two.
    let last = end_hour - Duration::minutes(30);
    let hours = DAYS * 24;
    let first = last - Duration::hours(hours - 1);
    let spike_day = (last - Duration::days(SPIKE_DAYS_BEFORE_END)).date_naive();
    let ordinary_day = (last - Duration::days(SPIKE_DAYS_BEFORE_END + 7)).date_naive();

    let mut rng = SplitMix(seed);
    let mut csv = String::from(
        "timestamp,provider,model,input_tokens,output_tokens,request_count,team,feature\n",
    );
    let mut rows = 0;
    let mut usage = Vec::with_capacity(STREAMS.len() * hours as usize);
    let mut monthly_spend = 0.0;
    let month_start = last - Duration::hours(30 * 24);
    let mut spike_day_cost = 0.0;
    let mut ordinary_day_cost = 0.0;
    for h in 0..hours {
        let at = first + Duration::hours(h);
        let day = at.date_naive();
        let hour = chrono::Timelike::hour(&at);
        for (i, stream) in STREAMS.iter().enumerate() {
            let jitter = 1.0 + stream.jitter * (2.0 * rng.next_unit() - 1.0);
            let mut requests = ((stream.requests_per_hour as f64) * jitter).round() as u64;
            if i == SPIKED && day == spike_day && SPIKE_HOURS.contains(&hour) {
                requests *= SPIKE_FACTOR;
            }
            let cost_here = cost(
                stream.model,
                requests,
                stream.input_tokens,
                stream.output_tokens,
            );
            if day == spike_day {
                spike_day_cost += cost_here;
            }
            if at > month_start {
                monthly_spend += cost_here;
            }
            usage.push(Usage {
                at,
                model: stream.model,
                team: stream.team,
                feature: stream.feature,
                requests,
                cost: cost_here,
            });
            if day == ordinary_day {
                ordinary_day_cost += cost_here;
            }
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                at.format("%Y-%m-%dT%H:%M:%SZ"),
                price(stream.model).provider,
                stream.model,
                requests * stream.input_tokens,
                requests * stream.output_tokens,
                requests,
                stream.team,
                stream.feature
            );
            rows += 1;
        }
    }
    let routed = &STREAMS[ROUTED];
    let hours_per_month = 30 * 24;
    let monthly_cost = cost(
        routed.model,
        routed.requests_per_hour * hours_per_month,
        routed.input_tokens,
        routed.output_tokens,
    );
    let monthly_on_target = cost(
        ROUTING_TARGET,
        routed.requests_per_hour * hours_per_month,
        routed.input_tokens,
        routed.output_tokens,
    );
    GroundTruth {
        csv,
        rows,
        first,
        last,
        spike_day,
        spike_team: STREAMS[SPIKED].team,
        spike_feature: STREAMS[SPIKED].feature,
        spike_model: STREAMS[SPIKED].model,
        spike_day_cost,
        ordinary_day_cost,
        routing_feature: routed.feature,
        routing_team: routed.team,
        routing_from: routed.model,
        routing_to: ROUTING_TARGET,
        routing_monthly_cost: monthly_cost,
        routing_monthly_saving: monthly_cost - monthly_on_target,
        monthly_spend,
        usage,
    }
}

/// How far a stated saving may be from the truth.
pub const SAVING_TOLERANCE: f64 = 0.10;
/// More distinct dates than this in anomaly sentences is a list, not an answer.
const MAX_ANOMALY_DATES: usize = 3;
/// More distinct amounts than this in saving sentences is a shotgun, not an answer.
const MAX_SAVING_FIGURES: usize = 6;

/// Whether an answer names the spike's day; `Err` says what it named instead.
///
/// # Errors
/// A sentence for the report: which dates the answer named, or that it named none.
pub fn check_spike_day(answer: &str, truth: &GroundTruth) -> Result<String, String> {
    let year = text::year(truth.spike_day);
    let mut named: Vec<NaiveDate> = Vec::new();
    for sentence in text::sentences(answer) {
        if text::mentions(&sentence, &text::ANOMALY_WORDS) {
            for date in text::dates(&sentence, year) {
                if !named.contains(&date) {
                    named.push(date);
                }
            }
        }
    }
    let shown = |dates: &[NaiveDate]| {
        dates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if named.is_empty() {
        let anywhere = text::dates(answer, year);
        return Err(if anywhere.is_empty() {
            format!(
                "the answer names no day; the planted spike is on {}",
                truth.spike_day
            )
        } else {
            format!(
                "the answer names {} but in no sentence about a spike or anomaly; the planted spike is on {}",
                shown(&anywhere),
                truth.spike_day
            )
        });
    }
    if !named.contains(&truth.spike_day) {
        return Err(format!(
            "the answer names {} as anomalous; the planted spike is on {} ({} on {}, ${:.2} that day vs ${:.2} on an ordinary day)",
            shown(&named),
            truth.spike_day,
            truth.spike_feature,
            truth.spike_model,
            truth.spike_day_cost,
            truth.ordinary_day_cost
        ));
    }
    if named.len() > MAX_ANOMALY_DATES {
        return Err(format!(
            "the answer calls {} days anomalous ({}); naming many days is not finding the one",
            named.len(),
            shown(&named)
        ));
    }
    Ok(format!(
        "the answer names {} (the planted spike day)",
        truth.spike_day
    ))
}

/// Whether an answer states the routing saving within [`SAVING_TOLERANCE`] of the truth.
///
/// # Errors
/// A sentence for the report: the savings the answer stated, or that it stated none.
pub fn check_routing_saving(answer: &str, truth: &GroundTruth) -> Result<String, String> {
    let mut stated: Vec<f64> = Vec::new();
    for sentence in text::sentences(answer) {
        if text::mentions(&sentence, &["sav"]) {
            for amount in text::money(&sentence) {
                if !stated.iter().any(|s| (s - amount).abs() < 0.005) {
                    stated.push(amount);
                }
            }
        }
    }
    let truth_text = format!(
        "${:.2} per month (moving {} from {} to {} at list prices)",
        truth.routing_monthly_saving, truth.routing_feature, truth.routing_from, truth.routing_to
    );
    if stated.is_empty() {
        return Err(format!(
            "the answer states no dollar saving; the truth is {truth_text}"
        ));
    }
    let shown = stated
        .iter()
        .map(|s| format!("${s:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    if stated.len() > MAX_SAVING_FIGURES {
        return Err(format!(
            "the answer states {} different savings ({shown}); a shotgun of figures is not an answer",
            stated.len()
        ));
    }
    match stated
        .iter()
        .find(|s| text::within(**s, truth.routing_monthly_saving, SAVING_TOLERANCE))
    {
        Some(hit) => Ok(format!(
            "the answer states ${hit:.2}; the truth is {truth_text}, {:+.1}%",
            (hit / truth.routing_monthly_saving - 1.0) * 100.0
        )),
        None => Err(format!(
            "the answer states savings of {shown}; none is within {:.0}% of the truth, {truth_text}",
            SAVING_TOLERANCE * 100.0
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 19, 55, 12).unwrap()
    }

    #[test]
    fn the_data_set_is_seventy_days_of_hourly_rows_ending_before_now() {
        let t = generate(now(), 7);
        assert_eq!(t.rows, 70 * 24 * 4);
        assert_eq!(t.csv.lines().count(), t.rows + 1);
        assert_eq!(
            t.last,
            Utc.with_ymd_and_hms(2026, 11, 26, 18, 30, 0).unwrap()
        );
        assert_eq!(t.spike_day, NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
        assert!(
            t.csv
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("2026-09-17T19:30:00Z,openai,gpt-4o,")
        );
        // Deterministic for a seed.
        assert_eq!(generate(now(), 7), t);
    }

    #[test]
    fn the_truth_follows_from_list_prices() {
        let t = generate(now(), 1);
        // 2,000 requests/h x 720 h; 600 in + 20 out tokens each.
        let requests = 2_000.0 * 720.0;
        let on_4o = requests * (600.0 * 2.5 + 20.0 * 10.0) / 1e6;
        let on_mini = requests * (600.0 * 0.15 + 20.0 * 0.6) / 1e6;
        assert!((t.routing_monthly_cost - on_4o).abs() < 1e-6);
        assert!((t.routing_monthly_saving - (on_4o - on_mini)).abs() < 1e-6);
        assert!((t.routing_monthly_saving - 2301.12).abs() < 0.01);
        // The spike day is far above an ordinary day.
        assert!(t.spike_day_cost > 2.0 * t.ordinary_day_cost, "{t:?}");
    }

    #[test]
    fn the_routed_stream_is_constant_in_the_csv() {
        let t = generate(now(), 3);
        let rows: Vec<&str> = t
            .csv
            .lines()
            .filter(|l| l.ends_with(",ticket-router"))
            .collect();
        assert_eq!(rows.len(), 70 * 24);
        assert!(rows.iter().all(|l| l.contains(",1200000,40000,2000,")));
    }

    #[test]
    fn spike_day_answers_are_judged() {
        let t = generate(now(), 1);
        assert!(check_spike_day("2026-11-16 stands out: $438 vs $164 expected.", &t).is_ok());
        assert!(check_spike_day("Spend spiked on November 16, driven by research.", &t).is_ok());
        let wrong = check_spike_day("The spike was on 2026-11-03.", &t).unwrap_err();
        assert!(
            wrong.contains("2026-11-03") && wrong.contains("2026-11-16"),
            "{wrong}"
        );
        assert!(
            check_spike_day("Nothing unusual.", &t)
                .unwrap_err()
                .contains("names no day")
        );
        let shotgun = "Anomalies on 2026-11-13, 2026-11-14, 2026-11-15, 2026-11-16 and 2026-11-17.";
        assert!(check_spike_day(shotgun, &t).unwrap_err().contains("5 days"));
        let elsewhere = check_spike_day("Data from 2026-11-16 to 2026-11-20.", &t).unwrap_err();
        assert!(elsewhere.contains("in no sentence about"), "{elsewhere}");
    }

    #[test]
    fn saving_answers_are_judged() {
        let t = generate(now(), 1);
        assert!(check_routing_saving("Routing saves **$2,301.12 per month**.", &t).is_ok());
        assert!(check_routing_saving("This saves about $2.2k a month.", &t).is_ok());
        let wrong = check_routing_saving("Routing saves $9,999.00 per month.", &t).unwrap_err();
        assert!(
            wrong.contains("$9999.00") && wrong.contains("2301.12"),
            "{wrong}"
        );
        assert!(
            check_routing_saving("Use a cheaper model.", &t)
                .unwrap_err()
                .contains("no dollar saving")
        );
        let shotgun = "Savings: $1, $10, $100, $1,000, $2,300, $5,000, $10,000.";
        assert!(
            check_routing_saving(shotgun, &t)
                .unwrap_err()
                .contains("shotgun")
        );
    }
}
