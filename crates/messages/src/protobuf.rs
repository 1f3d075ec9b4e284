//! Protobuf payloads, read through a registered descriptor set: each is shown as its
//! canonical JSON (the proto3 JSON mapping), so that masking, search, expressions, exports
//! and schema inference all see its fields.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// One message type of a descriptor set, ready to decode payloads.
#[derive(Debug, Clone)]
pub struct ProtoDecoder {
    message: MessageDescriptor,
}

impl ProtoDecoder {
    /// The decoder of `message_type` in the (serialized `FileDescriptorSet`) `descriptor_set`,
    /// or what is wrong with them.
    pub fn new(descriptor_set: &[u8], message_type: &str) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set).map_err(|e| {
            format!("not a descriptor set this console can read ({e}); make one with `protoc --include_imports --descriptor_set_out=...`")
        })?;
        let message = pool.get_message_by_name(message_type).ok_or_else(|| {
            let known: Vec<String> = pool
                .all_messages()
                .map(|m| m.full_name().to_string())
                .take(20)
                .collect();
            format!(
                "the descriptor set has no message type '{message_type}' (it has: {})",
                known.join(", ")
            )
        })?;
        Ok(Self { message })
    }

    /// The message type's full name.
    pub fn type_name(&self) -> &str {
        self.message.full_name()
    }

    /// `payload` decoded as this type, as JSON bytes.
    pub fn to_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let m = DynamicMessage::decode(self.message.clone(), payload)
            .map_err(|e| format!("not a {} ({e})", self.type_name()))?;
        serde_json::to_vec(&m).map_err(|e| e.to_string())
    }

    /// Checks that `bytes` is a whole message of this type (for tests and tools).
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        DynamicMessage::decode(self.message.clone(), bytes).is_ok_and(|m| m.encoded_len() == bytes.len())
    }
}

/// An example schema and messages of it (`shop.v1.Order`), for tests and documentation.
pub mod example {
    use prost::Message;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

    /// `shop.v1.Order { string id = 1; int64 total = 2; string card = 3; }`, serialized.
    pub fn order_descriptor_set() -> Vec<u8> {
        let field = |name: &str, number, t: Type| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(t as i32),
            label: Some(Label::Optional as i32),
            json_name: Some(name.into()),
            ..Default::default()
        };
        FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("shop.proto".into()),
                package: Some("shop.v1".into()),
                syntax: Some("proto3".into()),
                message_type: vec![DescriptorProto {
                    name: Some("Order".into()),
                    field: vec![
                        field("id", 1, Type::String),
                        field("total", 2, Type::Int64),
                        field("card", 3, Type::String),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    /// An `Order` encoded by hand: id, total, card.
    pub fn order(id: &str, total: u8, card: &str) -> Vec<u8> {
        let mut b = vec![0x0a, id.len() as u8];
        b.extend(id.as_bytes());
        b.extend([0x10, total, 0x1a, card.len() as u8]);
        b.extend(card.as_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::example::{order, order_descriptor_set};
    use super::*;

    #[test]
    fn payloads_decode_to_their_json_and_bad_sets_say_why() {
        let d = ProtoDecoder::new(&order_descriptor_set(), "shop.v1.Order").unwrap();
        let json: serde_json::Value = serde_json::from_slice(&d.to_json(&order("o-1", 42, "4111")).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"id": "o-1", "total": "42", "card": "4111"}));
        assert!(d.to_json(&[0xff, 0xff]).unwrap_err().starts_with("not a shop.v1.Order"));
        let e = ProtoDecoder::new(&order_descriptor_set(), "shop.v1.Missing").unwrap_err();
        assert!(e.contains("it has: shop.v1.Order"), "{e}");
        assert!(ProtoDecoder::new(b"garbage", "x").unwrap_err().contains("protoc"));
    }
}
