//! Naming clusters: the enrolled target's cluster gets the target's name,
//! the others `SPEAKER_1`, `SPEAKER_2`, … in order of first appearance.

use super::diarizer::Diarization;
use super::speakers::Turn;
use super::Span;
use crate::profile::VoiceProfile;

/// How to find the target's cluster.
#[derive(Debug, Clone)]
pub enum TargetMatch<'a> {
    /// The cluster whose mean voice is nearest the profile: at least
    /// `threshold` cosine, and `margin` nearer than any other cluster.
    Profile {
        /// The target's profile.
        profile: &'a VoiceProfile,
        /// Least cosine of the cluster's centroid to the profile.
        threshold: f32,
        /// Least lead over the next-nearest cluster.
        margin: f32,
    },
    /// The cluster covering most of the segments `speaker.identify` gave the
    /// target (at least half of their time).
    Segments {
        /// The target's name.
        name: String,
        /// The segments labelled as the target.
        spans: Vec<Span>,
    },
}

/// A name per cluster of `d`, and which cluster (if any) is the target.
pub fn name_clusters(
    d: &Diarization,
    target: Option<&TargetMatch<'_>>,
) -> (Vec<String>, Option<usize>) {
    let k = d.centroids.len();
    let (target_name, found) = match target {
        None => (None, None),
        Some(TargetMatch::Profile {
            profile,
            threshold,
            margin,
        }) => {
            let mut scores: Vec<(usize, f32)> = d
                .centroids
                .iter()
                .enumerate()
                .map(|(c, v)| (c, profile.score(v)))
                .collect();
            scores.sort_by(|a, b| b.1.total_cmp(&a.1));
            let lead = match scores.as_slice() {
                [first, second, ..] => first.1 - second.1,
                _ => f32::INFINITY,
            };
            let best = scores
                .first()
                .filter(|b| b.1 >= *threshold && lead >= *margin)
                .map(|b| b.0);
            (Some(profile.name.clone()), best)
        }
        Some(TargetMatch::Segments { name, spans }) => {
            let total: f64 = spans.iter().map(|s| s.end - s.start).sum();
            let mut cover = vec![0.0f64; k];
            for p in &d.pieces {
                cover[p.label] += spans.iter().map(|s| s.overlap(&p.span)).sum::<f64>();
            }
            let best = cover
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .filter(|(_, c)| total > 0.0 && **c >= 0.5 * total)
                .map(|(i, _)| i);
            (Some(name.clone()), best)
        }
    };
    let mut names = vec![String::new(); k];
    let mut next = 1;
    for p in &d.pieces {
        if !names[p.label].is_empty() {
            continue;
        }
        names[p.label] = match (found, &target_name) {
            (Some(t), Some(n)) if t == p.label => n.clone(),
            _ => {
                next += 1;
                format!("SPEAKER_{}", next - 1)
            }
        };
    }
    for (c, n) in names.iter_mut().enumerate() {
        if n.is_empty() {
            *n = format!("SPEAKER_{}", next + c);
        }
    }
    (names, found)
}

/// The turns of `d` with cluster `names`.
pub fn speakers_of(d: &Diarization, names: &[String]) -> Vec<Turn> {
    d.pieces
        .iter()
        .zip(&d.confidence)
        .map(|(p, c)| Turn::new(p.span.start, p.span.end, names[p.label].clone(), *c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::turns::Piece;
    use super::*;
    use crate::profile::ModelIdentity;

    fn d() -> Diarization {
        let piece = |a, b, label| Piece {
            span: Span::new(a, b),
            label,
        };
        Diarization {
            pieces: vec![piece(0.0, 4.0, 0), piece(4.5, 9.0, 1), piece(9.5, 12.0, 0)],
            confidence: vec![0.9, 0.8, 0.9],
            centroids: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        }
    }

    fn profile(v: Vec<f32>) -> VoiceProfile {
        let model = ModelIdentity {
            encoder: "ge2e".into(),
            dim: 2,
            weights: "t".into(),
        };
        VoiceProfile::from_windows("guest", model, &[v], vec![], 1).unwrap()
    }

    #[test]
    fn names_the_cluster_nearest_the_profile() {
        let p = profile(vec![0.1, 1.0]);
        let m = TargetMatch::Profile {
            profile: &p,
            threshold: 0.75,
            margin: 0.05,
        };
        let (names, found) = name_clusters(&d(), Some(&m));
        assert_eq!(names, vec!["SPEAKER_1", "guest"]);
        assert_eq!(found, Some(1));
        let t = speakers_of(&d(), &names);
        assert_eq!(t[1].speaker, "guest");
    }

    #[test]
    fn names_no_one_when_the_profile_is_not_close_enough() {
        let p = profile(vec![1.0, 0.9]);
        let m = TargetMatch::Profile {
            profile: &p,
            threshold: 0.75,
            margin: 0.05,
        };
        let (names, found) = name_clusters(&d(), Some(&m));
        assert_eq!(names, vec!["SPEAKER_1", "SPEAKER_2"]);
        assert_eq!(found, None);
    }

    #[test]
    fn follows_the_segments_identify_labelled() {
        let m = TargetMatch::Segments {
            name: "host".into(),
            spans: vec![Span::new(0.0, 4.2), Span::new(9.4, 12.0)],
        };
        let (names, found) = name_clusters(&d(), Some(&m));
        assert_eq!(names, vec!["host", "SPEAKER_1"]);
        assert_eq!(found, Some(0));
    }
}
