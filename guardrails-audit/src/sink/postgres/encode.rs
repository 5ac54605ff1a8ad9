//! From events to the columns of `audit_events`, and the NUL rule.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use crate::chain::ChainHasher;
use crate::event::AuditEvent;
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
        self.record
            .push(String::from_utf8_lossy(scratch).into_owned());
        self.seq
            .push(i64::try_from(head.next_seq).unwrap_or(i64::MAX));
        self.prev
            .push(std::mem::replace(&mut head.hash, hash.clone()));
        self.hash.push(hash);
        head.next_seq += 1;
        self.id.push(event.id());
        self.time.push(event.time);
        self.action.push(event.action().to_owned());
        self.category.push(event.category().as_str().to_owned());
        self.outcome.push(event.outcome().as_str().to_owned());
        self.reason.push(event.reason().map(str::to_owned));
        let actor = event.actor();
        self.actor.push(actor.subject.as_deref().map(str::to_owned));
        self.tenant.push(actor.tenant.as_deref().map(str::to_owned));
        self.auth_method.push(actor.auth_method.map(str::to_owned));
        let target = event.target();
        self.target_type
            .push(target.map(|t| t.kind.as_ref().to_owned()));
        self.target_id
            .push(target.map(|t| t.id.as_str().to_owned()));
        self.source_ip
            .push(event.source().ip.map(|ip| ip.to_string()));
        let request = event.request();
        self.request_id
            .push(request.and_then(|r| r.id.as_deref()).map(str::to_owned));
        self.method
            .push(request.and_then(|r| r.method.as_deref()).map(str::to_owned));
        self.route
            .push(request.and_then(|r| r.route.as_deref()).map(str::to_owned));
        self.status
            .push(request.and_then(|r| r.status).map(i32::from));
        self.duration_us.push(
            request
                .and_then(|r| r.duration_us)
                .and_then(|d| i64::try_from(d).ok()),
        );
        Ok(())
    }

    /// Chains an already built record (an outbox row: the canonical record
    /// of an event without `chain`) after `head` and appends its row.
    ///
    /// Returns `false`, appending nothing, when the record is not an audit
    /// record (not an object, or without a valid `id` and `time`).
    pub(crate) fn push_record(
        &mut self,
        hasher: &ChainHasher,
        chain_id: &str,
        head: &mut Head,
        mut record: Map<String, Value>,
    ) -> Result<bool, NotCanonical> {
        let Some(id) = record
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(false);
        };
        let Some(time) = record.get("time").and_then(Value::as_str).and_then(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            return Ok(false);
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let at = |path: &str| text(record_pointer(&record, path));
        let (action, category, outcome) = (at("/action"), at("/category"), at("/outcome"));
        let (Some(action), Some(category), Some(outcome)) = (action, category, outcome) else {
            return Ok(false);
        };
        let row_status = record_pointer(&record, "/request/status")
            .and_then(Value::as_i64)
            .and_then(|s| i32::try_from(s).ok());
        let row_duration = record_pointer(&record, "/request/duration_us").and_then(Value::as_i64);
        let columns = [
            at("/reason"),
            at("/actor/subject"),
            at("/actor/tenant"),
            at("/actor/auth_method"),
            at("/target/type"),
            at("/target/id"),
            at("/source/ip"),
            at("/request/id"),
            at("/request/method"),
            at("/request/route"),
        ];
        let mut chain = Map::new();
        chain.insert("alg".into(), Value::from(hasher.alg().as_str()));
        chain.insert("id".into(), Value::from(chain_id));
        chain.insert("seq".into(), Value::from(head.next_seq));
        chain.insert("prev".into(), Value::from(head.hash.as_str()));
        record.insert("chain".into(), Value::Object(chain));
        let mut record = Value::Object(record);
        let hash = hasher.hash_record(&record)?;
        if let Some(chain) = record.get_mut("chain").and_then(Value::as_object_mut) {
            chain.insert("hash".into(), Value::from(hash.as_str()));
        }
        let bytes = crate::jcs::to_vec(&record)?;
        self.record
            .push(String::from_utf8_lossy(&bytes).into_owned());
        self.seq
            .push(i64::try_from(head.next_seq).unwrap_or(i64::MAX));
        self.prev
            .push(std::mem::replace(&mut head.hash, hash.clone()));
        self.hash.push(hash);
        head.next_seq += 1;
        self.id.push(id);
        self.time.push(time);
        self.action.push(action);
        self.category.push(category);
        self.outcome.push(outcome);
        let [
            reason,
            actor,
            tenant,
            auth,
            ttype,
            tid,
            ip,
            rid,
            method,
            route,
        ] = columns;
        self.reason.push(reason);
        self.actor.push(actor);
        self.tenant.push(tenant);
        self.auth_method.push(auth);
        self.target_type.push(ttype);
        self.target_id.push(tid);
        self.source_ip.push(ip);
        self.request_id.push(rid);
        self.method.push(method);
        self.route.push(route);
        self.status.push(row_status);
        self.duration_us.push(row_duration);
        Ok(true)
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
        assert!(b.push_record(&hasher, "c", &mut hb, record).unwrap());
        assert_eq!(a.record, b.record, "same bytes through either path");
        assert_eq!(ha, hb);
        assert_eq!(b.target_id[0].as_deref(), Some("inv_1"));
        let mut junk = Head {
            next_seq: 0,
            hash: ZERO_HASH.to_owned(),
        };
        assert!(!b.push_record(&hasher, "c", &mut junk, Map::new()).unwrap());
        assert_eq!(junk.next_seq, 0);
    }
}
