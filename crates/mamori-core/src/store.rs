//! The embedded store: one SQLite file (WAL mode) in the state directory.
//!
//! Tamper evidence. A key (32 random bytes, a file of mode 0600 outside the database)
//! authenticates two things with HMAC-SHA-256:
//! * the baseline: one MAC over every row in primary-key order, stored in `baseline_sig`;
//!   changing, adding or deleting any row without the key breaks it;
//! * the event log: each stored finding carries `mac = HMAC(key, seq ‖ previous mac ‖ body)`,
//!   a hash chain, so editing or removing a finding in the middle breaks every later link.
//!
//! What it does not stop: an attacker with the key (root on the host can read it; keep a
//! copy of the key and periodic exports elsewhere), or a rollback of the whole database to
//! an older consistent copy.

use crate::{Error, Finding, Result};
use hmac::{Hmac, KeyInit, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// The schema migrations, in order. `PRAGMA user_version` records how many ran.
/// Never edit a shipped migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: baseline, signature, copies, event log, key-value meta.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE baseline (
        root TEXT NOT NULL, path BLOB NOT NULL, ftype INTEGER NOT NULL,
        size INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,
        dev INTEGER NOT NULL, blake3 BLOB, sha256 BLOB, flags INTEGER NOT NULL, link BLOB,
        PRIMARY KEY (root, path)) WITHOUT ROWID;
     CREATE TABLE baseline_copy (
        root TEXT NOT NULL, path BLOB NOT NULL, codec TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (root, path)) WITHOUT ROWID;
     CREATE TABLE baseline_sig (
        id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL,
        created_at TEXT NOT NULL, note TEXT NOT NULL, entries INTEGER NOT NULL, mac BLOB NOT NULL);
     CREATE TABLE events (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
        time TEXT NOT NULL, detected_at TEXT NOT NULL, path TEXT, body TEXT NOT NULL,
        mac BLOB NOT NULL);
     CREATE INDEX events_kind_time ON events(kind, time);",
    // 2: signed documents (page inventories, detector state that must not be forged).
    "CREATE TABLE doc (name TEXT PRIMARY KEY, body BLOB NOT NULL, updated_at TEXT NOT NULL,
        mac BLOB NOT NULL);",
];

/// A signed document read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doc {
    Missing,
    Valid {
        body: Vec<u8>,
        updated_at: String,
    },
    /// Present, but its signature does not verify: edited outside mamori.
    Tampered,
}

/// The kind of a file system entry in the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FileType {
    File = 0,
    Dir = 1,
    Symlink = 2,
    /// FIFO, socket or device: tracked by metadata, never opened.
    Special = 3,
}

impl FileType {
    fn from_i64(v: i64) -> FileType {
        match v {
            0 => FileType::File,
            1 => FileType::Dir,
            2 => FileType::Symlink,
            _ => FileType::Special,
        }
    }
}

/// Flags on a baseline entry.
pub mod flags {
    /// Under a critical path of its root.
    pub const CRITICAL: u32 = 1;
    /// A compressed known-good copy is stored.
    pub const COPY: u32 = 2;
    /// Could not be read when baselined: metadata only.
    pub const UNREADABLE: u32 = 4;
    /// Larger than `max_hash_size`: metadata only.
    pub const TOO_LARGE: u32 = 8;
}

/// One file as it was when the baseline was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineEntry {
    pub root: String,
    /// Path relative to the root, raw bytes (file names need not be UTF-8).
    pub path: Vec<u8>,
    pub ftype: FileType,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub blake3: Option<[u8; 32]>,
    pub sha256: Option<[u8; 32]>,
    pub flags: u32,
    /// Symlink target.
    pub link: Option<Vec<u8>>,
}

impl BaselineEntry {
    /// The canonical bytes the baseline MAC covers.
    fn feed(&self, mac: &mut HmacSha256) {
        let mut buf = Vec::with_capacity(128 + self.path.len());
        for part in [self.root.as_bytes(), &self.path[..]] {
            buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
            buf.extend_from_slice(part);
        }
        buf.push(self.ftype as u8);
        buf.extend_from_slice(&self.size.to_le_bytes());
        buf.extend_from_slice(&self.mode.to_le_bytes());
        buf.extend_from_slice(&self.uid.to_le_bytes());
        buf.extend_from_slice(&self.gid.to_le_bytes());
        buf.extend_from_slice(&self.mtime_ns.to_le_bytes());
        buf.extend_from_slice(&self.ctime_ns.to_le_bytes());
        buf.extend_from_slice(&self.ino.to_le_bytes());
        buf.extend_from_slice(&self.dev.to_le_bytes());
        for h in [&self.blake3, &self.sha256] {
            match h {
                Some(h) => {
                    buf.push(1);
                    buf.extend_from_slice(h);
                }
                None => buf.push(0),
            }
        }
        buf.extend_from_slice(&self.flags.to_le_bytes());
        match &self.link {
            Some(l) => {
                buf.push(1);
                buf.extend_from_slice(&(l.len() as u64).to_le_bytes());
                buf.extend_from_slice(l);
            }
            None => buf.push(0),
        }
        mac.update(&buf);
    }

    pub fn is_critical(&self) -> bool {
        self.flags & flags::CRITICAL != 0
    }
}

/// The signature record of the current baseline.
#[derive(Debug, Clone)]
pub struct BaselineSig {
    pub generation: i64,
    pub created_at: String,
    pub note: String,
    pub entries: i64,
}

/// The result of loading the baseline.
#[derive(Debug)]
pub struct LoadedBaseline {
    pub entries: Vec<BaselineEntry>,
    pub sig: BaselineSig,
    /// `None` when the MAC verified; otherwise why not.
    pub tampered: Option<String>,
}

/// The state of the event log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    Ok { events: u64 },
    Broken { at_seq: i64, reason: String },
}

/// The 32-byte secret that signs the baseline and chains the events.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

impl Key {
    /// Load the key file, or create it (mode 0600, in a 0700 directory) if absent.
    /// A key readable by group or others is refused.
    pub fn load_or_create(path: &Path) -> Result<Key> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let meta = std::fs::metadata(path).map_err(|e| Error::Read {
                    path: path.into(),
                    source: e,
                })?;
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(Error::Key {
                        path: path.into(),
                        msg: format!(
                            "mode {:o} lets others read it; run `chmod 600 {}`",
                            meta.permissions().mode() & 0o777,
                            path.display()
                        ),
                    });
                }
                let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::Key {
                    path: path.into(),
                    msg: format!(
                        "expected 32 bytes, found {}; restore it from your backup",
                        bytes.len()
                    ),
                })?;
                Ok(Key(arr))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    create_private_dir(dir)?;
                }
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).map_err(|e| Error::Key {
                    path: path.into(),
                    msg: format!("no randomness from the OS: {e}"),
                })?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| Error::Write {
                        path: path.into(),
                        source: e,
                    })?;
                f.write_all(&k)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::Write {
                        path: path.into(),
                        source: e,
                    })?;
                Ok(Key(k))
            }
            Err(e) => Err(Error::Read {
                path: path.into(),
                source: e,
            }),
        }
    }

    /// A key from raw bytes (tests, and key rotation tools).
    pub fn from_bytes(k: [u8; 32]) -> Key {
        Key(k)
    }

    fn mac(&self, domain: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(domain);
        m
    }
}

/// Create a directory (and parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Write {
            path: dir.into(),
            source: e,
        })
}

/// The store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    key: Key,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if needed) the store at `path` and run pending migrations.
    pub fn open(path: &Path, key: Key) -> Result<Store> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let se = |e| Error::Store {
            path: path.into(),
            source: e,
        };
        let conn = Connection::open(path).map_err(se)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(se)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(se)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(se)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(se)?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        let mut store = Store {
            conn,
            path: path.into(),
            key,
        };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Store {
            path: self.path.clone(),
            source: e,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::StoreTooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| Error::Store {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "user_version", (i + 1) as i64))
                .and_then(|_| tx.commit())
                .map_err(|e| Error::Store {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    // ---- meta ----------------------------------------------------------------------

    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn meta_delete(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    // ---- signed documents ------------------------------------------------------------

    fn doc_mac(&self, name: &str, body: &[u8]) -> HmacSha256 {
        let mut m = self.key.mac(b"mamori doc v1\0");
        m.update(&(name.len() as u64).to_le_bytes());
        m.update(name.as_bytes());
        m.update(body);
        m
    }

    /// Store `body` under `name`, signed with the store key (replaces any previous one).
    pub fn doc_put(&self, name: &str, body: &[u8]) -> Result<()> {
        let mac = self.doc_mac(name, body).finalize().into_bytes().to_vec();
        let now = chrono::Utc::now().to_rfc3339();
        self.conn
            .execute(
                "INSERT INTO doc(name, body, updated_at, mac) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET body = excluded.body,
                   updated_at = excluded.updated_at, mac = excluded.mac",
                params![name, body, now, mac],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The document stored under `name`, if any. A body whose signature does not verify
    /// (edited outside mamori) is `Doc::Tampered`, never returned as if it were good.
    pub fn doc_get(&self, name: &str) -> Result<Doc> {
        let row: Option<(Vec<u8>, String, Vec<u8>)> = self
            .conn
            .query_row(
                // CAST: a body re-typed as TEXT by hand still reads (and fails its MAC).
                "SELECT CAST(body AS BLOB), updated_at, CAST(mac AS BLOB) FROM doc WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(match row {
            None => Doc::Missing,
            Some((body, updated_at, mac)) => {
                if self.doc_mac(name, &body).verify_slice(&mac).is_ok() {
                    Doc::Valid { body, updated_at }
                } else {
                    Doc::Tampered
                }
            }
        })
    }

    /// Names of stored documents starting with `prefix`.
    pub fn doc_names(&self, prefix: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM doc WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([prefix], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn doc_delete(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM doc WHERE name = ?1", [name])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    // ---- baseline ------------------------------------------------------------------

    /// Replace the whole baseline with `entries` and `copies` (root, path, codec, data),
    /// and sign it. Atomic: on error the old baseline stays.
    pub fn baseline_replace(
        &mut self,
        note: &str,
        entries: &[BaselineEntry],
        copies: &[(String, Vec<u8>, &str, Vec<u8>)],
    ) -> Result<BaselineSig> {
        let path = self.path.clone();
        let se = |e| Error::Store {
            path: path.clone(),
            source: e,
        };
        let tx = self.conn.transaction().map_err(se)?;
        tx.execute("DELETE FROM baseline", []).map_err(se)?;
        tx.execute("DELETE FROM baseline_copy", []).map_err(se)?;
        // Rows in key order: appends to the table's B-tree, and the order the MAC covers,
        // so it is computed from memory instead of reading the table back.
        let mut sorted: Vec<&BaselineEntry> = entries.iter().collect();
        sorted.sort_unstable_by(|a, b| (&a.root, &a.path).cmp(&(&b.root, &b.path)));
        Self::insert_rows(&tx, sorted.iter().copied(), copies).map_err(se)?;
        let sig = Self::sign_with(&self.key, &tx, note, sorted.len() as i64, |mac| {
            for e in &sorted {
                e.feed(mac);
            }
            Ok(())
        })
        .map_err(se)?;
        tx.commit().map_err(se)?;
        Ok(sig)
    }

    /// Approve individual changes: upsert `entries` (with their `copies`), remove
    /// `removed` (root, path) rows and their copies, then re-sign the whole baseline.
    /// The caller must have verified the current baseline first: this signs what is there.
    pub fn baseline_update(
        &mut self,
        note: &str,
        entries: &[BaselineEntry],
        copies: &[(String, Vec<u8>, &str, Vec<u8>)],
        removed: &[(String, Vec<u8>)],
    ) -> Result<BaselineSig> {
        let path = self.path.clone();
        let se = |e| Error::Store {
            path: path.clone(),
            source: e,
        };
        let tx = self.conn.transaction().map_err(se)?;
        {
            let mut del = tx
                .prepare("DELETE FROM baseline WHERE root = ?1 AND path = ?2")
                .map_err(se)?;
            let mut delc = tx
                .prepare("DELETE FROM baseline_copy WHERE root = ?1 AND path = ?2")
                .map_err(se)?;
            for (root, p) in removed.iter().chain(
                entries
                    .iter()
                    .map(|e| (e.root.clone(), e.path.clone()))
                    .collect::<Vec<_>>()
                    .iter(),
            ) {
                del.execute(params![root, p]).map_err(se)?;
                delc.execute(params![root, p]).map_err(se)?;
            }
            Self::insert_rows(&tx, entries.iter(), copies).map_err(se)?;
        }
        let sig = Self::sign_tx(&self.key, &tx, note).map_err(se)?;
        tx.commit().map_err(se)?;
        Ok(sig)
    }

    /// The current baseline generation (0 if none): cheap, for daemons to notice changes.
    pub fn baseline_generation(&self) -> Result<i64> {
        self.conn
            .prepare_cached("SELECT COALESCE(MAX(generation), 0) FROM baseline_sig")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Insert baseline rows and their copies (inside the caller's transaction).
    fn insert_rows<'e>(
        tx: &rusqlite::Transaction<'_>,
        entries: impl Iterator<Item = &'e BaselineEntry>,
        copies: &[(String, Vec<u8>, &str, Vec<u8>)],
    ) -> rusqlite::Result<()> {
        let mut ins = tx.prepare(
            "INSERT INTO baseline (root, path, ftype, size, mode, uid, gid, mtime_ns,
             ctime_ns, ino, dev, blake3, sha256, flags, link)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
        )?;
        for e in entries {
            ins.execute(params![
                e.root,
                e.path,
                e.ftype as u8 as i64,
                e.size as i64,
                e.mode as i64,
                e.uid as i64,
                e.gid as i64,
                e.mtime_ns,
                e.ctime_ns,
                e.ino as i64,
                e.dev as i64,
                e.blake3.as_ref().map(|h| &h[..]),
                e.sha256.as_ref().map(|h| &h[..]),
                e.flags as i64,
                e.link,
            ])?;
        }
        let mut cp =
            tx.prepare("INSERT INTO baseline_copy (root, path, codec, data) VALUES (?1,?2,?3,?4)")?;
        for (root, p, codec, data) in copies {
            cp.execute(params![root, p, codec, data])?;
        }
        Ok(())
    }

    fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<BaselineEntry> {
        let h = |v: Option<Vec<u8>>| v.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        Ok(BaselineEntry {
            root: r.get(0)?,
            path: r.get(1)?,
            ftype: FileType::from_i64(r.get(2)?),
            size: r.get::<_, i64>(3)? as u64,
            mode: r.get::<_, i64>(4)? as u32,
            uid: r.get::<_, i64>(5)? as u32,
            gid: r.get::<_, i64>(6)? as u32,
            mtime_ns: r.get(7)?,
            ctime_ns: r.get(8)?,
            ino: r.get::<_, i64>(9)? as u64,
            dev: r.get::<_, i64>(10)? as u64,
            blake3: h(r.get(11)?),
            sha256: h(r.get(12)?),
            flags: r.get::<_, i64>(13)? as u32,
            link: r.get(14)?,
        })
    }

    const SELECT_BASELINE: &'static str =
        "SELECT root, path, ftype, size, mode, uid, gid, mtime_ns, ctime_ns, ino, dev,
         blake3, sha256, flags, link FROM baseline ORDER BY root, path";

    /// The MAC over a signature record's own fields; the rows are fed after it.
    fn sig_mac(key: &Key, sig: &BaselineSig) -> HmacSha256 {
        let mut mac = key.mac(b"mamori-baseline-v1\0");
        mac.update(&sig.generation.to_le_bytes());
        mac.update(&sig.entries.to_le_bytes());
        mac.update(&(sig.created_at.len() as u64).to_le_bytes());
        mac.update(sig.created_at.as_bytes());
        mac.update(&(sig.note.len() as u64).to_le_bytes());
        mac.update(sig.note.as_bytes());
        mac
    }

    /// Sign what the baseline table holds now, inside `tx`: next generation, row count,
    /// MAC, and the one signature record written.
    fn sign_tx(key: &Key, tx: &Connection, note: &str) -> rusqlite::Result<BaselineSig> {
        let entries: i64 = tx.query_row("SELECT COUNT(*) FROM baseline", [], |r| r.get(0))?;
        Self::sign_with(key, tx, note, entries, |mac| {
            let mut st = tx.prepare(Self::SELECT_BASELINE)?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                Self::row_to_entry(r)?.feed(mac);
            }
            Ok(())
        })
    }

    /// Sign with the rows fed by `feed`, which must give exactly the table's `entries`
    /// rows in `SELECT_BASELINE` order (what [`Store::baseline_load`] verifies).
    fn sign_with(
        key: &Key,
        tx: &Connection,
        note: &str,
        entries: i64,
        feed: impl FnOnce(&mut HmacSha256) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<BaselineSig> {
        let generation: i64 = tx.query_row(
            "SELECT COALESCE(MAX(generation), 0) + 1 FROM baseline_sig",
            [],
            |r| r.get(0),
        )?;
        let sig = BaselineSig {
            generation,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            note: note.to_string(),
            entries,
        };
        let mut mac = Self::sig_mac(key, &sig);
        feed(&mut mac)?;
        let mac = mac.finalize().into_bytes().to_vec();
        tx.execute(
            "INSERT INTO baseline_sig (id, generation, created_at, note, entries, mac)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET generation = excluded.generation,
               created_at = excluded.created_at, note = excluded.note,
               entries = excluded.entries, mac = excluded.mac",
            params![sig.generation, sig.created_at, sig.note, sig.entries, mac],
        )?;
        Ok(sig)
    }

    /// Load the baseline and verify its signature in the same pass. `Ok(None)` if no
    /// baseline was ever taken.
    pub fn baseline_load(&self) -> Result<Option<LoadedBaseline>> {
        let mut entries = Vec::new();
        Ok(self
            .baseline_each(|e| entries.push(e))?
            .map(|(sig, tampered)| LoadedBaseline {
                entries,
                sig,
                tampered,
            }))
    }

    /// The baseline one entry at a time, in (root, path) order, verifying its signature
    /// on the way: for a caller that keeps only what it needs (`check` keeps the entries
    /// that changed, not a 100k-file shop's every row). `Ok(None)` if no baseline was
    /// ever taken; else the signature record and, if it failed, why. The verdict comes
    /// at the end: a caller must not act on the entries before it has it.
    pub fn baseline_each(
        &self,
        mut each: impl FnMut(BaselineEntry),
    ) -> Result<Option<(BaselineSig, Option<String>)>> {
        let sig_row: Option<(BaselineSig, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT generation, created_at, note, entries, mac FROM baseline_sig WHERE id = 1",
                [],
                |r| {
                    Ok((
                        BaselineSig {
                            generation: r.get(0)?,
                            created_at: r.get(1)?,
                            note: r.get(2)?,
                            entries: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((sig, stored_mac)) = sig_row else {
            let row_count: i64 = self
                .conn
                .query_row("SELECT COUNT(*) FROM baseline", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if row_count == 0 {
                return Ok(None);
            }
            return Ok(Some((
                BaselineSig {
                    generation: 0,
                    created_at: String::new(),
                    note: String::new(),
                    entries: row_count,
                },
                Some("the baseline has rows but no signature record".into()),
            )));
        };
        let mut mac = Self::sig_mac(&self.key, &sig);
        let mut n = 0i64;
        {
            let mut st = self
                .conn
                .prepare(Self::SELECT_BASELINE)
                .map_err(|e| self.err(e))?;
            let mut rows = st.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let e = Self::row_to_entry(r).map_err(|e| self.err(e))?;
                e.feed(&mut mac);
                n += 1;
                each(e);
            }
        }
        let tampered = if mac.verify_slice(&stored_mac).is_err() {
            Some(if sig.entries != n {
                format!(
                    "signature does not verify: {} rows signed, {n} present",
                    sig.entries
                )
            } else {
                "signature does not verify: a baseline row was changed".to_string()
            })
        } else {
            None
        };
        Ok(Some((sig, tampered)))
    }

    /// The stored known-good copy of a file: (codec, data).
    pub fn baseline_copy(&self, root: &str, path: &[u8]) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .prepare_cached("SELECT codec, data FROM baseline_copy WHERE root = ?1 AND path = ?2")
            .and_then(|mut st| {
                st.query_row(params![root, path], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    // ---- event log -----------------------------------------------------------------

    fn chain_mac(key: &Key, seq: i64, prev: &[u8], body: &str) -> HmacSha256 {
        let mut m = key.mac(b"mamori-events-v1\0");
        m.update(&seq.to_le_bytes());
        m.update(&(prev.len() as u64).to_le_bytes());
        m.update(prev);
        m.update(body.as_bytes());
        m
    }

    /// Append findings to the event log, chaining each to the previous one.
    pub fn append_findings(&mut self, findings: &[Finding]) -> Result<()> {
        if findings.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let se = |e| Error::Store {
            path: path.clone(),
            source: e,
        };
        let tx = self.conn.transaction().map_err(se)?;
        // Statements cached: a daemon appends a finding or a few at a time, thousands in
        // a burst, and parsing the SQL each time was a tenth of its work there.
        let (mut seq, mut prev): (i64, Vec<u8>) = tx
            .prepare_cached("SELECT seq, mac FROM events ORDER BY seq DESC LIMIT 1")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(se)?
            .unwrap_or((0, Vec::new()));
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO events (seq, id, kind, severity, time, detected_at, path, body, mac)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                )
                .map_err(se)?;
            for f in findings {
                seq += 1;
                let body = f.to_json_line();
                let mac = Self::chain_mac(&self.key, seq, &prev, &body)
                    .finalize()
                    .into_bytes()
                    .to_vec();
                ins.execute(params![
                    seq,
                    f.id,
                    f.kind.as_str(),
                    f.severity.as_str(),
                    f.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    f.detected_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    f.path,
                    body,
                    mac,
                ])
                .map_err(se)?;
                prev = mac;
            }
        }
        tx.prepare_cached(
            "INSERT INTO meta(key, value) VALUES ('events_head', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .and_then(|mut st| st.execute(params![[&seq.to_le_bytes()[..], &prev[..]].concat()]))
        .map_err(se)?;
        tx.commit().map_err(se)
    }

    /// Walk the whole event chain and check every link and the recorded head.
    pub fn verify_events(&self) -> Result<ChainStatus> {
        let mut st = self
            .conn
            .prepare("SELECT seq, body, mac FROM events ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut prev: Vec<u8> = Vec::new();
        let mut expect_seq = 1i64;
        let mut n = 0u64;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let seq: i64 = r.get(0).map_err(|e| self.err(e))?;
            let body: String = r.get(1).map_err(|e| self.err(e))?;
            let mac: Vec<u8> = r.get(2).map_err(|e| self.err(e))?;
            if seq != expect_seq {
                return Ok(ChainStatus::Broken {
                    at_seq: expect_seq,
                    reason: format!("event {expect_seq} is missing (next is {seq})"),
                });
            }
            if Self::chain_mac(&self.key, seq, &prev, &body)
                .verify_slice(&mac)
                .is_err()
            {
                return Ok(ChainStatus::Broken {
                    at_seq: seq,
                    reason: format!("event {seq} was altered or its chain link is wrong"),
                });
            }
            prev = mac;
            expect_seq += 1;
            n += 1;
        }
        let head = self.meta_get("events_head")?;
        let actual = [&(expect_seq - 1).to_le_bytes()[..], &prev[..]].concat();
        match head {
            None if n == 0 => Ok(ChainStatus::Ok { events: 0 }),
            Some(h) if h == actual => Ok(ChainStatus::Ok { events: n }),
            _ => Ok(ChainStatus::Broken {
                at_seq: expect_seq,
                reason: "the newest events were removed (the chain head does not match)".into(),
            }),
        }
    }

    /// Stored findings, newest last; `kind` filters by a kind prefix (`file.`).
    pub fn events(&self, kind_prefix: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT body FROM (SELECT seq, body FROM events WHERE kind LIKE ?1 || '%'
                 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![kind_prefix.unwrap_or(""), limit as i64], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))
    }

    /// Raw access for tests and maintenance tools.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Severity};

    fn entry(p: &str) -> BaselineEntry {
        BaselineEntry {
            root: "/srv/shop".into(),
            path: p.as_bytes().to_vec(),
            ftype: FileType::File,
            size: 10,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            ctime_ns: 2,
            ino: 3,
            dev: 4,
            blake3: Some([7; 32]),
            sha256: None,
            flags: 0,
            link: None,
        }
    }

    fn open(dir: &Path) -> Store {
        let key = Key::load_or_create(&dir.join("k")).unwrap();
        Store::open(&dir.join("s/m.db"), key).unwrap()
    }

    #[test]
    fn signed_documents_round_trip_and_detect_edits() {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path());
        assert_eq!(s.doc_get("page/a").unwrap(), Doc::Missing);
        s.doc_put("page/a", b"{\"x\":1}").unwrap();
        s.doc_put("page/b", b"2").unwrap();
        s.doc_put("other", b"3").unwrap();
        match s.doc_get("page/a").unwrap() {
            Doc::Valid { body, .. } => assert_eq!(body, b"{\"x\":1}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.doc_names("page/").unwrap(), vec!["page/a", "page/b"]);
        // An edit outside mamori (body swapped, or a body moved to another name).
        s.connection()
            .execute("UPDATE doc SET body = x'00' WHERE name = 'page/a'", [])
            .unwrap();
        assert_eq!(s.doc_get("page/a").unwrap(), Doc::Tampered);
        s.connection()
            .execute("UPDATE doc SET name = 'page/c' WHERE name = 'page/b'", [])
            .unwrap();
        assert_eq!(s.doc_get("page/c").unwrap(), Doc::Tampered);
        s.doc_delete("page/c").unwrap();
        assert_eq!(s.doc_get("page/c").unwrap(), Doc::Missing);
    }

    #[test]
    fn key_is_private_and_stable() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys/k");
        let a = Key::load_or_create(&p).unwrap();
        let b = Key::load_or_create(&p).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Key::load_or_create(&p), Err(Error::Key { .. })));
    }

    #[test]
    fn baseline_round_trip_and_tamper() {
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        assert!(s.baseline_load().unwrap().is_none());
        let entries = vec![entry("a.php"), entry("b.php")];
        s.baseline_replace("init", &entries, &[]).unwrap();
        let b = s.baseline_load().unwrap().unwrap();
        assert_eq!(b.entries, entries);
        assert!(b.tampered.is_none());
        // Edit one row by hand.
        s.connection()
            .execute(
                "UPDATE baseline SET size = 11 WHERE path = X'612E706870'",
                [],
            )
            .unwrap();
        assert!(s.baseline_load().unwrap().unwrap().tampered.is_some());
        // Re-sign by rebuilding: fine again.
        s.baseline_replace("approve", &entries, &[]).unwrap();
        let b = s.baseline_load().unwrap().unwrap();
        assert!(b.tampered.is_none());
        assert_eq!(b.sig.generation, 2);
        // Delete a row.
        s.connection()
            .execute("DELETE FROM baseline WHERE path = X'622E706870'", [])
            .unwrap();
        assert!(s.baseline_load().unwrap().unwrap().tampered.is_some());
    }

    #[test]
    fn a_baseline_signed_from_memory_verifies_whatever_order_it_came_in() {
        // The MAC of a replaced baseline is computed from the entries in Rust's order; the
        // load verifies it in SQLite's ORDER BY order. Bytes ≥ 0x80, prefixes, separators
        // and several roots must sort the same in both.
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        let mut entries = Vec::new();
        for (root, p) in [
            ("/srv/shop", &b"a/b"[..]),
            ("/srv/shop", b"a-b"),
            ("/srv/shop", b"a"),
            ("/srv/shop", b"\xff\xfe"),
            ("/srv/shop", b"Z"),
            ("/srv/shop", b"\xe3\x81\x82.php"),
            ("/srv/shop", b""),
            ("/srv/shop2", b"a"),
            ("/srv/sho", b"z"),
            ("/srv/ショップ", b"a"),
        ] {
            let mut e = entry("x");
            e.root = root.into();
            e.path = p.to_vec();
            entries.push(e);
        }
        s.baseline_replace("init", &entries, &[]).unwrap();
        let b = s.baseline_load().unwrap().unwrap();
        assert!(b.tampered.is_none(), "{:?}", b.tampered);
        assert_eq!(b.entries.len(), entries.len());
        // And a re-sign that reads the table back agrees with it.
        s.baseline_update("again", &[], &[], &[]).unwrap();
        assert!(s.baseline_load().unwrap().unwrap().tampered.is_none());
    }

    #[test]
    fn update_resigns() {
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        s.baseline_replace("init", &[entry("a"), entry("b")], &[])
            .unwrap();
        let mut a2 = entry("a");
        a2.size = 99;
        let sig = s
            .baseline_update(
                "approve a",
                &[a2.clone(), entry("c")],
                &[],
                &[("/srv/shop".into(), b"b".to_vec())],
            )
            .unwrap();
        assert_eq!(sig.generation, 2);
        assert_eq!(s.baseline_generation().unwrap(), 2);
        let b = s.baseline_load().unwrap().unwrap();
        assert!(b.tampered.is_none());
        assert_eq!(b.entries, vec![a2, entry("c")]);
    }

    #[test]
    fn a_different_key_does_not_verify() {
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        s.baseline_replace("init", &[entry("a")], &[]).unwrap();
        drop(s);
        let s2 = Store::open(&d.path().join("s/m.db"), Key::from_bytes([9; 32])).unwrap();
        assert!(s2.baseline_load().unwrap().unwrap().tampered.is_some());
    }

    fn finding(n: u32) -> Finding {
        Finding::new(
            Kind::FileModified,
            Severity::High,
            chrono::Utc::now(),
            "h",
            format!("f{n}"),
        )
    }

    #[test]
    fn event_chain_detects_edits_and_truncation() {
        let d = tempfile::tempdir().unwrap();
        let mut s = open(d.path());
        assert_eq!(s.verify_events().unwrap(), ChainStatus::Ok { events: 0 });
        s.append_findings(&[finding(1), finding(2)]).unwrap();
        s.append_findings(&[finding(3)]).unwrap();
        assert_eq!(s.verify_events().unwrap(), ChainStatus::Ok { events: 3 });
        assert_eq!(s.events(Some("file."), 10).unwrap().len(), 3);

        s.connection()
            .execute(
                "UPDATE events SET body = replace(body, 'f2', 'ok') WHERE seq = 2",
                [],
            )
            .unwrap();
        assert!(matches!(
            s.verify_events().unwrap(),
            ChainStatus::Broken { at_seq: 2, .. }
        ));

        let d2 = tempfile::tempdir().unwrap();
        let mut s = open(d2.path());
        s.append_findings(&[finding(1), finding(2), finding(3)])
            .unwrap();
        s.connection()
            .execute("DELETE FROM events WHERE seq = 3", [])
            .unwrap();
        assert!(matches!(
            s.verify_events().unwrap(),
            ChainStatus::Broken { .. }
        ));
    }

    #[test]
    fn migrations_are_recorded() {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path());
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let s = open(d.path());
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }
}
