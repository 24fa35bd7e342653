//! Cluster operations: status, membership changes and leadership transfer. Any node answers;
//! changes run on the leader (the node forwards them).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::{AdminError, AdminRequest, ClusterStatus, Consensus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Allowed;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::wire::U64In;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterStatusOut {
    /// The node that answered.
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub nodes: Vec<NodeStatusOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeStatusOut {
    pub node_id: u64,
    /// leader, follower, candidate, learner or unreachable.
    pub role: &'static str,
    pub voter: bool,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Entries this node's applied state is behind the leader's last log index.
    pub lag: Option<u64>,
    pub peer_addr: String,
    pub api_addr: Option<String>,
}

impl From<ClusterStatus> for ClusterStatusOut {
    fn from(status: ClusterStatus) -> Self {
        ClusterStatusOut {
            node_id: status.node_id,
            leader_id: status.leader_id,
            term: status.term,
            nodes: status
                .nodes
                .into_iter()
                .map(|n| NodeStatusOut {
                    node_id: n.node_id,
                    role: n.role.as_str(),
                    voter: n.voter,
                    term: n.term,
                    last_log_index: n.last_log_index,
                    applied_index: n.applied_index,
                    lag: n.lag,
                    peer_addr: n.peer_addr,
                    api_addr: n.api_addr,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNodeIn {
    #[schema(value_type = crate::schema::NodeId)]
    pub node_id: U64In,
    /// The new node's node-to-node address (its `--peer-listen`), 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    pub peer_addr: String,
    /// Its HTTP address (informational: each node reports its own in the status).
    #[serde(default)]
    #[allow(dead_code)]
    pub api_addr: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferLeaderIn {
    #[schema(value_type = crate::schema::NodeId)]
    pub node_id: U64In,
}

/// Each member's role, term, last log index, applied index and lag.
#[utoipa::path(
    get, path = crate::paths::ROUTE_CLUSTER_STATUS, tag = "cluster",
    responses(
        (status = 200, body = ClusterStatusOut),
        (status = 404, description = "not_clustered: a one-node server without peers", body = ErrorBody),
    )
)]
pub async fn status<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
) -> Result<Response, ApiError> {
    match state.consensus().cluster_status().await {
        Some(status) => Ok(json_response(
            StatusCode::OK,
            &ClusterStatusOut::from(status),
        )),
        None => Err(not_clustered()),
    }
}

/// Adds a node: a learner until it has caught up, then a voter (joint consensus).
#[utoipa::path(
    post, path = crate::paths::ROUTE_CLUSTER_NODES, tag = "cluster", request_body = AddNodeIn,
    responses(
        (status = 200, body = ClusterStatusOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 404, description = "not_clustered: a one-node server without peers", body = ErrorBody),
        (status = 409, description = "cluster_change_refused", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "cluster_unavailable: no leader, or it cannot be reached", body = ErrorBody),
    )
)]
pub async fn add_node<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ClusterAdmin>,
    ApiJson(body): ApiJson<AddNodeIn>,
) -> Result<Response, ApiError> {
    if body.node_id.0 == 0 {
        return Err(ApiError::invalid_request("node_id must not be 0"));
    }
    // Characters, as the document's maxLength counts them.
    if body.peer_addr.is_empty() || body.peer_addr.chars().count() > 256 {
        return Err(ApiError::invalid_request(
            "peer_addr must be a host:port of 1 to 256 characters",
        ));
    }
    let request = AdminRequest::AddNode {
        node_id: body.node_id.0,
        peer_addr: body.peer_addr,
    };
    admin(&state, request).await
}

/// Removes a node from the membership.
#[utoipa::path(
    delete, path = crate::paths::ROUTE_CLUSTER_NODE, tag = "cluster",
    params(("node_id" = crate::schema::NodeId, Path)),
    responses(
        (status = 200, body = ClusterStatusOut),
        (status = 400, description = "invalid_path: not a decimal node id from 1 to 2^64-1", body = ErrorBody),
        (status = 404, description = "not_clustered: a one-node server without peers", body = ErrorBody),
        (status = 409, description = "cluster_change_refused", body = ErrorBody),
        (status = 503, description = "cluster_unavailable: no leader, or it cannot be reached", body = ErrorBody),
    )
)]
pub async fn remove_node<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ClusterAdmin>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let node_id = parse_node_id(&path.0)?;
    admin(&state, AdminRequest::RemoveNode { node_id }).await
}

/// Moves leadership to another voter.
#[utoipa::path(
    post, path = crate::paths::ROUTE_CLUSTER_LEADER, tag = "cluster", request_body = TransferLeaderIn,
    responses(
        (status = 200, body = ClusterStatusOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 404, description = "not_clustered: a one-node server without peers", body = ErrorBody),
        (status = 409, description = "cluster_change_refused", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "cluster_unavailable: no leader, or it cannot be reached", body = ErrorBody),
    )
)]
pub async fn transfer_leader<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ClusterAdmin>,
    ApiJson(body): ApiJson<TransferLeaderIn>,
) -> Result<Response, ApiError> {
    if body.node_id.0 == 0 {
        return Err(ApiError::invalid_request("node_id must not be 0"));
    }
    admin(
        &state,
        AdminRequest::TransferLeader {
            node_id: body.node_id.0,
        },
    )
    .await
}

/// Decimal digits (leading zeros allowed, as for ids), 1 to u64::MAX.
fn parse_node_id(text: &str) -> Result<u64, ApiError> {
    match crate::wire::parse_decimal_u128(text.as_bytes()).map(u64::try_from) {
        Some(Ok(id)) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid_path(
            "node_id must be a decimal integer from 1 to 2^64-1",
        )),
    }
}

async fn admin<C: Consensus>(
    state: &AppState<C>,
    request: AdminRequest,
) -> Result<Response, ApiError> {
    let consensus = state.consensus();
    match consensus.cluster_admin(request).await {
        Ok(()) => {}
        Err(AdminError::NotClustered) => return Err(not_clustered()),
        Err(AdminError::Refused(message)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "cluster_change_refused",
                message,
            ))
        }
        Err(error @ (AdminError::NoLeader | AdminError::Unavailable(_))) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                error.to_string(),
            ))
        }
    }
    match consensus.cluster_status().await {
        Some(status) => Ok(json_response(
            StatusCode::OK,
            &ClusterStatusOut::from(status),
        )),
        None => Err(not_clustered()),
    }
}

fn not_clustered() -> ApiError {
    ApiError::not_found(
        "not_clustered",
        "this node runs alone (started without --peer-listen): there is no cluster to show or change",
    )
}
