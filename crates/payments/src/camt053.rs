//! ISO 20022 camt.053 bank-to-customer statements: written by the sandbox bank, read by reconciliation.
