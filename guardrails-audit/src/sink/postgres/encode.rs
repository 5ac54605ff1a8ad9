//! From events to the columns of `audit_events`, and the NUL rule.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use crate::chain::ChainHasher;
use crate::event::{AuditEvent, MAX_SAFE_INTEGER, format_time};
use crate::jcs::NotCanonical;
use crate::sink::file::encode_record;

/// What replaces U+0000, which neither `jsonb` nor `text` can hold.
pub(crate) const NUL_REPLACEMENT: char = '\u{FFFD}';

/// The columns of a batch of rows, one vector per column (`chain_id` is
/// the sink's).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) seq: Vec<i64>,
    pub(crate) prev: Vec<String>,
    pub(crate) hash: Vec<String>,
    pub(crate) id: Vec<Uuid>,
    pub(crate) time: Vec<OffsetDateTime>,
    pub(crate) action: Vec<String>,
    pub(crate) category: Vec<String>,
    pub(crate) outcome: Vec<String>,
    pub(crate) reason: Vec<Option<String>>,
    pub(crate) actor: Vec<Option<String>>,
    pub(crate) tenant: Vec<Option<String>>,
    pub(crate) auth_method: Vec<Option<String>>,
    pub(crate) target_type: Vec<Option<String>>,
    pub(crate) target_id: Vec<Option<String>>,
    pub(crate) source_ip: Vec<Option<String>>,
    pub(crate) request_id: Vec<Option<String>>,
    pub(crate) method: Vec<Option<String>>,
    pub(crate) route: Vec<Option<String>>,
    pub(crate) status: Vec<Option<i32>>,
    pub(crate) duration_us: Vec<Option<i64>>,
    /// The canonical record with `chain.hash`, stored as `jsonb`.
    pub(crate) record: Vec<String>,
}

/// A canonical record, already JSON text, as a binary `jsonb` value
/// (format version 1 followed by the text; the server parses it).
#[derive(Debug)]
pub(crate) struct JsonbText<'a>(pub(crate) &'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// A chain position: the next seq and the hash of the record before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) next_seq: u64,
    pub(crate) hash: String,
}

impl Rows {
    pub(crate) fn clear(&mut self) {
        self.seq.clear();
        self.prev.clear();
        self.hash.clear();
        self.id.clear();
        self.time.clear();
        self.action.clear();
        self.category.clear();
        self.outcome.clear();
        self.reason.clear();
        self.actor.clear();
        self.tenant.clear();
        self.auth_method.clear();
        self.target_type.clear();
        self.target_id.clear();
        self.source_ip.clear();
        self.request_id.clear();
        self.method.clear();
        self.route.clear();
        self.status.clear();
        self.duration_us.clear();
        self.record.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.seq.len()
    }

    /// Chains `event` after `head` (advancing it) and appends its row.
    pub(crate) fn push_event(
        &mut self,
        hasher: &ChainHasher,
        chain_id: &str,
        head: &mut Head,
        event: &AuditEvent,
        scratch: &mut Vec<u8>,
    ) -> Result<(), NotCanonical> {
        scratch.clear();
        let mut hash = encode_record(hasher, chain_id, head.next_seq, &head.hash, scratch, event)?;
        let fixed;
        let event = if may_hold_nul(scratch) && has_nul(event) {
            fixed = without_nul(event);
            scratch.clear();
            hash = encode_record(hasher, chain_id, head.next_seq, &head.hash, scratch, &fixed)?;
            &fixed
        } else {
            event
        };
        let hash: String = hash.iter().map(|b| char::from(*b)).collect();
        // The canonical bytes are UTF-8 (they encode a Rust string tree).
        self.push_chained(String::from_utf8_lossy(scratch).into_owned(), hash, head);
        self.push_columns(EventColumns::of_event(event));
        Ok(())
    }

    /// Chains an already built record (an outbox row: the canonical record
    /// of an event without `chain`) after `head` and appends its row.
    ///
    /// # Errors
    ///
    /// Why the record cannot be relayed as it is ([`Unusable`]); nothing is
    /// appended and `head` is unchanged.
    pub(crate) fn push_record(
        &mut self,
        hasher: &ChainHasher,
        chain_id: &str,
        head: &mut Head,
        mut record: Map<String, Value>,
    ) -> Result<(), Unusable> {
        let columns = EventColumns::of_record(&record).ok_or(Unusable::NotAnAuditRecord)?;
        if columns.required[0].starts_with(crate::event::RESERVED_ACTION_PREFIX) {
            return Err(Unusable::ReservedAction);
        }
        if !columns.agree_with(&record) {
            return Err(Unusable::InexactColumns);
        }
        let mut chain = Map::new();
        chain.insert("alg".into(), Value::from(hasher.alg().as_str()));
        chain.insert("id".into(), Value::from(chain_id));
        chain.insert("seq".into(), Value::from(head.next_seq));
        chain.insert("prev".into(), Value::from(head.hash.as_str()));
        record.insert("chain".into(), Value::Object(chain));
        let mut record = Value::Object(record);
        let hash = hasher
            .hash_record(&record)
            .map_err(|_| Unusable::NotAnAuditRecord)?;
        if let Some(chain) = record.get_mut("chain").and_then(Value::as_object_mut) {
            chain.insert("hash".into(), Value::from(hash.as_str()));
        }
        let bytes = crate::jcs::to_vec(&record).map_err(|_| Unusable::NotAnAuditRecord)?;
        self.push_chained(String::from_utf8_lossy(&bytes).into_owned(), hash, head);
        self.push_columns(columns);
        Ok(())
    }

    /// Appends the record and chain columns of a row chained after `head`
    /// with `hash`, and advances `head`.
    fn push_chained(&mut self, record: String, hash: String, head: &mut Head) {
        self.record.push(record);
        self.seq
            .push(i64::try_from(head.next_seq).unwrap_or(i64::MAX));
        self.prev
            .push(std::mem::replace(&mut head.hash, hash.clone()));
        self.hash.push(hash);
        head.next_seq += 1;
    }

    fn push_columns(&mut self, columns: EventColumns) {
        let EventColumns {
            id,
            time,
            required: [action, category, outcome],
            optional:
                [
                    reason,
                    actor,
                    tenant,
                    auth_method,
                    target_type,
                    target_id,
                    source_ip,
                    request_id,
                    method,
                    route,
                ],
            status,
            duration_us,
        } = columns;
        self.id.push(id);
        self.time.push(time);
        self.action.push(action);
        self.category.push(category);
        self.outcome.push(outcome);
        self.reason.push(reason);
        self.actor.push(actor);
        self.tenant.push(tenant);
        self.auth_method.push(auth_method);
        self.target_type.push(target_type);
        self.target_id.push(target_id);
        self.source_ip.push(source_ip);
        self.request_id.push(request_id);
        self.method.push(method);
        self.route.push(route);
        self.status.push(status);
        self.duration_us.push(duration_us);
    }
}

/// Why an outbox row is not relayed as it is: the `reason` of the
/// `audit.outbox_rejected` record that takes its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not an object with a valid `id`, `time`, `action`, `category` and
    /// `outcome`.
    NotAnAuditRecord,
    /// A column would not say what the record says, so that verification
    /// would report the row modified: a time not in the form the library
    /// writes, an integer outside its column's range
    /// ([`EventColumns::agree_with`]).
    InexactColumns,
    /// Longer than [`MAX_OUTBOX_RECORD_BYTES`](super::outbox::MAX_OUTBOX_RECORD_BYTES)
    /// (never read).
    TooLarge,
    /// An action in the library's own namespace
    /// ([`RESERVED_ACTION_PREFIX`](crate::event::RESERVED_ACTION_PREFIX)),
    /// which `record_in` refuses: written into the outbox by hand, to pass
    /// for a record of the sink's (a clean stop, a key change).
    ReservedAction,
}

impl Unusable {
    /// The reason code of the `audit.outbox_rejected` record.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::NotAnAuditRecord => "not_an_audit_record",
            Self::InexactColumns => "columns_not_exact",
            Self::TooLarge => "too_large",
            Self::ReservedAction => "reserved_action",
        }
    }
}

/// The text columns of `audit_events`, in the table's order, and where
/// each one's value is in the record: the sink fills them from an event,
/// the relay from an outbox record, and `verify_postgres` compares them
/// with the stored record. The first three (`action`, `category`,
/// `outcome`) are never null.
pub(crate) const TEXT_COLUMNS: [(&str, &str); 13] = [
    ("action", "/action"),
    ("category", "/category"),
    ("outcome", "/outcome"),
    ("reason", "/reason"),
    ("actor", "/actor/subject"),
    ("tenant", "/actor/tenant"),
    ("auth_method", "/actor/auth_method"),
    ("target_type", "/target/type"),
    ("target_id", "/target/id"),
    ("source_ip", "/source/ip"),
    ("request_id", "/request/id"),
    ("method", "/request/method"),
    ("route", "/request/route"),
];

/// How a `time` column must agree with its record's text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TimeText {
    /// Exactly the text the library writes for it (RFC 3339, UTC,
    /// microseconds): what the relay takes, since the column keeps whole
    /// microseconds and would cut more digits.
    AsWritten,
    /// Any RFC 3339 text of the same instant: what verification accepts.
    SameInstant,
}

/// A row's event columns, borrowed, as compared with its record.
#[derive(Debug)]
pub(crate) struct ColumnValues<'a> {
    pub(crate) id: Uuid,
    pub(crate) time: OffsetDateTime,
    /// In [`TEXT_COLUMNS`] order.
    pub(crate) text: [Option<&'a str>; 13],
    pub(crate) status: Option<i32>,
    pub(crate) duration_us: Option<i64>,
}

impl ColumnValues<'_> {
    /// The first column that says something else than `record`, if any:
    /// `verify_postgres` reports the row modified there, and the relay
    /// takes no outbox record for which one would. An integer the record
    /// holds outside its column's range has no column value and disagrees.
    pub(crate) fn first_disagreement(
        &self,
        record: &Map<String, Value>,
        time: TimeText,
    ) -> Option<&'static str> {
        let text = |path: &str| record_pointer(record, path).and_then(Value::as_str);
        let int = |path: &str| record_pointer(record, path).and_then(Value::as_i64);
        let time_agrees = match time {
            TimeText::AsWritten => text("/time") == Some(format_time(self.time).as_str()),
            TimeText::SameInstant => {
                text("/time").and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                    == Some(self.time)
            }
        };
        if text("/id").and_then(|s| Uuid::parse_str(s).ok()) != Some(self.id) {
            Some("id")
        } else if !time_agrees {
            Some("time")
        } else if int("/request/status") != self.status.map(i64::from) {
            Some("status")
        } else if int("/request/duration_us") != self.duration_us {
            Some("duration_us")
        } else {
            TEXT_COLUMNS
                .iter()
                .zip(self.text)
                .find(|((_, path), column)| text(path) != *column)
                .map(|((name, _), _)| *name)
        }
    }
}

/// The event columns of a row (all but the chain's and `record`).
#[derive(Debug)]
pub(crate) struct EventColumns {
    id: Uuid,
    time: OffsetDateTime,
    /// The first three of [`TEXT_COLUMNS`].
    required: [String; 3],
    /// The other ten of [`TEXT_COLUMNS`].
    optional: [Option<String>; 10],
    status: Option<i32>,
    duration_us: Option<i64>,
}

impl EventColumns {
    fn of_event(event: &AuditEvent) -> Self {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let actor = event.actor();
        let target = event.target();
        let request = event.request();
        Self {
            id: event.id(),
            time: event.time,
            required: [
                event.action().to_owned(),
                event.category().as_str().to_owned(),
                event.outcome().as_str().to_owned(),
            ],
            optional: [
                owned(event.reason()),
                owned(actor.subject.as_deref()),
                owned(actor.tenant.as_deref()),
                owned(actor.auth_method),
                target.map(|t| t.kind.as_ref().to_owned()),
                target.map(|t| t.id.as_str().to_owned()),
                event.source().ip.map(|ip| ip.to_string()),
                owned(request.and_then(|r| r.id.as_deref())),
                owned(request.and_then(|r| r.method.as_deref())),
                owned(request.and_then(|r| r.route.as_deref())),
            ],
            status: request.and_then(|r| r.status).map(i32::from),
            // The record holds a duration above 2^53 - 1 as a string
            // (`integers_only`), which the column does not take.
            duration_us: request
                .and_then(|r| r.duration_us)
                .and_then(|d| i64::try_from(d).ok())
                .filter(|d| *d <= MAX_SAFE_INTEGER),
        }
    }

    /// The columns of an outbox record, read from it the way
    /// `verify_postgres` reads them back; `None` without a valid `id` and
    /// `time`, or without `action`, `category` and `outcome`.
    fn of_record(record: &Map<String, Value>) -> Option<Self> {
        let text = |path: &str| record_pointer(record, path).and_then(Value::as_str);
        let int = |path: &str| record_pointer(record, path).and_then(Value::as_i64);
        let id = text("/id").and_then(|s| Uuid::parse_str(s).ok())?;
        let time = text("/time").and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())?;
        let [Some(action), Some(category), Some(outcome), optional @ ..] =
            TEXT_COLUMNS.map(|(_, path)| text(path).map(str::to_owned))
        else {
            return None;
        };
        Some(Self {
            id,
            time,
            required: [action, category, outcome],
            optional,
            status: int("/request/status").and_then(|s| i32::try_from(s).ok()),
            duration_us: int("/request/duration_us"),
        })
    }

    /// Whether these columns, as the database keeps them, say what `record`
    /// says, as the relay requires ([`TimeText::AsWritten`]).
    pub(crate) fn agree_with(&self, record: &Map<String, Value>) -> bool {
        ColumnValues {
            id: self.id,
            time: self.time,
            text: std::array::from_fn(|i| match self.required.get(i) {
                Some(value) => Some(value.as_str()),
                None => self.optional[i - 3].as_deref(),
            }),
            status: self.status,
            duration_us: self.duration_us,
        }
        .first_disagreement(record, TimeText::AsWritten)
        .is_none()
    }
}

fn record_pointer<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.trim_start_matches('/').split('/');
    let mut value = record.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// Whether canonical bytes may encode a U+0000 (`\u0000`); a cheap scan
/// that can only err towards `true` (an escaped backslash before `u0000`).
pub(crate) fn may_hold_nul(canonical: &[u8]) -> bool {
    canonical.windows(6).any(|w| w == b"\\u0000")
}

fn str_has_nul(s: &str) -> bool {
    s.as_bytes().contains(&0)
}

fn opt_has_nul(s: Option<&str>) -> bool {
    s.is_some_and(str_has_nul)
}

fn value_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => str_has_nul(s),
        Value::Array(items) => items.iter().any(value_has_nul),
        Value::Object(map) => map_has_nul(map),
        _ => false,
    }
}

fn map_has_nul(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| str_has_nul(k) || value_has_nul(v))
}

/// Whether any string of `event` (a field, a detail key or value) holds
/// U+0000.
pub(crate) fn has_nul(event: &AuditEvent) -> bool {
    let actor = event.actor();
    let request = event.request();
    str_has_nul(event.action())
        || opt_has_nul(event.reason())
        || opt_has_nul(actor.subject.as_deref())
        || opt_has_nul(actor.tenant.as_deref())
        || opt_has_nul(actor.auth_method)
        || event
            .target()
            .is_some_and(|t| str_has_nul(&t.kind) || str_has_nul(&t.id))
        || opt_has_nul(event.source().user_agent.as_deref())
        || request.is_some_and(|r| {
            opt_has_nul(r.id.as_deref())
                || opt_has_nul(r.method.as_deref())
                || opt_has_nul(r.route.as_deref())
                || opt_has_nul(r.path.as_deref())
        })
        || event.observer.as_ref().is_some_and(|o| {
            str_has_nul(&o.service) || str_has_nul(&o.version) || str_has_nul(&o.instance)
        })
        || map_has_nul(event.details())
}

fn fix(s: &str) -> String {
    s.replace('\0', NUL_REPLACEMENT.encode_utf8(&mut [0; 4]))
}

/// [`fix`] into the field's type (`String`, `Arc<str>`, `Cow<str>`).
fn fix_to<T: From<String>>(s: &str) -> T {
    T::from(fix(s))
}

fn fix_opt<T: From<String>>(s: Option<&str>) -> Option<T> {
    s.map(|s| fix(s).into())
}

fn fix_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(fix(s)),
        Value::Array(items) => Value::Array(items.iter().map(fix_value).collect()),
        Value::Object(map) => Value::Object(fix_map(map)),
        other => other.clone(),
    }
}

pub(crate) fn fix_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (fix(k), fix_value(v))).collect()
}

/// `event` with every U+0000 of its strings replaced by U+FFFD.
pub(crate) fn without_nul(event: &AuditEvent) -> AuditEvent {
    let mut e = event.clone();
    e.action = fix_to(&e.action);
    e.reason = fix_opt(event.reason());
    e.actor.subject = fix_opt(event.actor().subject.as_deref());
    e.actor.tenant = fix_opt(event.actor().tenant.as_deref());
    if let Some(t) = e.target.as_mut() {
        t.kind = fix_to(&t.kind);
        t.id = fix_to(&t.id);
    }
    e.source.user_agent = fix_opt(event.source().user_agent.as_deref());
    if let Some(r) = e.request.as_mut() {
        r.id = fix_opt(r.id.as_deref());
        r.method = fix_opt(r.method.as_deref());
        r.route = fix_opt(r.route.as_deref());
        r.path = fix_opt(r.path.as_deref());
    }
    if let Some(o) = e.observer.as_ref()
        && (str_has_nul(&o.service) || str_has_nul(&o.version) || str_has_nul(&o.instance))
    {
        let mut observer = (**o).clone();
        observer.service = fix_to(&observer.service);
        observer.version = fix_to(&observer.version);
        observer.instance = fix_to(&observer.instance);
        e.observer = Some(Arc::new(observer));
    }
    e.details = fix_map(&e.details);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ZERO_HASH;
    use crate::event::{Category, RequestInfo};

    #[test]
    fn nul_becomes_replacement_character_only_when_present() {
        let plain = AuditEvent::new("a.b", Category::System).with_detail("k", "back\\u0000slash");
        assert!(!has_nul(&plain), "an escaped backslash is not a NUL");
        let event = AuditEvent::new("a.b", Category::System)
            .with_reason("r\0n")
            .with_request(RequestInfo {
                path: Some("/p\0".into()),
                ..RequestInfo::default()
            })
            .with_detail("k\0", serde_json::json!(["v\0", {"x": "\0"}]));
        assert!(has_nul(&event));
        let fixed = without_nul(&event);
        assert!(!has_nul(&fixed));
        assert_eq!(fixed.reason(), Some("r\u{FFFD}n"));
        assert_eq!(
            fixed.details()["k\u{FFFD}"],
            serde_json::json!(["v\u{FFFD}", {"x": "\u{FFFD}"}])
        );
        assert_eq!(fixed.id(), event.id());

        let hasher = ChainHasher::sha256();
        let mut rows = Rows::default();
        let mut head = Head {
            next_seq: 0,
            hash: ZERO_HASH.to_owned(),
        };
        let mut scratch = Vec::new();
        rows.push_event(&hasher, "c", &mut head, &plain, &mut scratch)
            .unwrap();
        rows.push_event(&hasher, "c", &mut head, &event, &mut scratch)
            .unwrap();
        assert!(rows.record[0].contains("back\\\\u0000slash"), "unchanged");
        assert!(!rows.record[1].contains("\\u0000"));
        assert!(rows.record[1].contains('\u{FFFD}'));
        // The stored record verifies: its hash is of the replaced content.
        let record: Value = serde_json::from_str(&rows.record[1]).unwrap();
        assert_eq!(hasher.hash_record(&record).unwrap(), rows.hash[1]);
        assert_eq!(rows.prev[1], rows.hash[0]);
        assert_eq!(head.next_seq, 2);
    }

    #[test]
    fn outbox_records_chain_like_events() {
        let hasher = ChainHasher::sha256();
        let event = AuditEvent::new("invoice.delete", Category::DataWrite)
            .with_target("invoice", "inv_1")
            .with_detail("n", 3);
        let Value::Object(record) = event.to_json() else {
            unreachable!()
        };
        let start = Head {
            next_seq: 5,
            hash: "ab".repeat(32),
        };
        let (mut a, mut b) = (Rows::default(), Rows::default());
        let (mut ha, mut hb) = (start.clone(), start);
        a.push_event(&hasher, "c", &mut ha, &event, &mut Vec::new())
            .unwrap();
        b.push_record(&hasher, "c", &mut hb, record).unwrap();
        assert_eq!(a.record, b.record, "same bytes through either path");
        assert_eq!(ha, hb);
        assert_eq!(b.target_id[0].as_deref(), Some("inv_1"));
        let mut junk = Head {
            next_seq: 0,
            hash: ZERO_HASH.to_owned(),
        };
        assert_eq!(
            b.push_record(&hasher, "c", &mut junk, Map::new()),
            Err(Unusable::NotAnAuditRecord)
        );
        assert_eq!(junk.next_seq, 0);
    }

    fn record_of(event: &AuditEvent) -> Map<String, Value> {
        let mut bytes = Vec::new();
        event.write_canonical(&mut bytes, None).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn pipeline_rows_agree_with_their_records() {
        let request = |status, duration_us| RequestInfo {
            id: Some("req-1".into()),
            method: Some("GET".into()),
            route: Some("/invoices/{id}".into()),
            status,
            duration_us,
            ..RequestInfo::default()
        };
        for event in [
            AuditEvent::new("a.b", Category::System),
            AuditEvent::new("a.b", Category::DataWrite)
                .with_reason("r")
                .with_target("invoice", "inv_1")
                .with_request(request(Some(u16::MAX), Some(0))),
            AuditEvent::new("a.b", Category::System).with_request(request(None, Some(1 << 53))),
            AuditEvent::new("a.b", Category::System).with_request(request(None, Some(1 << 60))),
            AuditEvent::new("a.b", Category::System).with_request(request(None, Some(u64::MAX))),
        ] {
            let record = record_of(&event);
            assert!(
                EventColumns::of_event(&event).agree_with(&record),
                "{record:?}"
            );
            let columns = EventColumns::of_record(&record).unwrap();
            assert!(columns.agree_with(&record), "{record:?}");
        }
    }

    #[test]
    fn outbox_records_whose_columns_would_change_are_unusable() {
        let event = AuditEvent::new("a.b", Category::System).with_request(RequestInfo {
            status: Some(200),
            ..RequestInfo::default()
        });
        let canonical = record_of(&event);
        let time = canonical["time"].as_str().unwrap().to_owned();
        let (seconds, micros) = time.trim_end_matches('Z').split_once('.').unwrap();
        let (exact, inexact, junk) = (
            Ok(()),
            Err(Unusable::InexactColumns),
            Err(Unusable::NotAnAuditRecord),
        );
        let cases: [(&str, Value, Result<(), Unusable>); 12] = [
            ("/time", time.clone().into(), exact),
            ("/time", format!("{seconds}.{micros}7Z").into(), inexact),
            (
                "/time",
                format!("{seconds}.{}Z", &micros[1..]).into(),
                inexact,
            ),
            ("/time", format!("{seconds}.{micros}+00:00").into(), inexact),
            ("/time", format!("{seconds}.{micros}z").into(), inexact),
            ("/time", format!("{seconds}Z").into(), inexact),
            ("/time", "yesterday".into(), junk),
            ("/request/status", 3_000_000_000_u64.into(), inexact),
            ("/request/status", (-1).into(), exact),
            ("/request/status", "200".into(), exact),
            ("/request/duration_us", u64::MAX.to_string().into(), exact),
            ("/action", 1.into(), junk),
        ];
        let hasher = ChainHasher::sha256();
        for (path, value, expected) in cases {
            let mut record = Value::Object(canonical.clone());
            *record.pointer_mut(path).unwrap() = value.clone();
            let Value::Object(record) = record else {
                unreachable!()
            };
            let mut rows = Rows::default();
            let mut head = Head {
                next_seq: 0,
                hash: ZERO_HASH.to_owned(),
            };
            let pushed = rows.push_record(&hasher, "c", &mut head, record);
            assert_eq!(pushed, expected, "{path} = {value}");
            assert_eq!(rows.len(), usize::from(expected.is_ok()));
        }
    }
}
