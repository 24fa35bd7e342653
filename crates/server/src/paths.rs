//! The API's route templates, as constants shared by the router and the metrics labels.

pub const ROUTE_HEALTHZ: &str = "/healthz";
pub const ROUTE_METRICS: &str = "/metrics";
pub const ROUTE_OPENAPI: &str = "/v1/openapi.json";
pub const ROUTE_ACCOUNTS: &str = "/v1/accounts";
pub const ROUTE_ACCOUNT: &str = "/v1/accounts/{id}";
pub const ROUTE_ACCOUNT_TRANSFERS: &str = "/v1/accounts/{id}/transfers";
pub const ROUTE_TRANSFERS: &str = "/v1/transfers";
pub const ROUTE_TRANSFER: &str = "/v1/transfers/{id}";
pub const ROUTE_LEDGER_HOUSE: &str = "/v1/ledgers/{ledger}/house";
pub const ROUTE_WALLET_BET: &str = "/v1/wallet/bet";
pub const ROUTE_WALLET_WIN: &str = "/v1/wallet/win";
pub const ROUTE_WALLET_ROLLBACK: &str = "/v1/wallet/rollback";
pub const ROUTE_WALLET_BALANCE: &str = "/v1/wallet/{player_id}/balance";
pub const ROUTE_EVENTS: &str = "/v1/events";
pub const ROUTE_EVENTS_STREAM: &str = "/v1/events/stream";
pub const ROUTE_CLUSTER_STATUS: &str = "/v1/cluster/status";
pub const ROUTE_CLUSTER_NODES: &str = "/v1/cluster/nodes";
pub const ROUTE_CLUSTER_NODE: &str = "/v1/cluster/nodes/{node_id}";
pub const ROUTE_CLUSTER_LEADER: &str = "/v1/cluster/leader";
pub const ROUTE_PLAYERS: &str = "/v1/players";
pub const ROUTE_PLAYERS_LOGIN: &str = "/v1/players/login";
pub const ROUTE_PLAYERS_LOGOUT: &str = "/v1/players/logout";
pub const ROUTE_PLAYERS_ME: &str = "/v1/players/me";
pub const ROUTE_PLAYER: &str = "/v1/players/{player_id}";
pub const ROUTE_PLAYER_SESSIONS: &str = "/v1/players/{player_id}/sessions";
pub const ROUTE_PLAYER_LIMITS: &str = "/v1/players/{player_id}/limits";
pub const ROUTE_PLAYER_SELF_EXCLUSION: &str = "/v1/players/{player_id}/self-exclusion";
pub const ROUTE_PLAYER_TIME_OUT: &str = "/v1/players/{player_id}/time-out";
pub const ROUTE_PLAYER_COMPLIANCE: &str = "/v1/players/{player_id}/compliance";
pub const ROUTE_PLAYER_DEPOSITS: &str = "/v1/players/{player_id}/deposits";
pub const ROUTE_PLAYER_KYC: &str = "/v1/players/{player_id}/kyc";
pub const ROUTE_PLAYER_IDENTITY: &str = "/v1/players/{player_id}/identity";
pub const ROUTE_PLAYER_REALITY_CHECK: &str = "/v1/players/{player_id}/reality-check";
pub const ROUTE_PLAYER_REALITY_CHECK_ACK: &str =
    "/v1/players/{player_id}/reality-check/acknowledgement";
pub const ROUTE_COMPLIANCE_POLICY: &str = "/v1/compliance/policy";
pub const ROUTE_CASES: &str = "/v1/cases";
pub const ROUTE_RISK_WITHDRAWAL_SCORE: &str = "/v1/risk/withdrawal-score";
pub const ROUTE_CASE: &str = "/v1/cases/{case_id}";
pub const ROUTE_CASE_ASSIGN: &str = "/v1/cases/{case_id}/assign";
pub const ROUTE_CASE_NOTES: &str = "/v1/cases/{case_id}/notes";
pub const ROUTE_CASE_DECISION: &str = "/v1/cases/{case_id}/decision";
pub const ROUTE_CASE_GOAML: &str = "/v1/cases/{case_id}/goaml";
pub const ROUTE_DEPOSITS: &str = "/v1/deposits";
pub const ROUTE_DEPOSIT: &str = "/v1/deposits/{deposit_id}";
pub const ROUTE_WITHDRAWALS: &str = "/v1/withdrawals";
pub const ROUTE_WITHDRAWAL: &str = "/v1/withdrawals/{withdrawal_id}";
pub const ROUTE_PAYMENT_NOTIFICATIONS: &str = "/v1/payments/notifications/{connector}";
pub const ROUTE_CONNECTOR_MOVEMENTS: &str = "/v1/payments/connectors/{connector}/movements";
pub const ROUTE_WEBHOOK_DELIVERIES: &str = "/v1/webhooks/deliveries";
pub const ROUTE_WEBHOOK_DELIVERY: &str = "/v1/webhooks/deliveries/{delivery_id}";
pub const ROUTE_WEBHOOK_REPLAY: &str = "/v1/webhooks/deliveries/{delivery_id}/replay";
pub const ROUTE_AUDIT_OPERATORS: &str = "/v1/audit/operators";
pub const ROUTE_TABLES: &str = "/v1/tables";
pub const ROUTE_TABLE: &str = "/v1/tables/{table_id}";
pub const ROUTE_TABLE_BETS: &str = "/v1/tables/{table_id}/bets";
pub const ROUTE_TABLE_BET_SOCKET: &str = "/v1/tables/{table_id}/bet-socket";
pub const ROUTE_TABLE_RESULTS: &str = "/v1/tables/{table_id}/results";
pub const ROUTE_TABLE_ROUNDS: &str = "/v1/tables/{table_id}/rounds";
pub const ROUTE_ROUND: &str = "/v1/rounds/{round_id}";
pub const ROUTE_CERTIFICATION: &str = "/v1/certification";
pub const ROUTE_LIVE: &str = "/v1/live";

const ROUTES: &[&str] = &[
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_OPENAPI,
    ROUTE_ACCOUNTS,
    ROUTE_ACCOUNT,
    ROUTE_ACCOUNT_TRANSFERS,
    ROUTE_TRANSFERS,
    ROUTE_TRANSFER,
    ROUTE_LEDGER_HOUSE,
    ROUTE_WALLET_BET,
    ROUTE_WALLET_WIN,
    ROUTE_WALLET_ROLLBACK,
    ROUTE_WALLET_BALANCE,
    ROUTE_EVENTS,
    ROUTE_EVENTS_STREAM,
    ROUTE_CLUSTER_STATUS,
    ROUTE_CLUSTER_NODES,
    ROUTE_CLUSTER_NODE,
    ROUTE_CLUSTER_LEADER,
    ROUTE_PLAYERS,
    ROUTE_PLAYERS_LOGIN,
    ROUTE_PLAYERS_LOGOUT,
    ROUTE_PLAYERS_ME,
    ROUTE_PLAYER,
    ROUTE_PLAYER_SESSIONS,
    ROUTE_PLAYER_LIMITS,
    ROUTE_PLAYER_SELF_EXCLUSION,
    ROUTE_PLAYER_TIME_OUT,
    ROUTE_PLAYER_COMPLIANCE,
    ROUTE_PLAYER_DEPOSITS,
    ROUTE_PLAYER_KYC,
    ROUTE_PLAYER_IDENTITY,
    ROUTE_PLAYER_REALITY_CHECK,
    ROUTE_PLAYER_REALITY_CHECK_ACK,
    ROUTE_COMPLIANCE_POLICY,
    ROUTE_CASES,
    ROUTE_RISK_WITHDRAWAL_SCORE,
    ROUTE_CASE,
    ROUTE_CASE_ASSIGN,
    ROUTE_CASE_NOTES,
    ROUTE_CASE_DECISION,
    ROUTE_CASE_GOAML,
    ROUTE_DEPOSITS,
    ROUTE_DEPOSIT,
    ROUTE_WITHDRAWALS,
    ROUTE_WITHDRAWAL,
    ROUTE_PAYMENT_NOTIFICATIONS,
    ROUTE_CONNECTOR_MOVEMENTS,
    ROUTE_WEBHOOK_DELIVERIES,
    ROUTE_WEBHOOK_DELIVERY,
    ROUTE_WEBHOOK_REPLAY,
    ROUTE_AUDIT_OPERATORS,
    ROUTE_TABLES,
    ROUTE_TABLE,
    ROUTE_TABLE_BETS,
    ROUTE_TABLE_BET_SOCKET,
    ROUTE_TABLE_RESULTS,
    ROUTE_TABLE_ROUNDS,
    ROUTE_ROUND,
    ROUTE_CERTIFICATION,
    ROUTE_LIVE,
];

/// The route template as a static label for metrics (no allocation per request).
pub fn route_label(template: &str) -> &'static str {
    ROUTES
        .iter()
        .copied()
        .find(|route| *route == template)
        .unwrap_or("other")
}
