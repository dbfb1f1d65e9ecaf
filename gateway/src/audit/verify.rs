//! `gateway audit verify --store …`: every chain walked from its start to its head, page by
//! page (memory stays flat however long the trail), each link recomputed, each entry's columns
//! compared with its hashed content, and every signed checkpoint checked against the entries it
//! names. The first broken link of each chain is named: chain, entry, what differs.

use std::collections::BTreeMap;

use super::AuditError;
use super::checkpoint::Body;
use super::sign;
use crate::store::Store;
use crate::store::audit::{Link, StoredCheckpoint, check_entry};

/// One broken link (or checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Broken {
    /// The chain (empty for a checkpoint that does not verify).
    pub chain: String,
    /// The entry (or the checkpoint's id).
    pub seq: i64,
    /// What differs.
    pub what: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.chain.is_empty() {
            write!(f, "checkpoint {}: {}", self.seq, self.what)
        } else {
            write!(f, "chain {} entry {}: {}", self.chain, self.seq, self.what)
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Chains walked.
    pub chains: usize,
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: usize,
    /// The first broken link of each broken chain, and every checkpoint that does not verify.
    pub broken: Vec<Broken>,
}

impl Report {
    /// True when nothing is broken.
    pub fn is_intact(&self) -> bool {
        self.broken.is_empty()
    }
}

const PAGE: usize = 1_000;

/// At most this many signed heads (and starts) are kept per chain, the latest: memory stays
/// bounded however many checkpoints there are. The latest signed head alone already covers every
/// entry before it; earlier ones only narrow down where a rewrite begins.
const SIGNED_PER_CHAIN: usize = 10_000;

fn keep(signed: &mut Signed, seq: i64, hash: String, id: i64) {
    signed.insert(seq, (hash, id));
    while signed.len() > SIGNED_PER_CHAIN {
        signed.pop_first();
    }
}

/// A signed (seq, hash) a chain must hold, and the checkpoint that signed it.
type Signed = BTreeMap<i64, (String, i64)>;

/// Checks a checkpoint's signature (and, with `ca_pem`, its certificate); its body.
pub fn checked_body(checkpoint: &StoredCheckpoint, ca_pem: Option<&[u8]>) -> Result<Body, String> {
    let body = Body::parse(&checkpoint.body)?;
    sign::verify(
        &checkpoint.certificate,
        ca_pem,
        body.at,
        &body.alg,
        checkpoint.body.as_bytes(),
        &checkpoint.signature,
    )
    .map_err(|e| e.to_string())?;
    Ok(body)
}

/// Verifies the whole trail of `store` against its checkpoints and `extra` ones (e.g. a node's
/// checkpoint file), the node certificates against `ca_pem` when given.
pub async fn store<S: Store>(
    store: &S,
    ca_pem: Option<&[u8]>,
    extra: Vec<StoredCheckpoint>,
) -> Result<Report, AuditError> {
    chains(store, ca_pem, extra, |_| true).await
}

/// [`store`] for the chains `wanted` accepts (e.g. one node's: `gw-2/…`).
pub async fn chains<S: Store>(
    store: &S,
    ca_pem: Option<&[u8]>,
    extra: Vec<StoredCheckpoint>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Report, AuditError> {
    let mut report = Report::default();
    let mut heads: BTreeMap<String, Signed> = BTreeMap::new();
    let mut starts: BTreeMap<String, Signed> = BTreeMap::new();
    let mut check =
        |checkpoint: &StoredCheckpoint, report: &mut Report| match checked_body(checkpoint, ca_pem)
        {
            Ok(body) => {
                report.checkpoints += 1;
                for chain in body.chains {
                    keep(
                        heads.entry(chain.chain.clone()).or_default(),
                        chain.head.seq,
                        chain.head.hash,
                        checkpoint.id,
                    );
                    keep(
                        starts.entry(chain.chain).or_default(),
                        chain.start.seq,
                        chain.start.hash,
                        checkpoint.id,
                    );
                }
            }
            Err(what) => report.broken.push(Broken {
                chain: String::new(),
                seq: checkpoint.id,
                what,
            }),
        };
    let mut after = 0;
    loop {
        let page = store.checkpoints(after, PAGE).await?;
        for checkpoint in &page {
            check(checkpoint, &mut report);
            after = checkpoint.id;
        }
        if page.len() < PAGE {
            break;
        }
    }
    for checkpoint in &extra {
        check(checkpoint, &mut report);
    }

    let mut chains = store.audit_chains().await?;
    chains.retain(|c| wanted(&c.chain));
    heads.retain(|chain, _| wanted(chain));
    for signed in heads.keys() {
        if !chains.iter().any(|c| &c.chain == signed) {
            let (seq, (_, id)) = heads[signed]
                .iter()
                .next_back()
                .map_or((0, (String::new(), 0)), |(s, v)| (*s, v.clone()));
            report.broken.push(Broken {
                chain: signed.clone(),
                seq,
                what: format!("checkpoint {id} signed this chain, the store has none of it"),
            });
        }
    }
    for chain in chains {
        report.chains += 1;
        let signed = heads.remove(&chain.chain).unwrap_or_default();
        let signed_starts = starts.remove(&chain.chain).unwrap_or_default();
        if chain.start.seq > 0 {
            let confirmed = signed_starts
                .get(&chain.start.seq)
                .or_else(|| signed.get(&chain.start.seq))
                .is_some_and(|(hash, _)| *hash == chain.start.hash);
            if !confirmed {
                report.broken.push(Broken {
                    chain: chain.chain.clone(),
                    seq: chain.start.seq,
                    what: "the chain starts at a pruned anchor no checkpoint signed".into(),
                });
                continue;
            }
        }
        let mut prev = chain.start.clone();
        // The last entry a checkpoint signed that still matched: a rewrite lies after it.
        let mut last_confirmed = chain.start.seq;
        let mut broken = None;
        'walk: loop {
            let page = store.audit_entries(&chain.chain, prev.seq, PAGE).await?;
            for row in &page {
                let mut verdict = check_entry(&chain.chain, &prev, row);
                if verdict.is_ok()
                    && let Some((hash, id)) = signed.get(&row.seq)
                    && *hash != row.hash
                {
                    verdict = Err(format!(
                        "checkpoint {id} signed hash {hash} for this entry, the store's is {}: \
                         the chain was rewritten after entry {last_confirmed}",
                        row.hash
                    ));
                } else if verdict.is_ok() && signed.contains_key(&row.seq) {
                    last_confirmed = row.seq;
                }
                if let Err(what) = verdict {
                    broken = Some(Broken {
                        chain: chain.chain.clone(),
                        seq: prev.seq + 1,
                        what,
                    });
                    break 'walk;
                }
                report.entries += 1;
                prev = Link {
                    seq: row.seq,
                    hash: row.hash.clone(),
                };
            }
            if page.len() < PAGE {
                break;
            }
        }
        if broken.is_none()
            && let Some((&seq, (_, id))) = signed.iter().next_back()
            && seq > prev.seq
        {
            broken = Some(Broken {
                chain: chain.chain.clone(),
                seq: prev.seq + 1,
                what: format!(
                    "the chain ends at entry {}, checkpoint {id} signed entry {seq}: entries were removed from its end",
                    prev.seq
                ),
            });
        }
        report.broken.extend(broken);
    }
    Ok(report)
}
