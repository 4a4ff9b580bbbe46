//! Typed instructions (placeholder while the AST layer is built).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instruction error")]
pub struct InstructionError;
/// Placeholder.
pub fn parse(_ast: &crate::parser::Ast) -> Result<(), InstructionError> { Ok(()) }
