//! The layer-7 state kept per connection.
//!
//! Stand-in with the exact interface of `godpi::L7State` (fixed size, `Copy`,
//! `Default`; `observe`, `is_decided`, `label`) while the godpi crate is being written:
//! it classifies nothing and labels every connection `godb::l7::UNKNOWN`. The flow
//! table only uses this interface, so switching to godpi is a one-line change here.

/// Per-connection layer-7 classification state (stand-in: never learns anything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L7State {
    _private: (),
}

impl L7State {
    /// Feeds one payload packet of the connection.
    pub fn observe(
        &mut self,
        _from_client: bool,
        _proto: u8,
        _client_port: u16,
        _server_port: u16,
        _payload: &[u8],
    ) {
    }

    /// Whether more payload would not change the label (always: nothing to learn).
    pub fn is_decided(&self) -> bool {
        true
    }

    /// The godb layer-7 id of the connection.
    pub fn label(&self, _proto: u8, _client_port: u16, _server_port: u16) -> u16 {
        godb::l7::UNKNOWN
    }
}
