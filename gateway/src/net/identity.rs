//! Who is on the other end of a connection: the identity named in a client certificate issued by
//! the exchange CA. Identity is never taken from a message.

use std::fmt;

use schemas::BureauId;

/// A party the exchange knows, as named by the SAN URI of its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A bureau's system: `urn:bureau:<id>`.
    Bureau(BureauId),
    /// A person or tool operating the exchange: `urn:operator:<name>`.
    Operator(String),
    /// A gateway node (its client identity when pushing deliveries): `urn:gateway:<node>`.
    Gateway(String),
}

impl Identity {
    /// The SAN URI that names this identity in a certificate.
    pub fn uri(&self) -> String {
        match self {
            Self::Bureau(bureau) => format!("urn:bureau:{bureau}"),
            Self::Operator(name) => format!("urn:operator:{name}"),
            Self::Gateway(node) => format!("urn:gateway:{node}"),
        }
    }

    /// A gateway identity from a node name, if the name is valid.
    pub fn from_node(node: &str) -> Option<Self> {
        Self::from_uri(&format!("urn:gateway:{node}"))
    }

    /// Parses a SAN URI; `None` for anything that is not one of ours.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if let Some(id) = uri.strip_prefix("urn:bureau:") {
            return id.parse().ok().map(Self::Bureau);
        }
        if let Some(name) = uri.strip_prefix("urn:operator:") {
            return name_ok(name).then(|| Self::Operator(name.to_owned()));
        }
        if let Some(node) = uri.strip_prefix("urn:gateway:") {
            return name_ok(node).then(|| Self::Gateway(node.to_owned()));
        }
        None
    }
}

/// The caller of one connection, as the TLS layer identified it from its client certificate
/// (`None`: no certificate, or one naming no party of ours). The listener puts it into every
/// request; nothing in a message can change it.
#[derive(Debug, Clone)]
pub struct Peer(pub Option<Identity>);

/// When the client certificate of the request's connection expires (Unix milliseconds), put
/// beside [`Peer`] by the listener when the connection presented one: what the operator
/// dashboard shows as a bureau's days left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateExpiry(pub i64);

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_strangers_are_refused() {
        for identity in [
            Identity::Bureau(BureauId::TrafficPolice),
            Identity::Operator("alice".into()),
            Identity::Gateway("node-1".into()),
        ] {
            assert_eq!(Identity::from_uri(&identity.uri()), Some(identity));
        }
        assert_eq!(Identity::from_uri("urn:bureau:tax"), None);
        assert_eq!(Identity::from_uri("urn:operator:"), None);
        assert_eq!(Identity::from_uri("urn:operator:a b"), None);
        assert_eq!(Identity::from_uri("https://example.com"), None);
    }
}
