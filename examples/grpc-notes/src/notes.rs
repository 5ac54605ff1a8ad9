//! The notes service: what the generated `Notes` trait asks for, behind the
//! guard layers ([`crate::app`]).
//!
//! Every handler reads the caller from the verified [`Principal`] the auth
//! layer put into the request's extensions (tonic keeps them), checks its
//! scope or role, and works only in the token's tenant. Messages are
//! checked with [`guardrails_validate::grpc::check`] against the rules the
//! build script attached to them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use guardrails_audit::{AuditContext, Category, Outcome};
use guardrails_core::Principal;
use guardrails_validate::grpc::{check, to_status};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::pb::{
    CreateNoteRequest, DeleteNoteRequest, DeleteNoteResponse, ListNotesRequest, Note, notes_server,
};
use crate::{ROLE_ADMIN, SCOPE_READ, SCOPE_WRITE};

/// The notes of every tenant, in memory.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    by_tenant: Arc<Mutex<HashMap<String, Vec<Note>>>>,
}

impl Notes {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Note>>) -> R) -> R {
        let mut all = self
            .by_tenant
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut all)
    }
}

/// The caller and its tenant: only ever from the verified token, never from
/// a message. A token without a tenant may not touch notes.
fn caller<T>(request: &Request<T>) -> Result<(&Principal, &str), Status> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no verified caller"))?;
    let tenant = principal
        .tenant()
        .ok_or_else(|| Status::permission_denied("the token names no tenant"))?;
    Ok((principal, tenant))
}

fn require_scope(principal: &Principal, scope: &str) -> Result<(), Status> {
    if principal.has_scope(scope) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!("scope {scope} required")))
    }
}

/// The stream [`ListNotes`](notes_server::Notes::list_notes) answers.
pub type NoteStream = Pin<Box<dyn Stream<Item = Result<Note, Status>> + Send>>;

#[tonic::async_trait]
impl notes_server::Notes for Notes {
    async fn create_note(
        &self,
        request: Request<CreateNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let (principal, tenant) = caller(&request)?;
        require_scope(principal, SCOPE_WRITE)?;
        check(request.get_ref(), &())?;
        let new = request.get_ref();
        let note = Note {
            id: uuid::Uuid::now_v7().to_string(),
            title: new.title.clone(),
            body: new.body.clone(),
            tags: new.tags.clone(),
            author: principal.subject().to_owned(),
        };
        self.with(|all| all.entry(tenant.to_owned()).or_default().push(note.clone()));
        Ok(Response::new(note))
    }

    type ListNotesStream = NoteStream;

    async fn list_notes(
        &self,
        request: Request<ListNotesRequest>,
    ) -> Result<Response<NoteStream>, Status> {
        let (principal, tenant) = caller(&request)?;
        require_scope(principal, SCOPE_READ)?;
        let notes = self.with(|all| all.get(tenant).cloned().unwrap_or_default());
        Ok(Response::new(Box::pin(tokio_stream::iter(
            notes.into_iter().map(Ok),
        ))))
    }

    /// Deletes the note, records a `note.delete` domain event, and undoes
    /// the deletion when the event cannot be recorded (the call is strict:
    /// answered as not processed, it must not be).
    async fn delete_note(
        &self,
        request: Request<DeleteNoteRequest>,
    ) -> Result<Response<DeleteNoteResponse>, Status> {
        let (principal, tenant) = caller(&request)?;
        if !principal.has_role(ROLE_ADMIN) {
            return Err(Status::permission_denied(format!(
                "role {ROLE_ADMIN} required"
            )));
        }
        check(request.get_ref(), &())?;
        // Without the audit layer in front, a deletion cannot be audited:
        // it is refused before anything is deleted.
        let Some(audit) = request.extensions().get::<AuditContext>().cloned() else {
            return Err(Status::unavailable("the request could not be audited"));
        };
        // The deletion, its record and its undoing run in a task of their
        // own, to the end: a call cancelled while its record is pending
        // (the client resets the stream, the server drains) must not leave
        // the note deleted without a record, or its undoing half done.
        let deletion = tokio::spawn({
            let notes = self.clone();
            let tenant = tenant.to_owned();
            let id = request.get_ref().id.clone();
            async move { notes.delete_recorded(&tenant, &id, &audit).await }
        });
        match deletion.await {
            Ok(result) => result.map(|()| Response::new(DeleteNoteResponse {})),
            Err(_) => Err(Status::internal("the deletion failed")),
        }
    }
}

impl Notes {
    /// Deletes note `id` of `tenant`, records a `note.delete` event with
    /// `audit`, and undoes the deletion when the event cannot be recorded.
    async fn delete_recorded(
        &self,
        tenant: &str,
        id: &str,
        audit: &AuditContext,
    ) -> Result<(), Status> {
        let removed = self.with(|all| {
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
            if let Some((at, note)) = removed {
                self.with(|all| {
                    let list = all.entry(tenant.to_owned()).or_default();
                    list.insert(at.min(list.len()), note);
                });
                // The deletion's record may reach the trail all the
                // same: say, best effort, that it was undone.
                let reverted = audit
                    .event("note.delete", Category::DataWrite)
                    .with_target("note", id)
                    .with_detail("tenant", tenant)
                    .with_outcome(Outcome::Failure)
                    .with_reason("reverted");
                let _ = audit.auditor().record(reverted);
            }
            return Err(to_status(&error.to_problem(audit.mode())));
        }
        match removed {
            Some(_) => Ok(()),
            None => Err(Status::not_found("no such note")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::notes_server::Notes as _;
    use guardrails_core::AuthMethod;

    /// A service reused without the audit layer in front cannot audit a
    /// deletion: it refuses it before anything is deleted.
    #[tokio::test]
    async fn without_the_audit_layer_nothing_is_deleted() {
        let notes = Notes::default();
        let note = Note {
            id: "0193c3a0-7c1e-7b2a-9d3e-5f6a7b8c9d0e".into(),
            title: "keep me".into(),
            ..Note::default()
        };
        notes.with(|all| all.entry("acme".into()).or_default().push(note.clone()));
        let mut request = Request::new(DeleteNoteRequest {
            id: note.id.clone(),
        });
        request.extensions_mut().insert(
            Principal::builder("carol", AuthMethod::Jwt)
                .tenant("acme")
                .roles([ROLE_ADMIN])
                .build(),
        );
        let refused = notes.delete_note(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert_eq!(notes.with(|all| all["acme"].clone()), [note]);
    }
}
