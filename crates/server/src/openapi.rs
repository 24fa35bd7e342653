//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::cluster::{AddNodeIn, ClusterStatusOut, NodeStatusOut, TransferLeaderIn};
use crate::routes::events::{EventOut, EventsOut};
use crate::routes::{cluster, events, ledger, ops, wallet};
use crate::wire::{
    AccountIn, AccountOut, BalanceOut, HealthOut, ItemResult, TransferIn, TransferOut,
    WalletMoveIn, WalletOk, WalletRollbackIn,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Croupier API",
        description = "Durable double-entry wagering ledger. u128 ids are decimal strings on \
                       output and integers or decimal strings on input; amounts are integers \
                       in minor units. Errors are {\"error\": code, \"message\": text}."
    ),
    paths(
        ops::healthz,
        ops::metrics,
        serve,
        ledger::create_accounts,
        ledger::get_account,
        ledger::get_account_transfers,
        ledger::create_transfers,
        ledger::get_transfer,
        ledger::get_house_account,
        wallet::bet,
        wallet::win,
        wallet::rollback,
        wallet::balance,
        events::list,
        events::stream,
        cluster::status,
        cluster::add_node,
        cluster::remove_node,
        cluster::transfer_leader,
    ),
    components(schemas(
        AccountIn,
        AccountOut,
        TransferIn,
        TransferOut,
        ItemResult,
        WalletMoveIn,
        WalletRollbackIn,
        WalletOk,
        BalanceOut,
        HealthOut,
        EventsOut,
        EventOut,
        ClusterStatusOut,
        NodeStatusOut,
        AddNodeIn,
        TransferLeaderIn,
        ErrorBody
    )),
    modifiers(&EdgeResponses)
)]
pub struct ApiDoc;

/// What the edge (crate::edge) may answer on any route, whatever its handler does.
const EDGE_REFUSALS: &str = "overloaded (too many requests or connections) or \
                             deadline_exceeded (the request deadline passed)";

/// Adds the edge's 503 answers to every operation (or to its own 503 description).
struct EdgeResponses;

impl utoipa::Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                match responses.get_mut("503") {
                    Some(RefOr::T(response)) => {
                        response.description =
                            format!("{}; or {EDGE_REFUSALS}", response.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let body = ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build();
                        let response = ResponseBuilder::new()
                            .description(format!("Refused by the edge: {EDGE_REFUSALS}"))
                            .content("application/json", body)
                            .build();
                        responses.insert("503".to_owned(), RefOr::T(response));
                    }
                }
            }
        }
    }
}

/// The document as JSON text, built once per process.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi().to_json().unwrap_or_else(|error| {
            tracing::error!(%error, "OpenAPI document serialization failed");
            r#"{"error":"internal","message":"OpenAPI document unavailable"}"#.to_owned()
        })
    })
}

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn serve() -> Response {
    let mut response = (StatusCode::OK, document_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
