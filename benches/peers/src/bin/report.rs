//! Prints the peer comparison as a Markdown table, from the medians that
//! `cargo bench` left in `target/criterion`: microseconds per call and
//! multiples of the floor measured in the same run.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use decoding_peers::{CASES, PEERS, SHAPES, VOCABS};
use serde_json::Value;

/// Median in µs of every benchmark, by its full id (`V=50257/a/decoding`).
fn medians(dir: &Path, out: &mut BTreeMap<String, f64>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let read = |f: &str| -> Option<Value> {
                serde_json::from_str(&fs::read_to_string(path.join(f)).ok()?).ok()
            };
            if let (Some(b), Some(e)) = (read("benchmark.json"), read("estimates.json"))
                && let (Some(id), Some(ns)) =
                    (b["full_id"].as_str(), e["median"]["point_estimate"].as_f64())
            {
                out.insert(id.to_string(), ns / 1000.0);
            }
        } else if path.is_dir() {
            medians(&path, out);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let mut m = BTreeMap::new();
    medians(&root, &mut m);
    if m.is_empty() {
        eprintln!("no results under {}: run `cargo bench` first", root.display());
        std::process::exit(1);
    }
    println!(
        "| case | V | floor F (µs) | decoding | candle-transformers 0.11 | llm-samplers 0.0.7 | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    let cell = |us: Option<f64>, f: f64| match us {
        Some(us) => format!("{us:.1} ({:.2} F)", us / f),
        None => "n/a".to_string(),
    };
    let mut missed = Vec::new();
    // Each case's floor is measured right before it, and its ratios divide
    // by that one; the group's floors at its start and end are the fallback
    // (the lower of the two, never flattering the ratios).
    let group_floor = |v: usize| {
        let a = m.get(&format!("V={v}/floor")).copied();
        let b = m.get(&format!("V={v}/floor (end)")).copied();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    let floor =
        |v: usize, case: &str| m.get(&format!("V={v}/{case}/floor")).copied().or(group_floor(v));
    for (case, name, target) in CASES {
        for v in VOCABS {
            let Some(f) = floor(v, case) else { continue };
            let get = |peer: &str| m.get(&format!("V={v}/{case}/{peer}")).copied();
            let ours = get(PEERS[0]);
            let mut row = format!("| {case} {name} | {v} | {f:.1} |");
            for peer in PEERS {
                row += &format!(" {} |", cell(get(peer), f));
            }
            let met = ours.is_some_and(|o| {
                o / f <= target && PEERS[1..].iter().all(|p| get(p).is_none_or(|x| o < x))
            });
            row += &format!(" ≤ {target} F {} |", if met { "✓" } else { "✗" });
            if !met {
                missed.push(format!("{case} at V={v}"));
            }
            println!("{row}");
        }
    }
    for v in VOCABS {
        if let (Some(f), Some(&g)) = (floor(v, "a"), m.get(&format!("V={v}/a+logprob/decoding"))) {
            println!(
                "\ngreedy with its log-probability (`Pipeline::sample`), V={v}: {g:.1} µs ({:.2} F)",
                g / f
            );
        }
    }
    let shapes: Vec<_> =
        SHAPES.iter().filter(|s| m.contains_key(&format!("shapes/{}/decoding", s.0))).collect();
    if !shapes.is_empty() {
        println!(
            "\n| row shape | V | floor F (µs) | decoding | candle-transformers 0.11 | target |"
        );
        println!("|---|---|---|---|---|---|");
    }
    for (id, name, v, _, _, target) in shapes {
        let get = |what: &str| m.get(&format!("shapes/{id}/{what}")).copied();
        let Some(f) = get("floor") else { continue };
        let (ours, candle) = (get("decoding"), get("candle"));
        let met = ours.is_some_and(|o| o / f <= *target && candle.is_none_or(|c| o < c));
        if !met {
            missed.push(format!("shape {id}"));
        }
        println!(
            "| {name} | {v} | {f:.1} | {} | {} | ≤ {target} F {} |",
            cell(ours, f),
            cell(candle, f),
            if met { "✓" } else { "✗" }
        );
    }
    if !missed.is_empty() {
        println!("\nmissed (slower than the target or than a peer): {}", missed.join(", "));
    }
}
