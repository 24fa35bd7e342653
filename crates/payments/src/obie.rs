//! UK Open Banking v3.1 payment-initiation connector (see PROTOCOLS.md).
