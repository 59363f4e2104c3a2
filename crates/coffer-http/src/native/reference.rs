//! What the OpenAPI document says about every operation at once: the server it is served from,
//! a summary for each operation (from its id where the handler gives none), and the
//! `Coffer-On-Behalf-Of` header every native request may carry.

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, OpenApi, Required, Server, Type};

pub(super) struct Reference;

impl utoipa::Modify for Reference {
    fn modify(&self, api: &mut OpenApi) {
        let mut server = Server::new("/");
        server.description = Some("this Coffer node (paths include /coffer/v1)".into());
        api.servers = Some(vec![server]);
        for item in api.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                summarize(op);
                op.parameters.get_or_insert_with(Vec::new).push(on_behalf_of().into());
            }
        }
    }
}

/// A handler without a doc line gets its id, in words: `wallet_statement` -> "Wallet statement".
fn summarize(op: &mut Operation) {
    if op.summary.as_deref().is_some_and(|s| !s.is_empty()) {
        return;
    }
    let Some(id) = op.operation_id.as_deref() else { return };
    let words = id.replace('_', " ");
    let mut chars = words.chars();
    op.summary = chars.next().map(|c| c.to_uppercase().chain(chars).collect());
}

fn on_behalf_of() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Coffer-On-Behalf-Of")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Act as this owner (an id in the key's subtree): reach, defaults and answers are that owner's.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid))),
        ))
        .build()
}
