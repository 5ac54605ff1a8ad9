//! The audit event: who did what, to which resource, when, from where, and
//! with which outcome.
//!
//! Every record has the schema `guardrails.audit/1`. Field names, and how they
//! map to the common audit vocabularies (DMTF CADF, OCSF and Elastic ECS):
//!
//! | field | type | meaning | CADF | OCSF | ECS |
//! |---|---|---|---|---|---|
//! | `schema` | string | always `guardrails.audit/1` | `typeURI` | `metadata.version` | `ecs.version` |
//! | `id` | string | UUIDv7 of the event | `id` | `metadata.uid` | `event.id` |
//! | `time` | string | RFC 3339, UTC, microseconds (`…Z`) | `eventTime` | `time` | `@timestamp` |
//! | `action` | string | dotted, low-cardinality (`http.request`, `invoice.delete`) | `action` | `activity_name` | `event.action` |
//! | `category` | string | `authn`, `authz`, `data_read`, `data_write`, `admin`, `system` | `eventType` | `category_uid` | `event.category` |
//! | `outcome` | string | `success`, `failure`, `denied`, `unknown` | `outcome` | `status` | `event.outcome` |
//! | `reason` | string or null | low-cardinality reason code (`token_expired`, `missing_scope`) | `reason.reasonCode` | `status_detail` | `event.reason` |
//! | `stage` | string | `completed`, or `received` for the attempt record of a strict request | — | `activity_id` | `event.type` |
//! | `actor.type` | string | `user` when a principal was verified, `anonymous` otherwise | `initiator.typeURI` | `actor.user.type` | `user.roles` |
//! | `actor.subject` | string or null | the principal's subject | `initiator.id` | `actor.user.uid` | `user.id` |
//! | `actor.tenant` | string or null | the principal's tenant | `initiator.project_id` | `actor.user.org.uid` | `organization.id` |
//! | `actor.auth_method` | string or null | `jwt`, `api_key`, … | `initiator.credential.type` | `auth_protocol` | `event.provider` |
//! | `target.type` / `target.id` | strings | the resource acted on | `target.typeURI` / `target.id` | `resources[].type` / `uid` | `service.target` fields |
//! | `source.ip` | string or null | client address: the socket peer, or a forwarded address only through a trusted proxy | `initiator.host.address` | `src_endpoint.ip` | `source.ip` |
//! | `source.user_agent` | string or null | sanitized, at most 256 characters | `initiator.host.agent` | `http_request.user_agent` | `user_agent.original` |
//! | `request.id` | string | request id shared with problems and logs | `requestId` (attachment) | `http_request.uid` | `http.request.id` |
//! | `request.method` | string | HTTP method | `action` detail | `http_request.http_method` | `http.request.method` |
//! | `request.route` | string or null | route template (`/v1/tenants/{tenant}/invoices`) | `target.name` | `http_request.url.path` template | `url.path` template |
//! | `request.path` | string | raw path, never the query | — | `http_request.url.path` | `url.path` |
//! | `request.status` | integer or null | response status | `reason.reasonCode` | `http_response.code` | `http.response.status_code` |
//! | `request.duration_us` | integer or null | handler time in microseconds | — | `duration` | `event.duration` (ns) |
//! | `observer.service` / `version` / `instance` | strings | who recorded it | `observer.name` / `observer.id` | `metadata.product` | `service.name` / `version` / `node.name` |
//! | `details` | object | redacted free-form details | `attachments` | `unmapped` | `labels` |
//! | `chain` | object | hash chain, added by the JSON-lines sink (see [`crate::sink::file`]) | — | `metadata.log_*` | `event.hash` |
//!
//! Numbers are integers only: a floating-point detail is stored as a string,
//! and an integer outside ±(2⁵³−1) is stored as a string, so every record is
//! exactly representable by any JSON implementation and by RFC 8785.
//!
//! Tokens, secrets and raw session ids are never recorded: the layer records
//! neither headers (except the sanitized user agent) nor the query string, and
//! [`Redactor`] removes configured detail keys (by default anything that
//! looks like a password, token, secret, cookie, session or key).
//!
//! Control characters from untrusted text (the path, the user agent, the
//! actor, a target id, the observer, details) are recorded as visible
//! `\xNN` escapes (Unicode line separators and bidirectional controls as
//! `\u{HHHH}`), and a backslash followed by `x` or `u` as `\x5C`, so every
//! `\x` and `\u` in those fields starts an escape and the original text can
//! be told apart and restored (see [`sanitize`]). The request id is visible
//! ASCII (a `RequestId` has no controls), so a `\x` in it is text; action
//! and reason are the application's own dotted codes.
//!
//! ```
//! use guardrails_audit::{AuditEvent, Category, Outcome};
//!
//! let event = AuditEvent::new("invoice.delete", Category::DataWrite)
//!     .with_outcome(Outcome::Success)
//!     .with_target("invoice", "inv_42")
//!     .with_detail("amount_cents", 1200)
//!     .with_detail("password", "hunter2");
//! let json = event.to_json();
//! assert_eq!(json["schema"], "guardrails.audit/1");
//! assert_eq!(json["target"]["id"], "inv_42");
//! // Redaction happens when the event is recorded, see `Redactor`.
//! let redacted = guardrails_audit::Redactor::default().redact_event(event).to_json();
//! assert_eq!(redacted["details"]["password"], "[REDACTED]");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use guardrails_core::Principal;
use guardrails_core::text::{has_display_control, is_display_control};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema name every record carries.
pub const SCHEMA: &str = "guardrails.audit/1";

/// The largest integer recorded as a number: 2⁵³ − 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The action namespace of the records the library writes itself
/// (`audit.dropped`, `audit.stopped`, `audit.recovered`,
/// `audit.key_changed`, `audit.outbox_rejected`): the sinks' crash recovery
/// and key change, and `verify`, read them. [`Auditor`](crate::Auditor),
/// [`AuditContext`](crate::AuditContext) and the PostgreSQL outbox refuse
/// events in it, so that application code (or a row written into the
/// outbox by hand) cannot pass for one of them, such as a clean stop that
/// hides a crash.
pub const RESERVED_ACTION_PREFIX: &str = "audit.";

/// The longest user agent recorded, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The longest path recorded, in characters.
pub const MAX_PATH_CHARS: usize = 1024;

/// What kind of activity an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// Authentication.
    Authn,
    /// Authorization decisions.
    Authz,
    /// Reading data.
    DataRead,
    /// Creating, changing or deleting data.
    DataWrite,
    /// Administrative actions.
    Admin,
    /// The audit system itself and the platform.
    System,
}

impl Category {
    /// The recorded name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Authn => "authn",
            Self::Authz => "authz",
            Self::DataRead => "data_read",
            Self::DataWrite => "data_write",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the recorded activity ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed (bad credentials, invalid input, server error).
    Failure,
    /// It was refused by an authorization decision.
    Denied,
    /// Not known yet (the attempt record of a strict request) or not knowable.
    Unknown,
}

impl Outcome {
    /// The recorded name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acted: taken from a verified [`Principal`], anonymous otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The subject, `None` when anonymous.
    pub subject: Option<String>,
    /// The tenant of the subject.
    pub tenant: Option<String>,
    /// How the subject authenticated.
    pub auth_method: Option<&'static str>,
}

impl Actor {
    /// The anonymous actor.
    pub const fn anonymous() -> Self {
        Self {
            subject: None,
            tenant: None,
            auth_method: None,
        }
    }

    /// The actor of a verified principal. Only the subject, tenant and method
    /// are taken: never the token id, claims or scopes.
    /// (The auditor escapes the controls JSON leaves literal in them when it
    /// records the event.)
    pub fn from_principal(principal: &Principal) -> Self {
        Self {
            subject: Some(principal.subject().to_owned()),
            tenant: principal.tenant().map(str::to_owned),
            auth_method: Some(principal.method().as_str()),
        }
    }

    /// Whether no principal was verified.
    pub fn is_anonymous(&self) -> bool {
        self.subject.is_none()
    }
}

/// The resource acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The kind of resource (`invoice`).
    pub kind: Cow<'static, str>,
    /// Its identifier.
    pub id: String,
}

/// Where the request came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// Client address (see the layer's trusted-proxy rules).
    pub ip: Option<std::net::IpAddr>,
    /// Sanitized user agent.
    pub user_agent: Option<String>,
}

/// The HTTP request an event belongs to.
///
/// The strings are shared (`Arc<str>`): the audit layer hands every request
/// of a route the same route template, the path is the template itself when
/// they are equal, and a domain event of the request shares them all, so
/// that events carry no per-request copies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Request id.
    pub id: Option<Arc<str>>,
    /// HTTP method.
    pub method: Option<Cow<'static, str>>,
    /// Route template.
    pub route: Option<Arc<str>>,
    /// Raw path (sanitized, no query).
    pub path: Option<Arc<str>>,
    /// Response status.
    pub status: Option<u16>,
    /// Duration in microseconds.
    pub duration_us: Option<u64>,
}

/// The service that recorded the event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observer {
    /// Service name.
    pub service: String,
    /// Service version.
    pub version: String,
    /// Instance (host, pod) name.
    pub instance: String,
}

impl Observer {
    /// An observer.
    pub fn new(
        service: impl Into<String>,
        version: impl Into<String>,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            service: sanitize(&service.into(), 128),
            version: sanitize(&version.into(), 64),
            instance: sanitize(&instance.into(), 128),
        }
    }
}

/// The stage of a request an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The request was received; the handler has not run yet (strict mode).
    Received,
    /// The activity completed.
    Completed,
}

impl Stage {
    /// The recorded name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Completed => "completed",
        }
    }
}

/// One audit event; see the [module documentation](self) for its fields.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub(crate) id: Uuid,
    pub(crate) time: OffsetDateTime,
    pub(crate) action: Cow<'static, str>,
    pub(crate) category: Category,
    pub(crate) outcome: Outcome,
    pub(crate) reason: Option<Cow<'static, str>>,
    pub(crate) stage: Stage,
    pub(crate) actor: Actor,
    pub(crate) target: Option<Target>,
    pub(crate) source: Source,
    pub(crate) request: Option<RequestInfo>,
    pub(crate) observer: Option<Arc<Observer>>,
    pub(crate) details: Map<String, Value>,
}

impl AuditEvent {
    /// A new event for `action` (dotted, low-cardinality: never put input in
    /// it) with a fresh UUIDv7 and the current time; outcome `unknown`,
    /// anonymous actor.
    pub fn new(action: impl Into<Cow<'static, str>>, category: Category) -> Self {
        let (id, time) = Self::fresh_id_and_time();
        Self::new_at(id, time, action, category)
    }

    /// A fresh UUIDv7 and the current time, from one clock read, for
    /// [`AuditEvent::new_at`].
    pub(crate) fn fresh_id_and_time() -> (Uuid, OffsetDateTime) {
        let time = OffsetDateTime::now_utc();
        (uuid_v7_at(time), time)
    }

    /// A new event with the given id and time (taken earlier).
    pub(crate) fn new_at(
        id: Uuid,
        time: OffsetDateTime,
        action: impl Into<Cow<'static, str>>,
        category: Category,
    ) -> Self {
        Self {
            id,
            time,
            action: action.into(),
            category,
            outcome: Outcome::Unknown,
            reason: None,
            stage: Stage::Completed,
            actor: Actor::anonymous(),
            target: None,
            source: Source::default(),
            request: None,
            observer: None,
            details: Map::new(),
        }
    }

    /// Sets the outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the low-cardinality reason code.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the stage.
    #[must_use]
    pub fn with_stage(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }

    /// Sets the actor from a verified principal.
    #[must_use]
    pub fn with_principal(mut self, principal: &Principal) -> Self {
        self.actor = Actor::from_principal(principal);
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn with_actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the target resource.
    #[must_use]
    pub fn with_target(
        mut self,
        kind: impl Into<Cow<'static, str>>,
        id: impl Into<String>,
    ) -> Self {
        self.target = Some(Target {
            kind: kind.into(),
            id: sanitize(&id.into(), MAX_PATH_CHARS),
        });
        self
    }

    /// Sets the source.
    #[must_use]
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Sets the request information.
    #[must_use]
    pub fn with_request(mut self, request: RequestInfo) -> Self {
        self.request = Some(request);
        self
    }

    /// Sets the observer (otherwise the pipeline's is used).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Adds a detail. Floating-point numbers and integers beyond
    /// ±(2⁵³−1) are stored as strings. Keys are redacted when recorded.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), integers_only(value.into()));
        self
    }

    /// The event id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The action.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// Whether the action is in the library's own namespace,
    /// [`RESERVED_ACTION_PREFIX`].
    pub fn has_reserved_action(&self) -> bool {
        self.action.starts_with(RESERVED_ACTION_PREFIX)
    }

    /// The category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// The outcome.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The reason code.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The target.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// The source.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The request information.
    pub fn request(&self) -> Option<&RequestInfo> {
        self.request.as_ref()
    }

    /// The details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }

    /// The record as a JSON object, without the `chain` member.
    pub fn to_json(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// The record as a JSON map, without the `chain` member.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("schema".into(), Value::from(SCHEMA));
        m.insert("id".into(), Value::String(self.id.to_string()));
        m.insert("time".into(), Value::String(format_time(self.time)));
        m.insert("action".into(), Value::from(self.action.as_ref()));
        m.insert("category".into(), Value::from(self.category.as_str()));
        m.insert("outcome".into(), Value::from(self.outcome.as_str()));
        m.insert(
            "reason".into(),
            self.reason.as_deref().map_or(Value::Null, Value::from),
        );
        m.insert("stage".into(), Value::from(self.stage.as_str()));
        let mut actor = Map::new();
        actor.insert(
            "type".into(),
            Value::from(if self.actor.is_anonymous() {
                "anonymous"
            } else {
                "user"
            }),
        );
        actor.insert("subject".into(), opt_str(self.actor.subject.as_deref()));
        actor.insert("tenant".into(), opt_str(self.actor.tenant.as_deref()));
        actor.insert("auth_method".into(), opt_str(self.actor.auth_method));
        m.insert("actor".into(), Value::Object(actor));
        m.insert(
            "target".into(),
            self.target.as_ref().map_or(Value::Null, |t| {
                let mut o = Map::new();
                o.insert("type".into(), Value::from(t.kind.as_ref()));
                o.insert("id".into(), Value::from(t.id.as_str()));
                Value::Object(o)
            }),
        );
        let mut source = Map::new();
        source.insert(
            "ip".into(),
            self.source
                .ip
                .map_or(Value::Null, |ip| Value::String(ip.to_string())),
        );
        source.insert(
            "user_agent".into(),
            opt_str(self.source.user_agent.as_deref()),
        );
        m.insert("source".into(), Value::Object(source));
        m.insert(
            "request".into(),
            self.request.as_ref().map_or(Value::Null, |r| {
                let mut o = Map::new();
                o.insert("id".into(), opt_str(r.id.as_deref()));
                o.insert("method".into(), opt_str(r.method.as_deref()));
                o.insert("route".into(), opt_str(r.route.as_deref()));
                o.insert("path".into(), opt_str(r.path.as_deref()));
                o.insert("status".into(), r.status.map_or(Value::Null, Value::from));
                o.insert(
                    "duration_us".into(),
                    r.duration_us
                        .map_or(Value::Null, |d| integers_only(Value::from(d))),
                );
                Value::Object(o)
            }),
        );
        m.insert(
            "observer".into(),
            self.observer.as_ref().map_or(Value::Null, |o| {
                let mut v = Map::new();
                v.insert("service".into(), Value::from(o.service.as_str()));
                v.insert("version".into(), Value::from(o.version.as_str()));
                v.insert("instance".into(), Value::from(o.instance.as_str()));
                Value::Object(v)
            }),
        );
        m.insert("details".into(), Value::Object(self.details.clone()));
        m
    }
}

thread_local! {
    /// Per-thread UUIDv7 ordering context: ids of one thread are ordered
    /// (counter within a millisecond), without the process-wide lock of
    /// `Uuid::now_v7` that request threads would contend on.
    static UUID_V7: uuid::ContextV7 = const { uuid::ContextV7::new() };
}

/// A UUIDv7 for the time `t` (times before 1970 count as 1970).
pub(crate) fn uuid_v7_at(t: OffsetDateTime) -> Uuid {
    // Seconds and nanoseconds directly: no 128-bit division.
    let (seconds, subsec) = match u64::try_from(t.unix_timestamp()) {
        Ok(seconds) => (seconds, t.nanosecond()),
        Err(_) => (0, 0),
    };
    UUID_V7.with(|context| Uuid::new_v7(uuid::Timestamp::from_unix(context, seconds, subsec)))
}

/// Writes the `"chain":{...}` member of a record.
pub(crate) type ChainWriter<'a> = dyn FnMut(&mut Vec<u8>) + 'a;

impl AuditEvent {
    /// Appends the RFC 8785 canonical form of [`AuditEvent::to_json`] to
    /// `out` without building a JSON tree; `chain`, when given, writes the
    /// `"chain":{...}` member at its sorted position.
    pub(crate) fn write_canonical(
        &self,
        out: &mut Vec<u8>,
        chain: Option<&mut ChainWriter<'_>>,
    ) -> Result<(), crate::jcs::NotCanonical> {
        use crate::jcs::write_str;
        fn key(out: &mut Vec<u8>, k: &str, first: bool) {
            if !first {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        }
        fn opt(out: &mut Vec<u8>, v: Option<&str>) {
            match v {
                Some(v) => write_str(out, v),
                None => out.extend_from_slice(b"null"),
            }
        }
        fn int(out: &mut Vec<u8>, v: u64) {
            if v <= MAX_SAFE_INTEGER as u64 {
                crate::jcs::write_u64(out, v);
            } else {
                out.push(b'"');
                crate::jcs::write_u64(out, v);
                out.push(b'"');
            }
        }
        out.push(b'{');
        key(out, "action", true);
        write_str(out, &self.action);
        key(out, "actor", false);
        out.push(b'{');
        key(out, "auth_method", true);
        opt(out, self.actor.auth_method);
        key(out, "subject", false);
        opt(out, self.actor.subject.as_deref());
        key(out, "tenant", false);
        opt(out, self.actor.tenant.as_deref());
        key(out, "type", false);
        write_str(
            out,
            if self.actor.is_anonymous() {
                "anonymous"
            } else {
                "user"
            },
        );
        out.push(b'}');
        key(out, "category", false);
        write_str(out, self.category.as_str());
        if let Some(chain) = chain {
            out.push(b',');
            chain(out);
        }
        key(out, "details", false);
        crate::jcs::write_map(out, &self.details, |_, _| Ok(false))?;
        key(out, "id", false);
        let mut uuid = Uuid::encode_buffer();
        write_str(out, self.id.hyphenated().encode_lower(&mut uuid));
        key(out, "observer", false);
        match &self.observer {
            Some(o) => {
                out.push(b'{');
                key(out, "instance", true);
                write_str(out, &o.instance);
                key(out, "service", false);
                write_str(out, &o.service);
                key(out, "version", false);
                write_str(out, &o.version);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        key(out, "outcome", false);
        write_str(out, self.outcome.as_str());
        key(out, "reason", false);
        opt(out, self.reason.as_deref());
        key(out, "request", false);
        match &self.request {
            Some(r) => {
                out.push(b'{');
                key(out, "duration_us", true);
                match r.duration_us {
                    Some(d) => int(out, d),
                    None => out.extend_from_slice(b"null"),
                }
                key(out, "id", false);
                opt(out, r.id.as_deref());
                key(out, "method", false);
                opt(out, r.method.as_deref());
                key(out, "path", false);
                opt(out, r.path.as_deref());
                key(out, "route", false);
                opt(out, r.route.as_deref());
                key(out, "status", false);
                match r.status {
                    Some(s) => int(out, u64::from(s)),
                    None => out.extend_from_slice(b"null"),
                }
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        key(out, "schema", false);
        write_str(out, SCHEMA);
        key(out, "source", false);
        out.push(b'{');
        key(out, "ip", true);
        match self.source.ip {
            Some(std::net::IpAddr::V4(ip)) => {
                out.push(b'"');
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    crate::jcs::write_u64(out, u64::from(octet));
                }
                out.push(b'"');
            }
            Some(ip) => {
                use std::io::Write as _;
                let _ = write!(out, "\"{ip}\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        key(out, "user_agent", false);
        opt(out, self.source.user_agent.as_deref());
        out.push(b'}');
        key(out, "stage", false);
        write_str(out, self.stage.as_str());
        key(out, "target", false);
        match &self.target {
            Some(t) => {
                out.push(b'{');
                key(out, "id", true);
                write_str(out, &t.id);
                key(out, "type", false);
                write_str(out, &t.kind);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        key(out, "time", false);
        out.push(b'"');
        write_time(out, self.time);
        out.push(b'"');
        out.push(b'}');
        Ok(())
    }
}

fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

/// RFC 3339 UTC with microseconds: `2026-01-02T03:04:05.123456Z`.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let mut out = Vec::with_capacity(27);
    write_time(&mut out, t);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `t` as RFC 3339 UTC with microseconds, without formatting
/// machinery (the writer does this for every record).
pub(crate) fn write_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    fn digits(out: &mut Vec<u8>, mut v: u32, width: usize) {
        let mut buf = [b'0'; 10];
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    }
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = u32::try_from(t.year()).unwrap_or(0).min(9999);
    digits(out, year, 4);
    out.push(b'-');
    digits(out, u32::from(u8::from(t.month())), 2);
    out.push(b'-');
    digits(out, u32::from(t.day()), 2);
    out.push(b'T');
    digits(out, u32::from(t.hour()), 2);
    out.push(b':');
    digits(out, u32::from(t.minute()), 2);
    out.push(b':');
    digits(out, u32::from(t.second()), 2);
    out.push(b'.');
    digits(out, t.microsecond(), 6);
    out.push(b'Z');
}

/// Replaces floats (and integers JSON implementations cannot all represent)
/// with strings, recursively.
pub(crate) fn integers_only(value: Value) -> Value {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64()
                && (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i)
            {
                return Value::Number(n);
            }
            Value::String(n.to_string())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(integers_only).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integers_only(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Whether [`escape_raw`] changes `s`: a raw control, or a `\x` or `\u`
/// already in the text, escaped so that no text can pass for an escape.
fn needs_raw_escape(s: &str) -> bool {
    has_display_control(s)
        || s.as_bytes()
            .windows(2)
            .any(|pair| pair[0] == b'\\' && matches!(pair[1], b'x' | b'u'))
}

/// What every event goes through before it is written, whichever way it
/// takes (the pipeline, the PostgreSQL outbox): its details redacted, and
/// the controls the canonical form keeps literal escaped.
pub(crate) fn prepare(redactor: &Redactor, event: AuditEvent) -> AuditEvent {
    let mut event = redactor.redact_event(event);
    escape_raw_controls(&mut event);
    event
}

/// Whether a string or member name anywhere in `value` has a raw control.
#[cfg(feature = "postgres")]
fn holds_raw_control(value: &Value) -> bool {
    match value {
        Value::String(s) => has_display_control(s),
        Value::Array(items) => items.iter().any(holds_raw_control),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| has_display_control(k) || holds_raw_control(v)),
        _ => false,
    }
}

/// Appends `c` as a visible escape: `\xNN` below U+0100, else `\u{HHHH}`.
fn push_escape(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let code = u32::from(c);
    if code < 0x100 {
        let _ = write!(out, "\\x{code:02X}");
    } else {
        let _ = write!(out, "\\u{{{code:04X}}}");
    }
}

/// Appends the characters of `chars` to `out`, those that `escape` selects
/// as visible escapes, and a backslash that a literal `x` or `u` follows as
/// `\x5C`: every `\x` and `\u` in the result starts an escape, so the
/// escaping is reversible and the text `\x1B` is never read as an escape
/// character.
fn push_escaped(
    out: &mut String,
    chars: impl Iterator<Item = char>,
    escape: impl Fn(char) -> bool,
) {
    let mut chars = chars.peekable();
    while let Some(c) = chars.next() {
        if escape(c) || (c == '\\' && matches!(chars.peek(), Some('x' | 'u'))) {
            push_escape(out, c);
        } else {
            out.push(c);
        }
    }
}

/// `s` with its raw controls (see [`is_display_control`]) as visible escapes.
fn escape_raw(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s.chars(), is_display_control);
    out
}

/// How deep detail values may nest (the `details` object is level 1).
/// Deeper containers are replaced by `{"omitted": "too_deep"}`: a record is
/// read back by JSON parsers with a nesting limit (serde_json's is 128), and
/// a record one of them refuses would read as damage.
pub const MAX_DETAIL_DEPTH: usize = 32;

fn escape_raw_value(value: &mut Value, depth: usize) {
    match value {
        Value::String(s) if needs_raw_escape(s) => *s = escape_raw(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DETAIL_DEPTH => {
            *value = serde_json::json!({"omitted": "too_deep"});
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| escape_raw_value(item, depth + 1)),
        Value::Object(map) => escape_raw_map(map, depth),
        _ => {}
    }
}

/// `map` is at nesting `depth`, its values one deeper.
fn escape_raw_map(map: &mut Map<String, Value>, depth: usize) {
    if map.keys().any(|k| needs_raw_escape(k)) {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| {
                let k = if needs_raw_escape(&k) {
                    escape_raw(&k)
                } else {
                    k
                };
                (k, v)
            })
            .collect();
    }
    map.values_mut()
        .for_each(|value| escape_raw_value(value, depth + 1));
}

/// Escapes DEL and the C1 controls in the actor's subject and tenant and in
/// every detail (strings and member names), wherever they came from: the
/// canonical form keeps them literal, so a terminal showing the trail, or
/// its tracing lines, could act on them. Nothing is scanned past a byte
/// check when there is none. Cuts details nested deeper than
/// [`MAX_DETAIL_DEPTH`].
pub(crate) fn escape_raw_controls(event: &mut AuditEvent) {
    for field in [&mut event.actor.subject, &mut event.actor.tenant]
        .into_iter()
        .flatten()
    {
        if needs_raw_escape(field) {
            *field = escape_raw(field);
        }
    }
    if !event.details.is_empty() {
        escape_raw_map(&mut event.details, 1);
    }
}

/// An actor's subject or tenant as [`escape_raw_controls`] records it: what
/// a query by actor or tenant compares with.
#[cfg(feature = "postgres")]
pub(crate) fn actor_as_recorded(text: String) -> String {
    if needs_raw_escape(&text) {
        escape_raw(&text)
    } else {
        text
    }
}

/// [`escape_raw_controls`] for a whole record that did not come from an
/// [`AuditEvent`] (an outbox row), when it holds raw controls: then it was
/// written by hand, not by `record_in`, which escapes them (and whose
/// escapes must not be escaped twice). Every string and member name is
/// escaped, details cut at the same depth.
#[cfg(feature = "postgres")]
pub(crate) fn escape_raw_record(record: &mut Map<String, Value>) {
    if record
        .iter()
        .any(|(k, v)| has_display_control(k) || holds_raw_control(v))
    {
        escape_raw_map(record, 0);
    }
}

/// Makes untrusted text safe for logs and terminals: control characters
/// (C0, DEL, C1 — CR, LF, ESC of ANSI sequences…) become visible `\xNN`
/// escapes, Unicode line separators and bidirectional controls (which make
/// a line display other than it reads) `\u{HHHH}` escapes, and the text is
/// cut at `max_chars` characters. A backslash before an `x` or a `u` is
/// written `\x5C`, so the text `\x1B` stays distinguishable from an
/// escaped ESC. For the same reason sanitizing is
/// not idempotent: give it the original text, not text it returned (whose
/// escapes it would escape again).
///
/// ```
/// use guardrails_audit::event::sanitize;
///
/// assert_eq!(sanitize("curl\r\n\u{1b}[2J", 64), "curl\\x0D\\x0A\\x1B[2J");
/// assert_eq!(sanitize("curl\\x1B[2J", 64), "curl\\x5Cx1B[2J");
/// assert_eq!(sanitize("evil\u{202e}txt.exe", 64), "evil\\u{202E}txt.exe");
/// assert_eq!(sanitize("abcdef", 3), "abc…");
/// ```
pub fn sanitize(input: &str, max_chars: usize) -> String {
    // Usual case: short enough and nothing to escape (C1 controls are
    // U+0080..U+009F, encoded 0xC2 0x80..0x9F, so an ASCII check suffices).
    if input.len() <= max_chars
        && input
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len().min(max_chars));
    push_escaped(&mut out, input.chars().take(max_chars), |c| {
        c < '\u{20}' || is_display_control(c)
    });
    if input.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// The placeholder of a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Removes the values of sensitive detail keys, recursively.
///
/// A key is sensitive when, lower-cased and with `-` and `_` removed, it
/// contains one of the configured fragments, or when one of its words
/// (split at separators and camel case: `smsOtp` is `sms` and `otp`) is one
/// of the sensitive words. The default fragments cover passwords and
/// passphrases, secrets, tokens (bearer, JWT, CSRF), API, access, signing,
/// HMAC, encryption, master and private keys, authorization, cookies,
/// sessions, credentials, card data, signatures and signed assertions
/// (`client_assertion`, `SAMLResponse`); the default words (too short to
/// match inside other words: `pin` is in `shipping`) are
/// [`DEFAULT_REDACTED_WORDS`]. [`Redactor::with_key`] adds fragments.
///
/// A name/value pair (an object with a `name`, `key` or `field` member and
/// a `value`) has its value redacted when the name is sensitive:
/// `[{"name": "password", "value": "…"}]`.
///
/// Redaction goes by key: a secret in a value whose key says nothing of it
/// (a top-level string, `"note": "my password is …"`) is recorded. For
/// routes whose bodies may carry such values, keep the level at
/// `Metadata`.
///
/// ```
/// use guardrails_audit::Redactor;
/// use serde_json::json;
///
/// let redactor = Redactor::default().with_key("email");
/// let mut value = json!({"user": {"Email": "a@b.c", "refresh_token": "x"}, "n": 1});
/// redactor.redact_value(&mut value);
/// assert_eq!(value, json!({"user": {"Email": "[REDACTED]", "refresh_token": "[REDACTED]"}, "n": 1}));
/// ```
#[derive(Clone, Debug)]
pub struct Redactor {
    fragments: Vec<String>,
    /// Whether [`DEFAULT_REDACTED_WORDS`] apply.
    words: bool,
}

/// The default sensitive key fragments.
pub const DEFAULT_REDACTED_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "authorization",
    "cookie",
    "session",
    "sessid",
    "credential",
    "cardnumber",
    "cvv",
    "ssn",
    "passphrase",
    "privkey",
    "accesskey",
    "signingkey",
    "hmackey",
    "encryptionkey",
    "masterkey",
    "bearer",
    "jwt",
    "csrf",
    "xsrf",
    "cvc",
    "securitycode",
    "assertion",
    "samlresponse",
    "signature",
];

/// Words that make a key sensitive when they are a whole word of it
/// (`user_pin`, `smsOtp`, `api-key`, `pwd`), not when they are inside
/// another (`shipping`, `footprint`, `keyboard`).
pub const DEFAULT_REDACTED_WORDS: &[&str] = &[
    "pwd", "pass", "pin", "otp", "totp", "hotp", "mfa", "key", "seed", "mnemonic",
];

impl Default for Redactor {
    fn default() -> Self {
        Self {
            fragments: DEFAULT_REDACTED_KEYS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            words: true,
        }
    }
}

impl Redactor {
    /// A redactor with no fragments at all (redacts nothing).
    pub fn none() -> Self {
        Self {
            fragments: Vec::new(),
            words: false,
        }
    }

    /// Adds a sensitive key fragment.
    #[must_use]
    pub fn with_key(mut self, fragment: &str) -> Self {
        let normalized = normalize_key(fragment);
        if !normalized.is_empty() {
            self.fragments.push(normalized);
        }
        self
    }

    /// Whether `key` is sensitive.
    pub fn is_sensitive(&self, key: &str) -> bool {
        if self.fragments.is_empty() && !self.words {
            return false;
        }
        let normalized = normalize_key(key);
        self.fragments
            .iter()
            .any(|f| normalized.contains(f.as_str()))
            || (self.words
                && DEFAULT_REDACTED_WORDS
                    .iter()
                    .any(|w| normalized.contains(w))
                && key_words(key).any(|w| DEFAULT_REDACTED_WORDS.contains(&&*w)))
    }

    /// Redacts sensitive keys in `value`, recursively.
    pub fn redact_value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => self.redact_map(map),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }

    /// Redacts sensitive keys in `map`, recursively.
    pub fn redact_map(&self, map: &mut Map<String, Value>) {
        let pair_name_sensitive = map.contains_key("value")
            && ["name", "key", "field"].iter().any(|member| {
                map.get(*member)
                    .and_then(Value::as_str)
                    .is_some_and(|name| self.is_sensitive(name))
            });
        for (key, value) in map.iter_mut() {
            if self.is_sensitive(key) || (pair_name_sensitive && key == "value") {
                *value = Value::from(REDACTED);
            } else {
                self.redact_value(value);
            }
        }
    }

    /// Redacts the event's details.
    pub fn redact_event(&self, mut event: AuditEvent) -> AuditEvent {
        if !event.details.is_empty() {
            self.redact_map(&mut event.details);
        }
        event
    }
}

/// The lower-cased words of `key`, split at separators and camel-case
/// boundaries (heck's snake case): `smsOtp` → `sms`, `otp`; `OTPCode` →
/// `otp`, `code`.
fn key_words(key: &str) -> impl Iterator<Item = String> {
    use heck::ToSnakeCase as _;
    key.to_snake_case()
        .split('_')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
}

fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_' && *c != '.' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn direct_canonical_form_equals_jcs_of_the_json_tree() {
        let p = Principal::builder("al\u{e9}\"x", guardrails_core::AuthMethod::ApiKey)
            .tenant("t")
            .build();
        let full = AuditEvent::new("a.b", Category::Admin)
            .with_principal(&p)
            .with_outcome(Outcome::Denied)
            .with_reason("why")
            .with_stage(Stage::Received)
            .with_target("thing", "id\u{1}")
            .with_source(Source {
                ip: "::1".parse().ok(),
                user_agent: Some("ua\"\\".into()),
            })
            .with_request(RequestInfo {
                id: Some("r".into()),
                method: Some("GET".into()),
                route: None,
                path: Some("/p".into()),
                status: Some(404),
                duration_us: Some(u64::MAX),
            })
            .with_observer(Arc::new(Observer::new("s", "1", "i")))
            .with_detail("\u{fb33}", 1)
            .with_detail("\u{1d11e}", json!({"z": [null, true], "a": "\u{7f}"}));
        for event in [full, AuditEvent::new("x", Category::System)] {
            let mut direct = Vec::new();
            event.write_canonical(&mut direct, None).unwrap();
            let tree = crate::jcs::to_vec(&event.to_json()).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(tree).unwrap()
            );
        }
    }

    #[test]
    fn ids_are_ordered_uuid_v7_of_the_event_time() {
        let events: Vec<_> = (0..100)
            .map(|_| AuditEvent::new("x", Category::System))
            .collect();
        for pair in events.windows(2) {
            assert!(pair[0].id < pair[1].id, "ordered within a thread");
        }
        let e = &events[0];
        assert_eq!(e.id.get_version_num(), 7);
        let (secs, nanos) = e.id.get_timestamp().unwrap().to_unix();
        assert_eq!(
            i128::from(secs) * 1000 + i128::from(nanos / 1_000_000),
            e.time.unix_timestamp_nanos() / 1_000_000,
            "the id's millisecond is the event's"
        );
    }

    #[test]
    fn floats_and_huge_integers_become_strings() {
        let e = AuditEvent::new("x.y", Category::System)
            .with_detail("f", 1.5)
            .with_detail("big", u64::MAX)
            .with_detail("ok", 42)
            .with_detail("nested", json!({"a": [0.25, 7]}));
        assert_eq!(e.details["f"], "1.5");
        assert_eq!(e.details["big"], u64::MAX.to_string());
        assert_eq!(e.details["ok"], 42);
        assert_eq!(e.details["nested"], json!({"a": ["0.25", 7]}));
    }

    #[test]
    fn time_is_rfc3339_utc_micros() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_767_315_845_123_456_789)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format_time(t), "2026-01-02T01:04:05.123456Z");
    }

    #[test]
    fn sanitize_escapes_controls_and_bounds() {
        assert_eq!(
            sanitize("a\r\nb\u{1b}[31mc\u{7f}\u{85}", 100),
            "a\\x0D\\x0Ab\\x1B[31mc\\x7F\\x85"
        );
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("abc", 3), "abc");
        assert_eq!(sanitize("héllo", 10), "héllo");
        // Bidirectional controls and line separators are escaped; a
        // zero-width joiner (emoji sequences) is not.
        assert_eq!(
            sanitize("a\u{202e}b\u{2028}c\u{200d}", 100),
            "a\\u{202E}b\\u{2028}c\u{200d}"
        );
        // The text of an escape is escaped itself, so it cannot pass for one.
        assert_eq!(sanitize("a\\x1Bb", 100), "a\\x5Cx1Bb");
        assert_eq!(sanitize("a\\\u{1b}", 100), "a\\\\x1B");
        assert_eq!(sanitize("C:\\dir\\", 100), "C:\\dir\\");
        assert_eq!(sanitize("a\\x", 2), "a\\…");
    }

    /// Reads `\xNN` escapes back: what a reader of the trail does.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let (code, len) = if let Some(hex) = rest.strip_prefix("\\x") {
                (u32::from_str_radix(&hex[..2], 16).unwrap(), 4)
            } else if let Some(braced) = rest.strip_prefix("\\u{") {
                let end = braced.find('}').unwrap();
                (u32::from_str_radix(&braced[..end], 16).unwrap(), end + 4)
            } else {
                // A backslash that starts no escape is itself.
                out.push('\\');
                rest = &rest[1..];
                continue;
            };
            out.push(char::from_u32(code).unwrap());
            rest = &rest[len..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn escaping_is_reversible() {
        for text in [
            "plain",
            "a\\x1B",
            "a\u{1b}",
            "\\\\x",
            "\\\u{85}x",
            "x\\",
            "\\x5C\u{9b}\\",
            "C:\\x\\y",
            "C:\\users\\u{202E}",
            "abc\u{202e}cba\u{2028}\u{2066}\u{61c}\u{200d}",
            "\\u{202E}",
        ] {
            assert_eq!(unescape(&sanitize(text, 100)), text, "{text:?}");
            let raw = if needs_raw_escape(text) {
                escape_raw(text)
            } else {
                text.to_owned()
            };
            assert_eq!(unescape(&raw), text, "{text:?}");
        }
        // Two detail keys that read alike before stay apart.
        let mut event = AuditEvent::new("x", Category::DataWrite)
            .with_detail("a\u{85}", 1)
            .with_detail("a\\x85", 2);
        escape_raw_controls(&mut event);
        assert_eq!(event.details().len(), 2);
        assert_eq!(event.details()["a\\x85"], 1);
        assert_eq!(event.details()["a\\x5Cx85"], 2);
    }

    #[test]
    fn principal_maps_to_actor_without_token_data() {
        let p = Principal::builder("alice", guardrails_core::AuthMethod::Jwt)
            .tenant("acme")
            .token_id("jti-secret")
            .build();
        let e = AuditEvent::new("x", Category::Authn)
            .with_principal(&p)
            .to_json();
        assert_eq!(
            e["actor"],
            json!({"type": "user", "subject": "alice", "tenant": "acme", "auth_method": "jwt"})
        );
        assert!(!e.to_string().contains("jti-secret"));
        // A subject or tenant with terminal controls is recorded escaped.
        let p = Principal::builder("ev\u{9b}31mil", guardrails_core::AuthMethod::Jwt)
            .tenant("ac\u{7f}me")
            .build();
        let mut event = AuditEvent::new("x", Category::Authn).with_principal(&p);
        escape_raw_controls(&mut event);
        assert_eq!(event.actor().subject.as_deref(), Some("ev\\x9B31mil"));
        assert_eq!(event.actor().tenant.as_deref(), Some("ac\\x7Fme"));
    }

    #[test]
    fn details_nested_too_deep_are_cut_where_the_limit_is() {
        // A client's body nested 126 deep parses; its record, deeper still,
        // would not parse back with serde_json's limit of 128.
        let mut deep = json!(1);
        for _ in 0..126 {
            deep = json!([deep]);
        }
        let mut event = AuditEvent::new("x", Category::DataWrite).with_detail("body", deep);
        escape_raw_controls(&mut event);
        let mut at = &event.details()["body"];
        let mut depth = 2; // `details` is 1, `body`'s value 2
        while let Some(inner) = at.get(0) {
            at = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DETAIL_DEPTH);
        assert_eq!(*at, json!({"omitted": "too_deep"}));
        let record = serde_json::to_string(&event.to_json()).unwrap();
        assert!(serde_json::from_str::<Value>(&record).is_ok());
    }

    #[test]
    fn raw_controls_in_the_actor_and_details_are_escaped() {
        let mut event = AuditEvent::new("x", Category::DataWrite)
            .with_actor(Actor {
                subject: Some("ev\u{9b}il".into()),
                tenant: Some("acme".into()),
                auth_method: None,
            })
            .with_detail("n\u{85}ote", json!(["a\u{9b}b", 1, {"c": "\u{7f}\n"}]))
            .with_detail("ok", "plain \u{a9}");
        escape_raw_controls(&mut event);
        assert_eq!(event.actor().subject.as_deref(), Some("ev\\x9Bil"));
        assert_eq!(event.actor().tenant.as_deref(), Some("acme"));
        // C0 controls stay: JSON escapes them. U+00A9 is not a control.
        assert_eq!(
            Value::Object(event.details().clone()),
            json!({"n\\x85ote": ["a\\x9Bb", 1, {"c": "\\x7F\n"}], "ok": "plain \u{a9}"})
        );
    }

    #[test]
    fn redaction_is_case_and_separator_insensitive() {
        let r = Redactor::default();
        for k in [
            "Password",
            "api-key",
            "X-Api-Key",
            "sessionId",
            "SESSION_ID",
            "client_secret",
            "Set-Cookie",
            "access_token",
            "PHPSESSID",
            "jsessionid",
            "hmac_key",
            "signing-key",
            "aws_access_key_id",
            "passphrase",
            "id_jwt",
            "_csrf",
            "pwd",
            "user_pin",
            "smsOtp",
            "OTPCode",
            "mfa-code",
            "key",
            "seed",
            "recovery_pass",
            "card_cvc",
            "security_code",
            "client_assertion",
            "SAMLResponse",
            "x-hub-signature-256",
        ] {
            assert!(r.is_sensitive(k), "{k}");
        }
        for k in [
            "amount",
            "invoice_id",
            "currency",
            "shipping",
            "footprint",
            "keyboard",
            "monkey",
            "passenger",
            "pinned",
        ] {
            assert!(!r.is_sensitive(k), "{k}");
        }
        assert!(!Redactor::none().is_sensitive("pwd"));
    }

    #[test]
    fn name_value_pairs_are_redacted_by_their_name() {
        let mut value = json!({
            "fields": [
                {"name": "password", "value": "hunter2"},
                {"key": "user_pin", "value": 1234},
                {"field": "email", "value": "a@b.c"},
                {"name": "note", "value": {"token": "t"}},
            ]
        });
        Redactor::default().redact_value(&mut value);
        assert_eq!(
            value,
            json!({
                "fields": [
                    {"name": "password", "value": "[REDACTED]"},
                    // A member named `key` is sensitive itself.
                    {"key": "[REDACTED]", "value": "[REDACTED]"},
                    {"field": "email", "value": "a@b.c"},
                    {"name": "note", "value": {"token": "[REDACTED]"}},
                ]
            })
        );
    }
}
