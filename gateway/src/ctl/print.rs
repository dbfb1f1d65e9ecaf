//! The human tables of `gateway ctl`, from the admin API's JSON answers (times in Shanghai).

use std::fmt::Write as _;

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use super::args::{CtlCommand, DlqCommand};
use crate::clock::now_ms;
use crate::ops::words;

/// A table: a header row and rows, each column as wide as its widest cell on a terminal (a
/// Chinese character takes two columns).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let mut text = String::new();
    let line = |text: &mut String, cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                let _ = write!(text, "{cell}");
            } else {
                let pad = widths[i] - cell.width();
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        text.push('\n');
    };
    line(&mut text, header.to_vec());
    for row in rows {
        line(&mut text, row.iter().map(String::as_str).collect());
    }
    text
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn age(value: &Value) -> String {
    value.as_i64().map_or_else(
        || "never".to_owned(),
        |at| format!("{} ago", words::age(words::Lang::En, now_ms() - at)),
    )
}

fn when(value: &Value) -> String {
    value
        .as_i64()
        .map_or_else(|| "-".to_owned(), words::date_time)
}

/// What `command`'s answer `body` says, for a person.
pub(super) fn human(command: &CtlCommand, body: &Value) -> String {
    match command {
        CtlCommand::Status => status(body),
        CtlCommand::Bureaus => bureaus(body),
        CtlCommand::Dlq { command } => match command {
            DlqCommand::List { .. } => dead_letters(body),
            DlqCommand::Show { .. } => dead_letter(body),
            DlqCommand::Replay { .. } => format!("replayed {}\n", text(&body["replayed"])),
            DlqCommand::Purge { .. } => format!("purged {}\n", text(&body["purged"])),
        },
        CtlCommand::Pause { .. } | CtlCommand::Resume { .. } => {
            let bureau = text(&body["bureau"]);
            let state = if body["paused"] == Value::Bool(true) {
                "paused"
            } else {
                "resumed"
            };
            let note = if body["changed"] == Value::Bool(true) {
                ""
            } else {
                " (already)"
            };
            format!("{bureau}: delivery {state}{note}\n")
        }
        CtlCommand::Trace { .. } | CtlCommand::Case { .. } => timeline(body),
        CtlCommand::Report { csv: true, .. } => crate::flows::bulletin::csv(&body.to_string())
            .unwrap_or_else(|error| format!("the bulletin does not read: {error}\n")),
        CtlCommand::Report { .. } => report(body),
        CtlCommand::Joint { .. } => match body {
            Value::Array(views) if views.is_empty() => "no joint case\n".to_owned(),
            Value::Array(views) => views.iter().map(joint).collect::<Vec<_>>().join("\n"),
            view => joint(view),
        },
        CtlCommand::Overdue => overdue(body),
        CtlCommand::Credit { code: Some(_), .. } => credit_lookup(body),
        CtlCommand::Credit { code: None, .. } => credit_recent(body),
    }
}

/// An entry's subject: its name and credit code.
fn subject(entry: &Value) -> String {
    format!(
        "{} {}",
        text(&entry["subject"]["name"]),
        text(&entry["subject"]["credit_code"])
    )
}

/// When an entry has effect: from, to, or removed on.
fn validity(entry: &Value) -> String {
    let from = text(&entry["valid_from"]);
    match (&entry["removal"], &entry["valid_to"]) {
        (Value::Object(removal), _) => format!(
            "{from} – removed {} ({})",
            text(&removal["on"]),
            text(&removal["reason"])
        ),
        (_, Value::String(to)) => format!("{from} – {to}"),
        _ => format!("{from} –"),
    }
}

/// The latest listings and matches, newest first.
fn credit_recent(body: &Value) -> String {
    let empty = Vec::new();
    let entries = body["entries"].as_array().unwrap_or(&empty);
    let matches = body["matches"].as_array().unwrap_or(&empty);
    let mut out = format!("latest listings: {}\n", entries.len());
    if !entries.is_empty() {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|record| {
                let entry = &record["entry"];
                vec![
                    when(&record["listed_at"]),
                    text(&record["publisher"]),
                    text(&entry["list"]),
                    format!("{} v{}", text(&entry["entry_id"]), text(&entry["version"])),
                    subject(entry),
                    validity(entry),
                ]
            })
            .collect();
        out.push_str(&table(
            &["LISTED", "BY", "LIST", "ENTRY", "SUBJECT", "IN EFFECT"],
            &rows,
        ));
    }
    out.push_str(&format!("\nlatest matches: {}\n", matches.len()));
    if !matches.is_empty() {
        let rows: Vec<Vec<String>> = matches
            .iter()
            .map(|found| {
                let entry = &found["found"]["entry"];
                let told: Vec<String> = found["receivers"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .map(text)
                    .collect();
                vec![
                    when(&found["matched_at"]),
                    format!("{}:{}", text(&found["bureau"]), text(&found["case_id"])),
                    text(&found["found"]["item"]),
                    subject(entry),
                    format!(
                        "{} {} ({})",
                        text(&entry["list"]),
                        text(&entry["entry_id"]),
                        text(&found["found"]["publisher"])
                    ),
                    told.join(","),
                ]
            })
            .collect();
        out.push_str(&table(
            &["MATCHED", "CASE", "ITEM", "APPLICANT", "ENTRY", "TOLD"],
            &rows,
        ));
    }
    out
}

/// One enterprise's entries: those in effect, then the past ones.
fn credit_lookup(body: &Value) -> String {
    let empty = Vec::new();
    let mut out = format!("{} on {}\n", text(&body["credit_code"]), text(&body["on"]));
    for (title, key) in [("in effect", "active"), ("past", "past")] {
        let listings = body[key].as_array().unwrap_or(&empty);
        out.push_str(&format!("\n{title}: {}\n", listings.len()));
        if listings.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = listings
            .iter()
            .map(|listing| {
                let entry = &listing["entry"];
                vec![
                    text(&entry["list"]),
                    format!("{} v{}", text(&entry["entry_id"]), text(&entry["version"])),
                    text(&listing["publisher"]),
                    format!(
                        "{} {}",
                        text(&entry["issued_by"]),
                        text(&entry["document_number"])
                    ),
                    text(&entry["measures"]),
                    validity(entry),
                ]
            })
            .collect();
        out.push_str(&table(
            &["LIST", "ENTRY", "BY", "ISSUED", "MEASURES", "IN EFFECT"],
            &rows,
        ));
    }
    out
}

/// The overdue list: one row per case, most overdue first.
fn overdue(body: &Value) -> String {
    let empty = Vec::new();
    let cases = body["cases"].as_array().unwrap_or(&empty);
    let mut out = match body["as_of"].as_str() {
        None => return "the clocks were not looked at yet\n".to_owned(),
        Some(day) => format!(
            "{} overdue case(s) on {day}{}\n",
            text(&body["total"]),
            if body["total"].as_u64().unwrap_or(0) > cases.len() as u64 {
                format!(", the {} most overdue:", cases.len())
            } else {
                String::new()
            }
        ),
    };
    if cases.is_empty() {
        return out;
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|case| {
            vec![
                text(&case["bureau"]),
                text(&case["case_id"]),
                text(&case["item"]),
                text(&case["project"]),
                text(&case["due_on"]),
                text(&case["working_days_overdue"]),
                text(&case["joint_case_id"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "BUREAU",
            "CASE",
            "ITEM",
            "PROJECT",
            "DUE",
            "OVERDUE",
            "JOINT CASE",
        ],
        &rows,
    ));
    out
}

/// Working days left, or how many overdue, with a mark for a stopped or provisional clock.
fn clock_left(clock: &Value) -> String {
    let mut text = match clock["working_days_left"].as_i64() {
        Some(left) if left < 0 => format!("OVERDUE {}", -left),
        Some(left) => left.to_string(),
        None => "-".to_owned(),
    };
    if clock["paused_now"] == Value::Bool(true) {
        text.push_str(" (stopped: supplement)");
    }
    if clock["provisional"] == Value::Bool(true) {
        text.push_str(" (provisional)");
    }
    text
}

/// One joint case: its head line, then one row per branch with its clock.
fn joint(view: &Value) -> String {
    let notice = &view["notice"];
    let mut out = format!(
        "{} {} {}: window {} {}, accepted {}, due {}, {} working days left (as of {})\n",
        text(&notice["joint_case_id"]),
        text(&notice["flow"]),
        text(&notice["status"]),
        text(&notice["window"]),
        text(&notice["window_case_id"]),
        text(&notice["opened_on"]),
        text(&notice["due"]["on"]),
        clock_left(&view["clock"]),
        text(&view["as_of"]),
    );
    let empty = Vec::new();
    let clocks = view["branches"].as_array().unwrap_or(&empty);
    let rows: Vec<Vec<String>> = notice["branches"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .zip(clocks)
        .map(|(branch, clock)| {
            let paused = clock["paused"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .map(|p| format!("{}..{}", text(&p["from"]), text(&p["to"])))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            vec![
                text(&branch["bureau"]),
                text(&branch["item"]),
                if branch["required"] == Value::Bool(true) {
                    "required"
                } else {
                    "optional"
                }
                .to_owned(),
                text(&branch["status"]),
                text(&branch["case_id"]),
                text(&clock["started_on"]),
                if paused.is_empty() {
                    "-".to_owned()
                } else {
                    paused
                },
                text(&clock["due_on"]),
                clock_left(clock),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "BUREAU", "ITEM", "", "STATUS", "CASE", "ACCEPTED", "STOPPED", "DUE", "LEFT",
        ],
        &rows,
    ));
    out
}

fn status(body: &Value) -> String {
    let mut out = String::new();
    let nodes: Vec<String> = body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| text(&n["node"]))
        .collect();
    let _ = writeln!(
        out,
        "node {} (gateway {}, {} store), up {}",
        text(&body["node"]),
        text(&body["version"]),
        text(&body["store"]),
        words::age(
            words::Lang::En,
            body["uptime_seconds"].as_i64().unwrap_or(0) * 1000
        )
    );
    let _ = writeln!(out, "nodes reporting: {}", nodes.join(", "));
    let _ = writeln!(
        out,
        "bureaus: {} healthy, {} degraded, {} failing; backlog {}, dead letters {}",
        text(&body["healthy"]),
        text(&body["degraded"]),
        text(&body["failing"]),
        text(&body["backlog"]),
        text(&body["dead_letters"])
    );
    let paused: Vec<String> = body["paused"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if !paused.is_empty() {
        let _ = writeln!(out, "paused: {}", paused.join(", "));
    }
    for worst in body["worst"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{} {}: {}",
            text(&worst["bureau"]),
            text(&worst["health"]),
            text(&worst["reason"])
        );
    }
    out
}

fn bureaus(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["bureaus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            vec![
                text(&b["bureau"]),
                text(&b["health"]),
                age(&b["last_in"]),
                age(&b["last_out"]),
                format!("{:.1}/min", b["inbound_per_minute"].as_f64().unwrap_or(0.0)),
                text(&b["backlog"]),
                b["failure_rate_5m"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
                text(&b["circuit"]),
                if b["paused"].is_null() {
                    "no".into()
                } else {
                    format!("by {}", text(&b["paused"]["by"]))
                },
                text(&b["dead_letters"]),
                b["certificate_days_left"]
                    .as_i64()
                    .map_or_else(|| "-".to_owned(), |d| format!("{d} d")),
                match b["reason"].as_str() {
                    Some("") | None => "-".to_owned(),
                    Some(reason) => reason.to_owned(),
                },
            ]
        })
        .collect();
    table(
        &[
            "BUREAU", "HEALTH", "LAST IN", "LAST OUT", "INBOUND", "BACKLOG", "FAIL 5M", "CIRCUIT",
            "PAUSED", "DEAD", "CERT", "REASON",
        ],
        &rows,
    )
}

fn dead_letters(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let attempts = d["attempts"].as_array().map_or(0, Vec::len);
            let last = d["attempts"]
                .as_array()
                .and_then(|a| a.last())
                .map_or_else(|| "-".to_owned(), |a| text(&a["error"]));
            vec![
                text(&d["id"]),
                text(&d["subscriber"]),
                text(&d["message_id"]),
                when(&d["dead_at"]),
                attempts.to_string(),
                last,
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no dead letters\n".to_owned();
    }
    table(
        &[
            "ID",
            "SUBSCRIBER",
            "MESSAGE",
            "DEAD AT",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn dead_letter(body: &Value) -> String {
    let mut out = format!(
        "dead letter {} to {}, message {}, dead since {}\n",
        text(&body["id"]),
        text(&body["subscriber"]),
        text(&body["message_id"]),
        when(&body["dead_at"])
    );
    let rows: Vec<Vec<String>> = body["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| vec![(i + 1).to_string(), when(&a["at"]), text(&a["error"])])
        .collect();
    out.push_str(&table(&["#", "AT", "ERROR"], &rows));
    out
}

fn timeline(body: &Value) -> String {
    let mut out = format!(
        "{} {}: {} event(s){}\n",
        text(&body["kind"]),
        text(&body["key"]),
        text(&body["events"]),
        if body["truncated"] == Value::Bool(true) {
            " (the latest only)"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = body["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                when(&e["at"]),
                text(&e["kind"]),
                text(&e["bureau"]),
                text(&e["message_id"]),
                text(&e["detail"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &["AT", "WHAT", "BUREAU", "MESSAGE", "DETAIL"],
        &rows,
    ));
    out
}

/// The bulletin as two tables: the bureaus, then the flows.
fn report(body: &Value) -> String {
    let empty = Vec::new();
    let mut out = format!(
        "monthly bulletin {}{} (calendar {})\n\n",
        text(&body["month"]),
        if body["closed"] == Value::Bool(true) {
            ", closed"
        } else {
            ", so far"
        },
        text(&body["calendar"])
    );
    let rows: Vec<Vec<String>> = body["bureaus"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|b| {
            vec![
                text(&b["bureau"]),
                text(&b["received"]),
                text(&b["accepted"]),
                text(&b["approved"]),
                text(&b["rejected"]),
                text(&b["withdrawn"]),
                format!("{} ({}%)", text(&b["on_time"]), text(&b["on_time_percent"])),
                text(&b["average_working_days"]),
                text(&b["p90_working_days"]),
                text(&b["supplement_requests"]),
                b["open_overdue"].as_array().map_or(0, Vec::len).to_string(),
                text(&b["dead_letters"]),
                text(&b["entered_late"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "BUREAU",
            "RECEIVED",
            "ACCEPTED",
            "APPROVED",
            "REJECTED",
            "WITHDRAWN",
            "ON TIME",
            "AVG WD",
            "P90 WD",
            "SUPPLEMENTS",
            "OVERDUE",
            "DEAD",
            "LATE",
        ],
        &rows,
    ));
    let rows: Vec<Vec<String>> = body["flows"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|f| {
            vec![
                text(&f["flow"]),
                text(&f["opened"]),
                text(&f["approved"]),
                text(&f["rejected"]),
                text(&f["withdrawn"]),
                text(&f["terminated"]),
                text(&f["within_limit"]),
                text(&f["open_overdue"]),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "FLOW",
            "OPENED",
            "APPROVED",
            "REJECTED",
            "WITHDRAWN",
            "TERMINATED",
            "WITHIN LIMIT",
            "OPEN OVERDUE",
        ],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let text = table(
            &["A", "BB"],
            &[
                vec!["long cell".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(text, "A          BB\nlong cell  x\ns          y\n");
    }

    #[test]
    fn chinese_cells_take_two_columns_a_character() {
        let text = table(
            &["NAME", "CODE"],
            &[
                vec!["上海某某公司".into(), "1".into()],
                vec!["ab".into(), "2".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME          CODE\n上海某某公司  1\nab            2\n"
        );
    }
}
