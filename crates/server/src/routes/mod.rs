//! The route table. Handlers live in the submodules; what they share in `crate::state`, the
//! route templates in `crate::paths`.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::MethodRouter;
use axum::Router;
use croupier_cluster::Consensus;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::certification;
use crate::edge::EdgeLimits;
use crate::telemetry;

pub mod audit;
pub mod bet_socket;
pub mod cases;
pub mod cluster;
pub mod compliance;
pub mod events;
pub mod identity;
pub mod ledger;
pub mod live;
pub mod movements;
pub mod ops;
pub mod payments;
pub mod players;
pub mod reality;
pub mod risk;
pub mod studio;
pub mod table_answers;
pub mod table_events;
pub mod tables;
pub mod wallet;
pub mod webhooks;

pub use crate::state::AppState;

/// The whole API. Unknown routes answer 404 JSON, wrong methods 405 JSON. Every route runs
/// under the edge's request deadline and concurrency cap (inside telemetry, so refusals are
/// counted like any answer). The routes and the OpenAPI document come from one table
/// ([`documented_routes`]): a handler cannot be routed without being documented, nor documented
/// without being routed.
pub fn router<C: Consensus>(state: AppState<C>, limits: &EdgeLimits) -> Router {
    telemetry::prometheus();
    let body_size_max_bytes = state.body_size_max_bytes();
    let (routes, document) = documented_routes::<C>().split_for_parts();
    crate::openapi::publish(document);
    // The web UI's pages and files: routed like the API (limits, telemetry, 404 JSON), but
    // not part of its document.
    let routes = routes
        .merge(crate::ui::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(middleware::from_fn(read_consistency))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::authenticate::authenticate::<C>,
        ))
        // Before anything may refuse the request (see `read_whole_body`).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::extract::read_whole_body::<C>,
        ))
        .layer(DefaultBodyLimit::max(body_size_max_bytes));
    crate::edge::request_limits(routes, limits)
        .layer(middleware::from_fn(telemetry::observe))
        .with_state(state)
}

/// A handler generic over the consensus, routed at its `#[utoipa::path]` path and method with
/// that annotation's operation in the document (utoipa-axum's `routes!` takes no generic
/// arguments, so this names the annotation's `__path_` struct the same way).
macro_rules! documented {
    ($module:ident :: $handler:ident :: <$consensus:ty>) => {
        utoipa_axum::paste! {
            documented::<$module::[<__path_ $handler>], _, _, _>($module::$handler::<$consensus>)
        }
    };
}

/// What `utoipa_axum::routes!` builds for one handler: its schemas, its path item and its
/// method router.
fn documented<P, H, T, S>(handler: H) -> UtoipaMethodRouter<S>
where
    P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    use utoipa_axum::PathItemExt;
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    let mut operation = P::operation();
    let tags = P::tags();
    if !tags.is_empty() {
        let operation_tags = operation.tags.get_or_insert_with(Vec::new);
        operation_tags.extend(tags.iter().map(ToString::to_string));
    }
    let methods = P::methods();
    let method_router = methods.iter().fold(MethodRouter::new(), |router, method| {
        router.on(method.to_method_filter(), handler.clone())
    });
    let mut paths = utoipa::openapi::path::Paths::new();
    paths.add_path_operation(P::path(), methods, operation);
    (schemas, paths, method_router)
}

/// Every route with its documentation, on top of [`ApiDoc`](crate::openapi::ApiDoc) (info,
/// schemas); the document is finished by `crate::openapi::publish`.
pub(crate) fn documented_routes<C: Consensus>() -> OpenApiRouter<AppState<C>> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(documented!(ops::healthz::<C>))
        .routes(routes!(ops::metrics))
        .routes(routes!(crate::openapi::serve))
        .routes(documented!(ledger::create_accounts::<C>))
        .routes(documented!(ledger::get_account::<C>))
        .routes(documented!(ledger::get_account_transfers::<C>))
        .routes(documented!(ledger::create_transfers::<C>))
        .routes(documented!(ledger::get_transfer::<C>))
        .routes(documented!(ledger::get_house_account::<C>))
        .routes(documented!(wallet::bet::<C>))
        .routes(documented!(wallet::win::<C>))
        .routes(documented!(wallet::rollback::<C>))
        .routes(documented!(wallet::balance::<C>))
        .routes(documented!(events::list::<C>))
        .routes(documented!(events::stream::<C>))
        .routes(documented!(cluster::status::<C>))
        .routes(documented!(cluster::add_node::<C>))
        .routes(documented!(cluster::remove_node::<C>))
        .routes(documented!(cluster::transfer_leader::<C>))
        .routes(documented!(players::create::<C>))
        .routes(documented!(players::login::<C>))
        .routes(documented!(players::logout::<C>))
        .routes(documented!(players::me::<C>))
        .routes(documented!(players::get::<C>))
        .routes(documented!(players::revoke_sessions::<C>))
        .routes(documented!(compliance::put_limits::<C>))
        .routes(documented!(compliance::get_limits::<C>))
        .routes(documented!(reality::put::<C>))
        .routes(documented!(reality::get::<C>))
        .routes(documented!(reality::acknowledge::<C>))
        .routes(documented!(compliance::self_exclude::<C>))
        .routes(documented!(compliance::lift_self_exclusion::<C>))
        .routes(documented!(compliance::time_out::<C>))
        .routes(documented!(compliance::get_status::<C>))
        .routes(documented!(compliance::deposit::<C>))
        .routes(documented!(compliance::put_kyc_level::<C>))
        .routes(documented!(identity::verify::<C>))
        .routes(documented!(cases::list::<C>))
        .routes(documented!(cases::get::<C>))
        .routes(documented!(cases::open::<C>))
        .routes(documented!(cases::assign::<C>))
        .routes(documented!(cases::note::<C>))
        .routes(documented!(cases::decide::<C>))
        .routes(documented!(cases::export_goaml::<C>))
        .routes(documented!(risk::withdrawal_score::<C>))
        .routes(documented!(payments::create_deposit::<C>))
        .routes(documented!(payments::get_deposit::<C>))
        .routes(documented!(payments::create_withdrawal::<C>))
        .routes(documented!(payments::get_withdrawal::<C>))
        .routes(documented!(payments::notification::<C>))
        .routes(documented!(movements::movements::<C>))
        .routes(documented!(webhooks::list::<C>))
        .routes(documented!(webhooks::get::<C>))
        .routes(documented!(webhooks::replay::<C>))
        .routes(documented!(compliance::put_policy::<C>))
        .routes(documented!(compliance::get_policy::<C>))
        .routes(documented!(audit::operators::<C>))
        .routes(documented!(tables::list::<C>))
        .routes(documented!(tables::configure::<C>))
        .routes(documented!(tables::bet::<C>))
        .routes(documented!(bet_socket::bet_socket::<C>))
        .routes(documented!(studio::post_result::<C>))
        .routes(documented!(tables::rounds::<C>))
        .routes(documented!(tables::round::<C>))
        .routes(documented!(live::live::<C>))
        .routes(documented!(certification::certification::<C>))
}

/// Header by which a read opts in to this node's own, possibly stale, state.
pub const READ_CONSISTENCY_HEADER: &str = "x-read-consistency";

/// Reads are linearizable unless the request says `X-Read-Consistency: stale`; anything else
/// in that header is refused so a typo does not silently give the default.
async fn read_consistency(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stale = match request.headers().get(READ_CONSISTENCY_HEADER) {
        None => false,
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"stale") => true,
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"linearizable") => false,
        Some(_) => {
            return crate::error::ApiError::invalid_request(
                "X-Read-Consistency must be \"linearizable\" (the default) or \"stale\"",
            )
            .into_response()
        }
    };
    crate::state::READ_STALE
        .scope(stale, next.run(request))
        .await
}
