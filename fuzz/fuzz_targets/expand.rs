//! Any word through the shell expander, both escape tokens, all option combinations.
#![no_main]

use rbuild::parser::shell::{EnvList, Lex};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let word = String::from_utf8_lossy(rest);
    let env = EnvList::from_slice(&["A=a b", "EMPTY=", "X=*?[x]"]);
    let lex = Lex {
        escape: if flags & 1 == 0 { '\\' } else { '`' },
        raw_quotes: flags & 2 != 0,
        raw_escapes: flags & 4 != 0,
        skip_unset_env: flags & 8 != 0,
        skip_process_quotes: flags & 16 != 0,
    };
    let _ = lex.process_word(&word, &env);
    let _ = lex.process_words(&word, &env);
    let _ = lex.process_word_with_matches(&word, &env);
});
