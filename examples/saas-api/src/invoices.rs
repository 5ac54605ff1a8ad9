//! The invoices domain: types, an in-memory store, and the handlers.
//!
//! Handlers trust what the layers in front of them established: the tenant
//! in the path has been checked against the caller's tenant, and bodies have
//! been validated. A handler only ever touches the tenant in its path, so an
//! invoice of another tenant is indistinguishable from an absent one (404).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use garde::Validate;
use guardrails_audit::{Category, Outcome, RequestAudit};
use guardrails_core::{Problem, ProblemType};
use guardrails_validate::axum::Valid;
use guardrails_validate::codes::custom_error;
use serde::{Deserialize, Serialize};

/// One invoice line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Validate)]
pub struct Line {
    /// What was sold (1..=200 characters).
    #[garde(length(chars, min = 1, max = 200))]
    pub description: String,
    /// How many (1..=10000).
    #[garde(range(min = 1, max = 10_000))]
    pub quantity: u32,
    /// Price of one, in cents (0..=100000000).
    #[garde(range(max = 100_000_000))]
    pub unit_price_cents: u64,
}

/// The body of `POST /v1/tenants/{tenant}/invoices`, validated by the
/// `Valid<Json<NewInvoice>>` extractor: unknown members, type errors and
/// every rule below answer 422 with one violation per problem.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Validate)]
pub struct NewInvoice {
    /// Who is billed (an email address).
    #[garde(email)]
    pub customer_email: String,
    /// ISO 4217 code: three upper-case letters.
    #[garde(pattern(r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Due date, `YYYY-MM-DD` (a real calendar date).
    #[garde(custom(calendar_date))]
    pub due_date: String,
    /// 1..=100 lines.
    #[garde(length(min = 1, max = 100), dive)]
    pub lines: Vec<Line>,
    /// Optional note, at most 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, max = 1000)))]
    pub memo: Option<String>,
}

/// Limits for invoice bodies: the largest valid invoice (100 lines of 200
/// four-byte characters and a 1000-character memo) fits well within 256 KiB.
pub fn body_limits() -> guardrails_validate::Config {
    guardrails_validate::Config::default()
        .max_body_bytes(256 * 1024)
        .max_depth(8)
        .read_timeout(Some(std::time::Duration::from_secs(10)))
}

/// `YYYY-MM-DD`, and a date that exists (code `date`).
fn calendar_date(value: &str, _: &()) -> garde::Result {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let well_formed = value.len() == 10 && time::Date::parse(value, &format).is_ok();
    if well_formed {
        Ok(())
    } else {
        Err(custom_error(
            "date",
            "must be a calendar date as YYYY-MM-DD",
        ))
    }
}

/// A stored invoice.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invoice {
    /// Server-assigned id (UUIDv7).
    pub id: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// Who is billed.
    pub customer_email: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Due date, `YYYY-MM-DD`.
    pub due_date: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Sum of quantity × unit price, in cents.
    pub total_cents: u64,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
}

/// In-memory invoice store, keyed by tenant then id.
#[derive(Clone, Debug, Default)]
pub struct Store {
    inner: Arc<RwLock<BTreeMap<String, BTreeMap<String, Invoice>>>>,
}

impl Store {
    /// Every invoice of `tenant`, oldest first (ids are time-ordered).
    pub fn list(&self, tenant: &str) -> Vec<Invoice> {
        let map = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tenant)
            .map(|invoices| invoices.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The invoice `id` of `tenant`.
    pub fn get(&self, tenant: &str, id: &str) -> Option<Invoice> {
        let map = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tenant)?.get(id).cloned()
    }

    /// Stores a new invoice for `tenant` and returns it.
    pub fn create(&self, tenant: &str, new: NewInvoice) -> Invoice {
        let total_cents = new
            .lines
            .iter()
            .map(|l| u64::from(l.quantity).saturating_mul(l.unit_price_cents))
            .fold(0u64, u64::saturating_add);
        let created_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let invoice = Invoice {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: tenant.to_owned(),
            customer_email: new.customer_email,
            currency: new.currency,
            due_date: new.due_date,
            lines: new.lines,
            memo: new.memo,
            total_cents,
            created_at,
        };
        let mut map = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(tenant.to_owned())
            .or_default()
            .insert(invoice.id.clone(), invoice.clone());
        invoice
    }

    /// Removes the invoice `id` of `tenant`; returns it if it existed.
    pub fn delete(&self, tenant: &str, id: &str) -> Option<Invoice> {
        let mut map = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get_mut(tenant)?.remove(id)
    }

    /// Puts back an invoice that [`Store::delete`] returned (a deletion
    /// that could not be audited is undone).
    pub fn restore(&self, invoice: Invoice) {
        let mut map = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(invoice.tenant.clone())
            .or_default()
            .insert(invoice.id.clone(), invoice);
    }
}

fn not_found() -> Problem {
    Problem::new(ProblemType::NOT_FOUND).with_detail("no such invoice")
}

/// `GET /v1/tenants/{tenant}/invoices`
pub async fn list(State(store): State<Store>, Path(tenant): Path<String>) -> Json<Vec<Invoice>> {
    Json(store.list(&tenant))
}

/// `POST /v1/tenants/{tenant}/invoices`: 201 with the stored invoice; the
/// body is validated before the handler runs (problem+json 400/413/415/422).
pub async fn create(
    State(store): State<Store>,
    Path(tenant): Path<String>,
    Valid(Json(new)): Valid<Json<NewInvoice>>,
) -> (StatusCode, Json<Invoice>) {
    (StatusCode::CREATED, Json(store.create(&tenant, new)))
}

/// `GET /v1/tenants/{tenant}/invoices/{id}`
///
/// # Errors
///
/// 404 when the invoice does not exist in this tenant.
pub async fn get(
    State(store): State<Store>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Invoice>, Problem> {
    store.get(&tenant, &id).map(Json).ok_or_else(not_found)
}

/// `DELETE /v1/tenants/{tenant}/invoices/{id}`
///
/// # Errors
///
/// 404 when the invoice does not exist in this tenant; 503 when its
/// `invoice.delete` event cannot be written durably, and then the invoice
/// is put back (a deletion is never left without its audit record) and an
/// `invoice.delete` event with outcome `failure`, reason `reverted`, is
/// recorded best effort, in case the first event is written after all.
pub async fn delete(
    State(store): State<Store>,
    audit: RequestAudit,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    // The deletion, its record and its undoing run in a task of their own,
    // to the end: a request cancelled while its record is pending (the
    // shutdown's drain time ran out) must not leave the invoice deleted
    // without a record, or its undoing half done.
    match tokio::spawn(delete_recorded(store, audit, tenant, id)).await {
        Ok(result) => result,
        Err(_) => Err(Problem::new(ProblemType::INTERNAL_ERROR)),
    }
}

async fn delete_recorded(
    store: Store,
    audit: RequestAudit,
    tenant: String,
    id: String,
) -> Result<StatusCode, Problem> {
    let deleted = store.delete(&tenant, &id);
    // The `invoice.delete` domain event. `app::audited_router` puts the audit
    // layer in front (strict on this route, so the event is durable before
    // the answer); without the layer the `RequestAudit` extractor answers
    // 503 before anything is deleted.
    let event = audit
        .event("invoice.delete", Category::DataWrite)
        .with_target("invoice", id.as_str())
        .with_detail("tenant", tenant.as_str());
    let event = if deleted.is_some() {
        event.with_outcome(Outcome::Success)
    } else {
        event
            .with_outcome(Outcome::Failure)
            .with_reason("not_found")
    };
    if let Err(error) = audit.record(event).await {
        // Answered as not processed: then it must not be.
        if let Some(invoice) = deleted {
            store.restore(invoice);
            // The deletion's record may reach the trail all the same (it
            // timed out in the queue, or was written but not synced): say,
            // best effort, that the deletion was undone.
            let reverted = audit
                .event("invoice.delete", Category::DataWrite)
                .with_target("invoice", id.as_str())
                .with_detail("tenant", tenant.as_str())
                .with_outcome(Outcome::Failure)
                .with_reason("reverted");
            let _ = audit.0.auditor().record(reverted);
        }
        return Err(error.to_problem(audit.mode()));
    }
    deleted
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_invoice() -> NewInvoice {
        NewInvoice {
            customer_email: "billing@example.com".into(),
            currency: "EUR".into(),
            due_date: "2026-12-31".into(),
            lines: vec![
                Line {
                    description: "Seats".into(),
                    quantity: 3,
                    unit_price_cents: 1500,
                },
                Line {
                    description: "Support".into(),
                    quantity: 1,
                    unit_price_cents: 9900,
                },
            ],
            memo: None,
        }
    }

    #[test]
    fn store_keeps_tenants_apart() {
        let store = Store::default();
        let a = store.create("acme", new_invoice());
        assert_eq!(a.total_cents, 3 * 1500 + 9900);
        assert_eq!(store.get("acme", &a.id), Some(a.clone()));
        assert_eq!(store.get("globex", &a.id), None);
        assert!(store.delete("globex", &a.id).is_none());
        assert_eq!(store.list("acme"), vec![a.clone()]);
        assert!(store.list("globex").is_empty());
        assert_eq!(store.delete("acme", &a.id), Some(a));
        assert!(store.list("acme").is_empty());
    }
}
