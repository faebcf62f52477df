//! `<call>` stanzas → typed values, from XML or from the JSON nodes client libraries hold.

mod call;
mod node;

pub use call::{AudioCodec, CallAction, CallStanza, MediaOffer, StanzaCandidate, VideoState};
pub use node::{Content, MAX_STANZA_BYTES, Node};

/// Why a stanza was refused; the message names the element and attribute at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StanzaError {
    /// The text is not well-formed XML.
    #[error("stanza is not XML: {0}")]
    NotXml(String),
    /// The JSON node is malformed.
    #[error("stanza node is malformed: {0}")]
    BadNode(String),
    /// The root element is not `<call>`.
    #[error("stanza is <{0}>, not <call>")]
    NotCall(String),
    /// No offer, accept, mute, mute_v2, video, terminate or reject inside `<call>`.
    #[error("<call> has no offer, accept, mute, mute_v2, video, terminate or reject child")]
    NoAction,
    /// A required attribute is missing.
    #[error("<{element}> lacks the {attribute} attribute")]
    MissingAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute's value is unusable.
    #[error("<{element}> {attribute}: {reason}")]
    BadAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `<te>` or `<te2>` with neither ip/port attributes nor 6- or 18-byte content.
    #[error("<{element}> content is {len} bytes; expected 6 (IPv4 + port) or 18 (IPv6 + port)")]
    BadTransport {
        /// `te` or `te2`.
        element: String,
        /// The content length.
        len: usize,
    },
    /// Larger than [`MAX_STANZA_BYTES`].
    #[error("stanza of {0} bytes is larger than the 65536 accepted")]
    TooLarge(usize),
    /// Nested deeper than any call stanza is.
    #[error("stanza is nested too deeply")]
    TooDeep,
}

/// Parses an XML `<call>` stanza.
pub fn parse_xml(xml: &str) -> Result<CallStanza, StanzaError> {
    CallStanza::from_node(&Node::from_xml(xml)?)
}

/// Parses a JSON `<call>` node.
pub fn parse_json(node: &serde_json::Value) -> Result<CallStanza, StanzaError> {
    CallStanza::from_node(&Node::from_json(node)?)
}
