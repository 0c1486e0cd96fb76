//! Crypto-shredding: personal fields of events are stored sealed, under
//! keys that erasure deletes.
//!
//! # Keys
//!
//! Every person has a 32-byte random data key, created in the same
//! transaction as their `PersonRegistered` event (or, for someone
//! registered before personal data was sealed, with the first personal
//! data written about them) and kept in `person_keys`
//! (migration 0013) wrapped by the [`MasterKey`] with XChaCha20-Poly1305
//! (the person's id as associated data, so a wrapped key cannot be moved to
//! another person). The master key comes from configuration and never
//! reaches the database; each wrapped key records the id of the master key
//! that wrapped it ([`MasterKey::id`], a digest), so a rotation can rewrap
//! keys ([`Vault::rotate`]) without touching events, and a server started
//! with another master key stops with a clear message ([`Vault::check`]).
//!
//! Erasure ([`Vault::seal_batch`] on a `PersonErased` event) replaces the
//! key with a tombstone in the same transaction as the event: no key can be
//! made again for that person, and everything sealed under the old one is
//! unreadable for good, in the log and in every backup taken afterwards.
//!
//! # Sealed fields
//!
//! The fields [`tandem_domain::personal`] lists are replaced, on append, by
//!
//! ```json
//! {"$sealed": "<base64url: 24-byte nonce, then ciphertext and tag>", "k": ["<person id>", …]}
//! ```
//!
//! where `k` lists (sorted) the people the field concerns, and the content
//! key is HKDF-SHA-256 over the data keys of all of them: erasing any one
//! of them makes the field unreadable. The plaintext is the field's JSON
//! value; the associated data binds the ciphertext to its place (stream id,
//! stored event type and schema version, the field's path, `k`), so a
//! sealed value copied into another event or field does not open.
//!
//! # Reading
//!
//! Every read of events (a stream, the global read, the tail, replays and
//! rebuilds, the command service's loads) unseals before upcasting, with
//! one query per batch of rows for the keys it needs
//! (`WHERE person_id = ANY($1)`), and keeps no key past the batch: an
//! erasure is effective for every process at once. A field whose key is
//! gone reads as `null` (the domain reads it as erased). A field that does
//! not open under a key that exists is an integrity error
//! ([`StoreError::Integrity`]), never a silent erasure: the log or the key
//! table was altered, or the master key is not the one that wrapped the
//! keys.
//!
//! # The process's vault
//!
//! Every [`crate::EventStore`] of a process seals and unseals with the same
//! master key, so the binary installs its [`Vault`] once at start
//! ([`Vault::install`]), before any store exists. A process that installs
//! none (a test) gets a vault with a random master key of its own, which
//! dies with the process.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use sqlx::PgConnection;
use tandem_domain::personal::{PersonalField, personal_fields};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::event::NewEvent;

/// The key of a sealed value's ciphertext.
const SEALED: &str = "$sealed";
/// The key of the people a sealed value concerns.
const CONCERNS: &str = "k";
/// The event type that gives its person (its stream) a data key.
pub const KEY_CREATED_BY: &str = "PersonRegistered";
/// The event type that deletes its person's data key.
pub const KEY_DELETED_BY: &str = "PersonErased";

const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const WRAP_AAD: &[u8] = b"tandem person key v1";
const CONTENT_INFO: &[u8] = b"tandem content key v1";
const SEAL_AAD: &[u8] = b"tandem sealed v1";

/// A 32-byte master key. Never printed (`Debug` shows its id only).
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A master key from its bytes.
    #[must_use]
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        let id = crate::ServerSecret::new(bytes.to_vec())
            .map(|s| s.mac_hex("tandem master key id", &[]))
            .unwrap_or_default();
        MasterKey { bytes, id: id[..16.min(id.len())].to_owned() }
    }

    /// A fresh random master key.
    ///
    /// # Errors
    /// [`StoreError::Vault`] when the operating system has no randomness.
    pub fn generate() -> Result<Self> {
        Ok(Self::new(random()?))
    }

    /// Parses a key written as 64 hex digits or as base64 of 32 bytes
    /// (surrounding white space ignored).
    ///
    /// # Errors
    /// [`StoreError::Vault`] naming what is wrong (never the key).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or_default()).collect()
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| STANDARD_NO_PAD.decode(text))
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| vault_error("a master key is 32 bytes written as 64 hex digits or in base64"))?
        };
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| vault_error(format!("a master key is 32 bytes, this one has {}", b.len())))?;
        Ok(Self::new(bytes))
    }

    /// The key as base64, to write to a key file.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// The key's id: the first 16 hex digits of an HMAC-SHA-256 under the
    /// key, stored beside each key it wraps. It reveals nothing of the key.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.bytes).into())
    }

    fn wrap(&self, person: Uuid, key: &[u8; KEY_LEN]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let aad = [WRAP_AAD, person.as_bytes()].concat();
        let ct = self
            .cipher()
            .encrypt(&xnonce(&nonce), Payload { msg: key, aad: &aad })
            .map_err(|_| vault_error("wrapping a data key failed"))?;
        Ok([&nonce[..], &ct].concat())
    }

    fn unwrap(&self, person: Uuid, wrapped: &[u8]) -> Option<[u8; KEY_LEN]> {
        if wrapped.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let aad = [WRAP_AAD, person.as_bytes()].concat();
        let key = self.cipher().decrypt(&xnonce(nonce), Payload { msg: ct, aad: &aad }).ok()?;
        key.try_into().ok()
    }
}

/// A nonce from the first [`NONCE_LEN`] bytes of `bytes` (callers split
/// stored values at that length, so there are always enough).
fn xnonce(bytes: &[u8]) -> XNonce {
    let mut nonce = XNonce::default();
    let n = bytes.len().min(NONCE_LEN);
    nonce[..n].copy_from_slice(&bytes[..n]);
    nonce
}

fn vault_error(reason: impl Into<String>) -> StoreError {
    StoreError::Vault { reason: reason.into() }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0_u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| vault_error(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A row of `person_keys` as read.
struct KeyRow {
    person_id: Uuid,
    master_key_id: Option<String>,
    wrapped: Option<Vec<u8>>,
}

/// The data keys a batch needs: unwrapped ones, and the people whose key is
/// gone (a tombstone, or no row at all).
#[derive(Default)]
struct Keys {
    keys: HashMap<Uuid, [u8; KEY_LEN]>,
    /// People whose key was erased (a tombstone).
    gone: BTreeSet<Uuid>,
}

impl Keys {
    fn content_key(&self, people: &[Uuid]) -> Option<[u8; KEY_LEN]> {
        let mut ikm = Vec::with_capacity(people.len() * KEY_LEN);
        let mut info = CONTENT_INFO.to_vec();
        for p in people {
            ikm.extend_from_slice(self.keys.get(p)?);
            info.extend_from_slice(p.as_bytes());
        }
        let mut okm = [0_u8; KEY_LEN];
        // A 32-byte output is far below HKDF-SHA-256's limit (255 × 32).
        Hkdf::<Sha256>::new(None, &ikm).expand(&info, &mut okm).ok()?;
        Some(okm)
    }
}

/// Where a sealed value sits, for its associated data.
struct Place<'a> {
    stream_id: Uuid,
    event_type: &'a str,
    schema_version: i16,
    path: &'a str,
}

fn aad(place: &Place<'_>, people: &[Uuid]) -> Vec<u8> {
    let mut out = SEAL_AAD.to_vec();
    out.extend_from_slice(place.stream_id.as_bytes());
    for part in [place.event_type.as_bytes(), place.path.as_bytes()] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&place.schema_version.to_be_bytes());
    for p in people {
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// The master keys of a process: the current one, which wraps every new
/// key, and previous ones still accepted for unwrapping during a rotation.
#[derive(Clone, Debug)]
pub struct Vault {
    current: Arc<MasterKey>,
    previous: Arc<[MasterKey]>,
    /// Opens nothing and seals nothing (see [`Vault::blind`]).
    blind: bool,
}

static INSTALLED: OnceLock<Vault> = OnceLock::new();

impl Vault {
    /// A vault wrapping new keys with `master`.
    #[must_use]
    pub fn new(master: MasterKey) -> Self {
        Vault { current: Arc::new(master), previous: Arc::from(Vec::new()), blind: false }
    }

    /// A vault without a master key, for readers that need no personal
    /// data (exports for analysts): every sealed field reads as erased,
    /// and writing personal data is refused.
    ///
    /// # Errors
    /// [`StoreError::Vault`] when the operating system has no randomness.
    pub fn blind() -> Result<Self> {
        Ok(Vault { blind: true, ..Vault::new(MasterKey::generate()?) })
    }

    /// The same vault also unwrapping keys wrapped by `previous` (a master
    /// key being rotated out); new keys are still wrapped by the current.
    #[must_use]
    pub fn with_previous(self, previous: Vec<MasterKey>) -> Self {
        Vault { previous: previous.into(), ..self }
    }

    /// The master key new keys are wrapped with.
    #[must_use]
    pub fn master(&self) -> &MasterKey {
        &self.current
    }

    /// Makes `vault` the process's vault, the one every store created from
    /// now on uses. Call it once at start, before any store exists.
    ///
    /// # Errors
    /// Gives `vault` back when the process already has one.
    pub fn install(vault: Vault) -> std::result::Result<(), Vault> {
        INSTALLED.set(vault)
    }

    /// The process's vault: the one installed, or else a vault with a
    /// random master key of this process's own (fine for tests; data it
    /// seals is unreadable after the process ends).
    pub fn installed() -> Vault {
        INSTALLED
            .get_or_init(|| {
                tracing::warn!(
                    "no master key was installed: personal data is sealed under a key that ends with this process"
                );
                // Without randomness nothing could be sealed anyway; a key
                // of zeros would be worse than stopping here.
                #[expect(clippy::expect_used, reason = "a process without randomness cannot seal anything")]
                Vault::new(MasterKey::generate().expect("the operating system's random generator"))
            })
            .clone()
    }

    fn master_for(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(self.current.as_ref()).chain(self.previous.iter()).find(|m| m.id == id)
    }

    /// Reads and unwraps the keys of `people` (one query).
    async fn load(&self, conn: &mut PgConnection, people: &BTreeSet<Uuid>) -> Result<Keys> {
        let mut keys = Keys::default();
        if people.is_empty() || self.blind {
            return Ok(keys);
        }
        let ids: Vec<Uuid> = people.iter().copied().collect();
        let rows: Vec<(Uuid, Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT person_id, master_key_id, wrapped FROM person_keys WHERE person_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        for (person_id, master_key_id, wrapped) in rows {
            self.unwrap_into(&mut keys, KeyRow { person_id, master_key_id, wrapped })?;
        }
        Ok(keys)
    }

    fn unwrap_into(&self, keys: &mut Keys, row: KeyRow) -> Result<()> {
        let (Some(master_id), Some(wrapped)) = (row.master_key_id, row.wrapped) else {
            keys.gone.insert(row.person_id);
            return Ok(());
        };
        let master = self.master_for(&master_id).ok_or_else(|| {
            vault_error(format!(
                "data keys are wrapped by master key {master_id}, but the configured master key is {}",
                self.current.id
            ))
        })?;
        let key = master.unwrap(row.person_id, &wrapped).ok_or_else(|| StoreError::Integrity {
            reason: format!("the data key of person {} does not open under master key {master_id}", row.person_id),
        })?;
        keys.keys.insert(row.person_id, key);
        Ok(())
    }

    /// Seals the personal fields of the events of many streams (a group
    /// commit's appends) inside the writing transaction, and writes the key
    /// changes the events call for: a new data key for a `PersonRegistered`,
    /// a tombstone for a `PersonErased` (after everything else of the batch
    /// is sealed). One query reads every key the batch needs.
    ///
    /// `parts` are (stream id, events, the pair's members for pair events
    /// or empty). A field that concerns nobody with a key (everyone it
    /// concerns is erased) is refused with [`StoreError::Vault`]: personal
    /// data is never written in clear.
    ///
    /// # Errors
    /// [`StoreError::Vault`], [`StoreError::Integrity`], database errors.
    pub async fn seal_batch(
        &self,
        conn: &mut PgConnection,
        parts: &[(Uuid, &[NewEvent], &[Uuid])],
    ) -> Result<Vec<Vec<NewEvent>>> {
        let mut wanted = BTreeSet::new();
        for (stream_id, events, members) in parts {
            for e in *events {
                let fields = personal_fields(&e.event_type);
                if e.event_type == KEY_CREATED_BY {
                    wanted.insert(*stream_id);
                }
                for f in fields {
                    if has_content(field(&e.data, f.path)) {
                        wanted.extend(concerned(*stream_id, &e.data, f, members));
                    }
                }
            }
        }
        if wanted.is_empty() && !parts.iter().any(|(_, es, _)| erases(es)) {
            return Ok(parts.iter().map(|(_, events, _)| events.to_vec()).collect());
        }
        if self.blind {
            return Err(vault_error("no master key is configured: personal data cannot be written"));
        }
        let mut keys = self.load(conn, &wanted).await?;
        // A key is made for a new person, and for one registered before
        // personal data was sealed (they have no row); never for someone
        // erased (a tombstone).
        for person in wanted {
            if keys.keys.contains_key(&person) || keys.gone.contains(&person) {
                continue;
            }
            match self.create(conn, person).await {
                Ok(key) => {
                    keys.keys.insert(person, key);
                }
                Err(StoreError::Vault { .. }) => {
                    keys.gone.insert(person);
                }
                Err(other) => return Err(other),
            }
        }
        let mut out = Vec::with_capacity(parts.len());
        for (stream_id, events, members) in parts {
            let mut sealed = Vec::with_capacity(events.len());
            for e in *events {
                let mut e = e.clone();
                for f in personal_fields(&e.event_type) {
                    let people: Vec<Uuid> = concerned(*stream_id, &e.data, f, members)
                        .into_iter()
                        .filter(|p| keys.keys.contains_key(p))
                        .collect();
                    let place = Place {
                        stream_id: *stream_id,
                        event_type: &e.event_type,
                        schema_version: e.schema_version,
                        path: f.path,
                    };
                    let Some(slot) = field_mut(&mut e.data, f.path) else { continue };
                    if !has_content(Some(slot)) {
                        continue;
                    }
                    if people.is_empty() {
                        return Err(vault_error(format!(
                            "{}.{} concerns nobody whose data key exists (erased?): not written",
                            e.event_type, f.path
                        )));
                    }
                    *slot = seal_value(&keys, &place, &people, slot)?;
                }
                sealed.push(e);
            }
            out.push(sealed);
        }
        for (stream_id, events, _) in parts {
            if erases(events) {
                Self::shred(conn, *stream_id).await?;
            }
        }
        Ok(out)
    }

    /// [`Vault::seal_batch`] for one stream.
    ///
    /// # Errors
    /// As [`Vault::seal_batch`].
    pub async fn seal(
        &self,
        conn: &mut PgConnection,
        stream_id: Uuid,
        events: &[NewEvent],
        members: &[Uuid],
    ) -> Result<Vec<NewEvent>> {
        Ok(self.seal_batch(conn, &[(stream_id, events, members)]).await?.into_iter().next().unwrap_or_default())
    }

    /// Creates `person`'s data key, or finds the one a racing registration
    /// made; refuses a person whose key was erased.
    async fn create(&self, conn: &mut PgConnection, person: Uuid) -> Result<[u8; KEY_LEN]> {
        announce_writer(conn).await?;
        let key: [u8; KEY_LEN] = random()?;
        let wrapped = self.current.wrap(person, &key)?;
        let inserted = sqlx::query(
            "INSERT INTO person_keys (person_id, master_key_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person)
        .bind(&self.current.id)
        .bind(&wrapped)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(key);
        }
        let keys = self.load(conn, &BTreeSet::from([person])).await?;
        keys.keys
            .get(&person)
            .copied()
            .ok_or_else(|| vault_error(format!("person {person} was erased: no data key can be made for them")))
    }

    /// Deletes `person`'s data key, leaving a tombstone; returns whether
    /// there was a key. Run it in the transaction of the erasure's event.
    ///
    /// # Errors
    /// Database errors.
    pub async fn shred(conn: &mut PgConnection, person: Uuid) -> Result<bool> {
        announce_writer(conn).await?;
        let done = sqlx::query(
            "INSERT INTO person_keys (person_id, master_key_id, wrapped, erased_at) VALUES ($1, NULL, NULL, now()) \
             ON CONFLICT (person_id) DO UPDATE SET master_key_id = NULL, wrapped = NULL, erased_at = now() \
             WHERE person_keys.wrapped IS NOT NULL",
        )
        .bind(person)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Unseals the sealed values of stored payloads in place: `rows` are
    /// (stream id, stored event type, stored schema version, data). One
    /// query reads the keys they need; a value whose key is gone becomes
    /// `null`.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] for a value that does not open (tampered,
    /// or malformed), [`StoreError::Vault`] for keys of an unknown master
    /// key, database errors.
    pub async fn unseal(&self, conn: &mut PgConnection, rows: &mut [(Uuid, &str, i16, &mut Value)]) -> Result<()> {
        let mut wanted = BTreeSet::new();
        let mut any = false;
        for (_, _, _, data) in rows.iter() {
            visit_sealed(data, &mut |v| {
                any = true;
                add_concerns(v, &mut wanted);
            });
        }
        if !any {
            return Ok(());
        }
        let keys = self.load(conn, &wanted).await?;
        for (stream_id, event_type, schema_version, data) in rows.iter_mut() {
            let Value::Object(map) = &mut **data else { continue };
            for (k, v) in map.iter_mut() {
                let place = Place { stream_id: *stream_id, event_type, schema_version: *schema_version, path: k };
                open_in(&keys, &place, v)?;
            }
        }
        Ok(())
    }

    /// The people the sealed values of a stored payload concern (the union
    /// of their `k` lists): whoever must still have a data key for them to
    /// open.
    pub fn concerns(data: &Value) -> BTreeSet<Uuid> {
        let mut people = BTreeSet::new();
        visit_sealed(data, &mut |v| add_concerns(v, &mut people));
        people
    }

    /// Checks at start that this vault opens the keys already stored:
    /// every master key id in `person_keys` must be this vault's, and one
    /// key of each must unwrap. Returns how many live keys there are.
    ///
    /// # Errors
    /// [`StoreError::Vault`] saying which master key the keys need.
    pub async fn check(&self, conn: &mut PgConnection) -> Result<i64> {
        if self.blind {
            return Ok(0);
        }
        let rows: Vec<(String, Uuid, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT DISTINCT ON (master_key_id) master_key_id, person_id, wrapped, \
                    count(*) OVER (PARTITION BY master_key_id) \
             FROM person_keys WHERE wrapped IS NOT NULL ORDER BY master_key_id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut live = 0;
        for (master_key_id, person_id, wrapped, count) in rows {
            let mut keys = Keys::default();
            self.unwrap_into(
                &mut keys,
                KeyRow { person_id, master_key_id: Some(master_key_id.clone()), wrapped: Some(wrapped) },
            )
            .map_err(|e| match e {
                StoreError::Integrity { .. } => vault_error(format!(
                    "the configured master key {} does not open the data keys it should have wrapped",
                    self.current.id
                )),
                other => other,
            })?;
            live += count;
        }
        Ok(live)
    }

    /// Rewraps every data key not wrapped by `new` under `new`, in one
    /// transaction; events are not touched. Keys must be wrapped by a
    /// master key of this vault. Returns how many keys were rewrapped.
    ///
    /// # Errors
    /// [`StoreError::Vault`] when a key is wrapped by a master key this
    /// vault does not have, [`StoreError::Integrity`], database errors.
    pub async fn rotate(&self, conn: &mut PgConnection, new: &MasterKey) -> Result<u64> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT person_id, master_key_id, wrapped FROM person_keys \
             WHERE wrapped IS NOT NULL AND master_key_id <> $1 FOR UPDATE",
        )
        .bind(&new.id)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut wrapped = Vec::with_capacity(rows.len());
        for (person_id, master_key_id, old) in rows {
            let mut keys = Keys::default();
            self.unwrap_into(&mut keys, KeyRow { person_id, master_key_id: Some(master_key_id), wrapped: Some(old) })?;
            let key = keys.keys.get(&person_id).ok_or_else(|| vault_error("a data key vanished"))?;
            ids.push(person_id);
            wrapped.push(new.wrap(person_id, key)?);
        }
        let done = sqlx::query(
            "UPDATE person_keys k SET master_key_id = $3, wrapped = u.wrapped \
             FROM unnest($1::uuid[], $2::bytea[]) AS u(person_id, wrapped) WHERE k.person_id = u.person_id",
        )
        .bind(&ids)
        .bind(&wrapped)
        .bind(&new.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }
}

/// Key rows are written before the events of the same transaction, so the
/// transaction must announce itself as an event writer first (see
/// [`crate::append`]); a no-op when it already has.
async fn announce_writer(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT tandem_event_writer()").execute(&mut *conn).await?;
    Ok(())
}

fn erases(events: &[NewEvent]) -> bool {
    events.iter().any(|e| e.event_type == KEY_DELETED_BY)
}

fn has_content(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

fn field<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(data, |v, step| v.get(step))
}

fn field_mut<'a>(data: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(data, |v, step| v.get_mut(step))
}

/// The people `f` concerns in `data`, sorted and distinct.
fn concerned(stream_id: Uuid, data: &Value, f: &PersonalField, members: &[Uuid]) -> BTreeSet<Uuid> {
    let mut out = BTreeSet::new();
    if f.stream {
        out.insert(stream_id);
    }
    for path in f.concerns {
        collect_ids(data, &path.split('.').collect::<Vec<_>>(), &mut out);
    }
    if f.members {
        out.extend(members.iter().copied());
    }
    out
}

fn collect_ids(v: &Value, steps: &[&str], out: &mut BTreeSet<Uuid>) {
    match (steps.split_first(), v) {
        (None, Value::String(s)) => out.extend(Uuid::parse_str(s).ok()),
        (None, Value::Array(items)) => items.iter().for_each(|i| collect_ids(i, &[], out)),
        (Some((&"*", rest)), Value::Array(items)) => items.iter().for_each(|i| collect_ids(i, rest, out)),
        (Some((step, rest)), Value::Object(m)) => {
            if let Some(next) = m.get(*step) {
                collect_ids(next, rest, out);
            }
        }
        _ => {}
    }
}

fn seal_value(keys: &Keys, place: &Place<'_>, people: &[Uuid], value: &Value) -> Result<Value> {
    let key = keys.content_key(people).ok_or_else(|| vault_error("a data key is missing"))?;
    let plain = serde_json::to_vec(value).map_err(|source| StoreError::Encode { what: "sealed field", source })?;
    let nonce: [u8; NONCE_LEN] = random()?;
    let ct = XChaCha20Poly1305::new((&key).into())
        .encrypt(&xnonce(&nonce), Payload { msg: &plain, aad: &aad(place, people) })
        .map_err(|_| vault_error("sealing failed"))?;
    let people: Vec<String> = people.iter().map(Uuid::to_string).collect();
    Ok(json!({ SEALED: URL_SAFE_NO_PAD.encode([&nonce[..], &ct].concat()), CONCERNS: people }))
}

fn is_sealed(m: &Map<String, Value>) -> bool {
    m.len() == 2 && m.contains_key(SEALED) && m.contains_key(CONCERNS)
}

/// Adds the people sealed value `m` concerns (its `k` list) to `out`.
fn add_concerns(m: &Map<String, Value>, out: &mut BTreeSet<Uuid>) {
    if let Some(Value::Array(ids)) = m.get(CONCERNS) {
        out.extend(ids.iter().filter_map(|id| id.as_str().and_then(|s| Uuid::parse_str(s).ok())));
    }
}

fn visit_sealed(v: &Value, f: &mut impl FnMut(&Map<String, Value>)) {
    match v {
        Value::Object(m) if is_sealed(m) => f(m),
        Value::Object(m) => m.values().for_each(|v| visit_sealed(v, f)),
        Value::Array(items) => items.iter().for_each(|v| visit_sealed(v, f)),
        _ => {}
    }
}

/// Opens the sealed values at or under `v`, whose path is `place.path`.
fn open_in(keys: &Keys, place: &Place<'_>, v: &mut Value) -> Result<()> {
    match v {
        Value::Object(m) if is_sealed(m) => {
            *v = open(keys, place, m)?;
            Ok(())
        }
        Value::Object(m) => {
            for (k, inner) in m.iter_mut() {
                let path = format!("{}.{k}", place.path);
                open_in(keys, &Place { path: &path, ..*place }, inner)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn open(keys: &Keys, place: &Place<'_>, m: &Map<String, Value>) -> Result<Value> {
    let bad = |what: &str| StoreError::Integrity {
        reason: format!("sealed {}.{} of stream {}: {what}", place.event_type, place.path, place.stream_id),
    };
    let people: Vec<Uuid> = match m.get(CONCERNS) {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("malformed list of people"))?,
        _ => return Err(bad("malformed list of people")),
    };
    if people.is_empty() {
        return Err(bad("concerns nobody"));
    }
    let Some(key) = keys.content_key(&people) else {
        return Ok(Value::Null); // erased
    };
    let raw = m
        .get(SEALED)
        .and_then(Value::as_str)
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .filter(|raw| raw.len() > NONCE_LEN)
        .ok_or_else(|| bad("malformed ciphertext"))?;
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let plain = XChaCha20Poly1305::new((&key).into())
        .decrypt(&xnonce(nonce), Payload { msg: ct, aad: &aad(place, &people) })
        .map_err(|_| bad("does not open (altered, or moved from elsewhere)"))?;
    serde_json::from_slice(&plain).map_err(|_| bad("opens to something that is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(people: &[Uuid]) -> Keys {
        Keys { keys: people.iter().map(|p| (*p, random().expect("random"))).collect(), gone: BTreeSet::new() }
    }

    fn place<'a>(stream: Uuid, path: &'a str) -> Place<'a> {
        Place { stream_id: stream, event_type: "FeedbackGiven", schema_version: 1, path }
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_place_and_with_every_key() {
        let (a, b, s) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let k = keys(&[a, b]);
        let sealed = seal_value(&k, &place(s, "strengths"), &[a, b], &json!("kind words")).expect("seals");
        let m = sealed.as_object().expect("an object").clone();
        assert_eq!(open(&k, &place(s, "strengths"), &m).expect("opens"), json!("kind words"));
        assert!(matches!(open(&k, &place(s, "improvements"), &m), Err(StoreError::Integrity { .. })));
        assert!(matches!(open(&k, &place(Uuid::now_v7(), "strengths"), &m), Err(StoreError::Integrity { .. })));
        let mut without_b = Keys::default();
        without_b.keys.insert(a, k.keys[&a]);
        assert_eq!(open(&without_b, &place(s, "strengths"), &m).expect("erased"), Value::Null);
        let mut tampered = m.clone();
        let text = tampered[SEALED].as_str().expect("text").to_owned();
        let flipped = if text.ends_with('A') {
            format!("{}B", &text[..text.len() - 1])
        } else {
            format!("{}A", &text[..text.len() - 1])
        };
        tampered.insert(SEALED.to_owned(), json!(flipped));
        assert!(matches!(open(&k, &place(s, "strengths"), &tampered), Err(StoreError::Integrity { .. })));
    }

    #[test]
    fn master_keys_parse_from_hex_and_base64_and_wrap_per_person() {
        let m = MasterKey::generate().expect("random");
        let again = MasterKey::parse(&m.to_base64()).expect("base64");
        assert_eq!(again.id(), m.id());
        let hex_form = crate::secret::hex(&m.bytes);
        assert_eq!(MasterKey::parse(&hex_form).expect("hex").id(), m.id());
        assert!(MasterKey::parse("too short").is_err());
        assert!(!format!("{m:?}").contains(&m.to_base64()));
        let (p, q) = (Uuid::now_v7(), Uuid::now_v7());
        let wrapped = m.wrap(p, &[7; 32]).expect("wraps");
        assert_eq!(m.unwrap(p, &wrapped), Some([7; 32]));
        assert_eq!(m.unwrap(q, &wrapped), None, "a wrapped key does not move to another person");
        assert_eq!(MasterKey::generate().expect("random").unwrap(p, &wrapped), None);
    }
}
