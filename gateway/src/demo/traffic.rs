//! What the demo's bureaus do: send their traffic (valid messages, invalid ones, re-sends),
//! pull a feed, publish survey results, and read the results they are notified of. Each
//! counts what it saw in its [`Tally`](super::tally::Tally).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use adapters::Adapter;
use hyper::StatusCode;
use schemas::BureauId;
use tokio::sync::{mpsc, watch};

use super::tally::{Publications, SurveyReads, Tallies};
use crate::sim::{BureauClient, Inbox, Reply, UploadFile, survey_metadata};

/// Makes an invalid message the way bureau systems do: a credit code whose check character is
/// wrong, or a project code whose serial was garbled into "55B個" (as in the seed document).
fn corrupt(adapter: &dyn Adapter, rng: &mut fastrand::Rng) -> adapters::Encoded {
    let event = adapters::sample::case_event(rng, adapter.bureau());
    let encoded = adapter
        .encode(&event)
        .unwrap_or_else(|_| unreachable!("samples encode"));
    let (syntax_encoding, text) = match adapter.format().syntax {
        adapters::Syntax::Xml { encoding } => (
            Some(encoding),
            encoding.decode(&encoded.body).0.into_owned(),
        ),
        adapters::Syntax::Json => (None, String::from_utf8_lossy(&encoded.body).into_owned()),
    };
    let Some(case) = event.case() else {
        unreachable!("the generator makes case events")
    };
    let text = if rng.bool() {
        let code = case.applicant.credit_code.as_str();
        let wrong = if code.ends_with('0') { '1' } else { '0' };
        text.replacen(code, &format!("{}{wrong}", &code[..17]), 1)
    } else {
        let code = case.project.code.as_str();
        text.replacen(code, &format!("{}55B個", &code[..18]), 1)
    };
    let body = match syntax_encoding {
        Some(encoding) => encoding.encode(&text).0.into_owned(),
        None => text.into_bytes(),
    };
    adapters::Encoded {
        content_type: encoded.content_type,
        body,
    }
}

/// Why a message was refused, for the summary: the status, and the first error's canonical
/// field and problem type when the answer is a problem with errors.
fn rejection(reply: &Reply) -> String {
    reply
        .parse::<serde_json::Value>("a problem")
        .ok()
        .and_then(|problem| {
            let first = problem.get("errors")?.get(0)?;
            Some(format!(
                "{} {} ({})",
                reply.status.as_u16(),
                first.get("field")?.as_str()?,
                first.get("problem")?.get("type")?.as_str()?
            ))
        })
        .unwrap_or_else(|| reply.status.to_string())
}

/// One connection of a bureau's system sending its traffic at `rate` messages a second until
/// `until`.
pub(super) async fn send_traffic(
    client: Arc<BureauClient>,
    seed: u64,
    rate: u32,
    until: Instant,
    tallies: Tallies,
    mut stop: watch::Receiver<bool>,
) {
    let Some(adapter) = client.bureau().and_then(adapters::for_bureau) else {
        return;
    };
    let tally = &tallies[&adapter.bureau()];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut last: Option<(adapters::Encoded, String)> = None;
    while Instant::now() < until && !*stop.borrow() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        // 3% re-sends of the previous message with the same key: the gateway must answer as
        // before and deliver nothing twice.
        let (message, key, resend) = match (&last, rng.u32(0..100)) {
            (Some((message, key)), 0..3) => (message.clone(), key.clone(), true),
            (_, roll) => {
                let message = if roll < 10 {
                    corrupt(adapter, &mut rng)
                } else {
                    adapter.sample(&mut rng)
                };
                (message, uuid::Uuid::now_v7().to_string(), false)
            }
        };
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if resend {
            tally.resent.fetch_add(1, Ordering::Relaxed);
        }
        match client.post_message(&message, Some(&key)).await {
            Ok(reply) if reply.status == StatusCode::ACCEPTED => {
                if resend {
                    tally.duplicate_answers.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.accepted.fetch_add(1, Ordering::Relaxed);
                    if let Ok(receipt) = reply.parse::<crate::store::Receipt>("a receipt") {
                        tally
                            .promised
                            .fetch_add(receipt.deliveries as u64, Ordering::Relaxed);
                    }
                    last = Some((message, key));
                }
            }
            Ok(reply) => tally.reject(rejection(&reply)),
            Err(error) => tally.reject(format!("transport error: {error}")),
        }
    }
}

/// A pull bureau's system: long-polls its feed, records the batch in its inbox, and
/// acknowledges it — except every fifth batch, which it "forgets", so those items come back.
pub(super) async fn pull_feed(
    client: Arc<BureauClient>,
    inbox: Arc<Inbox>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batches = 0u64;
    while !*stop.borrow() {
        let feed = tokio::select! {
            feed = client.feed(2, 200) => feed,
            _ = stop.changed() => return,
        };
        let feed = match feed {
            Ok(Some(feed)) => feed,
            Ok(None) => continue,
            Err(crate::sim::SimError::Decode { source, .. }) => {
                inbox.problem(format!("undecodable feed: {source}"));
                continue;
            }
            Err(_) => {
                // The gateway is restarting or overloaded: ask again a little later.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        inbox.record("", feed.events);
        batches += 1;
        if batches.is_multiple_of(5) {
            continue; // not acknowledged: the items come back on the next fetch
        }
        if let Some(cursor) = feed.cursor {
            let _ = client.ack(&cursor).await;
        }
    }
}

/// The hook of a bureau's inbox that hands every survey notice to its reader
/// ([`read_surveys`]), so reading never holds up a delivery.
pub(super) fn notices_to(
    reads: Arc<SurveyReads>,
    queue: mpsc::UnboundedSender<schemas::SurveyNotice>,
) -> impl Fn(&schemas::Event) + Send + Sync + 'static {
    move |event| {
        if let Some(notice) = event.survey() {
            reads.notices.fetch_add(1, Ordering::Relaxed);
            reads.queued.fetch_add(1, Ordering::Relaxed);
            if queue.send(notice.clone()).is_err() {
                // The reader is gone (the demo is ending): nothing left to wait for.
                reads.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// A bureau's system reading each survey result it is notified of, and downloading its files
/// (multi-survey-in-one reuse: it uses the shared survey instead of commissioning its own).
pub(super) async fn read_surveys(
    client: Arc<BureauClient>,
    reads: Arc<SurveyReads>,
    mut notices: mpsc::UnboundedReceiver<schemas::SurveyNotice>,
) {
    while let Some(notice) = notices.recv().await {
        let id = notice.survey_id.as_str();
        let mut outcomes = vec![client.read_survey(id).await];
        for file in &notice.result.files {
            outcomes.push(client.read_survey_file(id, file.sha256.as_str()).await);
        }
        for outcome in outcomes {
            let counter = match outcome {
                Ok(reply) if reply.status.is_success() => &reads.fetches,
                _ => &reads.failures,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        reads.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Planning publishes survey results on behalf of surveying agencies: every two seconds a new
/// result, every third one a correction (a new version) of an earlier result that reuses one
/// of its files unchanged (stored once).
pub(super) async fn publish_surveys(
    client: Arc<BureauClient>,
    until: Instant,
    publications: Arc<Publications>,
    tallies: Tallies,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = fastrand::Rng::with_seed(99);
    let mut earlier: Vec<(schemas::SurveyResult, Vec<UploadFile>)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    while Instant::now() < until && !*stop.borrow() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let correction = !earlier.is_empty() && rng.u32(0..3) == 0;
        let corrected = rng.usize(..earlier.len().max(1));
        let (mut result, mut files) = if correction {
            earlier[corrected].clone()
        } else {
            let notice = adapters::sample::survey_notice(&mut rng);
            let files = notice
                .result
                .files
                .iter()
                .map(|f| {
                    let size = rng.usize(16 * 1024..256 * 1024);
                    let content: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
                    (f.name.as_str().to_owned(), f.media_type.clone(), content)
                })
                .collect();
            (notice.result, files)
        };
        if correction {
            // A corrected figure and a corrected first file; the other files are unchanged.
            result
                .figures
                .truncate(result.figures.len().saturating_sub(1));
            if let Some((_, _, content)) = files.first_mut() {
                content.push(b'\n');
            }
        }
        let reply = match client
            .publish_survey(&survey_metadata(&result), &files)
            .await
        {
            Ok(reply) if reply.status == StatusCode::CREATED => reply,
            _ => {
                publications.failures.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        // A replay of an earlier publication (same content, same key) adds nothing.
        if reply.headers.contains_key("idempotent-replayed") {
            continue;
        }
        let answer: serde_json::Value = reply.parse("a publication").unwrap_or_default();
        if let Some(id) = answer.get("survey_id").and_then(|v| v.as_str()) {
            let mut ids = publications.ids.lock().unwrap_or_else(|p| p.into_inner());
            ids.push(id.to_owned());
        }
        // The notices are deliveries like any other: they count in the loss check.
        let deliveries = answer
            .get("deliveries")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        tallies[&BureauId::Planning]
            .promised
            .fetch_add(deliveries, Ordering::Relaxed);
        if correction {
            publications.corrections.fetch_add(1, Ordering::Relaxed);
            // The next correction of this result starts from this version.
            earlier[corrected] = (result, files);
        } else {
            earlier.push((result, files));
        }
    }
}
