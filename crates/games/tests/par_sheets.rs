//! The published PAR sheets in docs/par-sheets/ are exactly what the code computes from the
//! certified definitions, so the documents cannot drift from the math.

use std::path::PathBuf;

fn sheet_path(game: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/par-sheets")
        .join(format!("{game}.md"))
}

#[test]
fn published_par_sheets_match_the_computed_figures() {
    for name in croupier_games::GAME_NAMES {
        let computed = croupier_games::load(name).unwrap().par_sheet();
        let path = sheet_path(name);
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == computed,
            "{} is stale or missing; regenerate it with `croupier games par {name} > docs/par-sheets/{name}.md`",
            path.display()
        );
    }
}
