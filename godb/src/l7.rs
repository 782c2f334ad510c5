//! The stable table of application-layer (layer 7) protocol ids stored in the `l7`
//! column. Ids never change meaning once released; 0 means "unknown".

/// The id stored for flows whose application protocol was not recognised.
pub const UNKNOWN: u16 = 0;
