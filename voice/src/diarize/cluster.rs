//! Agglomerative clustering of speaker vectors: cosine distance, average
//! linkage (UPGMA), computed with the nearest-neighbour chain in O(n²) time
//! and memory, then cut at a distance or at a number of clusters.

use crate::profile::cosine;

/// Where to cut the dendrogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Merge while the average cosine distance between two clusters is at
    /// most this.
    Distance(f32),
    /// Merge until this many clusters are left.
    Count(usize),
}

/// Clusters `vectors`; returns a label per vector, numbered from 0 in the
/// order clusters first appear.
pub fn cluster(vectors: &[&[f32]], cut: Cut) -> Vec<usize> {
    let n = vectors.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut merges = merges(vectors);
    merges.sort_by(|a, b| a.2.total_cmp(&b.2));
    let take = match cut {
        Cut::Distance(d) => merges.iter().take_while(|m| m.2 <= d).count(),
        Cut::Count(k) => n.saturating_sub(k.max(1)),
    };
    for &(a, b, _) in &merges[..take.min(merges.len())] {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        parent[ra.max(rb)] = ra.min(rb);
    }
    let mut labels = vec![usize::MAX; n];
    let mut root_label = vec![usize::MAX; n];
    let mut next = 0;
    for (i, label) in labels.iter_mut().enumerate() {
        let r = find(&mut parent, i);
        if root_label[r] == usize::MAX {
            root_label[r] = next;
            next += 1;
        }
        *label = root_label[r];
    }
    labels
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// The `n - 1` merges of average-linkage clustering, as (member of one
/// cluster, member of the other, distance), in the order found.
fn merges(vectors: &[&[f32]]) -> Vec<(usize, usize, f32)> {
    let n = vectors.len();
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = 1.0 - cosine(vectors[i], vectors[j]);
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(n.saturating_sub(1));
    while out.len() + 1 < n {
        if chain.is_empty() {
            chain.extend(active.iter().position(|a| *a));
        }
        let a = chain[chain.len() - 1];
        let prev = chain.len().checked_sub(2).map(|i| chain[i]);
        let mut best = prev;
        let mut best_d = prev.map_or(f32::INFINITY, |p| d[a * n + p]);
        for c in 0..n {
            if active[c] && c != a && d[a * n + c] < best_d {
                best = Some(c);
                best_d = d[a * n + c];
            }
        }
        let Some(b) = best else { break };
        if Some(b) != prev {
            chain.push(b);
            continue;
        }
        chain.truncate(chain.len() - 2);
        // Keep the merged cluster in slot `a`; Lance–Williams for UPGMA.
        let (na, nb) = (size[a] as f32, size[b] as f32);
        for c in 0..n {
            if active[c] && c != a && c != b {
                let v = (na * d[a * n + c] + nb * d[b * n + c]) / (na + nb);
                d[a * n + c] = v;
                d[c * n + a] = v;
            }
        }
        active[b] = false;
        size[a] += size[b];
        out.push((a, b, best_d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around(angle: f32, jitter: &[f32]) -> Vec<Vec<f32>> {
        jitter
            .iter()
            .map(|j| vec![(angle + j).cos(), (angle + j).sin()])
            .collect()
    }

    #[test]
    fn finds_two_speakers_by_distance_and_by_count() {
        let mut v = around(0.0, &[0.0, 0.05, -0.05]);
        v.extend(around(1.5, &[0.02, -0.03]));
        v.push(vec![1.0, 0.02]);
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        assert_eq!(cluster(&refs, Cut::Distance(0.2)), vec![0, 0, 0, 1, 1, 0]);
        assert_eq!(cluster(&refs, Cut::Count(2)), vec![0, 0, 0, 1, 1, 0]);
        assert_eq!(cluster(&refs, Cut::Count(1)), vec![0; 6]);
        assert_eq!(cluster(&refs, Cut::Distance(0.0)).iter().max(), Some(&5));
    }

    #[test]
    fn average_linkage_matches_a_hand_computed_example() {
        // 1-d points on the circle at angles 0, 0.1, 1.0: cosine distances
        // d01 ≈ 0.005, d02 ≈ 0.460, d12 ≈ 0.378; UPGMA merges {0,1} first,
        // then joins 2 at (0.460 + 0.378) / 2 ≈ 0.419.
        let v = around(0.0, &[0.0, 0.1, 1.0]);
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let mut m = merges(&refs);
        m.sort_by(|a, b| a.2.total_cmp(&b.2));
        assert!((m[0].2 - (1.0 - 0.1f32.cos())).abs() < 1e-5);
        let expected = (2.0 - 1.0f32.cos() - 0.9f32.cos()) / 2.0;
        assert!((m[1].2 - expected).abs() < 1e-5, "{m:?}");
        assert_eq!(cluster(&refs, Cut::Distance(0.41)), vec![0, 0, 1]);
        assert_eq!(cluster(&refs, Cut::Distance(0.42)), vec![0, 0, 0]);
    }

    #[test]
    fn handles_empty_and_single_inputs() {
        assert!(cluster(&[], Cut::Count(2)).is_empty());
        assert_eq!(cluster(&[&[1.0, 0.0]], Cut::Count(2)), vec![0]);
    }
}
