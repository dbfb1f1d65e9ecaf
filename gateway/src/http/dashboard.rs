//! The operators' dashboard, `/ops`: server-rendered HTML (maud) in simplified Chinese or
//! English, for operator certificates only. One page shows every bureau's health with the
//! reason in words, the last hour as charts (uPlot, vendored and served from here: the page
//! needs no external network), the dead letters with their attempts and a replay button, and
//! pause / resume per bureau; `/ops/cases` shows a case's timeline across every bureau. The
//! page refreshes itself in place every few seconds (`ops.js`), keeping the operator's scroll
//! position and open details.
//!
//! Forms are POSTs carrying a token (HMAC-SHA-256 of the operator's name under a key every node
//! of the store shares), refused without it or from another site; the operator certificate is
//! still what authorizes them.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use schemas::BureauId;
use serde::Deserialize;
use sha2::Sha256;

use super::admin::{read_timeline, set_paused};
use super::caller::Operator;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::{Millis, now_ms};
use crate::flows::overdue::OverdueList;
use crate::flows::view::{ClockView, JointView};
use crate::ops::timeline::{self, Entry};
use crate::ops::view::{BureauHealth, ExchangeView, Health};
use crate::ops::words::{self, Label, Lang, bureau_name, label};
use crate::store::{
    CircuitState, CreditMatchRecord, CreditRecord, DeadLetter, ReplaySelector, Store,
};

/// Dead letters listed on the page (the oldest first); `gateway ctl dlq list` shows more.
const DEAD_LETTERS_SHOWN: usize = 50;
/// Open joint cases the overview shows.
const JOINT_CASES_SHOWN: usize = 50;
/// Credit listings and matches the overview shows (the latest); `gateway ctl credit` shows more.
const CREDIT_SHOWN: usize = 10;
/// Seconds between the page's refreshes.
const REFRESH_SECONDS: u32 = 5;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/ops", get(overview::<S>))
        .route("/ops/cases", get(case::<S>))
        .route("/ops/replay", post(replay::<S>))
        .route("/ops/pause", post(pause::<S>))
        .route("/ops/resume", post(resume::<S>))
        .route("/ops/assets/{name}", get(asset))
}

/// The files the pages load, compiled in.
fn asset_file(name: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match name {
        "ops.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/ops.js"),
        ),
        "ops.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../../assets/ops.css"),
        ),
        "uPlot.iife.min.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/vendor/uplot/uPlot.iife.min.js"),
        ),
        "uPlot.min.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../../assets/vendor/uplot/uPlot.min.css"),
        ),
        _ => return None,
    })
}

/// `GET /ops/assets/{name}`: the page's script, style and the vendored chart library. Served to
/// anyone who reached the listener: they hold nothing but code (the data is in the pages).
async fn asset(name: Path<String>) -> Response {
    match asset_file(&name) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        None => Problem::not_found("no such asset").into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    lang: Option<String>,
    key: Option<String>,
}

/// The page's language: `?lang=`, else the `ops_lang` cookie, else `Accept-Language`.
fn language(query: &PageQuery, headers: &HeaderMap) -> (Lang, bool) {
    if let Some(lang) = query.lang.as_deref().and_then(Lang::from_tag) {
        return (lang, true);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("ops_lang="))
        .and_then(Lang::from_tag);
    if let Some(lang) = cookie {
        return (lang, false);
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    (Lang::from_accept_language(accept), false)
}

/// An HTML answer with the dashboard's security headers (and the language cookie when the
/// operator chose one with the toggle).
fn page(markup: Markup, lang: Lang, chosen: bool) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        markup.into_string(),
    )
        .into_response();
    if chosen {
        let cookie = format!(
            "ops_lang={}; Path=/ops; Secure; HttpOnly; SameSite=Strict; Max-Age=31536000",
            lang.tag()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// The form token of `operator`.
fn form_token(key: &[u8], operator: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"ops-form:");
    mac.update(operator.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses a form POST without the operator's token or sent from another site.
fn check_form(key: &[u8], operator: &str, token: &str, headers: &HeaderMap) -> Result<(), Problem> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some(s) if s != "same-origin" && s != "none") {
        return Err(Problem::forbidden(
            "a dashboard form must come from the dashboard",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"ops-form:");
    mac.update(operator.as_bytes());
    let given = (0..token.len() / 2)
        .map(|i| {
            token
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|bytes| bytes.len() * 2 == token.len());
    match given {
        Some(bytes) if mac.verify_slice(&bytes).is_ok() => Ok(()),
        _ => Err(Problem::forbidden(
            "the form's token is missing or wrong: reload the dashboard and try again",
        )),
    }
}

fn ago(lang: Lang, now: Millis, at: Option<Millis>) -> Markup {
    match at {
        Some(at) => html! {
            time datetime=(words::date_time(at)) title=(words::date_time(at)) {
                (words::age(lang, now - at))
            }
        },
        None => html! { span.muted { (label(lang, Label::Never)) } },
    }
}

fn circuit(lang: Lang, state: CircuitState) -> &'static str {
    label(
        lang,
        match state {
            CircuitState::Closed => Label::Closed,
            CircuitState::HalfOpen => Label::HalfOpen,
            CircuitState::Open => Label::Open,
        },
    )
}

fn health_class(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::Failing => "failing",
    }
}

struct Context<'a> {
    lang: Lang,
    now: Millis,
    token: &'a str,
    node: &'a str,
    /// The same page in the other language (its query kept).
    toggle: String,
}

/// The link to the same page in the other language, keeping the case being looked at.
fn toggle_link(lang: Lang, key: Option<&str>) -> String {
    let mut link = format!("?lang={}", lang.other().tag());
    if let Some(key) = key {
        link.push_str("&key=");
        link.extend(percent_encoding::utf8_percent_encode(
            key,
            percent_encoding::NON_ALPHANUMERIC,
        ));
    }
    link
}

fn layout(ctx: &Context<'_>, title: &str, body: Markup) -> Markup {
    let lang = ctx.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (label(lang, Label::Exchange)) }
                link rel="stylesheet" href="/ops/assets/uPlot.min.css";
                link rel="stylesheet" href="/ops/assets/ops.css";
                script src="/ops/assets/uPlot.iife.min.js" defer {}
                script src="/ops/assets/ops.js" defer {}
            }
            body data-refresh-seconds=(REFRESH_SECONDS) {
                header.top {
                    h1 { a href="/ops" { (label(lang, Label::Title)) } }
                    form.lookup method="get" action="/ops/cases" {
                        input type="search" name="key" required
                            placeholder=(label(lang, Label::CaseLookup))
                            aria-label=(label(lang, Label::CaseLookup));
                        button type="submit" { (label(lang, Label::Show)) }
                    }
                    nav {
                        span #updated data-live {
                            (label(lang, Label::UpdatedAt)) " " (words::date_time(ctx.now))
                            " · " (ctx.node)
                        }
                        " "
                        a.lang href=(ctx.toggle) hreflang=(lang.other().tag()) {
                            (label(lang, Label::Language))
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn bureau_row(ctx: &Context<'_>, row: &BureauHealth) -> Markup {
    let lang = ctx.lang;
    let failure_rate = row
        .failure_rate_5m
        .map_or_else(|| "–".to_owned(), |r| format!("{:.0}%", r * 100.0));
    html! {
        tr data-bureau=(row.bureau.as_str()) data-health=(health_class(row.health))
            class={ "health-" (health_class(row.health)) } {
            th scope="row" {
                span.name { (bureau_name(lang, row.bureau)) }
                br;
                code { (row.bureau.as_str()) }
                " · "
                (label(lang, if row.delivery == "pull" { Label::Pull } else { Label::Push }))
            }
            td.health { span.badge { (row.health.label(lang)) } }
            td data-reason {
                @if row.reasons.is_empty() { "–" }
                @for reason in &row.reasons { div { (reason.text(lang)) } }
            }
            td { (ago(lang, ctx.now, row.last_in)) }
            td { (ago(lang, ctx.now, row.last_out)) }
            td.num { (format!("{:.1}", row.inbound_per_minute)) " " (label(lang, Label::PerMinute)) }
            td.num data-backlog=(row.backlog) { (row.backlog) }
            td { @if row.backlog > 0 { (ago(lang, ctx.now, row.oldest_pending)) } @else { "–" } }
            td.num { (failure_rate) }
            td data-circuit=(row.circuit.as_str()) { (circuit(lang, row.circuit)) }
            td.num data-dead-letters=(row.dead_letters) { (row.dead_letters) }
            td {
                @match row.certificate_days_left {
                    Some(days) => { (days) " " (label(lang, Label::DaysLeft)) }
                    None => { "–" }
                }
            }
            td.actions {
                @let (action, words) = if row.paused.is_some() {
                    ("resume", Label::Resume)
                } else {
                    ("pause", Label::Pause)
                };
                form method="post" action={ "/ops/" (action) } {
                    input type="hidden" name="csrf" value=(ctx.token);
                    input type="hidden" name="bureau" value=(row.bureau.as_str());
                    input type="hidden" name="lang" value=(lang.tag());
                    button type="submit" data-action=(action) { (label(lang, words)) }
                }
            }
        }
    }
}

fn dead_letter_rows(ctx: &Context<'_>, letters: &[DeadLetter]) -> Markup {
    let lang = ctx.lang;
    html! {
        @if letters.is_empty() {
            p.muted { (label(lang, Label::NoDeadLetters)) }
        } @else {
            div.table-wrap {
                table.dead-letters {
                    thead { tr {
                        th { "#" }
                        th { (label(lang, Label::Bureau)) }
                        th { (label(lang, Label::Message)) }
                        th { (label(lang, Label::DeadLettered)) }
                        th { (label(lang, Label::Attempts)) }
                        th { (label(lang, Label::Actions)) }
                    } }
                    tbody {
                        @for letter in letters {
                            tr data-dead-letter=(letter.id) data-subscriber=(letter.subscriber.as_str()) {
                                td.num { (letter.id) }
                                td { (bureau_name(lang, letter.subscriber)) }
                                td {
                                    a href={ "/ops/cases?key=" (letter.message_id.as_str()) } {
                                        code { (letter.message_id.as_str()) }
                                    }
                                }
                                td { (ago(lang, ctx.now, Some(letter.dead_at))) }
                                td {
                                    details id={ "dl-" (letter.id) } {
                                        summary { (letter.attempts.len()) }
                                        ol {
                                            @for attempt in &letter.attempts {
                                                li {
                                                    time { (words::date_time(attempt.at)) }
                                                    " " (attempt.error)
                                                }
                                            }
                                        }
                                    }
                                }
                                td.actions {
                                    form method="post" action="/ops/replay" {
                                        input type="hidden" name="csrf" value=(ctx.token);
                                        input type="hidden" name="id" value=(letter.id);
                                        input type="hidden" name="lang" value=(lang.tag());
                                        button type="submit" data-action="replay" { (label(lang, Label::Replay)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The chart data as JSON for `ops.js`, safe inside a `<script type="application/json">`.
fn series_json(view: &ExchangeView, lang: Lang) -> String {
    let charts: Vec<serde_json::Value> = view
        .series
        .iter()
        .map(|s| {
            serde_json::json!({
                "bureau": s.bureau,
                "name": bureau_name(lang, s.bureau),
                "minutes": s.minutes.iter().map(|m| m / 1000).collect::<Vec<_>>(),
                "received": s.received,
                "delivered": s.delivered,
                "failed": s.failed,
                "backlog": s.backlog,
            })
        })
        .collect();
    let labels = serde_json::json!({
        "received": label(lang, Label::ChartIn),
        "delivered": label(lang, Label::ChartOut),
        "failed": label(lang, Label::ChartFailed),
        "backlog": label(lang, Label::ChartBacklog),
    });
    serde_json::json!({ "charts": charts, "labels": labels })
        .to_string()
        .replace('<', "\\u003c")
}

/// `GET /ops`.
async fn overview<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    query: Result<Query<PageQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (lang, chosen) = language(&query, &headers);
    let now = now_ms();
    let view = ExchangeView::read(&state.store, &state.config, now).await?;
    let letters = state.store.dead_letters(None, DEAD_LETTERS_SHOWN).await?;
    let today = crate::clock::shanghai_now()
        .map(|t| t.naive_local().date())
        .ok_or_else(Problem::internal)?;
    let joint: Vec<JointView> = state
        .store
        .open_joint_cases(None, JOINT_CASES_SHOWN)
        .await?
        .iter()
        .map(|case| JointView::of(case, &state.flows, today))
        .collect();
    let calendar_warning = state
        .flows
        .calendar_warning()
        .map(|_| calendar_missing(lang, state.flows.calendar().last_year()));
    let overdue = state.flows.overdue();
    let listings = state.store.recent_credit_entries(CREDIT_SHOWN).await?;
    let matches = state.store.recent_credit_matches(CREDIT_SHOWN).await?;
    let token = form_token(&state.form_key, &operator);
    let ctx = Context {
        lang,
        now,
        token: &token,
        node: &state.config.node,
        toggle: toggle_link(lang, None),
    };
    let unwell: Vec<&BureauHealth> = view
        .bureaus
        .iter()
        .filter(|b| b.health != Health::Healthy)
        .collect();
    let body = html! {
        section #summary data-live {
            @if unwell.is_empty() {
                p.all-healthy { (label(lang, Label::AllHealthy)) }
            } @else {
                ul.alerts {
                    @for row in &unwell {
                        li class={ "health-" (health_class(row.health)) } {
                            strong { (bureau_name(lang, row.bureau)) }
                            (if lang == Lang::Zh { "：" } else { ": " })
                            @for (i, reason) in row.reasons.iter().enumerate() {
                                @if i > 0 { (if lang == Lang::Zh { "；" } else { "; " }) }
                                (reason.text(lang))
                            }
                        }
                    }
                }
            }
            @if let Some(warning) = &calendar_warning {
                p.calendar-warning.health-degraded { (warning) }
            }
            p.nodes.muted {
                (label(lang, Label::Nodes)) ": "
                @for (i, node) in view.nodes.iter().enumerate() {
                    @if i > 0 { ", " }
                    (node.node) " (" (words::age(lang, now - node.reported_at)) ")"
                }
            }
        }
        section #bureaus {
            div.table-wrap data-live id="bureau-table" {
                table.bureaus {
                    thead { tr {
                        th { (label(lang, Label::Bureau)) }
                        th { (label(lang, Label::Health)) }
                        th { (label(lang, Label::Reason)) }
                        th { (label(lang, Label::LastIn)) }
                        th { (label(lang, Label::LastOut)) }
                        th { (label(lang, Label::InboundRate)) }
                        th { (label(lang, Label::Backlog)) }
                        th { (label(lang, Label::OldestPending)) }
                        th { (label(lang, Label::FailureRate)) }
                        th { (label(lang, Label::Circuit)) }
                        th { (label(lang, Label::DeadLetters)) }
                        th { (label(lang, Label::Certificate)) }
                        th { (label(lang, Label::Actions)) }
                    } }
                    tbody {
                        @for row in &view.bureaus { (bureau_row(&ctx, row)) }
                    }
                }
            }
        }
        section #charts {
            h2 { (label(lang, Label::Charts)) ": " (label(lang, Label::Throughput)) " / " (label(lang, Label::BacklogChart)) }
            div.charts id="chart-grid" {}
            script type="application/json" id="series" data-live { (PreEscaped(series_json(&view, lang))) }
        }
        section #joint-cases {
            h2 { (label(lang, Label::JointCases)) }
            div id="joint-case-list" data-live { (joint_rows(&ctx, &joint)) }
        }
        section #overdue-cases {
            h2 { (label(lang, Label::OverdueCases)) }
            div id="overdue-list" data-live { (overdue_rows(&ctx, &overdue)) }
        }
        section #credit {
            h2 { (label(lang, Label::CreditLists)) }
            div id="credit-lists" data-live { (credit_rows(&ctx, &listings, &matches, today)) }
        }
        section #dead-letters {
            h2 { (label(lang, Label::DeadLetters)) }
            div id="dead-letter-list" data-live { (dead_letter_rows(&ctx, &letters)) }
        }
    };
    Ok(page(
        layout(&ctx, label(lang, Label::Title), body),
        lang,
        chosen,
    ))
}

/// Open joint cases with each branch's clock, the overdue ones first.
fn joint_rows(ctx: &Context<'_>, cases: &[JointView]) -> Markup {
    let lang = ctx.lang;
    let overdue = |view: &JointView| {
        view.branches
            .iter()
            .chain(std::iter::once(&view.clock))
            .any(|c| c.stopped_on.is_none() && c.working_days_left.is_some_and(|l| l < 0))
    };
    let mut sorted: Vec<&JointView> = cases.iter().collect();
    sorted.sort_by_key(|view| (!overdue(view), view.notice.due.on));
    html! {
        @if sorted.is_empty() {
            p.muted { (label(lang, Label::NoJointCases)) }
        } @else {
            div.table-wrap { table.joint-cases {
                thead { tr {
                    th { (label(lang, Label::Flow)) }
                    th { (label(lang, Label::Project)) }
                    th { (label(lang, Label::Bureau)) }
                    th { (label(lang, Label::Health)) }
                    th { (label(lang, Label::Due)) }
                    th { (label(lang, Label::WorkingDaysLeft)) }
                } }
                tbody {
                    @for view in &sorted {
                        tr.joint class=[overdue(view).then_some("health-failing")] {
                            td { (view.notice.flow.as_str()) br; small.muted { (view.notice.joint_case_id.as_str()) } }
                            td { (view.notice.project.code.as_str()) br; small { (view.notice.project.name.as_str()) } }
                            td { (bureau_name(lang, view.notice.window)) " " (view.notice.window_case_id.as_str()) }
                            td { (view.notice.status.code()) }
                            td { (view.notice.due.on.to_string()) @if view.notice.due.provisional { " *" } }
                            td { (clock_left(lang, &view.clock)) }
                        }
                        @for (branch, clock) in view.notice.branches.iter().zip(&view.branches) {
                            tr.branch class=[clock.working_days_left.filter(|l| *l < 0 && clock.stopped_on.is_none()).map(|_| "health-failing")] {
                                td {}
                                td { (branch.item.code()) @if !branch.required { " (" (label(lang, Label::No)) ")" } }
                                td { (bureau_name(lang, branch.bureau)) " " (branch.case_id.as_ref().map_or("", |c| c.as_str())) }
                                td { @if branch.status == schemas::BranchStatus::Waiting { (label(lang, Label::Waiting)) } @else { (branch.status.code()) } }
                                td { (clock.due_on.map(|d| d.to_string()).unwrap_or_default()) @if clock.provisional { " *" } }
                                td { (clock_left(lang, clock)) }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// The latest credit listings (removals shown as such) and the latest cases matched.
fn credit_rows(
    ctx: &Context<'_>,
    listings: &[CreditRecord],
    matches: &[CreditMatchRecord],
    today: chrono::NaiveDate,
) -> Markup {
    let lang = ctx.lang;
    let today = schemas::ShanghaiDate::new(today);
    let sep = if lang == Lang::Zh { "、" } else { ", " };
    html! {
        h3 { (label(lang, Label::CreditListings)) }
        @if listings.is_empty() {
            p.muted { (label(lang, Label::NoCreditListings)) }
        } @else {
            div.table-wrap { table.credit-listings {
                thead { tr {
                    th { (label(lang, Label::Listed)) }
                    th { (label(lang, Label::ListedBy)) }
                    th { (label(lang, Label::List)) }
                    th { (label(lang, Label::Entry)) }
                    th { (label(lang, Label::Subject)) }
                    th { (label(lang, Label::InEffect)) }
                } }
                tbody {
                    @for record in listings {
                        @let entry = &record.entry;
                        @let active = entry.is_active_on(today);
                        tr.credit-listing data-entry=(entry.entry_id.as_str()) data-active=(active) class=[(!active).then_some("muted")] {
                            td { (words::date_time(record.listed_at)) }
                            td { (bureau_name(lang, record.publisher)) }
                            td { (words::credit_list_name(lang, entry.list)) }
                            td { (entry.entry_id.as_str()) " v" (entry.version) br; small.muted { (entry.document_number.as_str()) } }
                            td { (entry.subject.name.as_str()) br; small { (entry.subject.credit_code.as_str()) } }
                            td {
                                (entry.valid_from.to_string()) " – "
                                @if let Some(to) = &entry.valid_to { (to.to_string()) }
                                @if let Some(removal) = &entry.removal {
                                    br; strong { (label(lang, Label::RemovedOn)) " " (removal.on.to_string()) }
                                    br; small.muted { (removal.reason.as_str()) }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h3 { (label(lang, Label::CreditMatches)) }
        @if matches.is_empty() {
            p.muted { (label(lang, Label::NoCreditMatches)) }
        } @else {
            div.table-wrap { table.credit-matches {
                thead { tr {
                    th { (label(lang, Label::Matched)) }
                    th { (label(lang, Label::Case)) }
                    th { (label(lang, Label::Item)) }
                    th { (label(lang, Label::Applicant)) }
                    th { (label(lang, Label::List)) }
                    th { (label(lang, Label::Told)) }
                } }
                tbody {
                    @for found in matches {
                        @let entry = &found.found.entry;
                        tr.credit-match data-case=(found.case_id.as_str()) data-entry=(entry.entry_id.as_str()) {
                            td { (words::date_time(found.matched_at)) }
                            td { (bureau_name(lang, found.bureau)) " " (found.case_id.as_str()) br; small.muted { (found.found.project.as_str()) } }
                            td { (item_name(lang, found.found.item)) }
                            td { (entry.subject.name.as_str()) br; small { (entry.subject.credit_code.as_str()) } }
                            td { (words::credit_list_name(lang, entry.list)) br; small.muted { (entry.entry_id.as_str()) " · " (bureau_name(lang, found.found.publisher)) } }
                            td {
                                // Seven bureaus' full English names would crowd the row out:
                                // their codes, as the API and `gateway ctl` name them.
                                @for (i, bureau) in found.receivers.iter().enumerate() {
                                    @if i > 0 { (sep) }
                                    @if lang == Lang::Zh { (bureau_name(lang, *bureau)) } @else { (bureau.as_str()) }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// Next year's State Council notice is missing from the calendar: the warning, in `lang`.
fn calendar_missing(lang: Lang, last_year: i32) -> String {
    match lang {
        Lang::Zh => format!(
            "工作日历只到{last_year}年：请载入{}年的国务院办公厅节假日安排通知（calendar.file）；此后的到期日为暂定。",
            last_year + 1
        ),
        Lang::En => format!(
            "The working-day calendar ends with {last_year}: load the State Council notice for {} (calendar.file); due dates past it are provisional.",
            last_year + 1
        ),
    }
}

/// The cases past their due date at the last look at the clocks, most overdue first.
fn overdue_rows(ctx: &Context<'_>, list: &OverdueList) -> Markup {
    let lang = ctx.lang;
    html! {
        @if list.cases.is_empty() {
            p.muted { (label(lang, Label::NoOverdueCases)) }
        } @else {
            p.muted { (label(lang, Label::OverdueTotal)) ": " (list.total)
                @if let Some(day) = list.as_of { " (" (day.to_string()) ")" } }
            div.table-wrap { table.overdue-cases {
                thead { tr {
                    th { (label(lang, Label::Bureau)) }
                    th { (label(lang, Label::What)) }
                    th { (label(lang, Label::Project)) }
                    th { (label(lang, Label::Due)) }
                    th { (label(lang, Label::Overdue)) }
                    th { (label(lang, Label::JointCases)) }
                } }
                tbody {
                    @for case in &list.cases {
                        tr.overdue.health-failing {
                            td { (bureau_name(lang, case.bureau)) " " (case.case_id.as_str()) }
                            td { (item_name(lang, case.item)) }
                            td { (case.project.as_str()) }
                            td { (case.due_on.to_string()) }
                            td { strong { (case.working_days_overdue) } }
                            td { small.muted { (case.joint_case_id.as_ref().map_or("", |id| id.as_str())) } }
                        }
                    }
                }
            } }
        }
    }
}

/// An item's name: its characters in Chinese, its code in English.
fn item_name(lang: Lang, item: schemas::Item) -> &'static str {
    match lang {
        Lang::Zh => item.name_zh(),
        Lang::En => item.code(),
    }
}

/// Working days left, or overdue by how many.
fn clock_left(lang: Lang, clock: &ClockView) -> Markup {
    html! {
        @match clock.working_days_left {
            Some(left) if left < 0 => strong { (label(lang, Label::Overdue)) " " (-left) }
            Some(left) => (left),
            None => "",
        }
        @if clock.paused_now { " ⏸" }
    }
}

fn timeline_rows(ctx: &Context<'_>, entries: &[Entry]) -> Markup {
    let lang = ctx.lang;
    html! {
        @if entries.is_empty() {
            p.muted { (label(lang, Label::NoEntries)) }
        } @else {
            div.table-wrap {
                table.timeline {
                    thead { tr {
                        th { (label(lang, Label::Time)) }
                        th { (label(lang, Label::Bureau)) }
                        th { (label(lang, Label::What)) }
                        th { (label(lang, Label::Message)) }
                        th { (label(lang, Label::Detail)) }
                    } }
                    tbody {
                        @for entry in entries {
                            tr data-timeline-entry data-kind=(crate::vocabulary::name(&entry.kind))
                                data-bureau=(entry.bureau.as_str())
                                data-message-id=(entry.message_id.as_str())
                                class={ "entry-" (crate::vocabulary::name(&entry.kind)) } {
                                td.when { time { (words::precise_time(entry.at)) } }
                                td { (bureau_name(lang, entry.bureau)) }
                                td { (entry.kind.label(lang)) }
                                td { code { (entry.message_id.as_str()) } br; span.muted { (entry.case) } }
                                td { (entry.detail) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ops/cases?key=…`: a project's, case's or message's timeline.
async fn case<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    query: Result<Query<PageQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (lang, chosen) = language(&query, &headers);
    let now = now_ms();
    let text = query.key.clone().unwrap_or_default();
    let token = form_token(&state.form_key, &operator);
    let ctx = Context {
        lang,
        now,
        token: &token,
        node: &state.config.node,
        toggle: toggle_link(lang, Some(&text)),
    };
    let (found, truncated, entries) = match timeline::key_of(&text) {
        Some(key) => read_timeline(&state, key).await?,
        None => (0, false, Vec::new()),
    };
    let title = format!("{}: {}", label(lang, Label::CaseTimeline), text.trim());
    let body = html! {
        p { a href="/ops" { "← " (label(lang, Label::Back)) } }
        h2 { (title) }
        div id="timeline" data-live data-events=(found) {
            @if truncated { p.muted { "…" } }
            (timeline_rows(&ctx, &entries))
        }
    };
    Ok(page(layout(&ctx, &title, body), lang, chosen))
}

#[derive(Debug, Deserialize)]
struct ReplayForm {
    /// Absent is refused like wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    id: i64,
    lang: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BureauForm {
    #[serde(default)]
    csrf: String,
    bureau: BureauId,
    lang: Option<String>,
}

/// Back to the dashboard (303: the browser GETs it), in the operator's language.
fn back(lang: Option<&str>, anchor: &str) -> Response {
    let lang = lang.and_then(Lang::from_tag).unwrap_or(Lang::Zh);
    let location = format!("/ops?lang={}#{anchor}", lang.tag());
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.as_str())],
    )
        .into_response()
}

/// `POST /ops/replay` (form: `id`, `csrf`): one dead letter becomes pending again.
async fn replay<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    headers: HeaderMap,
    form: Result<Form<ReplayForm>, FormRejection>,
) -> Result<Response, Problem> {
    let Form(form) = form?;
    check_form(&state.form_key, &operator, &form.csrf, &headers)?;
    let replayed = state
        .store
        .replay(ReplaySelector::Ids(vec![form.id]), &operator, now_ms(), 1)
        .await?;
    tracing::info!(message = "dead letter replayed from the dashboard", %operator, id = form.id, replayed);
    state.wakers.delivery.notify_waiters();
    Ok(back(form.lang.as_deref(), "dead-letters"))
}

/// `POST /ops/pause` (form: `bureau`, `csrf`).
async fn pause<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    headers: HeaderMap,
    form: Result<Form<BureauForm>, FormRejection>,
) -> Result<Response, Problem> {
    pause_or_resume(&state, &operator, &headers, form, true).await
}

/// `POST /ops/resume` (form: `bureau`, `csrf`).
async fn resume<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    headers: HeaderMap,
    form: Result<Form<BureauForm>, FormRejection>,
) -> Result<Response, Problem> {
    pause_or_resume(&state, &operator, &headers, form, false).await
}

async fn pause_or_resume<S: Store + Clone>(
    state: &AppState<S>,
    operator: &str,
    headers: &HeaderMap,
    form: Result<Form<BureauForm>, FormRejection>,
    pause: bool,
) -> Result<Response, Problem> {
    let Form(form) = form?;
    check_form(&state.form_key, operator, &form.csrf, headers)?;
    set_paused(state, form.bureau, operator, pause).await?;
    Ok(back(form.lang.as_deref(), "bureaus"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_token_is_the_operators_own() {
        let token = form_token(b"key", "alice");
        let headers = HeaderMap::new();
        assert!(check_form(b"key", "alice", &token, &headers).is_ok());
        assert!(
            check_form(b"key", "bob", &token, &headers).is_err(),
            "another operator's"
        );
        assert!(
            check_form(b"other", "alice", &token, &headers).is_err(),
            "another key's"
        );
        assert!(check_form(b"key", "alice", "", &headers).is_err());
        assert!(check_form(b"key", "alice", &token[..10], &headers).is_err());
        let mut cross = HeaderMap::new();
        cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(
            check_form(b"key", "alice", &token, &cross).is_err(),
            "from another site"
        );
    }

    #[test]
    fn the_language_follows_the_toggle_then_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en-US"));
        let none = PageQuery {
            lang: None,
            key: None,
        };
        assert_eq!(language(&none, &headers), (Lang::En, false));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; ops_lang=zh-CN"),
        );
        assert_eq!(language(&none, &headers), (Lang::Zh, false));
        let toggle = PageQuery {
            lang: Some("en".into()),
            key: None,
        };
        assert_eq!(language(&toggle, &headers), (Lang::En, true));
    }

    #[test]
    fn the_language_toggle_keeps_the_case_looked_at() {
        assert_eq!(toggle_link(Lang::Zh, None), "?lang=en");
        assert_eq!(
            toggle_link(Lang::En, Some("GH 1&x")),
            "?lang=zh-CN&key=GH%201%26x"
        );
    }

    #[test]
    fn chart_data_cannot_end_its_script_element() {
        let config = crate::config::Config::defaults().expect("defaults");
        let view = ExchangeView::build(&config, 0, &Default::default(), &[], &[]);
        let json = series_json(&view, Lang::En);
        assert!(!json.contains('<'));
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(
            parsed["charts"].as_array().map(Vec::len),
            Some(config.bureaus.len())
        );
    }
}
