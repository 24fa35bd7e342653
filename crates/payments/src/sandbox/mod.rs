//! The sandbox bank (see PROTOCOLS.md).
