//! TF-IDF cosine similarity, for duplicate detection.

use std::collections::HashMap;

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn term_counts(text: &str) -> HashMap<String, f64> {
    let mut counts = HashMap::new();
    for t in tokens(text) {
        *counts.entry(t).or_insert(0.0) += 1.0;
    }
    counts
}

/// Scores `query` against each document (0..=1), with inverse document
/// frequencies taken over the documents plus the query.
pub fn scores(query: &str, documents: &[&str]) -> Vec<f64> {
    let q = term_counts(query);
    let docs: Vec<HashMap<String, f64>> = documents.iter().map(|d| term_counts(d)).collect();
    let n = (docs.len() + 1) as f64;
    let mut df: HashMap<&str, f64> = HashMap::new();
    for d in docs.iter().chain(std::iter::once(&q)) {
        for term in d.keys() {
            *df.entry(term.as_str()).or_insert(0.0) += 1.0;
        }
    }
    let idf = |t: &str| ((n + 1.0) / (df.get(t).copied().unwrap_or(0.0) + 1.0)).ln() + 1.0;
    let weigh = |d: &HashMap<String, f64>| -> HashMap<String, f64> {
        d.iter().map(|(t, c)| (t.clone(), c * idf(t))).collect()
    };
    let norm = |v: &HashMap<String, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let qv = weigh(&q);
    let qn = norm(&qv);
    docs.iter()
        .map(|d| {
            let dv = weigh(d);
            let dn = norm(&dv);
            if qn == 0.0 || dn == 0.0 {
                return 0.0;
            }
            let dot: f64 = qv
                .iter()
                .filter_map(|(t, w)| dv.get(t).map(|x| w * x))
                .sum();
            (dot / (qn * dn)).clamp(0.0, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_scores_one_and_unrelated_text_zero() {
        let s = scores(
            "Write the quarterly report",
            &["write the quarterly report", "feed a cat"],
        );
        assert!((s[0] - 1.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s[1], 0.0);
    }

    #[test]
    fn rare_shared_words_count_more_than_common_ones() {
        let s = scores(
            "fix login bug",
            &["fix login crash", "fix the build", "fix typo"],
        );
        assert!(s[0] > s[1] && s[0] > s[2], "{s:?}");
    }
}
