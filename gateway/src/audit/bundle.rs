//! Evidence bundles: what the exchange holds about one message, case or bureau, tied to signed
//! checkpoints, in one tar file a bureau checks with the exchange CA and standard tools.
//!
//! Layout (documented for bureaus in the README, "Evidence bundles"):
//! - `README.txt`: how to check it by hand.
//! - `MANIFEST.sha256`: `sha256sum -c` lines for every other file.
//! - `chains/<chain>/<seq>.json`: each selected entry's content, the exact hashed bytes.
//! - `chains/<chain>/links.txt`: `start <hash>` (the `prev_hash` of the first selected entry),
//!   then `<seq> <content_sha256>` for every entry from there to the checkpoint's head; folding
//!   `h = SHA-256(h ‖ content_sha256)` over them yields the signed head hash.
//! - `chains/<chain>/checkpoint`: the id of the checkpoint that signed that head.
//! - `checkpoints/<id>.json`, `.sig` (raw signature bytes, DER for ECDSA), `.pem` (the node
//!   certificate).
//! - `payloads/<sha256>.bin`: each ingested message exactly as received.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use schemas::{BureauCaseId, BureauId, MessageId};

use super::AuditError;
use super::checkpoint::Body;
use super::verify::checked_body;
use crate::clock::Millis;
use crate::store::audit::{self, AuditRow, StoredCheckpoint};
use crate::store::{Store, TimelineKey};

/// What a bundle is about.
#[derive(Debug, Clone)]
pub enum Selector {
    /// One event, by the gateway's message id.
    Message(MessageId),
    /// Every event of a bureau case id.
    Case(BureauCaseId),
    /// Every entry concerning a bureau in `[from, to)`.
    Bureau {
        /// The bureau.
        bureau: BureauId,
        /// From (Unix ms).
        from: Millis,
        /// To (Unix ms).
        to: Millis,
    },
}

/// At most this many entries go into one bundle (narrow the selection beyond).
pub const MAX_ENTRIES: usize = 100_000;

/// What an export wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Exported {
    /// Selected entries.
    pub entries: usize,
    /// Link lines, all chains.
    pub links: usize,
    /// Raw payloads.
    pub payloads: usize,
    /// Checkpoints.
    pub checkpoints: usize,
}

async fn message_entries<S: Store>(
    store: &S,
    id: &MessageId,
    out: &mut BTreeMap<(String, i64), AuditRow>,
) -> Result<(), AuditError> {
    for row in store.audit_of_message(id, audit::MAX_AUDIT_PAGE).await? {
        if row.kind == "route"
            && let Some(seq) = serde_json::from_str::<serde_json::Value>(&row.content)
                .ok()
                .and_then(|c| c["detail"]["ingest_seq"].as_i64())
            && let Some(ingest) = store.audit_entry(&row.chain, seq).await?
        {
            out.insert((ingest.chain.clone(), ingest.seq), ingest);
        }
        out.insert((row.chain.clone(), row.seq), row);
    }
    Ok(())
}

/// The entries a selector names.
async fn select<S: Store>(
    store: &S,
    selector: &Selector,
) -> Result<BTreeMap<(String, i64), AuditRow>, AuditError> {
    let mut out = BTreeMap::new();
    match selector {
        Selector::Message(id) => message_entries(store, id, &mut out).await?,
        Selector::Case(case) => {
            let events = store
                .timeline(TimelineKey::Case(case.clone()), 1_000)
                .await?;
            for event in events {
                message_entries(store, &event.event.message_id, &mut out).await?;
            }
        }
        Selector::Bureau { bureau, from, to } => {
            let mut after = None;
            loop {
                let page = store
                    .audit_of_bureau(*bureau, *from, *to, after.clone(), audit::MAX_AUDIT_PAGE)
                    .await?;
                if let Some(last) = page.last() {
                    after = Some((last.at, last.chain.clone(), last.seq));
                }
                let done = page.len() < audit::MAX_AUDIT_PAGE;
                for row in page {
                    out.insert((row.chain.clone(), row.seq), row);
                }
                if done || out.len() > MAX_ENTRIES {
                    break;
                }
            }
        }
    }
    if out.len() > MAX_ENTRIES {
        return Err(AuditError::Refused(format!(
            "more than {MAX_ENTRIES} entries: narrow the selection"
        )));
    }
    Ok(out)
}

fn add(
    tar: &mut tar::Builder<std::fs::File>,
    manifest: &mut Vec<(String, String)>,
    path: &str,
    bytes: &[u8],
) -> Result<(), AuditError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, path, bytes)
        .map_err(AuditError::io(format!("writing {path} into the bundle")))?;
    manifest.push((audit::sha256_hex(bytes), path.to_owned()));
    Ok(())
}

const README: &str = "Evidence bundle of the interdepartmental data-exchange gateway.

Check it with the exchange CA certificate (ca.pem) and standard tools:

  sha256sum -c MANIFEST.sha256
  # each checkpoint: the node certificate was issued by the exchange CA, and signed it
  openssl verify -CAfile ca.pem checkpoints/ID.pem
  openssl x509 -in checkpoints/ID.pem -pubkey -noout > node.pub
  openssl dgst -sha256 -verify node.pub -signature checkpoints/ID.sig checkpoints/ID.json
  # each chain: fold the links and compare with the signed head of that chain
  h=$(sed -n 's/^start //p' chains/CHAIN/links.txt)
  while read seq sha; do h=$(printf %s%s \"$h\" \"$sha\" | sha256sum | cut -c1-64); done \\
    < <(grep -v '^start ' chains/CHAIN/links.txt)
  echo \"$h\"   # equals the head hash of CHAIN in checkpoints/$(cat chains/CHAIN/checkpoint).json
  # each entry: its bytes are the content whose SHA-256 the links list
  sha256sum chains/CHAIN/SEQ.json
  # each ingested payload: its SHA-256 is the `sha256` of its ingest entry
  sha256sum payloads/*.bin

Or: gateway audit verify --bundle THIS_FILE --ca ca.pem
";

/// Writes the bundle of `selector` to `out`.
pub async fn export<S: Store>(
    store: &S,
    selector: &Selector,
    out: &Path,
) -> Result<Exported, AuditError> {
    let selected = select(store, selector).await?;
    if selected.is_empty() {
        return Err(AuditError::Refused(
            "the trail holds no entry for this selection".into(),
        ));
    }
    let mut per_chain: BTreeMap<String, Vec<&AuditRow>> = BTreeMap::new();
    for ((chain, _), row) in &selected {
        per_chain.entry(chain.clone()).or_default().push(row);
    }
    // For each chain, the first checkpoint (oldest first) that signed a head at or after its
    // last selected entry; only those are kept.
    let mut chosen: BTreeMap<String, (i64, crate::store::audit::Link)> = BTreeMap::new();
    let mut checkpoints: Vec<StoredCheckpoint> = Vec::new();
    let mut after = 0;
    loop {
        let page = store.checkpoints(after, 1_000).await?;
        for checkpoint in &page {
            after = checkpoint.id;
            let body = match checked_body(checkpoint, None) {
                Ok(body) => body,
                Err(problem) => {
                    // Never tie evidence to it; `verify` reports it.
                    tracing::warn!(
                        message = "a checkpoint does not verify; the bundle does not use it",
                        checkpoint = checkpoint.id,
                        problem
                    );
                    continue;
                }
            };
            let mut used = false;
            for (chain, rows) in &per_chain {
                if chosen.contains_key(chain) {
                    continue;
                }
                let (first, last) = (rows[0].seq, rows[rows.len() - 1].seq);
                if let Some(signed) = body
                    .chains
                    .iter()
                    .find(|s| s.chain == *chain && s.head.seq >= last && s.start.seq < first)
                {
                    chosen.insert(chain.clone(), (checkpoint.id, signed.head.clone()));
                    used = true;
                }
            }
            if used {
                checkpoints.push(checkpoint.clone());
            }
        }
        if page.len() < 1_000 || chosen.len() == per_chain.len() {
            break;
        }
    }
    let file = std::fs::File::create(out)
        .map_err(AuditError::io(format!("creating {}", out.display())))?;
    let mut tar = tar::Builder::new(file);
    let mut manifest = Vec::new();
    let mut exported = Exported::default();
    add(&mut tar, &mut manifest, "README.txt", README.as_bytes())?;
    for (chain, rows) in &per_chain {
        let first = rows[0];
        let last = rows[rows.len() - 1].seq;
        let Some((checkpoint_id, head)) = chosen.get(chain).cloned() else {
            return Err(AuditError::Refused(format!(
                "entry {last} of chain {chain} is newer than the last checkpoint: export again \
                 after the next one (audit.checkpoint_interval_seconds)"
            )));
        };
        let mut links = format!("start {}\n", first.prev_hash);
        let mut at = first.seq - 1;
        while at < head.seq {
            let page = store
                .audit_entries(chain, at, (head.seq - at).min(1_000) as usize)
                .await?;
            if page.is_empty() {
                return Err(AuditError::Refused(format!(
                    "chain {chain} ends before entry {}, which checkpoint {checkpoint_id} signed",
                    head.seq
                )));
            }
            for row in &page {
                links.push_str(&format!("{} {}\n", row.seq, row.content_sha256));
                exported.links += 1;
                at = row.seq;
            }
        }
        add(
            &mut tar,
            &mut manifest,
            &format!("chains/{chain}/links.txt"),
            links.as_bytes(),
        )?;
        add(
            &mut tar,
            &mut manifest,
            &format!("chains/{chain}/checkpoint"),
            format!("{checkpoint_id}\n").as_bytes(),
        )?;
        for row in rows {
            add(
                &mut tar,
                &mut manifest,
                &format!("chains/{chain}/{}.json", row.seq),
                row.content.as_bytes(),
            )?;
            exported.entries += 1;
            if row.kind == "ingest" {
                let content: serde_json::Value = serde_json::from_str(&row.content)
                    .map_err(|e| AuditError::Refused(format!("entry {chain}#{}: {e}", row.seq)))?;
                let key = content["detail"]["idempotency_key"]
                    .as_str()
                    .unwrap_or_default();
                let sha = content["detail"]["sha256"].as_str().unwrap_or_default();
                let sender = row
                    .bureau
                    .as_deref()
                    .and_then(|b| b.parse::<BureauId>().ok());
                // A bundle without the payload its ingest entry names would fail its own check:
                // refused here, saying which.
                let found = match sender {
                    Some(sender) => store.raw_message(sender, key).await?,
                    None => None,
                };
                let Some((_, body)) = found else {
                    return Err(AuditError::Refused(format!(
                        "entry {chain}#{}: the store no longer holds the message it records",
                        row.seq
                    )));
                };
                add(
                    &mut tar,
                    &mut manifest,
                    &format!("payloads/{sha}.bin"),
                    &body,
                )?;
                exported.payloads += 1;
            }
        }
    }
    for checkpoint in &checkpoints {
        let id = checkpoint.id;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&checkpoint.signature)
            .map_err(|e| AuditError::Refused(format!("checkpoint {id}: {e}")))?;
        add(
            &mut tar,
            &mut manifest,
            &format!("checkpoints/{id}.json"),
            checkpoint.body.as_bytes(),
        )?;
        add(
            &mut tar,
            &mut manifest,
            &format!("checkpoints/{id}.sig"),
            &signature,
        )?;
        add(
            &mut tar,
            &mut manifest,
            &format!("checkpoints/{id}.pem"),
            checkpoint.certificate.as_bytes(),
        )?;
        exported.checkpoints += 1;
    }
    let manifest: String = manifest
        .iter()
        .map(|(sha, path)| format!("{sha}  {path}\n"))
        .collect();
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "MANIFEST.sha256", manifest.as_bytes())
        .map_err(AuditError::io("writing the manifest"))?;
    tar.into_inner()
        .and_then(|f| f.sync_all())
        .map_err(AuditError::io(format!("finishing {}", out.display())))?;
    Ok(exported)
}

/// What an offline check of a bundle found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BundleReport {
    /// Entries whose hashes tie to a signed head.
    pub entries: usize,
    /// Payloads that match their ingest entries.
    pub payloads: usize,
    /// Checkpoints verified against the CA.
    pub checkpoints: usize,
    /// The first problem, if any.
    pub broken: Option<String>,
}

/// Checks a bundle with nothing but the exchange CA certificate.
pub fn verify(bundle: &Path, ca_pem: &[u8]) -> Result<BundleReport, AuditError> {
    let file = std::fs::File::open(bundle)
        .map_err(AuditError::io(format!("opening {}", bundle.display())))?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive
        .entries()
        .map_err(AuditError::io(format!("reading {}", bundle.display())))?
    {
        let mut entry = entry.map_err(AuditError::io(format!("reading {}", bundle.display())))?;
        let path = entry
            .path()
            .map_err(AuditError::io("reading a path"))?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(AuditError::io(format!("reading {path}")))?;
        files.insert(path, bytes);
    }
    let mut report = BundleReport::default();
    match check(&files, ca_pem, &mut report) {
        Ok(()) => {}
        Err(problem) => report.broken = Some(problem),
    }
    Ok(report)
}

fn check(
    files: &BTreeMap<String, Vec<u8>>,
    ca_pem: &[u8],
    report: &mut BundleReport,
) -> Result<(), String> {
    let text = |path: &str| -> Result<String, String> {
        let bytes = files
            .get(path)
            .ok_or_else(|| format!("{path} is missing"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{path} is not UTF-8"))
    };
    // The manifest names every file, with its hash.
    let manifest = text("MANIFEST.sha256")?;
    let mut listed = BTreeSet::new();
    for line in manifest.lines() {
        let (sha, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("MANIFEST.sha256: bad line {line:?}"))?;
        let bytes = files
            .get(path)
            .ok_or_else(|| format!("{path} is listed but missing"))?;
        if audit::sha256_hex(bytes) != sha {
            return Err(format!(
                "{path}: its SHA-256 is not the manifest's (it was changed)"
            ));
        }
        listed.insert(path.to_owned());
    }
    if let Some(extra) = files
        .keys()
        .find(|p| *p != "MANIFEST.sha256" && !listed.contains(*p))
    {
        return Err(format!("{extra} is not in the manifest"));
    }
    // Checkpoints: signed by a node certificate the CA issued.
    let mut bodies: BTreeMap<String, Body> = BTreeMap::new();
    for path in files
        .keys()
        .filter(|p| p.starts_with("checkpoints/") && p.ends_with(".json"))
    {
        let id = path
            .trim_start_matches("checkpoints/")
            .trim_end_matches(".json")
            .to_owned();
        let body = text(path)?;
        let signature = files
            .get(&format!("checkpoints/{id}.sig"))
            .ok_or_else(|| format!("checkpoints/{id}.sig is missing"))?;
        let checkpoint = StoredCheckpoint {
            id: 0,
            node: String::new(),
            at: 0,
            body,
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
            certificate: text(&format!("checkpoints/{id}.pem"))?,
        };
        let body =
            checked_body(&checkpoint, Some(ca_pem)).map_err(|e| format!("checkpoint {id}: {e}"))?;
        report.checkpoints += 1;
        bodies.insert(id, body);
    }
    // Chains: the links fold to the signed head; each entry's bytes are in the links.
    let chains: BTreeSet<String> = files
        .keys()
        .filter_map(|p| {
            p.strip_prefix("chains/")?
                .strip_suffix("/links.txt")
                .map(str::to_owned)
        })
        .collect();
    let mut ingest_hashes = Vec::new();
    for chain in &chains {
        let links = text(&format!("chains/{chain}/links.txt"))?;
        let id = text(&format!("chains/{chain}/checkpoint"))?
            .trim()
            .to_owned();
        let body = bodies
            .get(&id)
            .ok_or_else(|| format!("chain {chain}: checkpoint {id} is missing"))?;
        let signed = body
            .chains
            .iter()
            .find(|c| c.chain == *chain)
            .ok_or_else(|| format!("checkpoint {id} does not sign chain {chain}"))?;
        let mut lines = links.lines();
        let mut hash = lines
            .next()
            .and_then(|l| l.strip_prefix("start "))
            .ok_or_else(|| format!("chain {chain}: links.txt does not begin with its start"))?
            .to_owned();
        let mut shas = BTreeMap::new();
        let mut seq = 0;
        for line in lines {
            let (s, sha) = line
                .split_once(' ')
                .ok_or_else(|| format!("chain {chain}: bad link {line:?}"))?;
            seq = s
                .parse()
                .map_err(|_| format!("chain {chain}: bad link {line:?}"))?;
            hash = audit::link_hash(&hash, sha);
            shas.insert(seq, sha.to_owned());
        }
        if seq != signed.head.seq || hash != signed.head.hash {
            return Err(format!(
                "chain {chain}: the links fold to entry {seq} hash {hash}, checkpoint {id} signed entry {} hash {}",
                signed.head.seq, signed.head.hash
            ));
        }
        let prefix = format!("chains/{chain}/");
        for (path, bytes) in files
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && p.ends_with(".json"))
        {
            let seq: i64 = path[prefix.len()..path.len() - 5]
                .parse()
                .map_err(|_| format!("{path}: not an entry"))?;
            let sha = audit::sha256_hex(bytes);
            if shas.get(&seq) != Some(&sha) {
                return Err(format!(
                    "{path}: its SHA-256 {sha} is not in the chain's links (the entry was changed)"
                ));
            }
            let content: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("{path}: {e}"))?;
            if content["chain"] != *chain || content["seq"] != seq {
                return Err(format!("{path}: names another place in the trail"));
            }
            if content["kind"] == "ingest" {
                ingest_hashes.push((
                    path.clone(),
                    content["detail"]["sha256"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
            report.entries += 1;
        }
    }
    for (path, sha) in ingest_hashes {
        let payload = format!("payloads/{sha}.bin");
        let bytes = files
            .get(&payload)
            .ok_or_else(|| format!("{path}: its payload {payload} is missing"))?;
        if audit::sha256_hex(bytes) != sha {
            return Err(format!(
                "{payload}: its SHA-256 is not its ingest entry's (it was changed)"
            ));
        }
        report.payloads += 1;
    }
    Ok(())
}
