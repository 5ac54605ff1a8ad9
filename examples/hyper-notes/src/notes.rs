//! The notes: an in-memory store per tenant, and the handlers.
//!
//! Handlers are plain functions of the request: the guard layers in front
//! put what they established into its extensions (the verified
//! [`Principal`], the [`Validated`] body, the request's [`AuditContext`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use garde::Validate;
use guardrails_audit::{AuditContext, Category, Outcome};
use guardrails_core::{Principal, Problem, ProblemType};
use guardrails_validate::Validated;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// A note to create: the validated JSON body of `POST /v1/notes`. Unknown
/// members are refused (the validation layer's strict default).
#[derive(Debug, Deserialize, Validate)]
pub struct NewNote {
    /// 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200))]
    pub title: String,
    /// At most 10 000 characters.
    #[garde(length(chars, max = 10_000))]
    #[serde(default)]
    pub body: String,
}

/// A stored note.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    /// A UUIDv7, lower-case.
    pub id: String,
    /// The title.
    pub title: String,
    /// The text.
    pub body: String,
    /// Who created it (the token's subject).
    pub author: String,
}

/// The notes of every tenant, shared by the handlers.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    by_tenant: Arc<Mutex<HashMap<String, Vec<Note>>>>,
}

impl Notes {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Note>>) -> R) -> R {
        f(&mut self
            .by_tenant
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

/// Whether `id` has the form of a note id (a lower-case hyphenated UUID).
pub fn is_id(id: &str) -> bool {
    id.len() == 36
        && uuid::Uuid::try_parse(id).is_ok()
        && !id.bytes().any(|b| b.is_ascii_uppercase())
}

/// Why a request may not touch notes.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// No principal (only without the route's `RequireLayer`).
    Unauthenticated,
    /// The token names no tenant.
    NoTenant,
}

impl Refusal {
    fn into_response(self) -> Response<Full<Bytes>> {
        match self {
            Self::Unauthenticated => Problem::new(ProblemType::AUTHENTICATION_REQUIRED),
            Self::NoTenant => {
                Problem::new(ProblemType::FORBIDDEN).with_detail("the token names no tenant")
            }
        }
        .into_http_response()
    }
}

/// The caller's tenant: only ever from the verified token, never from the
/// request. A token without one may not touch notes.
fn tenant<B>(request: &Request<B>) -> Result<(&Principal, &str), Refusal> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .ok_or(Refusal::Unauthenticated)?;
    let tenant = principal.tenant().ok_or(Refusal::NoTenant)?;
    Ok((principal, tenant))
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => Problem::new(ProblemType::INTERNAL_ERROR).into_http_response(),
    }
}

/// `GET /v1/notes`: the caller's tenant's notes.
pub fn list<B>(notes: &Notes, request: &Request<B>) -> Response<Full<Bytes>> {
    match tenant(request) {
        Ok((_, tenant)) => {
            let list = notes.with(|all| all.get(tenant).cloned().unwrap_or_default());
            json(StatusCode::OK, &list)
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /v1/notes`: stores the validated note; 201 with it.
pub fn create<B>(notes: &Notes, request: &Request<B>) -> Response<Full<Bytes>> {
    let (principal, tenant) = match tenant(request) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(new) = request.extensions().get::<Validated<NewNote>>() else {
        // Only behind ValidateJsonLayer<NewNote>.
        return Problem::new(ProblemType::INTERNAL_ERROR).into_http_response();
    };
    let note = Note {
        id: uuid::Uuid::now_v7().to_string(),
        title: new.title.clone(),
        body: new.body.clone(),
        author: principal.subject().to_owned(),
    };
    notes.with(|all| all.entry(tenant.to_owned()).or_default().push(note.clone()));
    json(StatusCode::CREATED, &note)
}

/// `DELETE /v1/notes/{id}`: deletes the note, records a `note.delete`
/// domain event, and undoes the deletion when the event cannot be recorded
/// (the route is strict: answered as not processed, it must not be).
pub async fn delete<B>(notes: &Notes, request: Request<B>) -> Response<Full<Bytes>> {
    let (_, tenant) = match tenant(&request) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let id = request
        .uri()
        .path()
        .strip_prefix("/v1/notes/")
        .unwrap_or_default();
    // Without the audit layer in front, a deletion cannot be audited: it is
    // refused before anything is deleted.
    let Some(audit) = request.extensions().get::<AuditContext>().cloned() else {
        return Problem::new(ProblemType::AUDIT_UNAVAILABLE)
            .with_detail("the request cannot be processed without its audit trail")
            .into_http_response();
    };
    // The deletion, its record and its undoing run in a task of their own,
    // to the end: a request cancelled while its record is pending (the
    // shutdown's drain time ran out) must not leave the note deleted
    // without a record, or its undoing half done.
    let deletion = tokio::spawn(delete_recorded(
        notes.clone(),
        tenant.to_owned(),
        id.to_owned(),
        audit,
    ));
    deletion
        .await
        .unwrap_or_else(|_| Problem::new(ProblemType::INTERNAL_ERROR).into_http_response())
}

async fn delete_recorded(
    notes: Notes,
    tenant: String,
    id: String,
    audit: AuditContext,
) -> Response<Full<Bytes>> {
    let (tenant, id) = (tenant.as_str(), id.as_str());
    let removed = notes.with(|all| {
        let list = all.get_mut(tenant)?;
        let at = list.iter().position(|n| n.id == id)?;
        Some((at, list.remove(at)))
    });
    let event = audit
        .event("note.delete", Category::DataWrite)
        .with_target("note", id)
        .with_detail("tenant", tenant);
    let event = match removed {
        Some(_) => event.with_outcome(Outcome::Success),
        None => event
            .with_outcome(Outcome::Failure)
            .with_reason("not_found"),
    };
    if let Err(error) = audit.record(event).await {
        // Answered as not processed: then it must not be.
        if let Some((at, note)) = removed {
            notes.with(|all| {
                let list = all.entry(tenant.to_owned()).or_default();
                list.insert(at.min(list.len()), note);
            });
            // The deletion's record may reach the trail all the same (it
            // timed out in the queue, or was written but not synced): say,
            // best effort, that the deletion was undone.
            let reverted = audit
                .event("note.delete", Category::DataWrite)
                .with_target("note", id)
                .with_detail("tenant", tenant)
                .with_outcome(Outcome::Failure)
                .with_reason("reverted");
            let _ = audit.auditor().record(reverted);
        }
        return error.to_problem(audit.mode()).into_http_response();
    }
    match removed {
        Some(_) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        None => Problem::new(ProblemType::NOT_FOUND).into_http_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardrails_core::AuthMethod;

    /// A handler reused without the audit layer in front cannot audit a
    /// deletion: it refuses it before anything is deleted.
    #[tokio::test]
    async fn without_the_audit_layer_nothing_is_deleted() {
        let notes = Notes::default();
        let note = Note {
            id: uuid::Uuid::now_v7().to_string(),
            title: "keep me".into(),
            body: String::new(),
            author: "bob".into(),
        };
        notes.with(|all| all.entry("acme".into()).or_default().push(note.clone()));
        let mut request = Request::delete(format!("/v1/notes/{}", note.id))
            .body(())
            .unwrap();
        request.extensions_mut().insert(
            Principal::builder("bob", AuthMethod::Jwt)
                .tenant("acme")
                .build(),
        );
        let response = delete(&notes, request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("/audit-unavailable"),
            "{problem}"
        );
        assert_eq!(notes.with(|all| all["acme"].len()), 1, "deleted");
    }
}
