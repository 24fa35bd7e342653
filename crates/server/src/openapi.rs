//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::error::ErrorBody;

/// The document's base: its info and the shared error schema. The paths (and the schemas they
/// use) come from the route table itself (`crate::routes::documented_routes`), and
/// [`publish`] finishes the document with the answers and security every route shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Croupier API",
        description = "Durable double-entry wagering ledger. u128 ids are decimal strings on \
                       output and integers or decimal strings on input; amounts are integers \
                       in minor units. Errors are {\"error\": code, \"message\": text}."
    ),
    components(schemas(ErrorBody, crate::schema::TableId, crate::schema::RoundId))
)]
pub struct ApiDoc;

/// What the edge (crate::edge) may answer on any route, whatever its handler does.
const EDGE_REFUSALS: &str = "overloaded (too many requests or connections) or \
                             deadline_exceeded (the request deadline passed)";

/// Adds the edge's 503 answers to every operation (or to its own 503 description).
struct EdgeResponses;

impl utoipa::Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                match operation.responses.responses.get_mut("503") {
                    Some(RefOr::T(response)) => {
                        response.description =
                            format!("{}; or {EDGE_REFUSALS}", response.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => add_error(
                        operation,
                        "503",
                        &format!("Refused by the edge: {EDGE_REFUSALS}"),
                    ),
                }
            }
        }
    }
}

/// Every operation of a path item that the API uses.
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// Security schemes, each operation's requirement (by route family, unless its annotation
/// names one), and the 401/403/429 answers of authenticated routes.
struct Security;

/// Routes anyone may call.
const PUBLIC_PATHS: &[&str] = &[
    "/healthz",
    "/metrics",
    "/v1/openapi.json",
    "/v1/players/login",
    // A studio's result is authenticated by its Ed25519 signature, not by a credential.
    "/v1/tables/{table_id}/results",
];

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme(
            "operator_key",
            bearer("An operator key `crk.<id>.<secret>` (`croupier keys create --role R`)"),
        );
        components.add_security_scheme(
            "player_session",
            bearer("A player's session token `crs.…` from POST /v1/players/login"),
        );
        components.add_security_scheme(
            "provider_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Croupier-Key",
                "A provider key id; X-Croupier-Signature carries the hex HMAC-SHA256 of the path and query, a newline and the body",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if PUBLIC_PATHS.contains(&path.as_str()) {
                continue;
            }
            let scheme = if path.starts_with("/v1/wallet/") {
                "provider_signature"
            } else {
                "operator_key"
            };
            for operation in operations_mut(item) {
                operation.security.get_or_insert_with(|| {
                    vec![SecurityRequirement::new(scheme, Vec::<String>::new())]
                });
                add_error(
                    operation,
                    "401",
                    "unauthorized: missing, unknown, revoked or expired credentials",
                );
                add_error(
                    operation,
                    "403",
                    "forbidden: a caller of another kind or role",
                );
                add_error(
                    operation,
                    "429",
                    "rate_limited: retry after the Retry-After header's seconds",
                );
            }
        }
    }
}

fn add_error(operation: &mut utoipa::openapi::path::Operation, status: &str, description: &str) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let responses = &mut operation.responses.responses;
    if responses.contains_key(status) {
        return;
    }
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build();
    responses.insert(status.to_owned(), RefOr::T(response));
}

/// The document as JSON text, built once per process by the first router (every router has the
/// same routes, whatever its consensus type).
static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Finishes the router's document (the answers and security every route shares) and keeps it
/// as the one `GET /v1/openapi.json` serves.
pub(crate) fn publish(document: utoipa::openapi::OpenApi) {
    DOCUMENT.get_or_init(|| {
        let mut document = document;
        finish(&mut document);
        let json = document.to_json().unwrap_or_else(|error| {
            tracing::error!(%error, "OpenAPI document serialization failed");
            r#"{"error":"internal","message":"OpenAPI document unavailable"}"#.to_owned()
        });
        crate::schema::exact_u128_bounds(&json)
    });
}

/// What every operation shares, added once the route table has put the paths in.
fn finish(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    EdgeResponses.modify(document);
    Security.modify(document);
    Common.modify(document);
}

/// What the middlewares in front of every handler may answer (`crate::routes::router`), and
/// the read-consistency header every read takes.
struct Common;

impl utoipa::Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        for item in openapi.paths.paths.values_mut() {
            if let Some(operation) = item.get.as_mut() {
                let header = ParameterBuilder::new()
                    .name("X-Read-Consistency")
                    .parameter_in(ParameterIn::Header)
                    .description(Some(
                        "`stale` reads this node's own state without asking the leader; \
                         `linearizable` (the default) does. Either in any case.",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(case_insensitive(&["linearizable", "stale"]))),
                    ))
                    .build();
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(header);
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                add_error(
                    operation,
                    "400",
                    "invalid_request: X-Read-Consistency is neither linearizable nor stale",
                );
                add_error(
                    operation,
                    "401",
                    "unauthorized: a malformed Authorization header, or unknown credentials",
                );
                add_error(
                    operation,
                    "429",
                    "rate_limited: retry after the Retry-After header's seconds",
                );
            }
        }
    }
}

/// A pattern matching any of `words` in any letter case.
fn case_insensitive(words: &[&str]) -> String {
    let word = |word: &str| -> String {
        word.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
            .collect()
    };
    let words: Vec<String> = words.iter().map(|w| word(w)).collect();
    format!("^(?:{})$", words.join("|"))
}

/// This document.
#[utoipa::path(
    get, path = crate::paths::ROUTE_OPENAPI, tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn serve() -> Response {
    let Some(document) = DOCUMENT.get() else {
        return crate::error::ApiError::internal("the OpenAPI document was not built")
            .into_response();
    };
    let mut response = (StatusCode::OK, document.as_str()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
