//! Code generated from `proto/` by build.rs, and the encoded descriptor set
//! served by reflection.

#![allow(missing_docs, clippy::doc_markdown, clippy::doc_lazy_continuation)]

tonic::include_proto!("cognito.verify.v1");

/// The encoded `FileDescriptorSet` of our protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("cognito_verify_descriptor");
