//! Any bytes through both parser layers and the dump: must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ast) = rbuild::parser::parse_ast(&text) {
        let _ = ast.dump();
        let _ = rbuild::parser::instructions::parse(&ast);
    }
});
