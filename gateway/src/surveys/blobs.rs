//! Content-addressed file storage for survey results: each distinct content is stored once,
//! named by its SHA-256, in a folder beside the database (or a folder every node shares).
//!
//! Writes stream: chunks go to a temporary file while they are hashed, and the file is renamed
//! to its hash when complete, so memory does not grow with the file. Reads re-check the hash
//! before anything is served: a tampered blob is an error, never content.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Size of the chunks files are read in.
const CHUNK: usize = 64 * 1024;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The file system failed.
    #[error("blob store {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// No blob with this digest.
    #[error("no blob {0}")]
    NotFound(String),
    /// The stored content no longer has its digest: it was altered on disk.
    #[error("blob {sha256} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The digest it is stored under.
        sha256: String,
        /// What its content hashes to now.
        actual: String,
    },
    /// The upload stream failed.
    #[error("upload interrupted: {0}")]
    Upload(String),
    /// The upload exceeded its size limit.
    #[error("file larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A stored blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// False when the same content was already stored (deduplicated).
    pub new: bool,
}

/// A folder of content-addressed blobs.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// A blob store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where a digest's blob lives: `DIR/ab/abcdef…`.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    /// Stores a stream of chunks, at most `limit` bytes, and returns its digest. The content is
    /// on disk (fsynced) before this returns.
    pub async fn put<S, E>(&self, mut chunks: S, limit: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp_dir = self.dir.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(io(&tmp_dir))?;
        let tmp = tmp_dir.join(format!("upload-{}", uuid::Uuid::now_v7().simple()));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| BlobError::Upload(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io(&tmp))?;
            }
            file.sync_all().await.map_err(io(&tmp))?;
            Ok((format!("{:x}", hasher.finalize()), size))
        }
        .await;
        let (sha256, size) = match result {
            Ok(done) => done,
            Err(error) => {
                remove_leftover(&tmp).await;
                return Err(error);
            }
        };
        let path = self.path_of(&sha256);
        if tokio::fs::try_exists(&path).await.map_err(io(&path))? {
            remove_leftover(&tmp).await;
            return Ok(StoredBlob {
                sha256,
                size,
                new: false,
            });
        }
        let parent = path.parent().unwrap_or(&self.dir).to_owned();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io(&parent))?;
        tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
        // The rename is durable once the folder is synced; the publication commits only after.
        tokio::fs::File::open(&parent)
            .await
            .map_err(io(&parent))?
            .sync_all()
            .await
            .map_err(io(&parent))?;
        Ok(StoredBlob {
            sha256,
            size,
            new: true,
        })
    }

    /// Hashes a stored blob and checks it still has its digest.
    pub async fn verify(&self, sha256: &str) -> Result<u64, BlobError> {
        let path = self.path_of(sha256);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(sha256.to_owned()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buffer).await.map_err(io(&path))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buffer[..n]);
        }
        let actual = format!("{:x}", hasher.finalize());
        if actual != sha256 {
            return Err(BlobError::Corrupt {
                sha256: sha256.to_owned(),
                actual,
            });
        }
        Ok(size)
    }

    /// Opens a blob for streaming after verifying it. The stream hashes again as it goes and
    /// ends with an error if the content changed in between, so a client never receives a
    /// complete response with altered content.
    pub async fn open(
        &self,
        sha256: &str,
    ) -> Result<
        (
            u64,
            impl Stream<Item = Result<Bytes, std::io::Error>> + use<>,
        ),
        BlobError,
    > {
        let size = self.verify(sha256).await?;
        let path = self.path_of(sha256);
        let file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
        let expected = sha256.to_owned();
        let state = (file, Sha256::new(), false);
        let stream = futures_util::stream::unfold(state, move |(mut file, mut hasher, done)| {
            let expected = expected.clone();
            async move {
                if done {
                    return None;
                }
                let mut buffer = vec![0u8; CHUNK];
                match file.read(&mut buffer).await {
                    Ok(0) => {
                        let actual = format!("{:x}", hasher.clone().finalize());
                        if actual == expected {
                            None
                        } else {
                            let error = std::io::Error::other(format!(
                                "blob {expected} changed while it was read"
                            ));
                            Some((Err(error), (file, hasher, true)))
                        }
                    }
                    Ok(n) => {
                        buffer.truncate(n);
                        hasher.update(&buffer);
                        Some((Ok(Bytes::from(buffer)), (file, hasher, false)))
                    }
                    Err(error) => Some((Err(error), (file, hasher, true))),
                }
            }
        });
        Ok((size, stream))
    }
}

/// Removes a temporary upload file that is no longer needed; a failure only leaves garbage in
/// `tmp/` (logged), never a wrong blob.
async fn remove_leftover(tmp: &Path) {
    if let Err(error) = tokio::fs::remove_file(tmp).await {
        tracing::warn!(
            message = "temporary upload file not removed",
            path = %tmp.display(),
            error = &error as &dyn std::error::Error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn stores_once_reads_back_and_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("blobs-{}", uuid::Uuid::now_v7().simple()));
        let store = BlobStore::new(&dir);
        let first = store
            .put(chunks(&[b"hello ", b"world"]), 1 << 20)
            .await
            .unwrap();
        assert!(first.new);
        assert_eq!(first.size, 11);
        let again = store.put(chunks(&[b"hello world"]), 1 << 20).await.unwrap();
        assert_eq!(again.sha256, first.sha256);
        assert!(!again.new, "the same content is stored once");
        let (size, stream) = store.open(&first.sha256).await.unwrap();
        assert_eq!(size, 11);
        let read: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        assert_eq!(read.concat(), b"hello world");

        std::fs::write(store.path_of(&first.sha256), b"hello w0rld").unwrap();
        assert!(matches!(
            store.open(&first.sha256).await,
            Err(BlobError::Corrupt { .. })
        ));
        assert!(matches!(
            store.put(chunks(&[b"too long"]), 4).await,
            Err(BlobError::TooLarge { limit: 4 })
        ));
        assert!(matches!(
            store.verify(&"0".repeat(64)).await,
            Err(BlobError::NotFound(_))
        ));
        let leftovers = std::fs::read_dir(dir.join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "failed uploads leave nothing behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
