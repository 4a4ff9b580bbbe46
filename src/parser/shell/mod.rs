//! BuildKit-compatible shell-word expansion (filled in by the shell lexer work).
