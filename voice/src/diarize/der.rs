//! Diarization error rate, as NIST md-eval scores it: missed speech, false
//! alarms and speaker confusion over the scored reference speech time, after
//! mapping hypothesis speakers to reference speakers one-to-one so that
//! their overlap is largest, with a collar around every reference boundary
//! left unscored.

use std::collections::BTreeMap;

/// A speaker turn: start and end seconds, and a label.
pub type Labelled = (f64, f64, String);

/// The parts of a diarization error rate, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DerReport {
    /// Reference speech time scored (outside the collars).
    pub scored: f64,
    /// Reference speech with too few hypothesis speakers.
    pub missed: f64,
    /// Hypothesis speech with too few reference speakers.
    pub false_alarm: f64,
    /// Speech given to the wrong (mapped) speaker.
    pub confusion: f64,
}

impl DerReport {
    /// (missed + false alarm + confusion) / scored; 0 with nothing scored.
    pub fn rate(&self) -> f64 {
        if self.scored == 0.0 {
            return 0.0;
        }
        (self.missed + self.false_alarm + self.confusion) / self.scored
    }
}

/// Step of the scoring grid, seconds.
const STEP: f64 = 0.001;

/// Scores `hypothesis` against `reference`, leaving `collar` seconds either
/// side of each reference turn's start and end unscored.
pub fn diarization_error(
    reference: &[Labelled],
    hypothesis: &[Labelled],
    collar: f64,
) -> DerReport {
    let ids = |turns: &[Labelled]| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in turns {
            let n = m.len();
            m.entry(t.2.clone()).or_insert(n);
        }
        m
    };
    let (rid, hid) = (ids(reference), ids(hypothesis));
    let end = reference
        .iter()
        .chain(hypothesis)
        .map(|t| t.1)
        .fold(0.0, f64::max);
    let frames = (end / STEP).ceil() as usize;
    let active = |turns: &[Labelled], ids: &BTreeMap<String, usize>, t: f64| -> Vec<usize> {
        let mut a: Vec<usize> = turns
            .iter()
            .filter(|x| x.0 <= t && t < x.1)
            .map(|x| ids[&x.2])
            .collect();
        a.sort_unstable();
        a.dedup();
        a
    };
    let in_collar = |t: f64| {
        reference
            .iter()
            .any(|r| (t - r.0).abs() < collar || (t - r.1).abs() < collar)
    };
    let mut scored_frames = Vec::new();
    let mut overlap = vec![vec![0.0f64; rid.len()]; hid.len()];
    for f in 0..frames {
        let t = (f as f64 + 0.5) * STEP;
        if in_collar(t) {
            continue;
        }
        let (r, h) = (active(reference, &rid, t), active(hypothesis, &hid, t));
        for &hi in &h {
            for &ri in &r {
                overlap[hi][ri] += STEP;
            }
        }
        scored_frames.push((r, h));
    }
    let map = best_mapping(&overlap);
    let mut report = DerReport::default();
    for (r, h) in scored_frames {
        let (nr, nh) = (r.len() as f64, h.len() as f64);
        let correct = h
            .iter()
            .filter(|&&hi| map[hi].is_some_and(|ri| r.contains(&ri)))
            .count() as f64;
        report.scored += nr * STEP;
        report.missed += (nr - nh).max(0.0) * STEP;
        report.false_alarm += (nh - nr).max(0.0) * STEP;
        report.confusion += (nr.min(nh) - correct) * STEP;
    }
    report
}

/// The one-to-one map from hypothesis to reference speakers with the most
/// total overlap: exact (dynamic programming over subsets of reference
/// speakers) up to 12 of them, greedy beyond.
fn best_mapping(overlap: &[Vec<f64>]) -> Vec<Option<usize>> {
    let (nh, nr) = (overlap.len(), overlap.first().map_or(0, Vec::len));
    if nr > 12 {
        return greedy(overlap);
    }
    let full = 1usize << nr;
    // best[i][mask]: most overlap from hypotheses i.. with `mask` taken.
    let mut best = vec![vec![0.0f64; full]; nh + 1];
    for i in (0..nh).rev() {
        for mask in 0..full {
            let mut b = best[i + 1][mask];
            for r in 0..nr {
                if mask & (1 << r) == 0 {
                    b = b.max(overlap[i][r] + best[i + 1][mask | (1 << r)]);
                }
            }
            best[i][mask] = b;
        }
    }
    let mut map = vec![None; nh];
    let mut mask = 0usize;
    for (i, slot) in map.iter_mut().enumerate() {
        if best[i][mask] <= best[i + 1][mask] {
            continue;
        }
        for r in 0..nr {
            if mask & (1 << r) == 0 && best[i][mask] == overlap[i][r] + best[i + 1][mask | (1 << r)]
            {
                *slot = Some(r);
                mask |= 1 << r;
                break;
            }
        }
    }
    map
}

fn greedy(overlap: &[Vec<f64>]) -> Vec<Option<usize>> {
    let mut pairs: Vec<(usize, usize, f64)> = overlap
        .iter()
        .enumerate()
        .flat_map(|(h, row)| row.iter().enumerate().map(move |(r, &o)| (h, r, o)))
        .filter(|p| p.2 > 0.0)
        .collect();
    pairs.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut map = vec![None; overlap.len()];
    let mut taken = vec![false; overlap.first().map_or(0, Vec::len)];
    for (h, r, _) in pairs {
        if map[h].is_none() && !taken[r] {
            map[h] = Some(r);
            taken[r] = true;
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(a: f64, b: f64, s: &str) -> Labelled {
        (a, b, s.to_string())
    }

    #[test]
    fn a_perfect_relabelled_hypothesis_scores_zero() {
        let r = [t(0.0, 5.0, "host"), t(5.4, 10.0, "guest")];
        let h = [t(0.0, 5.0, "B"), t(5.4, 10.0, "A")];
        let d = diarization_error(&r, &h, 0.25);
        assert!(d.rate() < 1e-9, "{d:?}");
        assert!((d.scored - 8.6).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn counts_misses_false_alarms_and_confusion() {
        let r = [t(0.0, 10.0, "a"), t(10.0, 20.0, "b")];
        // 2 s of b called a, 1 s of a missed, 1 s of speech after the end.
        let h = [t(1.0, 12.0, "x"), t(12.0, 21.0, "y")];
        let d = diarization_error(&r, &h, 0.0);
        assert!((d.missed - 1.0).abs() < 0.01, "{d:?}");
        assert!((d.false_alarm - 1.0).abs() < 0.01, "{d:?}");
        assert!((d.confusion - 2.0).abs() < 0.01, "{d:?}");
        assert!((d.rate() - 0.2).abs() < 0.001);
        let d = diarization_error(&r, &h, 0.5);
        assert!((d.scored - 18.0).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn maps_speakers_one_to_one() {
        let r = [t(0.0, 4.0, "a"), t(4.0, 10.0, "b")];
        let h = [t(0.0, 10.0, "x")];
        let d = diarization_error(&r, &h, 0.0);
        assert!((d.confusion - 4.0).abs() < 0.01, "{d:?}");
        assert_eq!(
            best_mapping(&[vec![1.0, 3.0], vec![2.0, 2.5]]),
            vec![Some(1), Some(0)]
        );
    }
}
