//! A withdrawal's decision: the checks run at once — the AML rules' withdrawal score, the
//! player's KYC level and hold status, the payee's name against the verified identity,
//! Confirmation of Payee at the routed bank — and together give approve (with the route),
//! hold (a case opens, the money stays reserved) or reject (the reservation is voided), with
//! every finding as a reason the ledger keeps.

use croupier_cluster::Consensus;
use croupier_core::compliance::{KycLevel, SeenIdentifiers};
use croupier_core::payments::{Payee, PayeeAccount, WithdrawalDecision, WithdrawalRecord};
use croupier_payments::connector::{AccountRef, Connector, Party, PayeeMatch};
use croupier_payments::routing::{AccountKind, Payment};
use sha2::{Digest, Sha256};

use super::Payments;
use crate::state::AppState;

/// What the ledger says of the player, read once per decision.
#[derive(Debug, Default)]
struct PlayerFacts {
    found: bool,
    kyc_ok: bool,
    withdrawals_held: bool,
    /// The verified identity's name (None: no verified identity).
    identity_name: Option<String>,
    country: Option<String>,
    seen: SeenIdentifiers,
}

pub(crate) struct Decision {
    pub decision: WithdrawalDecision,
    pub reasons: Vec<String>,
}

pub(crate) async fn decide<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
) -> Result<Decision, crate::ApiError> {
    let facts = player_facts(state, record.player_id).await?;
    let mut reasons = Vec::new();
    if !facts.found {
        return Ok(reject(vec!["player_not_found".into()]));
    }
    if !facts.kyc_ok {
        return Ok(reject(vec!["kyc_required".into()]));
    }
    let currency = record.ledger.to_string();
    let payment = Payment {
        currency: &currency,
        country: facts.country.as_deref(),
        amount_minor: record.amount,
        account: account_kind(&record.payee.account),
    };
    let Some(route) = payments.route(&payment, &[]) else {
        return Ok(reject(vec!["no_route".into()]));
    };
    let Some(connector) = payments.connector(&route.connector) else {
        return Ok(reject(vec!["no_route".into()]));
    };
    // The score is local and quick; Confirmation of Payee is a bank round trip: together.
    let party = party_of(&record.payee);
    let aml = &state.compliance().aml;
    let ledger = croupier_risk::aml::LedgerCode::from_u64(record.ledger.to_u64())
        .expect("ledger codes are the same packing");
    let (evaluation, cop) = tokio::join!(
        async {
            crate::compliance::aml::score_withdrawal(
                aml,
                &facts.seen,
                record.player_id,
                ledger,
                record.amount,
            )
        },
        connector.confirm_payee(&party)
    );
    payments.record(&route.connector, cop.is_ok());
    let mut hold = facts.withdrawals_held;
    if hold {
        reasons.push("withdrawals_held".into());
    }
    match facts.identity_name.as_deref() {
        Some(name) if same_name(name, &record.payee.name) => reasons.push("payee_is_player".into()),
        Some(_) => {
            hold = true;
            reasons.push("payee_name_mismatch".into());
        }
        None => reasons.push("identity_unverified".into()),
    }
    match cop {
        Ok(PayeeMatch::Matched) => reasons.push("cop_match".into()),
        Ok(PayeeMatch::CloseMatch { .. }) => {
            hold = true;
            reasons.push("cop_close_match".into());
        }
        Ok(PayeeMatch::NotMatched) => {
            hold = true;
            reasons.push("cop_no_match".into());
        }
        // The account is at another bank, which this one cannot check.
        Ok(PayeeMatch::AccountNotFound) => reasons.push("cop_unavailable".into()),
        Err(_) => reasons.push("cop_unavailable".into()),
    }
    reasons.push(format!("score:{}", evaluation.score));
    let score_holds = evaluation.action >= croupier_risk::aml::Action::HoldWithdrawals;
    if score_holds {
        hold = true;
        reasons.extend(evaluation.reasons.iter().take(4).cloned());
    }
    let decision = match hold {
        true => WithdrawalDecision::Hold {
            case_id: hold_case_id(record.withdrawal_id),
            score: evaluation.score,
        },
        false => {
            reasons.push(route.reason.chars().take(64).collect());
            WithdrawalDecision::Approve {
                connector: route.connector,
            }
        }
    };
    Ok(Decision { decision, reasons })
}

fn reject(reasons: Vec<String>) -> Decision {
    Decision {
        decision: WithdrawalDecision::Reject,
        reasons,
    }
}

/// Read from this node's applied state: the decision follows the drive's linearizable read
/// of the withdrawal, so that state is at least as new, and the ledger checks the KYC level
/// and the hold again when it applies the decision.
async fn player_facts<C: Consensus>(
    state: &AppState<C>,
    player_id: u128,
) -> Result<PlayerFacts, crate::ApiError> {
    state
        .read_stale(move |view| {
            let ledger = view.ledger();
            let Some(player) = ledger.player_compliance(player_id) else {
                return PlayerFacts::default();
            };
            let required = ledger
                .compliance_policy()
                .requirements(player.country())
                .withdraw;
            PlayerFacts {
                found: true,
                kyc_ok: player.kyc_level >= required.max(KycLevel::None),
                withdrawals_held: player.withdrawals_held,
                identity_name: player
                    .identity
                    .as_ref()
                    .map(|identity| identity.name.clone()),
                country: player
                    .country()
                    .map(|code| String::from_utf8_lossy(&code).into_owned()),
                seen: player.seen,
            }
        })
        .await
}

/// The player's country as routing rules name it (None: not known), read from this node's
/// applied state as `player_facts` is: a route taken after a case or on fail-over obeys the same
/// country rules as the first one.
pub(crate) async fn player_country<C: Consensus>(
    state: &AppState<C>,
    player_id: u128,
) -> Result<Option<String>, crate::ApiError> {
    Ok(player_facts(state, player_id).await?.country)
}

/// The case a hold opens: derived from the withdrawal, so a repeated decision opens one.
pub(crate) fn hold_case_id(withdrawal_id: u128) -> u128 {
    let digest = Sha256::new()
        .chain_update(b"croupier/payments/hold/v1")
        .chain_update(withdrawal_id.to_be_bytes())
        .finalize();
    let id = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    id.max(1)
}

pub(crate) fn party_of(payee: &Payee) -> Party {
    let account = match &payee.account {
        PayeeAccount::Iban(iban) => AccountRef::Iban { iban: iban.clone() },
        PayeeAccount::SortCode {
            sort_code,
            account_number,
        } => AccountRef::SortCode {
            sort_code: sort_code.clone(),
            account_number: account_number.clone(),
        },
    };
    Party {
        account,
        name: payee.name.clone(),
    }
}

pub(crate) fn account_kind(account: &PayeeAccount) -> AccountKind {
    match account {
        PayeeAccount::Iban(_) => AccountKind::Iban,
        PayeeAccount::SortCode { .. } => AccountKind::SortCode,
    }
}

/// Names match when their words match, ignoring case, punctuation and order ("SMITH, Jane"
/// is "Jane Smith").
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    let words = |text: &str| {
        let mut words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        words.sort();
        words
    };
    let (a, b) = (words(a), words(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_by_their_words_whatever_the_order_case_or_punctuation() {
        assert!(same_name("Jane Smith", "SMITH, Jane"));
        assert!(same_name("Jane  smith", "jane smith"));
        assert!(!same_name("Jane Smith", "John Smith"));
        assert!(!same_name("", ""));
    }

    #[test]
    fn a_hold_opens_the_same_case_however_often_it_is_decided() {
        assert_eq!(hold_case_id(5), hold_case_id(5));
        assert_ne!(hold_case_id(5), hold_case_id(6));
        assert_ne!(hold_case_id(5), 0);
    }
}
