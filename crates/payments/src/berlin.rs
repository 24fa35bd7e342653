//! Berlin Group NextGenPSD2 connector (see PROTOCOLS.md).
