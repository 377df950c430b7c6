//! Compiles the wire contract in `proto/` with protox (no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../proto";
    let files = [
        "fedseg/v1/secagg.proto",
        "fedseg/v1/coordinator.proto",
        "fedseg/v1/vertical.proto",
        "fedseg/v1/jobs.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={proto_root}/{file}");
    }
    let descriptors = protox::compile(files, [proto_root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The label holder's report is the largest vertical message; boxed,
        // it does not widen every participant message.
        .boxed(".fedseg.v1.VerticalUp.body.report")
        .compile_fds(descriptors)?;
    Ok(())
}
