//! The stable table of application-layer (layer 7) protocol ids stored in the `l7`
//! column. Ids never change meaning once released; 0 means "unknown".

/// The id stored for flows whose application protocol was not recognised.
pub const UNKNOWN: u16 = 0;

/// The name of layer-7 protocol `id`, or `None` for an id this version does not know.
pub fn name(id: u16) -> Option<&'static str> {
    match id {
        UNKNOWN => Some("unknown"),
        _ => None,
    }
}

/// The id of the layer-7 protocol called `name` (case-insensitive), if there is one.
pub fn id(name: &str) -> Option<u16> {
    if name.eq_ignore_ascii_case("unknown") {
        Some(UNKNOWN)
    } else {
        None
    }
}
