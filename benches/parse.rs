//! Parser throughput: a generated 10,000-line Dockerfile through the untyped and the
//! typed layer. Run with `cargo bench --bench parse`.

use std::fmt::Write;

fn main() {
    divan::main();
}

/// A realistic mix: stages, continued RUN lines, JSON forms, ENV/LABEL pairs, heredocs,
/// comments and COPY flags, repeated to 10,000 physical lines.
fn dockerfile(lines: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:12\n");
    let mut n = 0;
    while out.lines().count() < lines {
        n += 1;
        let _ = write!(
            out,
            "FROM ${{BASE}} AS stage{n}\n\
             # install things\n\
             ENV A{n}=1 B{n}=\"two words\" PATH=/usr/local/bin:$PATH\n\
             LABEL org.example.n=\"{n}\" maintainer=me\n\
             RUN --mount=type=cache,target=/var/cache/apt apt-get update \\\n    \
             && apt-get install -y curl ca-certificates \\\n    \
             # a comment inside\n    \
             && rm -rf /var/lib/apt/lists/*\n\
             COPY --chown=app:app --chmod=0644 src/ /app/src/\n\
             COPY --from=stage1 [\"/out/bin\", \"/usr/local/bin/\"]\n\
             RUN <<EOF\nset -e\necho {n}\nEOF\n\
             WORKDIR /app\n\
             USER app\n\
             EXPOSE 8080/tcp 9000-9005\n\
             HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/ || exit 1\n\
             ENTRYPOINT [\"/usr/local/bin/app\"]\n\
             CMD [\"--serve\"]\n"
        );
    }
    out
}

#[divan::bench]
fn ast_10k_lines(bencher: divan::Bencher) {
    let text = dockerfile(10_000);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| rbuild::parser::parse_ast(divan::black_box(&text)));
}

#[divan::bench]
fn typed_10k_lines(bencher: divan::Bencher) {
    let text = dockerfile(10_000);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| rbuild::parser::instructions::parse_text(divan::black_box(&text)));
}
