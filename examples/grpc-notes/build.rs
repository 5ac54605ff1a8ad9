//! Generates the notes service from `proto/notes.proto` with protox, a
//! protobuf compiler written in Rust: building the example needs no
//! `protoc` on the machine.
//!
//! The messages a client sends carry their validation rules as garde
//! attributes, so that a handler checks a decoded message in one call
//! (`guardrails_validate::grpc::check`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["notes.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .message_attribute("notes.v1.CreateNoteRequest", "#[derive(garde::Validate)]")
        .field_attribute(
            "notes.v1.CreateNoteRequest.title",
            "#[garde(length(chars, min = 1, max = 200))]",
        )
        .field_attribute(
            "notes.v1.CreateNoteRequest.body",
            "#[garde(length(chars, max = 10000))]",
        )
        .field_attribute(
            "notes.v1.CreateNoteRequest.tags",
            "#[garde(length(max = 10), inner(length(chars, min = 1, max = 32)))]",
        )
        .message_attribute("notes.v1.DeleteNoteRequest", "#[derive(garde::Validate)]")
        .field_attribute(
            "notes.v1.DeleteNoteRequest.id",
            "#[garde(length(min = 1, max = 64))]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
